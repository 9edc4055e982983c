// Region Proposal Network (Ren et al. 2015, section 3.1), inference as torchvision's
// RPNHead + RegionProposalNetwork (models/detection/rpn.py, v0.14): a shared 3x3 conv + ReLU
// per level, then 1x1 convs for A objectness logits and 4A box deltas per location. Per
// image: the top preNmsTopN logits of each level (sorted), their anchors decoded by
// BoxCoder(1, 1, 1, 1), sigmoid scores, clipped to the image, boxes smaller than minSize
// dropped, scores >= scoreThresh kept, NMS per level at nmsThresh, the best postNmsTopN kept.
// Scoring and selection run on the host in float32 (boxes.ts). Training (compute_loss): every
// anchor is matched to the ground truth (IoU >= 0.7 object, < 0.3 background, each object's
// best anchors kept), 256 anchors per image sampled with at most half objects, BCE on their
// logits and smooth L1 (beta 1/9) on the positives' deltas (train/targets.ts, train/losses.ts);
// proposals are selected from the detached outputs with the training top-n (2000, 2000).

import type { Backend } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { Conv2d } from '../nn/conv.js';
import { constant } from '../nn/init.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { Random } from '../data/random.js';
import { noGrad } from '../tensor/autograd.js';
import { conv2d, conv2dFused } from '../tensor/ops/conv2d.js';
import { hostLoss } from '../tensor/ops/host_loss.js';
import { relu } from '../tensor/ops/relu.js';
import type { Tensor } from '../tensor/tensor.js';
import { AnchorGenerator } from './anchors.js';
import { batchedNms, BoxCoder, clipBoxesToImage, removeSmallBoxes, takeRows, topkIndices } from './boxes.js';
import type { NamedMap } from './fpn.js';
import { rpnLoss } from './train/losses.js';
import { assignTargets, BalancedPositiveNegativeSampler, Matcher } from './train/targets.js';

const f = Math.fround;

/**
 * @example
 * const head = new RPNHead(256, 3);
 * const { objectness, deltas } = head.run([x]);  // x: [N, 256, H, W]
 */
export class RPNHead extends Module {
  readonly conv: Sequential<Sequential<Conv2d>>;
  readonly clsLogits: Conv2d;
  readonly bboxPred: Conv2d;

  /** convDepth: 3x3 conv + ReLU layers before the 1x1 convs (1; 2 for the v2 detector). */
  constructor(inChannels: number, numAnchors: number, opts: { backend?: Backend; convDepth?: number } = {}) {
    super();
    const init = constant(0);
    const backend = opts.backend;
    const depth = opts.convDepth ?? 1;
    if (!Number.isInteger(depth) || depth < 1) throw new InvalidArgumentError(`RPNHead: convDepth must be an integer >= 1, got ${String(depth)}`);
    this.conv = this.registerModule('conv', new Sequential<Sequential<Conv2d>>());
    for (let i = 0; i < depth; i++) this.conv.append(new Sequential(new Conv2d(inChannels, inChannels, 3, { padding: 1, init, backend })));
    this.clsLogits = this.registerModule('cls_logits', new Conv2d(inChannels, numAnchors, 1, { init, backend }));
    this.bboxPred = this.registerModule('bbox_pred', new Conv2d(inChannels, numAnchors * 4, 1, { init, backend }));
  }

  /** Per level: objectness logits [N, A, H, W] and deltas [N, 4A, H, W]. In training mode
   *  through the autograd ops, else the fused inference convolutions without a graph. */
  run(features: readonly Tensor[]): { objectness: Tensor[]; deltas: Tensor[] } {
    if (this.training) {
      const objectness: Tensor[] = [], deltas: Tensor[] = [];
      for (const x of features) {
        let t = x;
        for (const block of this.conv) t = relu(block.at(0).forward(t));
        objectness.push(this.clsLogits.forward(t));
        deltas.push(this.bboxPred.forward(t));
      }
      return { objectness, deltas };
    }
    return noGrad(() => {
      const objectness: Tensor[] = [], deltas: Tensor[] = [];
      for (const x of features) {
        let t = x;
        for (const block of this.conv) {
          const conv = block.at(0);
          t = conv2dFused(t, conv.weight, conv.bias, { padding: 1, relu: true });
        }
        objectness.push(this.clsLogits.forward(t));
        deltas.push(this.bboxPred.forward(t));
      }
      return { objectness, deltas };
    });
  }
}

