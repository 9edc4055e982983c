// Host-side box utilities, as torchvision.ops.boxes and models/detection/_utils.BoxCoder
// (v0.14) compute them on the CPU in float32: boxes are Float32Array rows of 4 numbers
// (x1, y1, x2, y2); every intermediate is rounded to float32 (Math.fround) where torch
// rounds it, so results match torchvision's bit for bit up to its vectorised exp/log.
// Not here: anything on Tensors (RoIAlign lives in ops/), crowd-aware IoU (pycocotools').

import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import { InvalidArgumentError } from '../errors.js';

const f = Math.fround;

function count(op: string, boxes: Float32Array): number {
  if (!(boxes instanceof Float32Array) || boxes.length % 4 !== 0) {
    throw new InvalidArgumentError(`${op}: boxes must be a Float32Array of 4 numbers per box (x1, y1, x2, y2), got ${boxes instanceof Float32Array ? `${boxes.length} numbers` : typeof boxes}`);
  }
  return boxes.length / 4;
}

/**
 * Areas (x2 - x1) * (y2 - y1), torchvision.ops.box_area.
 * @example boxArea(new Float32Array([0, 0, 2, 3]))  // Float32Array [6]
 */
export function boxArea(boxes: Float32Array): Float32Array {
  const n = count('boxArea', boxes);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(f(boxes[4 * i + 2] - boxes[4 * i]) * f(boxes[4 * i + 3] - boxes[4 * i + 1]));
  return out;
}

/**
 * Pairwise IoU [N, M] (row-major), torchvision.ops.box_iou.
 * @example boxIou(new Float32Array([0, 0, 2, 2]), new Float32Array([1, 0, 3, 2]))  // [0.3333]
 */
export function boxIou(a: Float32Array, b: Float32Array): Float32Array {
  const n = count('boxIou', a), m = count('boxIou', b);
  const areaA = boxArea(a), areaB = boxArea(b);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const w = Math.max(0, f(Math.min(a[4 * i + 2], b[4 * j + 2]) - Math.max(a[4 * i], b[4 * j])));
      const h = Math.max(0, f(Math.min(a[4 * i + 3], b[4 * j + 3]) - Math.max(a[4 * i + 1], b[4 * j + 1])));
      const inter = f(w * h);
      out[i * m + j] = f(inter / f(f(areaA[i] + areaB[j]) - inter));
    }
  }
  return out;
}

/** Indices of `scores` (or of the listed `indices`) sorted by decreasing score, ties in
 *  their given order (a stable sort), NaN last. NOTE: torch's CPU sort is stable for small
 *  inputs only; ties are rare with real-valued scores and the parity tests avoid saturated ones.
 * @example argsortDescending(new Float32Array([0.2, 0.9, 0.5]))  // Int32Array [1, 2, 0] */
export function argsortDescending(scores: ArrayLike<number>, indices?: ArrayLike<number>): Int32Array {
  const n = indices ? indices.length : scores.length;
  const at = (j: number): number => (indices ? indices[j] : j);
  if (scores instanceof Float32Array && n <= PACK) {
    // One native numeric sort of doubles, each a score's order-preserving 32-bit key (largest
    // score smallest) above the position's 21 bits: exact, and stable by construction. The
    // RPN sorts thousands of boxes a step; a comparator sort spent ~5 ms of it.
    const keys = new Float64Array(n);
    for (let j = 0; j < n; j++) keys[j] = descendingKey(scores[at(j)]) * PACK + j;
    keys.sort();
    const out = new Int32Array(n);
    for (let j = 0; j < n; j++) out[j] = at(keys[j] % PACK);
    return out;
  }
  const idx = Array.from({ length: n }, (_, j) => at(j));
  idx.sort((p, q) => {
    const a = scores[p], b = scores[q];
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
    return b - a;
  });
  return Int32Array.from(idx);
}

/** Positions take the low 21 bits of a packed key (so up to 2^21 of them); the score's 32-bit key sits above. */
const PACK = 2 ** 21;
const keyF32 = new Float32Array(1);
const keyU32 = new Uint32Array(keyF32.buffer);

