// The Fast R-CNN box branch at inference, as torchvision's MultiScaleRoIAlign + TwoMLPHead +
// FastRCNNPredictor + RoIHeads.postprocess_detections (ops/poolers.py, roi_heads.py, v0.14):
// each proposal is pooled to 7x7 (RoIAlign, sampling ratio 2, aligned=False) from the FPN
// level chosen by LevelMapper (k = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped to the
// levels present), flattened, through fc6 + ReLU and fc7 + ReLU, then class logits and
// per-class deltas. Detections: softmax, BoxCoder(10, 10, 5, 5) per class, clip, drop the
// background, scores > scoreThresh, boxes >= 1e-2, NMS per class, the best detectionsPerImg.
// The head runs level by level (rows are independent); scoring runs on the host in float32.
// Training (select_training_samples + fastrcnn_loss): the ground-truth boxes join the
// proposals, each is matched (IoU >= 0.5 its object's class, else background), 512 per
// image sampled with at most a quarter objects, cross-entropy on their logits and smooth L1
// (beta 1/9) on the true class's deltas (train/targets.ts, train/losses.ts).

import type { Backend } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { constant } from '../nn/init.js';
import { Identity, ReLU } from '../nn/activation.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import type { Random } from '../data/random.js';
import { noGrad } from '../tensor/autograd.js';
import { hostLoss } from '../tensor/ops/host_loss.js';
import { relu } from '../tensor/ops/relu.js';
import { reshape } from '../tensor/ops/reshape.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { batchedNms, BoxCoder, clipBoxesToImage, removeSmallBoxes, takeRows } from './boxes.js';
import type { NamedMap } from './fpn.js';
import { roiAlign } from './ops/roi_align.js';
import type { DetectionTarget, Proposals } from './rpn.js';
import { fastRcnnLoss } from './train/losses.js';
import { assignTargets, BalancedPositiveNegativeSampler, Matcher } from './train/targets.js';

const f = Math.fround;

/** @example const o: RoiAlignPoolOptions = { featmapNames: ['0', '1', '2', '3'], outputSize: 7, samplingRatio: 2 }; */
export interface RoiAlignPoolOptions {
  featmapNames: readonly string[];
  outputSize: number;
  samplingRatio: number;
  canonicalScale?: number;
  canonicalLevel?: number;
}

/** Pooled rois of one level: rows `index` of the input, [k, C, S, S].
 * @example
 * const pooler = new MultiScaleRoIAlign({ featmapNames: ['0'], outputSize: 7, samplingRatio: 2 });
 * const groups: PooledGroup[] = pooler.forward([{ name: '0', tensor: x }], [new Float32Array([0, 0, 32, 32])], [[128, 128]]);
 */
export interface PooledGroup {
  level: number;
  /** Positions in the concatenation of every image's boxes. */
  index: Int32Array;
  pooled: Tensor;
}

/**
 * torchvision.ops.MultiScaleRoIAlign.
 * @example
 * const pooler = new MultiScaleRoIAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: 7, samplingRatio: 2 });
 * const groups = pooler.forward([{ name: '0', tensor: x }], [new Float32Array([0, 0, 32, 32])], [[800, 1063]]);
 */
export class MultiScaleRoIAlign {
  readonly featmapNames: string[];
  readonly outputSize: number;
  readonly samplingRatio: number;
  readonly canonicalScale: number;
  readonly canonicalLevel: number;

  constructor(opts: RoiAlignPoolOptions) {
    this.featmapNames = [...opts.featmapNames];
    this.outputSize = opts.outputSize;
    this.samplingRatio = opts.samplingRatio;
    this.canonicalScale = opts.canonicalScale ?? 224;
    this.canonicalLevel = opts.canonicalLevel ?? 4;
    if (!(Number.isFinite(this.canonicalScale) && this.canonicalScale > 0) || !Number.isInteger(this.canonicalLevel)) {
      throw new InvalidArgumentError(`MultiScaleRoIAlign: 'canonicalScale' must be a number > 0 and 'canonicalLevel' an integer, got ${String(opts.canonicalScale)} and ${String(opts.canonicalLevel)}`);
    }
  }