/** @example const o: RpnOptions = { preNmsTopN: 1000, postNmsTopN: 1000, nmsThresh: 0.7 }; */
export interface RpnOptions {
  /** Per level, before NMS (torchvision: rpn_pre_nms_top_n_test 1000). */
  preNmsTopN?: number;
  /** Per image, after NMS (rpn_post_nms_top_n_test 1000). */
  postNmsTopN?: number;
  nmsThresh?: number;
  scoreThresh?: number;
  /** Boxes narrower or shorter than this are dropped (1e-3). */
  minSize?: number;
  /** Training: per level before NMS (rpn_pre_nms_top_n_train 2000). */
  preNmsTopNTrain?: number;
  /** Training: per image after NMS (rpn_post_nms_top_n_train 2000). */
  postNmsTopNTrain?: number;
  /** Training: an anchor with IoU >= this is an object (rpn_fg_iou_thresh 0.7). */
  fgIouThresh?: number;
  /** Training: below this, background (rpn_bg_iou_thresh 0.3). */
  bgIouThresh?: number;
  /** Training: anchors sampled per image (rpn_batch_size_per_image 256). */
  batchSizePerImage?: number;
  /** Training: at most this fraction of them objects (rpn_positive_fraction 0.5). */
  positiveFraction?: number;
}

/** One image's ground truth in the resized image's coordinates.
 * @example const t: DetectionTarget = { boxes: new Float32Array([10, 10, 50, 60]), labels: Int32Array.of(3) };
 */
export interface DetectionTarget {
  /** [G, 4] x1, y1, x2, y2. */
  boxes: Float32Array;
  /** [G] classes 1..numClasses-1. */
  labels: Int32Array;
}

/** The RPN's training output: its loss (in the graph) and its terms, and the proposals.
 * @example const detector = createDetector('fasterrcnn_resnet18_fpn', { numClasses: 3 }).train();
 * const out: RpnTrainingOutput = detector.rpn.trainingLoss([64, 64], [[64, 64]], [{ name: '0', tensor: x }], [{ boxes: new Float32Array([8, 8, 40, 40]), labels: Int32Array.of(1) }], new Random(0));
 */
export interface RpnTrainingOutput {
  /** loss_objectness + loss_rpn_box_reg, a scalar in the graph. */
  loss: Tensor;
  objectness: number;
  boxReg: number;
  proposals: Proposals[];
}

/** @example
 * const detector = createDetector('fasterrcnn_resnet50_fpn');
 * const { boxes, scores }: Proposals = tidy(() => detector.stages([toFloatImage(img)]).proposals[0]);
 */
export interface Proposals {
  /** [K, 4] in the resized image's coordinates, by decreasing score. */
  boxes: Float32Array;
  scores: Float32Array;
}

/**
 * @example
 * const rpn = new RegionProposalNetwork(new AnchorGenerator({ sizes: [[32], [64], [128], [256], [512]], aspectRatios: [[0.5, 1, 2]] }), new RPNHead(256, 3));
 * const levels: NamedMap[] = [{ name: '0', tensor: x }];  // x: [1, 256, 200, 272]
 * const proposals = rpn.propose([800, 1088], [[800, 1063]], levels);
 */
export class RegionProposalNetwork extends Module {
  readonly head: RPNHead;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder = new BoxCoder([1, 1, 1, 1]);
  readonly preNmsTopN: number;
  readonly postNmsTopN: number;
  readonly nmsThresh: number;
  readonly scoreThresh: number;
  readonly minSize: number;
  readonly preNmsTopNTrain: number;
  readonly postNmsTopNTrain: number;
  readonly matcher: Matcher;
  readonly sampler: BalancedPositiveNegativeSampler;

