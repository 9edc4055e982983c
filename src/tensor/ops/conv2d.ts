// conv2d and its two backwards (data, weights + bias), as PyTorch's F.conv2d.
// Saves x and w (references, not copies): the caller must not dispose them before backward.
// The precision is opts.precision, else autocast's (tensor/precision.ts); the backward runs
// in the forward's.

import type { Precision } from '../../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { isGradEnabled, record } from '../autograd.js';
import { conv2dGeometry, fmt, type Conv2dOptions } from '../geometry.js';
import { autocastPrecision } from '../precision.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype, sameBackend } from './check.js';

/** @example const o: Conv2dPrecisionOptions = { padding: 1, precision: 'bf16' }; */
export interface Conv2dPrecisionOptions extends Conv2dOptions {
  /** Compute precision (default: autocast's, i.e. 'fp32' outside autocast). */
  precision?: Precision;
}

/** x: [N, C, H, W], weight: [K, C/groups, R, S], bias: [K] -> [N, K, OH, OW]
 *  @example const y = conv2d(x, w, null, { stride: 2, padding: 3 }); */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dPrecisionOptions = {}): Tensor {
  const op = 'conv2d';
  sameBackend(op, x, weight, bias);
  expectDtype(op, 'x', x, 'float32');
  expectDtype(op, 'weight', weight, 'float32');
  if (bias) expectDtype(op, 'bias', bias, 'float32');
  const g = conv2dGeometry(x.shape, weight.shape, bias ? bias.shape : null, opts);
  const be = x.backend;
  const p = opts.precision ?? autocastPrecision();
  const y = fromStorage(be, be.conv2d(x.storage, weight.storage, bias ? bias.storage : null, g, p), [g.N, g.K, g.OH, g.OW]);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(y, op, inputs, (dy) => {
    const dx = x.requiresGrad ? fromStorage(be, be.conv2dBackwardData(dy.storage, weight.storage, g, p), x.shape) : null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (weight.requiresGrad || bias?.requiresGrad) {
      const r = be.conv2dBackwardWeights(x.storage, dy.storage, g, bias !== null, p);
      dw = fromStorage(be, r.dw, weight.shape);
      if (r.db && bias) db = fromStorage(be, r.db, bias.shape);
    }
    return [dx, dw, db];
  });
}

/** @example const o: Conv2dFusedOptions = { padding: 1, relu: true }; */
export interface Conv2dFusedOptions extends Conv2dPrecisionOptions {
  /** Added to the convolution's output before the ReLU ([N, K, OH, OW]). */
  residual?: Tensor | null;
  /** Apply ReLU last. */
  relu?: boolean;
  /** The residual is an intermediate nobody reads again: the result may be written into its
   *  memory (no copy), after which the residual tensor must not be used (it says so if it is). */
  consumeResidual?: boolean;
}

/**
 * Inference only: relu?(conv2d(x, w, b) + residual?) in one op (oneDNN post-ops on native):
 * the building brick of BN-folded inference (models/fused.ts). Records nothing on the tape,
 * so it refuses inputs that require a gradient while autograd is on.
 * @example const y = noGrad(() => conv2dFused(x, w, b, { padding: 1, residual: x, relu: true }));
 */
export function conv2dFused(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dFusedOptions = {}): Tensor {
  const op = 'conv2dFused';
  const residual = opts.residual ?? null;
  sameBackend(op, x, weight, bias, residual);
  expectDtype(op, 'x', x, 'float32');
  expectDtype(op, 'weight', weight, 'float32');
  if (bias) expectDtype(op, 'bias', bias, 'float32');
  if (isGradEnabled() && [x, weight, bias, residual].some((t) => t?.requiresGrad)) {
    throw new InvalidArgumentError(`${op}: inference only (it has no backward); call it inside noGrad() or use conv2d`);
  }
  const g = conv2dGeometry(x.shape, weight.shape, bias ? bias.shape : null, opts);
  const outShape = [g.N, g.K, g.OH, g.OW];
  if (residual) {
    expectDtype(op, 'residual', residual, 'float32');
    if (residual.shape.join() !== outShape.join()) {
      throw new ShapeError(`${op}: residual must have the output's shape ${fmt(outShape)}, got ${fmt(residual.shape)}`);
    }
  }
  const be = x.backend;
  const p = opts.precision ?? autocastPrecision();
  return fromStorage(be, be.conv2dFused(x.storage, weight.storage, bias ? bias.storage : null, g,
    residual ? residual.storage : null, opts.relu ?? false, p, opts.consumeResidual ?? false), outShape);
}