/** A float32's rank as an unsigned 32-bit integer, smallest for the largest value; -0 as +0, NaN largest (last). */
function descendingKey(v: number): number {
  if (Number.isNaN(v)) return 0xffffffff;
  keyF32[0] = v === 0 ? 0 : v;
  const u = keyU32[0];
  const ascending = u >= 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
  return 0xfffffffe - ascending;
}

/**
 * Indices of the k largest values, by decreasing value, ties in index order (what
 * argsortDescending(values).subarray(0, k) gives, without sorting everything: the RPN takes
 * the top 1000 of ~160,000 logits per level).
 * @example topkIndices(new Float32Array([0.2, 0.9, 0.5, 0.7]), 2)  // Int32Array [1, 3]
 */
export function topkIndices(values: Float32Array, k: number): Int32Array {
  const n = values.length;
  if (k >= n) return argsortDescending(values);
  if (k <= 0) return new Int32Array(0);
  const sorted = Float32Array.from(values).sort();  // ascending, numeric (NaN last)
  const kth = sorted[n - k];
  const above: number[] = [], equal: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v > kth) above.push(i);
    else if (v === kth) equal.push(i);
  }
  const pick = argsortDescending(values, above);
  const out = new Int32Array(k);
  out.set(pick.subarray(0, k));
  for (let j = pick.length, e = 0; j < k; j++, e++) out[j] = equal[e];
  return out;
}

/**
 * Non-maximum suppression, torchvision.ops.nms (its CPU kernel): the indices kept, by
 * decreasing score (ties in index order, NaN scores last); a box is dropped when its IoU with
 * a kept box exceeds `iouThreshold`. Runs on `backend` (default the current one): natively in
 * C++, or the reference's grid of cells (src/backend/reference/nms.ts, the judge).
 * @example nms(new Float32Array([0, 0, 10, 10, 1, 1, 10, 10]), new Float32Array([0.9, 0.8]), 0.5)  // Int32Array [0]
 */
export function nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, backend: Backend = getBackend()): Int32Array {
  const n = count('nms', boxes);
  if (!(scores instanceof Float32Array) || scores.length !== n) throw new InvalidArgumentError(`nms: ${n} boxes but ${scores instanceof Float32Array ? `${scores.length} scores` : 'scores not a Float32Array'}`);
  if (typeof iouThreshold !== 'number' || Number.isNaN(iouThreshold)) throw new InvalidArgumentError(`nms: iouThreshold must be a number, got ${String(iouThreshold)}`);
  return backend.nms(boxes, scores, iouThreshold);
}

function gather(boxes: Float32Array, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * 4);
  for (let k = 0; k < idx.length; k++) {
    const i = 4 * idx[k];
    out[4 * k] = boxes[i]; out[4 * k + 1] = boxes[i + 1]; out[4 * k + 2] = boxes[i + 2]; out[4 * k + 3] = boxes[i + 3];
  }
  return out;
}

/**
 * NMS within each category `idxs` (torchvision.ops.batched_nms): kept indices by decreasing
 * score. As torchvision on the CPU, more than 1000 boxes run NMS category by category
 * (`_batched_nms_vanilla`); fewer shift each category's boxes apart by
 * idx * (max coordinate + 1) and run one NMS (`_batched_nms_coordinate_trick`): the two
 * differ only in float rounding, and matching torchvision's choice matches its output.
 * @example batchedNms(new Float32Array([0, 0, 10, 10, 1, 1, 10, 10]), new Float32Array([0.9, 0.8]), Int32Array.from([1, 2]), 0.5)  // [0, 1]: different classes
 */
