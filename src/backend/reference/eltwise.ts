// Reference elementwise kernels over arrays of equal length (shapes do not matter here).
// relu propagates NaN as torch.relu does; reluBackward masks on the output (dx = dy where
// y > 0), so it needs only what the forward produced. No broadcasting: the tensor layer
// expands first. The backwards of add, mul and affineScalar are compositions of these kernels.

import { type FloatArray, allocLike } from './array.js';

/** y = max(x, 0). */
export function relu(x: FloatArray): FloatArray { // x, y: any shape
  const y = allocLike(x, x.length);
  for (let i = 0; i < x.length; i++) y[i] = Math.max(x[i], 0);
  return y;
}

/** dx = dy where y > 0, else 0 (y is relu's output). */
export function reluBackward(dy: FloatArray, y: FloatArray): FloatArray { // dy, y, dx: same shape
  const dx = allocLike(dy, dy.length);
  for (let i = 0; i < dy.length; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
  return dx;
}

/** y = a + b. */
export function add(a: FloatArray, b: FloatArray): FloatArray { // a, b, y: same shape
  const y = allocLike(a, a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

/** y = a * b. */
export function mul(a: FloatArray, b: FloatArray): FloatArray { // a, b, y: same shape
  const y = allocLike(a, a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] * b[i];
  return y;
}

/** y = alpha * x + beta. */
export function affineScalar(x: FloatArray, alpha: number, beta: number): FloatArray { // x, y: same shape
  const y = allocLike(x, x.length);
  for (let i = 0; i < x.length; i++) y[i] = alpha * x[i] + beta;
  return y;
}

/** In place: y = alpha * y + beta * x. */
export function axpbyInPlace(y: FloatArray, x: FloatArray, alpha: number, beta: number): void { // x, y: same shape
  for (let i = 0; i < y.length; i++) y[i] = alpha * y[i] + beta * x[i];
}
