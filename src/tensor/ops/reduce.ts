// Full reductions: sum and mean of every element, to a scalar. d/dx sum = dy broadcast.

import { record } from '../autograd.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { affine } from './elementwise.js';
import { expectDtype } from './check.js';

/** @example const total = sum(x).item(); */
export function sum(x: Tensor): Tensor {
  expectDtype('sum', 'x', x, 'float32');
  const be = x.backend;
  const y = fromStorage(be, be.sum(x.storage, x.shape), []);
  return record(y, 'sum', [x], (dy) => [fromStorage(be, be.full(x.shape, 'float32', dy.item()), x.shape)]);
}

/**
 * Composite: sum(x) / numel.
 * @example const m = mean(x).item();
 */
export function mean(x: Tensor): Tensor {
  return affine(sum(x), 1 / x.numel, 0);
}