  constructor(anchorGenerator: AnchorGenerator, head: RPNHead, opts: RpnOptions = {}) {
    super();
    this.anchorGenerator = anchorGenerator;
    this.head = this.registerModule('head', head);
    this.preNmsTopN = opts.preNmsTopN ?? 1000;
    this.postNmsTopN = opts.postNmsTopN ?? 1000;
    this.nmsThresh = opts.nmsThresh ?? 0.7;
    this.scoreThresh = opts.scoreThresh ?? 0;
    this.minSize = opts.minSize ?? 1e-3;
    this.preNmsTopNTrain = opts.preNmsTopNTrain ?? 2000;
    this.postNmsTopNTrain = opts.postNmsTopNTrain ?? 2000;
    this.matcher = new Matcher(opts.fgIouThresh ?? 0.7, opts.bgIouThresh ?? 0.3, true);
    this.sampler = new BalancedPositiveNegativeSampler(opts.batchSizePerImage ?? 256, opts.positiveFraction ?? 0.5);
    for (const [k, v] of [['preNmsTopN', this.preNmsTopN], ['postNmsTopN', this.postNmsTopN], ['preNmsTopNTrain', this.preNmsTopNTrain], ['postNmsTopNTrain', this.postNmsTopNTrain]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`RegionProposalNetwork: '${k}' must be an integer >= 1, got ${String(v)}`);
    }
  }

  /** All anchors of the batch, level after level (see AnchorGenerator). */
  anchors(paddedSize: readonly [number, number], levels: readonly NamedMap[]): Float32Array {
    return this.anchorGenerator.gridAnchors(paddedSize, levels.map((l) => [l.tensor.shape[2], l.tensor.shape[3]] as [number, number]));
  }

  /** Proposals of each image of the batch. paddedSize: the batch tensor's [H, W];
   *  imageSizes: each image's resized [h, w]. */
  propose(paddedSize: readonly [number, number], imageSizes: readonly (readonly [number, number])[], levels: readonly NamedMap[]): Proposals[] {
    const anchors = this.anchors(paddedSize, levels);
    const { objectness, deltas } = this.head.run(levels.map((l) => l.tensor));
    const shapes = objectness.map((t) => t.shape);
    const obj = objectness.map((t) => t.toArray() as Float32Array);
    const del = deltas.map((t) => t.toArray() as Float32Array);
    for (const t of [...objectness, ...deltas]) t.dispose();
    return this.select(anchors, shapes, obj, del, imageSizes, this.preNmsTopN, this.postNmsTopN, levels[0].tensor.backend);
  }

  /**
   * Training: the RPN's loss on `targets` (one per image, resized coordinates) and the
   * proposals for the box head, selected from the detached outputs with the training top-n.
   * `rng` draws the sampled anchors. Call in training mode, inside tidy().
   */
  trainingLoss(paddedSize: readonly [number, number], imageSizes: readonly (readonly [number, number])[], levels: readonly NamedMap[], targets: readonly DetectionTarget[], rng: Random): RpnTrainingOutput {
    const anchors = this.anchors(paddedSize, levels);
    const { objectness, deltas } = this.head.run(levels.map((l) => l.tensor));
    const shapes = objectness.map((t) => t.shape);
    const N = imageSizes.length;
    const perImage = anchors.length / 4;
    const parts = { objectness: 0, boxReg: 0 };
    let proposals: Proposals[] = [];
    const loss = hostLoss('rpn_loss', [...objectness, ...deltas], (values) => {
      const obj = values.slice(0, levels.length), del = values.slice(levels.length);
      proposals = this.select(anchors, shapes, obj, del, imageSizes, this.preNmsTopNTrain, this.postNmsTopNTrain, levels[0].tensor.backend);
      // Flat order: image, level, position, anchor (concat_box_prediction_layers).
      const logits = new Float32Array(N * perImage), codes = new Float32Array(N * perImage * 4);
      const labels = new Int32Array(N * perImage), targ = new Float32Array(N * perImage * 4);
      const pos: number[] = [], neg: number[] = [];
      // Between the flat order and the head's maps (objectness [N, A, H, W], deltas [N, A * 4, H, W]
      // per level): toFlat copies the maps into the flat arrays, else the flat arrays into the maps.
      const reorder = (toFlat: boolean, o: readonly Float32Array[], d: readonly Float32Array[], fl: Float32Array, fc: Float32Array): void => {
        let flat = 0;
        for (let n = 0; n < N; n++) {
          shapes.forEach(([, A, H, W], li) => {
            const HW = H * W, ol = o[li], dl = d[li];
            for (let p = 0; p < HW; p++) {
              for (let a = 0; a < A; a++, flat++) {
                const at = (n * A + a) * HW + p, d0 = (n * A + a) * 4 * HW + p;
                if (toFlat) {
                  fl[flat] = ol[at];
                  for (let c = 0; c < 4; c++) fc[4 * flat + c] = dl[d0 + c * HW];
                } else {
                  ol[at] = fl[flat];
                  for (let c = 0; c < 4; c++) dl[d0 + c * HW] = fc[4 * flat + c];
                }
              }
            }
          });
        }
      };
      reorder(true, obj, del, logits, codes);
      for (let n = 0; n < N; n++) {
        const t = targets[n];
        const assigned = assignTargets(anchors, t.boxes, t.labels, this.matcher, this.boxCoder, 'rpn');
        labels.set(assigned.labels, n * perImage);
        targ.set(assigned.targets, n * perImage * 4);
        const s = this.sampler.sample(assigned.labels, rng);
        for (const i of s.pos) pos.push(n * perImage + i);
        for (const i of s.neg) neg.push(n * perImage + i);
      }
      const r = rpnLoss(logits, codes, labels, targ, { pos: Int32Array.from(pos), neg: Int32Array.from(neg) });
      parts.objectness = r.objectness;
      parts.boxReg = r.boxReg;
      const gObj = obj.map((o) => new Float32Array(o.length)), gDel = del.map((d) => new Float32Array(d.length));
      reorder(false, gObj, gDel, r.dLogits, r.dDeltas);
      return { value: r.objectness + r.boxReg, grads: [...gObj, ...gDel] };
    });
    return { loss, ...parts, proposals };
  }

