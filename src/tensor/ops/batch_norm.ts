// Batch normalisation over [N, C, H, W] per channel, as PyTorch's F.batch_norm (affine).
// Training: batch statistics (biased variance in the normalisation), running statistics
// updated in place with the unbiased variance (torch.nn.BatchNorm2d docs); the optional
// fused ReLU is oneDNN's fuse_norm_relu (one pass instead of two). Inference: running
// statistics. The backward of training mode needs x, mean, variance (and the backend's
// workspace); those three are owned by the node and freed after backward.

import { numel } from '../../backend/backend.js';
import { ShapeError } from '../../errors.js';
import { isGradEnabled, noGrad, record } from '../autograd.js';
import { expectRank, fmt } from '../geometry.js';
import { fromStorage, tensor, type Tensor } from '../tensor.js';
import { expectDtype, expectFinite, sameBackend } from './check.js';
import { relu } from './relu.js';

/** @example const o: BatchNormOptions = { training: true, momentum: 0.1, eps: 1e-5, relu: true }; */
export interface BatchNormOptions {
  training: boolean;
  /** Running-statistics momentum (PyTorch's convention: new = (1-m)*old + m*batch). */
  momentum?: number;
  eps?: number;
  /** y = relu(bn(x)), fused where the backend can. */
  relu?: boolean;
}

/**
 * x: [N, C, H, W]; weight, bias, runningMean, runningVar: [C]
 * @example
 * const C = x.shape[1];
 * const y = batchNorm(x, ones([C]), zeros([C]), zeros([C]), ones([C]), { training: true, relu: true });
 */
export function batchNorm(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions): Tensor {
  const op = 'batchNorm';
  sameBackend(op, x, weight, bias, runningMean, runningVar);
  expectRank(op, 'x', x.shape, 4, 'N, C, H, W');
  const C = x.shape[1];
  for (const [name, t] of [['weight', weight], ['bias', bias], ['runningMean', runningMean], ['runningVar', runningVar]] as const) {
    if (!t) continue;
    expectDtype(op, name, t, 'float32');
    if (t.shape.length !== 1 || t.shape[0] !== C) throw new ShapeError(`${op}: '${name}' must be [${C}] (channels of x ${fmt(x.shape)}), got ${fmt(t.shape)}`);
  }
  expectDtype(op, 'x', x, 'float32');
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  expectFinite(op, 'eps', eps);
  expectFinite(op, 'momentum', momentum);
  const fuse = opts.relu ?? false;
  const be = x.backend;
  const shape = x.shape;

  if (!opts.training) {
    if (!runningMean || !runningVar) throw new ShapeError(`${op}: inference mode needs runningMean and runningVar`);
    const needsGrad = isGradEnabled() && (x.requiresGrad || weight.requiresGrad || bias.requiresGrad);
    if (fuse && needsGrad) return relu(batchNorm(x, weight, bias, runningMean, runningVar, { ...opts, relu: false }));
    const y = fromStorage(be, be.batchNormInfer(x.storage, weight.storage, bias.storage, runningMean.storage, runningVar.storage, shape, eps, fuse), shape);
    return record(y, op, [x, weight, bias], (dy) => evalBackward(dy, x, weight, runningMean, runningVar, eps, weight.requiresGrad || bias.requiresGrad));
  }

  const n = numel(shape) / C;
  if (n < 2) throw new ShapeError(`${op}: training needs more than one value per channel, got x ${fmt(shape)}`);
  const r = be.batchNormTrain(x.storage, weight.storage, bias.storage, shape, eps, fuse);
  const y = fromStorage(be, r.y, shape);
  const mean = fromStorage(be, r.mean, [C]);
  const variance = fromStorage(be, r.variance, [C]);
  const saved = r.saved ? fromStorage(be, r.saved, [0]) : null;
  if (runningMean && runningVar) {
    be.axpbyInPlace(runningMean.storage, mean.storage, [C], 1 - momentum, momentum);
    be.axpbyInPlace(runningVar.storage, variance.storage, [C], 1 - momentum, (momentum * n) / (n - 1));
  }
  const owned = saved ? [mean, variance, saved] : [mean, variance];
  return record(y, op, [x, weight, bias], (dy) => {
    const g = be.batchNormBackward(dy.storage, x.storage, weight.storage, mean.storage, variance.storage,
      saved ? saved.storage : null, shape, eps, fuse);
    return [fromStorage(be, g.dx, shape), fromStorage(be, g.dgamma, [C]), fromStorage(be, g.dbeta, [C])];
  }, owned);
}

// Inference-mode gradients: y = (x - m) / sqrt(v + eps) * gamma + beta with m, v constants.
// dx is itself an inference batch norm of dy (zero mean, zero shift, the same variance);
// dgamma, dbeta are per-channel sums, computed on plain arrays (a rare path: fine-tuning
// with frozen statistics), and skipped when gamma and beta are frozen too (FrozenBatchNorm2d).
function evalBackward(dy: Tensor, x: Tensor, weight: Tensor, rm: Tensor, rv: Tensor, eps: number, affine: boolean): (Tensor | null)[] {
  return noGrad(() => {
    const be = x.backend;
    const [N, C, H, W] = x.shape;
    const zero = tensor(new Float32Array(C), [C], { backend: be });
    const dx = fromStorage(be, be.batchNormInfer(dy.storage, weight.storage, zero.storage, zero.storage, rv.storage, x.shape, eps, false), x.shape);
    zero.dispose();
    if (!affine) return [dx, null, null];
    const g = dy.toFloat32Array();
    const xs = x.toFloat32Array();
    const m = rm.toFloat32Array();
    const v = rv.toFloat32Array();
    const dgamma = new Float32Array(C);
    const dbeta = new Float32Array(C);
    const HW = H * W;
    for (let c = 0; c < C; c++) {
      const inv = 1 / Math.sqrt(v[c] + eps);
      let sg = 0; let sb = 0;
      for (let i = 0; i < N; i++) {
        const base = (i * C + c) * HW;
        for (let j = 0; j < HW; j++) { sb += g[base + j]; sg += g[base + j] * (xs[base + j] - m[c]) * inv; }
      }
      dgamma[c] = sg; dbeta[c] = sb;
    }
    return [dx, tensor(dgamma, [C], { backend: be }), tensor(dbeta, [C], { backend: be })];
  });
}