  /** The scale of each used level (a power of 2 from its size against the largest image)
   *  and the level of each box (LevelMapper), as poolers.py. */
  assignLevels(levels: readonly NamedMap[], boxes: Float32Array, imageSizes: readonly (readonly [number, number])[]): { maps: Tensor[]; scales: number[]; level: Int32Array } {
    const maps = this.featmapNames.map((name) => {
      const m = levels.find((l) => l.name === name);
      if (!m) throw new InvalidArgumentError(`MultiScaleRoIAlign: no feature map '${name}'; the backbone gives ${levels.map((l) => l.name).join(', ')}`);
      return m.tensor;
    });
    const maxH = Math.max(...imageSizes.map((s) => s[0]));
    const scales = maps.map((m) => 2 ** Math.round(f(Math.log2(f(m.shape[2] / maxH)))));
    const kMin = -Math.log2(scales[0]), kMax = -Math.log2(scales[scales.length - 1]);
    const n = boxes.length / 4;
    const level = new Int32Array(n);
    const eps = f(1e-6);
    for (let i = 0; i < n; i++) {
      const area = f(f(boxes[4 * i + 2] - boxes[4 * i]) * f(boxes[4 * i + 3] - boxes[4 * i + 1]));
      const s = f(Math.sqrt(area));
      const k = Math.floor(f(f(this.canonicalLevel + f(Math.log2(f(s / this.canonicalScale)))) + eps));
      level[i] = Math.min(Math.max(k, kMin), kMax) - kMin;
    }
    return { maps, scales, level };
  }

  /** RoIAlign of `boxes` per image (resized coordinates), grouped by level. */
  forward(levels: readonly NamedMap[], boxes: readonly Float32Array[], imageSizes: readonly (readonly [number, number])[]): PooledGroup[] {
    const all = new Float32Array(boxes.reduce((s, b) => s + b.length, 0));
    const batch: number[] = [];
    let o = 0;
    boxes.forEach((b, n) => { all.set(b, o); o += b.length; for (let i = 0; i < b.length / 4; i++) batch.push(n); });
    const { maps, scales, level } = this.assignLevels(levels, all, imageSizes);
    const groups: PooledGroup[] = [];
    for (let l = 0; l < maps.length; l++) {
      const index = Int32Array.from(level.keys()).filter((i) => level[i] === l);
      if (index.length === 0) continue;
      const rois = new Float32Array(index.length * 5);
      index.forEach((i, k) => { rois[5 * k] = batch[i]; rois.set(all.subarray(4 * i, 4 * i + 4), 5 * k + 1); });
      const roisT = tensor(rois, [index.length, 5], { backend: maps[l].backend });
      // In the graph when the maps are (training); inference runs under noGrad.
      const pooled = roiAlign(maps[l], roisT, { outputSize: this.outputSize, spatialScale: scales[l], samplingRatio: this.samplingRatio, aligned: false });
      roisT.dispose();
      groups.push({ level: l, index, pooled });
    }
    return groups;
  }
}

/**
 * fc6 and fc7 with ReLU (torchvision's TwoMLPHead).
 * @example const head = new TwoMLPHead(256 * 7 * 7, 1024);
 */
export class TwoMLPHead extends Module {
  readonly fc6: Linear;
  readonly fc7: Linear;

  constructor(inChannels: number, representationSize: number, opts: { backend?: Backend } = {}) {
    super();
    const init = constant(0);
    this.fc6 = this.registerModule('fc6', new Linear(inChannels, representationSize, { init, backend: opts.backend }));
    this.fc7 = this.registerModule('fc7', new Linear(representationSize, representationSize, { init, backend: opts.backend }));
  }

  override forward(x: Tensor): Tensor {
    const flat = reshape(x, [x.shape[0], x.numel / x.shape[0]]);
    return relu(this.fc7.forward(relu(this.fc6.forward(flat))));
  }
}

/**
 * torchvision's FastRCNNConvFCHead (the v2 detector's box head): 3x3 conv + BatchNorm + ReLU
 * layers (`N.0` conv without bias, `N.1` BN), a flatten, then Linear + ReLU layers, all in
 * one Sequential whose indices are the state-dict keys (`box_head.5.weight` for v2's fc).
 * @example const head = new FastRCNNConvFCHead([256, 7, 7], [256, 256, 256, 256], [1024]);
 */
