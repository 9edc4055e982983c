// Region Proposal Network (Ren et al. 2015, section 3.1), inference as torchvision's
// RPNHead + RegionProposalNetwork (models/detection/rpn.py, v0.14): a shared 3x3 conv + ReLU
// per level, then 1x1 convs for A objectness logits and 4A box deltas per location. Per
// image: the top preNmsTopN logits of each level (sorted), their anchors decoded by
// BoxCoder(1, 1, 1, 1), sigmoid scores, clipped to the image, boxes smaller than minSize
// dropped, scores >= scoreThresh kept, NMS per level at nmsThresh, the best postNmsTopN kept.
// Scoring and selection run on the host in float32 (boxes.ts). Not here: training losses.

import type { Backend } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { Conv2d } from '../nn/conv.js';
import { constant } from '../nn/init.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { noGrad } from '../tensor/autograd.js';
import { conv2dFused } from '../tensor/ops/conv2d.js';
import type { Tensor } from '../tensor/tensor.js';
import { AnchorGenerator } from './anchors.js';
import { batchedNms, BoxCoder, clipBoxesToImage, removeSmallBoxes, takeRows, topkIndices } from './boxes.js';
import type { NamedMap } from './fpn.js';

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

  /** Per level: objectness logits [N, A, H, W] and deltas [N, 4A, H, W]. */
  run(features: readonly Tensor[]): { objectness: Tensor[]; deltas: Tensor[] } {
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

  constructor(anchorGenerator: AnchorGenerator, head: RPNHead, opts: RpnOptions = {}) {
    super();
    this.anchorGenerator = anchorGenerator;
    this.head = this.registerModule('head', head);
    this.preNmsTopN = opts.preNmsTopN ?? 1000;
    this.postNmsTopN = opts.postNmsTopN ?? 1000;
    this.nmsThresh = opts.nmsThresh ?? 0.7;
    this.scoreThresh = opts.scoreThresh ?? 0;
    this.minSize = opts.minSize ?? 1e-3;
    for (const [k, v] of [['preNmsTopN', this.preNmsTopN], ['postNmsTopN', this.postNmsTopN]] as const) {
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
    const N = imageSizes.length;
    const out: Proposals[] = [];
    for (let n = 0; n < N; n++) {
      // Top preNmsTopN logits per level, levels concatenated (filter_proposals).
      const selLogit: number[] = [], selLevel: number[] = [];
      const selBoxes: number[] = [];
      let anchorOffset = 0;
      levels.forEach((l, li) => {
        const [, A, H, W] = shapes[li];
        const HW = H * W;
        const count = HW * A;
        // Level-local anchor index k = (y * W + x) * A + a; objectness channel a at (y, x).
        const logits = new Float32Array(count);
        const o = obj[li];
        for (let a = 0; a < A; a++) {
          const base = (n * A + a) * HW;
          for (let p = 0; p < HW; p++) logits[p * A + a] = o[base + p];
        }
        const order = topkIndices(logits, Math.min(this.preNmsTopN, count));
        const codes = new Float32Array(order.length * 4);
        const d = del[li];
        order.forEach((k, j) => {
          const p = Math.floor(k / A), a = k % A;
          for (let c = 0; c < 4; c++) codes[4 * j + c] = d[((n * A + a) * 4 + c) * HW + p];
          selLogit.push(logits[k]);
          selLevel.push(li);
        });
        const decoded = this.boxCoder.decode(codes, takeRows(anchors, 4, Array.from(order, (k) => anchorOffset + k)));
        for (const v of decoded) selBoxes.push(v);
        anchorOffset += count;
      });
      let boxes = clipBoxesToImage(Float32Array.from(selBoxes), [imageSizes[n][0], imageSizes[n][1]]);
      let scores = Float32Array.from(selLogit, (x) => f(1 / f(1 + f(Math.exp(-x)))));
      let lvl = Int32Array.from(selLevel);
      const pick = (idx: ArrayLike<number>) => {
        boxes = takeRows(boxes, 4, idx);
        scores = Float32Array.from(idx, (i) => scores[i]);
        lvl = Int32Array.from(idx, (i) => lvl[i]);
      };
      pick(removeSmallBoxes(boxes, this.minSize));
      const st = f(this.scoreThresh);
      pick(Array.from(scores.keys()).filter((i) => scores[i] >= st));
      pick(batchedNms(boxes, scores, lvl, this.nmsThresh).subarray(0, this.postNmsTopN));
      out.push({ boxes, scores });
    }
    return out;
  }
}
