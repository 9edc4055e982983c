// Softmax and argmax over the last axis, the helpers a classifier's user reaches for: read
// back to JS and computed there (K, the classes, is small), with no gradient: the results
// never require grad. Training takes crossEntropy, whose backward holds the softmax.
// softmax is float64 inside with the row maximum subtracted, as torch.softmax up to float32
// rounding; argmax breaks ties to the lower index (torch.argmax on CPU).

import { InvalidArgumentError } from '../../errors.js';
import { fmt } from '../geometry.js';
import { Tensor, tensor } from '../tensor.js';
import { expectDtype } from './check.js';

function rows(op: string, x: Tensor): [number, number] {
  expectDtype(op, 'x', x, 'float32');
  if (x.shape.length < 1 || x.shape.length > 2) throw new InvalidArgumentError(`${op}: 'x' must be [K] or [N, K] (logits), got ${fmt(x.shape)}`);
  return x.shape.length === 1 ? [1, x.shape[0]] : [x.shape[0], x.shape[1]];
}

function softmaxRow(v: ArrayLike<number>, lo: number, K: number, out: Float32Array | Float64Array): void {
  let max = -Infinity;
  for (let k = 0; k < K; k++) if (v[lo + k] > max) max = v[lo + k];
  let sum = 0;
  for (let k = 0; k < K; k++) sum += out[lo + k] = Math.exp(v[lo + k] - max);
  for (let k = 0; k < K; k++) out[lo + k] /= sum;
}

/**
 * Softmax over the last axis. A tensor of logits ([K] or [N, K]) gives a tensor of the same
 * shape (no gradient); an array of numbers gives a Float64Array.
 * @example
 * const probs = softmax(model.forward(x));          // [N, K], rows sum to 1
 * const p = softmax([2.0, 1.0, 0.1]);               // Float64Array [0.659, 0.242, 0.099]
 */
export function softmax(x: Tensor): Tensor;
export function softmax(logits: ArrayLike<number>): Float64Array;
export function softmax(x: Tensor | ArrayLike<number>): Tensor | Float64Array {
  if (!(x instanceof Tensor)) {
    const out = new Float64Array(x.length);
    if (x.length) softmaxRow(x, 0, x.length, out);
    return out;
  }
  const [N, K] = rows('softmax', x);
  const v = x.toFloat32Array();
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) softmaxRow(v, n * K, K, out);
  return tensor(out, [...x.shape], { backend: x.backend });
}

/**
 * Index of the largest value along the last axis: [N, K] logits give an int32 tensor [N]
 * (a [K] vector gives [1]); ties go to the lower index. No gradient.
 * @example
 * const classes = argmax(model.forward(x)).toArray();  // Int32Array of N class indices
 */
export function argmax(x: Tensor): Tensor {
  const [N, K] = rows('argmax', x);
  if (K === 0) throw new InvalidArgumentError(`argmax: 'x' has no values along its last axis (${fmt(x.shape)})`);
  const v = x.toFloat32Array();
  const out = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (v[n * K + k] > v[n * K + best]) best = k;
    out[n] = best;
  }
  return tensor(out, [N], { backend: x.backend, dtype: 'int32' });
}