export class FastRCNNConvFCHead extends Sequential {
  readonly outFeatures: number;

  constructor(inputSize: readonly [number, number, number], convLayers: readonly number[], fcLayers: readonly number[], opts: { backend?: Backend } = {}) {
    super();
    const init = constant(0);
    const backend = opts.backend;
    let c = inputSize[0];
    for (const k of convLayers) {
      this.append(new Sequential(new Conv2d(c, k, 3, { padding: 1, bias: false, init, backend }), new BatchNorm2d(k, { backend }), new ReLU()));
      c = k;
    }
    this.append(new Identity());  // nn.Flatten
    let n = c * inputSize[1] * inputSize[2];
    for (const k of fcLayers) {
      this.append(new Linear(n, k, { init, backend }));
      this.append(new ReLU());
      n = k;
    }
    this.outFeatures = n;
  }

  override forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this) {
      if (m instanceof Sequential) {
        const [conv, bn] = [m.at(0) as Conv2d, m.at(1) as BatchNorm2d];
        h = bn.forward(conv.forward(h), { relu: true });
      } else if (m instanceof Identity) {
        h = reshape(h, [h.shape[0], h.numel / h.shape[0]]);
      } else {
        h = m.forward(h);
      }
    }
    return h;
  }
}

/**
 * Class logits and per-class box deltas (torchvision's FastRCNNPredictor).
 * @example const predictor = new FastRCNNPredictor(1024, 91);
 */
export class FastRCNNPredictor extends Module {
  readonly clsScore: Linear;
  readonly bboxPred: Linear;

  constructor(inChannels: number, numClasses: number, opts: { backend?: Backend } = {}) {
    super();
    const init = constant(0);
    this.clsScore = this.registerModule('cls_score', new Linear(inChannels, numClasses, { init, backend: opts.backend }));
    this.bboxPred = this.registerModule('bbox_pred', new Linear(inChannels, numClasses * 4, { init, backend: opts.backend }));
  }

  get numClasses(): number { return this.clsScore.outFeatures; }
}

/** @example const o: RoiHeadsOptions = { scoreThresh: 0.05, nmsThresh: 0.5, detectionsPerImg: 100 }; */
export interface RoiHeadsOptions {
  /** box_score_thresh (0.05). */
  scoreThresh?: number;
  /** box_nms_thresh (0.5). */
  nmsThresh?: number;
  /** box_detections_per_img (100). */
  detectionsPerImg?: number;
  /** bbox_reg_weights (10, 10, 5, 5). */
  bboxRegWeights?: readonly [number, number, number, number];
  /** Training: a proposal with IoU >= this is its object's class (box_fg_iou_thresh 0.5). */
  fgIouThresh?: number;
  /** Training: below this, background (box_bg_iou_thresh 0.5). */
  bgIouThresh?: number;
  /** Training: proposals sampled per image (box_batch_size_per_image 512). */
  batchSizePerImage?: number;
  /** Training: at most this fraction of them objects (box_positive_fraction 0.25). */
  positiveFraction?: number;
}

/** The box head's training loss (in the graph) and its terms.
 * @example const detector = createDetector('fasterrcnn_resnet18_fpn', { numClasses: 3 }).train();
 * const boxes = new Float32Array([8, 8, 40, 40]);
 * const out: RoiTrainingOutput = detector.roiHeads.trainingLoss([{ name: '0', tensor: x }], [{ boxes, scores: Float32Array.of(0.9) }], [[64, 64]], [{ boxes, labels: Int32Array.of(1) }], new Random(0));
 */
export interface RoiTrainingOutput {
  /** loss_classifier + loss_box_reg, a scalar in the graph. */
  loss: Tensor;
  classifier: number;
  boxReg: number;
  /** Proposals sampled over the batch, and how many of them are objects. */
  sampled: number;
  positives: number;
}

/** Detections of one image, in the resized image's coordinates.
 * @example
 * const detector = createDetector('fasterrcnn_resnet50_fpn');
 * const { boxes, scores, labels }: RawDetections = tidy(() => detector.stages([toFloatImage(img)]).detections[0]);
 */
export interface RawDetections {
  boxes: Float32Array;
  scores: Float32Array;
  labels: Int32Array;
}