export function batchedNms(boxes: Float32Array, scores: Float32Array, idxs: ArrayLike<number>, iouThreshold: number, backend: Backend = getBackend()): Int32Array {
  const n = count('batchedNms', boxes);
  if (scores.length !== n || idxs.length !== n) throw new InvalidArgumentError(`batchedNms: ${n} boxes, ${scores.length} scores and ${idxs.length} category indices; they must agree`);
  if (n === 0) return new Int32Array(0);
  if (n * 4 > 4000) {
    const keepMask = new Uint8Array(n);
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const list = byClass.get(idxs[i]);
      if (list) list.push(i); else byClass.set(idxs[i], [i]);
    }
    for (const members of byClass.values()) {
      const kept = nms(gather(boxes, members), Float32Array.from(members, (i) => scores[i]), iouThreshold, backend);
      for (const k of kept) keepMask[members[k]] = 1;
    }
    const kept: number[] = [];
    for (let i = 0; i < n; i++) if (keepMask[i]) kept.push(i);
    return argsortDescending(scores, kept);
  }
  let max = -Infinity;
  for (let i = 0; i < boxes.length; i++) max = Math.max(max, boxes[i]);
  const step = f(max + 1);
  const shifted = new Float32Array(boxes.length);
  for (let i = 0; i < n; i++) {
    const off = f(f(idxs[i]) * step);
    for (let c = 0; c < 4; c++) shifted[4 * i + c] = f(boxes[4 * i + c] + off);
  }
  return nms(shifted, scores, iouThreshold, backend);
}

/**
 * Clamps x to [0, width] and y to [0, height] (torchvision.ops.clip_boxes_to_image); a new array.
 * @example clipBoxesToImage(new Float32Array([-5, 2, 700, 90]), [80, 640])  // [0, 2, 640, 80]
 */
export function clipBoxesToImage(boxes: Float32Array, size: readonly [number, number]): Float32Array {
  const n = count('clipBoxesToImage', boxes);
  const [h, w] = size;
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < n; i++) {
    out[4 * i] = Math.min(Math.max(boxes[4 * i], 0), w);
    out[4 * i + 1] = Math.min(Math.max(boxes[4 * i + 1], 0), h);
    out[4 * i + 2] = Math.min(Math.max(boxes[4 * i + 2], 0), w);
    out[4 * i + 3] = Math.min(Math.max(boxes[4 * i + 3], 0), h);
  }
  return out;
}

/**
 * Indices of the boxes whose width and height are both >= minSize
 * (torchvision.ops.remove_small_boxes; the threshold is compared in float32, as torch does).
 * @example removeSmallBoxes(new Float32Array([0, 0, 1, 1, 0, 0, 0.001, 5]), 0.01)  // Int32Array [0]
 */
export function removeSmallBoxes(boxes: Float32Array, minSize: number): Int32Array {
  const n = count('removeSmallBoxes', boxes);
  const m = f(minSize);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (f(boxes[4 * i + 2] - boxes[4 * i]) >= m && f(boxes[4 * i + 3] - boxes[4 * i + 1]) >= m) keep.push(i);
  }
  return Int32Array.from(keep);
}

/** Rows `idx` of a row-major array with `width` numbers per row.
 * @example takeRows(new Float32Array([1, 2, 3, 4]), 2, [1])  // [3, 4] */
export function takeRows(a: Float32Array, width: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * width);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k] * width;
    for (let c = 0; c < width; c++) out[k * width + c] = a[i + c];
  }
  return out;
}

/** torchvision's default clip of dw, dh before exp: log(1000 / 16).
 * @example new BoxCoder([1, 1, 1, 1], BBOX_XFORM_CLIP) */
export const BBOX_XFORM_CLIP = Math.log(1000 / 16);

/**
 * Box deltas (dx, dy, dw, dh) against reference boxes, as torchvision's BoxCoder: dx and dy
 * scale the reference width and height (divided by weights wx, wy), dw and dh are log-space
 * (divided by ww, wh; clipped at bboxXformClip before exp). (1, 1, 1, 1) in the RPN,
 * (10, 10, 5, 5) in the box head.
 * @example
 * const coder = new BoxCoder([10, 10, 5, 5]);
 * const boxes = coder.decode(new Float32Array([0, 0, 0, 0]), new Float32Array([10, 10, 50, 30]));  // [10, 10, 50, 30]
 */
export class BoxCoder {
  readonly weights: readonly [number, number, number, number];
  readonly bboxXformClip: number;

