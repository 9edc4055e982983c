// The four training losses of Faster R-CNN, as torchvision's (v0.14) RegionProposalNetwork.
// compute_loss and roi_heads.fastrcnn_loss, each with its gradient, computed on the host
// over the outputs read back (tensor/ops/host_loss.ts puts them in the graph):
//   loss_objectness   BCE-with-logits, mean over the sampled anchors of every image
//   loss_rpn_box_reg  smooth L1 (beta 1/9), summed over sampled positive anchors / sampled anchors
//   loss_classifier   cross-entropy, mean over the sampled proposals
//   loss_box_reg      smooth L1 (beta 1/9) of the true class's deltas, summed over positive
//                     proposals / sampled proposals
// All in float64 on the host; inputs and gradients are float32.

/** Smooth L1 of x with beta (value, d/dx). */
function smoothL1(x: number, beta: number): [number, number] {
  const a = Math.abs(x);
  return a < beta ? [(0.5 * x * x) / beta, x / beta] : [a - 0.5 * beta, Math.sign(x)];
}

/** The default beta of both box losses. @example BOX_LOSS_BETA  // 1 / 9 */
export const BOX_LOSS_BETA = 1 / 9;

/** The RPN's loss terms and gradients.
 * @example const r: RpnLossResult = rpnLoss(Float32Array.of(2, -1), new Float32Array(8), Int32Array.of(1, 0), new Float32Array(8), { pos: Int32Array.of(0), neg: Int32Array.of(1) });
 */
export interface RpnLossResult {
  objectness: number;
  boxReg: number;
  /** d(objectness + boxReg)/d logit, per anchor. */
  dLogits: Float32Array;
  /** ... / d delta, [anchors, 4]. */
  dDeltas: Float32Array;
}

/**
 * RPN losses over anchors in one flat order (every image's anchors, image after image):
 * `logits` [A], `deltas` [A, 4], `labels` (1, 0, -1) and `targets` [A, 4] from
 * assignTargets, `sampled` the chosen positive and negative anchor indices.
 * @example const r = rpnLoss(Float32Array.of(0.5, -2, 1, 3), new Float32Array(16), Int32Array.of(0, 0, -1, 1), new Float32Array(16), { pos: Int32Array.of(3), neg: Int32Array.of(0, 1) });
 */
export function rpnLoss(logits: Float32Array, deltas: Float32Array, labels: Int32Array, targets: Float32Array, sampled: { pos: Int32Array; neg: Int32Array }, beta = BOX_LOSS_BETA): RpnLossResult {
  const dLogits = new Float32Array(logits.length), dDeltas = new Float32Array(deltas.length);
  const n = sampled.pos.length + sampled.neg.length;
  let objectness = 0, boxReg = 0;
  if (n === 0) return { objectness, boxReg, dLogits, dDeltas };
  for (const i of [...sampled.pos, ...sampled.neg]) {
    const x = logits[i], y = labels[i] >= 1 ? 1 : 0;
    objectness += Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
    dLogits[i] = (1 / (1 + Math.exp(-x)) - y) / n;
  }
  for (const i of sampled.pos) {
    for (let c = 0; c < 4; c++) {
      const [v, d] = smoothL1(deltas[4 * i + c] - targets[4 * i + c], beta);
      boxReg += v;
      dDeltas[4 * i + c] = d / n;
    }
  }
  return { objectness: objectness / n, boxReg: boxReg / n, dLogits, dDeltas };
}

/** The box head's loss terms and gradients.
 * @example const r: FastRcnnLossResult = fastRcnnLoss(Float32Array.of(1, 2, 0), new Float32Array(12), Int32Array.of(1), new Float32Array(4), 3);
 */
export interface FastRcnnLossResult {
  classifier: number;
  boxReg: number;
  /** [K, C] */
  dLogits: Float32Array;
  /** [K, 4C] */
  dDeltas: Float32Array;
}

/**
 * Box-head losses of the K sampled proposals: `logits` [K, C], per-class `deltas` [K, 4C],
 * `labels` [K] (0 background), `targets` [K, 4] (encoded against each proposal's match).
 * @example const r = fastRcnnLoss(new Float32Array(6), new Float32Array(24), Int32Array.of(0, 2), new Float32Array(8), 3);  // classifier: ln 3
 */
export function fastRcnnLoss(logits: Float32Array, deltas: Float32Array, labels: Int32Array, targets: Float32Array, numClasses: number, beta = BOX_LOSS_BETA): FastRcnnLossResult {
  const K = labels.length, C = numClasses;
  const dLogits = new Float32Array(K * C), dDeltas = new Float32Array(K * C * 4);
  let classifier = 0, boxReg = 0;
  if (K === 0) return { classifier, boxReg, dLogits, dDeltas };
  for (let k = 0; k < K; k++) {
    const z = logits.subarray(k * C, (k + 1) * C);
    let max = -Infinity;
    for (const v of z) max = Math.max(max, v);
    let sum = 0;
    for (const v of z) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    classifier += lse - z[labels[k]];
    for (let c = 0; c < C; c++) dLogits[k * C + c] = (Math.exp(z[c] - lse) - (c === labels[k] ? 1 : 0)) / K;
    if (labels[k] > 0) {
      const o = (k * C + labels[k]) * 4;
      for (let c = 0; c < 4; c++) {
        const [v, d] = smoothL1(deltas[o + c] - targets[4 * k + c], beta);
        boxReg += v;
        dDeltas[o + c] = d / K;
      }
    }
  }
  return { classifier: classifier / K, boxReg: boxReg / K, dLogits, dDeltas };
}
