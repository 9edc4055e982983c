// reshape and flatten: the same elements in row-major order under a new shape.
// Composite-free: the backend copies to plain layout; the backward reshapes back.

import { numel, type Shape } from '../../backend/backend.js';
import { ShapeError } from '../../errors.js';
import { record } from '../autograd.js';
import { fmt } from '../geometry.js';
import { fromStorage, type Tensor } from '../tensor.js';

/**
 * One dimension may be -1 (inferred), as in PyTorch.
 * @example const y = reshape(tensor([1, 2, 3, 4, 5, 6], [2, 3]), [3, 2]);
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const op = 'reshape';
  const n = x.numel;
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1 || shape.some((d) => !Number.isInteger(d) || d < -1)) {
    throw new ShapeError(`${op}: invalid target shape ${fmt(shape)} (integers >= 0, at most one -1)`);
  }
  const known = numel(shape.filter((d) => d !== -1));
  const to = shape.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (numel(to) !== n || to.some((d) => !Number.isInteger(d))) {
    throw new ShapeError(`${op}: cannot view ${fmt(x.shape)} (${n} elements) as ${fmt(shape)}`);
  }
  const be = x.backend;
  const y = fromStorage(be, be.reshape(x.storage, x.shape, to), to, x.dtype);
  return record(y, op, [x], (dy) => [fromStorage(be, be.reshape(dy.storage, to, x.shape), x.shape)]);
}

/**
 * Flattens dims from `startDim` on (torch.flatten(x, 1) by default).
 * @example const flat = flatten(x);  // [N, C*H*W]
 */
export function flatten(x: Tensor, startDim = 1): Tensor {
  if (!Number.isInteger(startDim) || startDim < 0 || startDim >= Math.max(1, x.rank)) {
    throw new ShapeError(`flatten: startDim ${startDim} out of range for ${fmt(x.shape)}`);
  }
  return reshape(x, [...x.shape.slice(0, startDim), numel(x.shape.slice(startDim))]);
}