  constructor(weights: readonly [number, number, number, number], bboxXformClip = BBOX_XFORM_CLIP) {
    if (!Array.isArray(weights) || weights.length !== 4 || !weights.every((w) => typeof w === 'number' && w > 0)) {
      throw new InvalidArgumentError(`BoxCoder: weights must be 4 positive numbers (wx, wy, ww, wh), got ${JSON.stringify(weights)}`);
    }
    this.weights = [weights[0], weights[1], weights[2], weights[3]];
    this.bboxXformClip = bboxXformClip;
  }

  /** Decodes `relCodes` (K groups of 4 per box, row-major [N, 4K]) against `boxes` [N, 4]:
   *  [N, 4K] boxes, as BoxCoder.decode_single. */
  decode(relCodes: Float32Array, boxes: Float32Array): Float32Array {
    const n = count('BoxCoder.decode', boxes);
    if (n === 0) return new Float32Array(0);
    if (relCodes.length % (4 * n) !== 0) throw new InvalidArgumentError(`BoxCoder.decode: ${relCodes.length} codes do not split into ${n} boxes of 4 * k numbers`);
    const k = relCodes.length / (4 * n);
    const [wx, wy, ww, wh] = this.weights.map(f);
    const clip = f(this.bboxXformClip);
    const out = new Float32Array(relCodes.length);
    for (let i = 0; i < n; i++) {
      const width = f(boxes[4 * i + 2] - boxes[4 * i]), height = f(boxes[4 * i + 3] - boxes[4 * i + 1]);
      const cx = f(boxes[4 * i] + f(0.5 * width)), cy = f(boxes[4 * i + 1] + f(0.5 * height));
      for (let c = 0; c < k; c++) {
        const o = (i * k + c) * 4;
        const dx = f(relCodes[o] / wx), dy = f(relCodes[o + 1] / wy);
        const dw = Math.min(f(relCodes[o + 2] / ww), clip), dh = Math.min(f(relCodes[o + 3] / wh), clip);
        const px = f(f(dx * width) + cx), py = f(f(dy * height) + cy);
        const pw = f(f(Math.exp(dw)) * width), ph = f(f(Math.exp(dh)) * height);
        const hw = f(0.5 * pw), hh = f(0.5 * ph);
        out[o] = f(px - hw);
        out[o + 1] = f(py - hh);
        out[o + 2] = f(px + hw);
        out[o + 3] = f(py + hh);
      }
    }
    return out;
  }

  /** The deltas that take `proposals` [N, 4] to `referenceBoxes` [N, 4] (BoxCoder.encode_single). */
  encode(referenceBoxes: Float32Array, proposals: Float32Array): Float32Array {
    const n = count('BoxCoder.encode', proposals);
    if (count('BoxCoder.encode', referenceBoxes) !== n) throw new InvalidArgumentError(`BoxCoder.encode: ${referenceBoxes.length / 4} reference boxes for ${n} proposals`);
    const [wx, wy, ww, wh] = this.weights.map(f);
    const out = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const p0 = proposals[4 * i], p1 = proposals[4 * i + 1], p2 = proposals[4 * i + 2], p3 = proposals[4 * i + 3];
      const g0 = referenceBoxes[4 * i], g1 = referenceBoxes[4 * i + 1], g2 = referenceBoxes[4 * i + 2], g3 = referenceBoxes[4 * i + 3];
      const ew = f(p2 - p0), eh = f(p3 - p1);
      const ex = f(p0 + f(0.5 * ew)), ey = f(p1 + f(0.5 * eh));
      const gw = f(g2 - g0), gh = f(g3 - g1);
      const gx = f(g0 + f(0.5 * gw)), gy = f(g1 + f(0.5 * gh));
      out[4 * i] = f(f(wx * f(gx - ex)) / ew);
      out[4 * i + 1] = f(f(wy * f(gy - ey)) / eh);
      out[4 * i + 2] = f(ww * f(Math.log(f(gw / ew))));
      out[4 * i + 3] = f(wh * f(Math.log(f(gh / eh))));
    }
    return out;
  }
}
