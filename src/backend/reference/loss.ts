// Reference mean softmax cross-entropy with label smoothing, exactly PyTorch's
// CrossEntropyLoss(label_smoothing=s, reduction='mean'): target = (1 - s) * onehot(label) + s / K,
// loss = mean over n of -sum_k target[k] * log_softmax(z)[k]. Numerically stable: log-softmax
// is z - logsumexp(z) with the row maximum subtracted first. No ignore_index, no class weights.

import { type FloatArray, allocLike } from './array.js';

/** loss: [1] (the mean over the batch), probs: [N, K] = softmax(logits) saved for the backward. */
export function softmaxCrossEntropy(
  logits: FloatArray, // logits: [N, K]
  labels: Int32Array, // labels: [N], in [0, K)
  N: number, K: number, smoothing: number,
): { loss: FloatArray; probs: FloatArray } {
  const probs = allocLike(logits, N * K);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const row = n * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, logits[row + k]);
    let sumExp = 0, sumShifted = 0; // shifted by the row maximum: no overflow, no cancellation
    for (let k = 0; k < K; k++) { const z = logits[row + k] - max; sumExp += Math.exp(z); sumShifted += z; }
    for (let k = 0; k < K; k++) probs[row + k] = Math.exp(logits[row + k] - max) / sumExp;
    // -sum_k target_k log_softmax_k with log_softmax_k = (z_k - max) - log(sumExp) and sum_k target_k = 1:
    total += Math.log(sumExp) - (1 - smoothing) * (logits[row + labels[n]] - max) - (smoothing / K) * sumShifted;
  }
  const loss = allocLike(logits, 1);
  loss[0] = total / N;
  return { loss, probs };
}

/** dlogits = dloss * (probs - target) / N. */
export function softmaxCrossEntropyBackward(
  probs: FloatArray,  // probs: [N, K], from softmaxCrossEntropy
  labels: Int32Array, // labels: [N]
  N: number, K: number, smoothing: number,
  dloss: number,
): FloatArray {       // dlogits: [N, K]
  const dlogits = allocLike(probs, N * K);
  const scale = dloss / N;
  const off = smoothing / K;
  for (let n = 0; n < N; n++) {
    const row = n * K;
    const label = labels[n];
    for (let k = 0; k < K; k++) {
      const target = (k === label ? 1 - smoothing : 0) + off;
      dlogits[row + k] = scale * (probs[row + k] - target);
    }
  }
  return dlogits;
}
