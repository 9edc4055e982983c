// Elementwise add and mul of same-shaped tensors, and scalar affine ops
// (x * alpha + beta). No broadcasting: a ResNet never needs it (biases live in conv/linear).

import { record } from '../autograd.js';
import { fromStorage, type Tensor } from '../tensor.js';
import { expectDtype, expectFinite, expectSameShape, sameBackend } from './check.js';

/** Two float32 tensors of one shape on one backend. */
function expectPair(op: string, a: Tensor, b: Tensor): void {
  sameBackend(op, a, b);
  expectDtype(op, 'a', a, 'float32');
  expectDtype(op, 'b', b, 'float32');
  expectSameShape(op, a, b);
}

/**
 * a + b (the residual addition). d/da = d/db = dy.
 * @example const y = add(x, x);  // same shapes
 */
export function add(a: Tensor, b: Tensor): Tensor {
  const op = 'add';
  expectPair(op, a, b);
  const be = a.backend;
  const y = fromStorage(be, be.add(a.storage, b.storage, a.shape), a.shape);
  return record(y, op, [a, b], (dy) => [dy, dy]);
}

/**
 * relu(a + b) in one pass (a residual block's end). d/da = d/db = dy where y > 0.
 * @example const out = addRelu(x, x);  // relu(a + b): a residual block's last step
 */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  const op = 'addRelu';
  expectPair(op, a, b);
  const be = a.backend;
  const y = fromStorage(be, be.add(a.storage, b.storage, a.shape, true), a.shape);
  return record(y, op, [a, b], (dy) => {
    const dx = fromStorage(be, be.reluBackward(dy.storage, y.storage, a.shape), a.shape);
    return [dx, dx];
  });
}

/**
 * a * b elementwise. d/da = dy * b, d/db = dy * a.
 * @example const sq = mul(x, x);
 */
export function mul(a: Tensor, b: Tensor): Tensor {
  const op = 'mul';
  expectPair(op, a, b);
  const be = a.backend;
  const y = fromStorage(be, be.mul(a.storage, b.storage, a.shape), a.shape);
  return record(y, op, [a, b], (dy) => [
    a.requiresGrad ? fromStorage(be, be.mul(dy.storage, b.storage, a.shape), a.shape) : null,
    b.requiresGrad ? fromStorage(be, be.mul(dy.storage, a.storage, a.shape), a.shape) : null,
  ]);
}

/**
 * x * alpha + beta. d/dx = alpha * dy.
 * @example const y = affine(x, 2, -1);  // 2x - 1
 */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  const op = 'affine';
  expectDtype(op, 'x', x, 'float32');
  expectFinite(op, 'alpha', alpha);
  expectFinite(op, 'beta', beta);
  const be = x.backend;
  const y = fromStorage(be, be.affineScalar(x.storage, x.shape, alpha, beta), x.shape);
  return record(y, op, [x], (dy) => [fromStorage(be, be.affineScalar(dy.storage, x.shape, alpha, 0), x.shape)]);
}

/** @example const y = addScalar(x, 0.5); */
export function addScalar(x: Tensor, s: number): Tensor {
  return affine(x, 1, s);
}

/** @example const y = mulScalar(x, 1 / 255); */
export function mulScalar(x: Tensor, s: number): Tensor {
  return affine(x, s, 0);
}
