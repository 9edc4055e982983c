// Checks shared by roiAlign and roiPool: x is [N, C, H, W] float32, rois [K, 5] float32 on
// x's backend, every row finite with its batch index in [0, N), and the output size. The
// rois are read to the host once here (K x 5 numbers), so a backend never sees a batch
// index it could read out of bounds with, nor a coordinate that makes its loops unbounded.

import type { RoiGeometry } from '../../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { isGradEnabled } from '../../tensor/autograd.js';
import { expectRank, fmt } from '../../tensor/geometry.js';
import { expectDtype, sameBackend } from '../../tensor/ops/check.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';

/** Largest |coordinate * spatialScale| accepted: float32 still holds whole pixels exactly
 *  there, and an adaptive sampling grid stays a bounded loop. */
export const MAX_ROI_COORD = 2 ** 24;

/** [OH, OW] from a number or a pair of integers >= 1. */
export function outputPair(op: string, v: number | readonly [number, number]): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? [v[0], v[1]] : [NaN, NaN];
  if (!p.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new InvalidArgumentError(`${op}: 'outputSize' must be an integer >= 1 or a pair of them, got ${Array.isArray(v) ? `[${v.join(', ')}]` : String(v)}`);
  }
  return p;
}

/** Validates x and rois and resolves the geometry (samplingRatio and aligned as given). */
export function roiGeometry(op: string, x: Tensor, rois: Tensor, outputSize: number | readonly [number, number],
  spatialScale: number, samplingRatio: number, aligned: boolean): RoiGeometry {
  sameBackend(op, x, rois);
  expectDtype(op, 'x', x, 'float32');
  expectDtype(op, 'rois', rois, 'float32');
  expectRank(op, 'x', x.shape, 4, 'N, C, H, W');
  if (rois.rank !== 2 || rois.shape[1] !== 5) {
    throw new ShapeError(`${op}: input 'rois' must be [K, 5] rows (batchIndex, x1, y1, x2, y2), got ${fmt(rois.shape)}`);
  }
  const [OH, OW] = outputPair(op, outputSize);
  if (typeof spatialScale !== 'number' || !Number.isFinite(spatialScale) || spatialScale <= 0) {
    throw new InvalidArgumentError(`${op}: 'spatialScale' must be a finite number > 0, got ${String(spatialScale)}`);
  }
  if (!Number.isInteger(samplingRatio)) {
    throw new InvalidArgumentError(`${op}: 'samplingRatio' must be an integer (<= 0: adaptive), got ${String(samplingRatio)}`);
  }
  const [N, C, H, W] = x.shape;
  if (H < 1 || W < 1) throw new ShapeError(`${op}: input 'x' must have H, W >= 1, got ${fmt(x.shape)}`);
  const K = rois.shape[0];
  if (K > 0) {
    const r = rois.toFloat32Array();
    for (let k = 0; k < K; k++) {
      const b = r[k * 5];
      if (!Number.isFinite(b) || Math.trunc(b) < 0 || Math.trunc(b) >= N) {
        throw new InvalidArgumentError(`${op}: rois row ${k} has batch index ${b}, valid: 0..${N - 1} (x is ${fmt(x.shape)})`);
      }
      for (let j = 1; j < 5; j++) {
        if (!(Math.abs(r[k * 5 + j] * spatialScale) <= MAX_ROI_COORD)) {
          throw new InvalidArgumentError(`${op}: rois row ${k} has coordinate ${r[k * 5 + j]}; coordinates must be finite with |value * spatialScale| <= ${MAX_ROI_COORD}`);
        }
      }
    }
  }
  return { N, C, H, W, K, OH, OW, spatialScale, samplingRatio, aligned };
}

/** A copy of the rois for the backward to own when one will be recorded for x (the caller
 *  may dispose its tensor before then); none otherwise. */
export function roisForBackward(x: Tensor, rois: Tensor): Tensor[] {
  if (!(isGradEnabled() && x.requiresGrad)) return [];
  return [fromStorage(rois.backend, rois.backend.reshape(rois.storage, rois.shape, rois.shape), rois.shape)];
}
