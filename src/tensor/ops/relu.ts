// relu and its backward. Saves the output (the cheapest thing: dx = dy where y > 0).

import { record } from '../autograd.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype } from './check.js';

/** @example const y = relu(tensor([-1, 2], [2]));  // [0, 2] */
export function relu(x: Tensor): Tensor {
  expectDtype('relu', 'x', x, 'float32');
  const be = x.backend;
  const y = fromStorage(be, be.relu(x.storage, x.shape), x.shape);
  return record(y, 'relu', [x], (dy) => [fromStorage(be, be.reluBackward(dy.storage, y.storage, x.shape), x.shape)]);
}
