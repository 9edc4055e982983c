// Top-k along the last axis of a [N, K] tensor: values in descending order and their
// indices (ties: the lower index first, as torch.topk on CPU in practice). Runs on the
// values read back to JS: k and K are small (classes), N rows of output.

import { InvalidArgumentError } from '../../errors.js';
import { expectRank, fmt } from '../geometry.js';
import type { Tensor } from '../tensor.js';
import { expectDtype } from './check.js';

/** @example const { values, indices, k }: TopK = topk(logits, 5); */
export interface TopK {
  /** [N * k], row-major. */
  values: Float32Array;
  indices: Int32Array;
  k: number;
}

/** @example const { indices } = topk(model.forward(x), 5);  // [N * 5] class indices, best first */
export function topk(x: Tensor, k: number): TopK {
  expectDtype('topk', 'x', x, 'float32');
  expectRank('topk', 'x', x.shape, 2, 'N, K');
  const [N, K] = x.shape;
  if (!Number.isInteger(k) || k < 1 || k > K) throw new InvalidArgumentError(`topk: k must be an integer in [1, ${K}] for ${fmt(x.shape)}, got ${k}`);
  const v = x.toFloat32Array();
  const values = new Float32Array(N * k);
  const indices = new Int32Array(N * k);
  const order = new Int32Array(K);
  for (let n = 0; n < N; n++) {
    const row = v.subarray(n * K, (n + 1) * K);
    for (let i = 0; i < K; i++) order[i] = i;
    order.sort((a, b) => (row[b] - row[a]) || (a - b));
    for (let j = 0; j < k; j++) { indices[n * k + j] = order[j]; values[n * k + j] = row[order[j]]; }
  }
  return { values, indices, k };
}

/**
 * Fraction of rows whose label is among the top k (top-1 / top-5 accuracy).
 * @example const top5 = topkAccuracy(model.forward(x), [3, 1], 5);
 */
export function topkAccuracy(logits: Tensor, labels: ArrayLike<number>, k: number): number {
  const t = topk(logits, Math.min(k, logits.shape[1]));
  const N = logits.shape[0];
  let hit = 0;
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < t.k; j++) if (t.indices[n * t.k + j] === labels[n]) { hit++; break; }
  }
  return N === 0 ? 0 : hit / N;
}
