// Reference batch normalisation (Ioffe & Szegedy 2015, Algorithm 1) over [N, C, ...spatial],
// statistics per channel over N and the spatial positions; optionally fused with a ReLU,
// y = max(0, bn(x)). Training uses the batch mean and the biased variance, as PyTorch's
// F.batch_norm(training=True) normalises; updating running statistics is the caller's job.
// The fused backward recomputes the ReLU mask from x, mean, variance, gamma and beta.
// Sums accumulate in float64.

import type { Shape } from '../backend.js';
import { InvalidArgumentError } from '../../errors.js';
import { type FloatArray, allocLike } from './array.js';

/** N, C and the number of spatial positions of an [N, C, ...] shape. */
function dims(shape: Shape): { N: number; C: number; HW: number } {
  let HW = 1;
  for (let i = 2; i < shape.length; i++) HW *= shape[i];
  return { N: shape[0], C: shape[1], HW };
}

/** y = gamma * (x - mean) / sqrt(variance + eps) + beta, then ReLU if fused. */
function normalise(x: FloatArray, gamma: FloatArray, beta: FloatArray, mean: ArrayLike<number>,
  variance: ArrayLike<number>, shape: Shape, eps: number, fuseRelu: boolean): FloatArray {
  const { N, C, HW } = dims(shape);
  const y = allocLike(x, x.length);
  for (let c = 0; c < C; c++) {
    const m = mean[c];
    const scale = gamma[c] / Math.sqrt(variance[c] + eps);
    const shift = beta[c];
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) {
        const v = (x[i] - m) * scale + shift;
        y[i] = fuseRelu ? Math.max(v, 0) : v;
      }
    }
  }
  return y;
}

/** Training forward: batch statistics (mean, biased variance) per channel. */
export function batchNormTrain(
  x: FloatArray,     // x: [N, C, H, W]
  gamma: FloatArray, // gamma: [C]
  beta: FloatArray,  // beta: [C]
  shape: Shape, eps: number, fuseRelu: boolean,
): { y: FloatArray; mean: FloatArray; variance: FloatArray } { // y like x; mean, variance: [C]
  const { N, C, HW } = dims(shape);
  const M = N * HW;
  const mean = allocLike(x, C);
  const variance = allocLike(x, C);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) sum += x[i];
    }
    const m = sum / M;
    let sq = 0; // two passes: no cancellation in E[x^2] - E[x]^2
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) { const d = x[i] - m; sq += d * d; }
    }
    mean[c] = m;
    variance[c] = sq / M;
  }
  // NOTE: y is computed from mean and variance as stored (rounded to x's type), so the
  // backward, which only sees the stored statistics, recomputes exactly the same ReLU mask.
  const y = normalise(x, gamma, beta, mean, variance, shape, eps, fuseRelu);
  return { y, mean, variance };
}

/** Inference forward: the given (running) statistics. */
export function batchNormInfer(
  x: FloatArray,        // x: [N, C, H, W]
  gamma: FloatArray,    // gamma: [C]
  beta: FloatArray,     // beta: [C]
  mean: FloatArray,     // mean: [C]
  variance: FloatArray, // variance: [C]
  shape: Shape, eps: number, fuseRelu: boolean,
): FloatArray {         // y like x
  return normalise(x, gamma, beta, mean, variance, shape, eps, fuseRelu);
}

/** dy masked by the fused ReLU (pre-activation > 0), or dy itself. */
function maskedDy(dy: FloatArray, x: FloatArray, gamma: FloatArray, beta: FloatArray | null,
  mean: FloatArray, variance: FloatArray, shape: Shape, eps: number, fuseRelu: boolean, op: string): FloatArray {
  if (!fuseRelu) return dy;
  if (beta === null) throw new InvalidArgumentError(`${op}: fuseRelu needs 'beta' to recompute the ReLU mask, got null`);
  const { N, C, HW } = dims(shape);
  const out = allocLike(dy, dy.length);
  for (let c = 0; c < C; c++) {
    const m = mean[c];
    const scale = gamma[c] / Math.sqrt(variance[c] + eps);
    const shift = beta[c];
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) out[i] = (x[i] - m) * scale + shift > 0 ? dy[i] : 0;
    }
  }
  return out;
}

/** Training backward (the statistics depend on x):
 *  dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),
 *  dgamma = sum(dy * xhat), dbeta = sum(dy), sums per channel over N and space. */
export function batchNormBackward(
  dy: FloatArray,        // dy: [N, C, H, W]
  x: FloatArray,         // x: [N, C, H, W]
  gamma: FloatArray,     // gamma: [C]
  beta: FloatArray | null, // beta: [C], needed only with fuseRelu
  mean: FloatArray,      // mean: [C] (batch mean from batchNormTrain)
  variance: FloatArray,  // variance: [C] (biased batch variance from batchNormTrain)
  shape: Shape, eps: number, fuseRelu: boolean,
): { dx: FloatArray; dgamma: FloatArray; dbeta: FloatArray } {
  const { N, C, HW } = dims(shape);
  const M = N * HW;
  const g = maskedDy(dy, x, gamma, beta, mean, variance, shape, eps, fuseRelu, 'batchNormBackward');
  const dx = allocLike(dy, dy.length);
  const dgamma = allocLike(dy, C);
  const dbeta = allocLike(dy, C);
  for (let c = 0; c < C; c++) {
    const m = mean[c];
    const invstd = 1 / Math.sqrt(variance[c] + eps);
    let sumDy = 0, sumDyXhat = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) { sumDy += g[i]; sumDyXhat += g[i] * (x[i] - m) * invstd; }
    }
    dgamma[c] = sumDyXhat;
    dbeta[c] = sumDy;
    const k = gamma[c] * invstd;
    const meanDy = sumDy / M, meanDyXhat = sumDyXhat / M;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) dx[i] = k * (g[i] - meanDy - (x[i] - m) * invstd * meanDyXhat);
    }
  }
  return { dx, dgamma, dbeta };
}

/** Inference backward (statistics are constants): dx = gamma * invstd * dy,
 *  dgamma = sum(dy * xhat), dbeta = sum(dy). NOTE: not part of the Backend contract (which
 *  has only the training backward); here for frozen-BN fine-tuning and the gradient checks. */
export function batchNormInferBackward(
  dy: FloatArray,        // dy: [N, C, H, W]
  x: FloatArray,         // x: [N, C, H, W]
  gamma: FloatArray,     // gamma: [C]
  beta: FloatArray | null, // beta: [C], needed only with fuseRelu
  mean: FloatArray,      // mean: [C]
  variance: FloatArray,  // variance: [C]
  shape: Shape, eps: number, fuseRelu: boolean,
): { dx: FloatArray; dgamma: FloatArray; dbeta: FloatArray } {
  const { N, C, HW } = dims(shape);
  const g = maskedDy(dy, x, gamma, beta, mean, variance, shape, eps, fuseRelu, 'batchNormInferBackward');
  const dx = allocLike(dy, dy.length);
  const dgamma = allocLike(dy, C);
  const dbeta = allocLike(dy, C);
  for (let c = 0; c < C; c++) {
    const m = mean[c];
    const invstd = 1 / Math.sqrt(variance[c] + eps);
    const k = gamma[c] * invstd;
    let sumDy = 0, sumDyXhat = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) {
        sumDy += g[i];
        sumDyXhat += g[i] * (x[i] - m) * invstd;
        dx[i] = k * g[i];
      }
    }
    dgamma[c] = sumDyXhat;
    dbeta[c] = sumDy;
  }
  return { dx, dgamma, dbeta };
}