  /** filter_proposals on host arrays of the head's outputs (NMS on `backend`, the maps'). */
  private select(anchors: Float32Array, shapes: readonly (readonly number[])[], obj: readonly Float32Array[], del: readonly Float32Array[], imageSizes: readonly (readonly [number, number])[], preNmsTopN: number, postNmsTopN: number, backend: Backend): Proposals[] {
    const N = imageSizes.length;
    const out: Proposals[] = [];
    const counts = shapes.map(([, A, H, W]) => A * H * W);
    const total = counts.reduce((t, count) => t + Math.min(preNmsTopN, count), 0);
    for (let n = 0; n < N; n++) {
      // Top preNmsTopN logits per level, levels concatenated (filter_proposals).
      const selLogit = new Float32Array(total), selLevel = new Int32Array(total);
      const selBoxes = new Float32Array(4 * total);
      let anchorOffset = 0, at = 0;
      shapes.forEach(([, A, H, W], li) => {
        const HW = H * W;
        const count = counts[li];
        // Level-local anchor index k = (y * W + x) * A + a; objectness channel a at (y, x).
        const logits = new Float32Array(count);
        const o = obj[li];
        for (let a = 0; a < A; a++) {
          const base = (n * A + a) * HW;
          for (let p = 0; p < HW; p++) logits[p * A + a] = o[base + p];
        }
        const order = topkIndices(logits, Math.min(preNmsTopN, count));
        const codes = new Float32Array(order.length * 4);
        const rows = new Int32Array(order.length);
        const d = del[li];
        for (let j = 0; j < order.length; j++) {
          const k = order[j];
          const p = Math.floor(k / A), a = k % A;
          for (let c = 0; c < 4; c++) codes[4 * j + c] = d[((n * A + a) * 4 + c) * HW + p];
          selLogit[at + j] = logits[k];
          selLevel[at + j] = li;
          rows[j] = anchorOffset + k;
        }
        selBoxes.set(this.boxCoder.decode(codes, takeRows(anchors, 4, rows)), 4 * at);
        at += order.length;
        anchorOffset += count;
      });
      let boxes = clipBoxesToImage(selBoxes, [imageSizes[n][0], imageSizes[n][1]]);
      let scores = new Float32Array(total);
      for (let i = 0; i < total; i++) scores[i] = f(1 / f(1 + f(Math.exp(-selLogit[i]))));
      let lvl = selLevel;
      const pick = (idx: ArrayLike<number>) => {
        boxes = takeRows(boxes, 4, idx);
        const s2 = new Float32Array(idx.length), l2 = new Int32Array(idx.length);
        for (let j = 0; j < idx.length; j++) { s2[j] = scores[idx[j]]; l2[j] = lvl[idx[j]]; }
        scores = s2;
        lvl = l2;
      };
      pick(removeSmallBoxes(boxes, this.minSize));
      const st = f(this.scoreThresh);
      const above: number[] = [];
      for (let i = 0; i < scores.length; i++) if (scores[i] >= st) above.push(i);
      if (above.length < scores.length) pick(above);
      pick(batchedNms(boxes, scores, lvl, this.nmsThresh, backend).subarray(0, postNmsTopN));
      out.push({ boxes, scores });
    }
    return out;
  }
}