/**
 * @example
 * const pooler = new MultiScaleRoIAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: 7, samplingRatio: 2 });
 * const heads = new RoIHeads(pooler, new TwoMLPHead(256 * 49, 1024), new FastRCNNPredictor(1024, 91));
 * const detector = createDetector('fasterrcnn_resnet50_fpn');
 * const dets = tidy(() => {
 *   const s = detector.stages([toFloatImage(img)]);
 *   return heads.run(s.levels, s.proposals, s.list.imageSizes);
 * });
 */
export class RoIHeads extends Module {
  readonly boxRoiPool: MultiScaleRoIAlign;
  /** TwoMLPHead (FPN) or the C4 head: [K, C, S, S] -> [K, R]. */
  readonly boxHead: Module;
  readonly boxPredictor: FastRCNNPredictor;
  readonly boxCoder: BoxCoder;
  scoreThresh: number;
  nmsThresh: number;
  detectionsPerImg: number;
  readonly matcher: Matcher;
  readonly sampler: BalancedPositiveNegativeSampler;

  constructor(pool: MultiScaleRoIAlign, head: Module, predictor: FastRCNNPredictor, opts: RoiHeadsOptions = {}) {
    super();
    this.boxRoiPool = pool;
    this.boxHead = this.registerModule('box_head', head);
    this.boxPredictor = this.registerModule('box_predictor', predictor);
    this.boxCoder = new BoxCoder(opts.bboxRegWeights ?? [10, 10, 5, 5]);
    this.scoreThresh = opts.scoreThresh ?? 0.05;
    this.nmsThresh = opts.nmsThresh ?? 0.5;
    this.detectionsPerImg = opts.detectionsPerImg ?? 100;
    this.matcher = new Matcher(opts.fgIouThresh ?? 0.5, opts.bgIouThresh ?? 0.5, false);
    this.sampler = new BalancedPositiveNegativeSampler(opts.batchSizePerImage ?? 512, opts.positiveFraction ?? 0.25);
  }

  /**
   * Training: samples proposals (plus the ground truth) against `targets`, runs the box head
   * on them and returns the loss. Call in training mode, inside tidy().
   */
  trainingLoss(levels: readonly NamedMap[], proposals: readonly Proposals[], imageSizes: readonly (readonly [number, number])[], targets: readonly DetectionTarget[], rng: Random): RoiTrainingOutput {
    const boxes: Float32Array[] = [], labels: number[] = [], targ: number[] = [];
    proposals.forEach((p, n) => {
      const t = targets[n];
      const all = new Float32Array(p.boxes.length + t.boxes.length);
      all.set(p.boxes);
      all.set(t.boxes, p.boxes.length);
      const assigned = assignTargets(all, t.boxes, t.labels, this.matcher, this.boxCoder, 'roi');
      const s = this.sampler.sample(assigned.labels, rng);
      const keep = Int32Array.from([...s.pos, ...s.neg]).sort();
      boxes.push(takeRows(all, 4, keep));
      for (const i of keep) {
        labels.push(assigned.labels[i]);
        for (let c = 0; c < 4; c++) targ.push(assigned.targets[4 * i + c]);
      }
    });
    const C = this.boxPredictor.numClasses;
    const K = labels.length;
    const outs: { index: Int32Array; logits: Tensor; deltas: Tensor }[] = [];
    for (const g of this.boxRoiPool.forward(levels, boxes, imageSizes)) {
      const x = this.boxHead.forward(g.pooled);
      outs.push({ index: g.index, logits: this.boxPredictor.clsScore.forward(x), deltas: this.boxPredictor.bboxPred.forward(x) });
    }
    if (outs.length === 0) throw new InvalidArgumentError('RoIHeads: no proposals and no ground truth in the batch: nothing to train the box head on');
    const parts = { classifier: 0, boxReg: 0 };
    const lab = Int32Array.from(labels), tg = Float32Array.from(targ);
    const loss = hostLoss('fastrcnn_loss', [...outs.map((o) => o.logits), ...outs.map((o) => o.deltas)], (values) => {
      const logits = new Float32Array(K * C), deltas = new Float32Array(K * C * 4);
      outs.forEach((o, j) => o.index.forEach((i, k) => {
        logits.set(values[j].subarray(k * C, (k + 1) * C), i * C);
        deltas.set(values[outs.length + j].subarray(k * C * 4, (k + 1) * C * 4), i * C * 4);
      }));
      const r = fastRcnnLoss(logits, deltas, lab, tg, C);
      parts.classifier = r.classifier;
      parts.boxReg = r.boxReg;
      const gl = outs.map((o) => new Float32Array(o.index.length * C)), gd = outs.map((o) => new Float32Array(o.index.length * C * 4));
      outs.forEach((o, j) => o.index.forEach((i, k) => {
        gl[j].set(r.dLogits.subarray(i * C, (i + 1) * C), k * C);
        gd[j].set(r.dDeltas.subarray(i * C * 4, (i + 1) * C * 4), k * C * 4);
      }));
      return { value: r.classifier + r.boxReg, grads: [...gl, ...gd] };
    });
    return { loss, ...parts, sampled: K, positives: labels.filter((l) => l > 0).length };
  }

