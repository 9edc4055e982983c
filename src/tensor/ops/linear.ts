// Fully connected layer y = x w^T + b, as PyTorch's F.linear.
// x: [N, I], weight: [O, I], bias: [O] -> [N, O]
// Precision: `opts.precision`, else autocast's (bf16 inside autocast('bf16', ...), as
// torch.autocast runs linear on the CPU): bf16 inputs, f32 sums and outputs; the backward
// runs in the precision the forward ran in.

import type { Precision } from '../../backend/backend.js';
import { ShapeError } from '../../errors.js';
import { record } from '../autograd.js';
import { expectRank, fmt } from '../geometry.js';
import { autocastPrecision, expectPrecision } from '../precision.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype, sameBackend } from './check.js';

/** @example const logits = linear(features, randn([10, 64], new Rng(0)), zeros([10]));  // features: [N, 64] -> [N, 10] */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: { precision?: Precision } = {}): Tensor {
  const op = 'linear';
  const p = opts.precision ?? autocastPrecision();
  expectPrecision(op, p);
  sameBackend(op, x, weight, bias);
  expectDtype(op, 'x', x, 'float32');
  expectDtype(op, 'weight', weight, 'float32');
  expectRank(op, 'x', x.shape, 2, 'N, I');
  expectRank(op, 'weight', weight.shape, 2, 'O, I');
  const [N, I] = x.shape;
  const [O, I2] = weight.shape;
  if (I !== I2) throw new ShapeError(`${op}: x ${fmt(x.shape)} has ${I} features but weight ${fmt(weight.shape)} expects ${I2}`);
  if (bias) {
    expectDtype(op, 'bias', bias, 'float32');
    if (bias.shape.length !== 1 || bias.shape[0] !== O) throw new ShapeError(`${op}: bias must be [${O}], got ${fmt(bias.shape)}`);
  }
  const be = x.backend;
  const y = fromStorage(be, be.linear(x.storage, weight.storage, bias ? bias.storage : null, N, I, O, p), [N, O]);
  return record(y, op, bias ? [x, weight, bias] : [x, weight], (dy) => {
    const dx = x.requiresGrad ? fromStorage(be, be.linearBackwardData(dy.storage, weight.storage, N, I, O, p), x.shape) : null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (weight.requiresGrad || bias?.requiresGrad) {
      const r = be.linearBackwardWeights(x.storage, dy.storage, N, I, O, bias !== null, p);
      dw = fromStorage(be, r.dw, weight.shape);
      if (r.db && bias) db = fromStorage(be, r.db, [O]);
    }
    return [dx, dw, db];
  });
}