  /** Class logits [K, numClasses] and deltas [K, 4 * numClasses] of every proposal (images
   *  concatenated), on the host. */
  predict(levels: readonly NamedMap[], proposals: readonly Proposals[], imageSizes: readonly (readonly [number, number])[]): { logits: Float32Array; deltas: Float32Array } {
    const C = this.boxPredictor.numClasses;
    const K = proposals.reduce((s, p) => s + p.boxes.length / 4, 0);
    const logits = new Float32Array(K * C), deltas = new Float32Array(K * C * 4);
    for (const g of this.boxRoiPool.forward(levels, proposals.map((p) => p.boxes), imageSizes)) {
      noGrad(() => {
        const x = this.boxHead.forward(g.pooled);
        const l = this.boxPredictor.clsScore.forward(x), d = this.boxPredictor.bboxPred.forward(x);
        const la = l.toArray(), da = d.toArray();
        g.index.forEach((i, k) => {
          logits.set(la.subarray(k * C, (k + 1) * C), i * C);
          deltas.set(da.subarray(k * C * 4, (k + 1) * C * 4), i * C * 4);
        });
        for (const t of [g.pooled, x, l, d]) t.dispose();
      });
    }
    return { logits, deltas };
  }

  run(levels: readonly NamedMap[], proposals: readonly Proposals[], imageSizes: readonly (readonly [number, number])[]): RawDetections[] {
    const { logits, deltas } = this.predict(levels, proposals, imageSizes);
    const C = this.boxPredictor.numClasses;
    const out: RawDetections[] = [];
    let row = 0;
    proposals.forEach((p, n) => {
      const k = p.boxes.length / 4;
      const decoded = clipBoxesToImage(this.boxCoder.decode(deltas.subarray(row * C * 4, (row + k) * C * 4), p.boxes), [imageSizes[n][0], imageSizes[n][1]]);
      const thresh = f(this.scoreThresh);
      const cand: number[] = [], scores: number[] = [], labels: number[] = [];
      for (let i = 0; i < k; i++) {
        const z = logits.subarray((row + i) * C, (row + i + 1) * C);
        let max = -Infinity;
        for (const v of z) max = Math.max(max, v);
        const e = Float32Array.from(z, (v) => f(Math.exp(f(v - max))));
        let sum = 0;
        for (const v of e) sum = f(sum + v);
        for (let c = 1; c < C; c++) {
          const s = f(e[c] / sum);
          if (s > thresh) { cand.push(i * C + c); scores.push(s); labels.push(c); }
        }
      }
      let boxes = takeRows(decoded, 4, cand);
      let sc = Float32Array.from(scores), lb = Int32Array.from(labels);
      const pick = (idx: ArrayLike<number>) => {
        boxes = takeRows(boxes, 4, idx);
        sc = Float32Array.from(idx, (i) => sc[i]);
        lb = Int32Array.from(idx, (i) => lb[i]);
      };
      pick(removeSmallBoxes(boxes, 1e-2));
      pick(batchedNms(boxes, sc, lb, this.nmsThresh, levels[0].tensor.backend).subarray(0, this.detectionsPerImg));
      out.push({ boxes, scores: sc, labels: lb });
      row += k;
    });
    return out;
  }
}
