// Reference fully connected layer, y = x w^T + b, as PyTorch's F.linear (w is [O, I]), and
// its two backwards. Plain row-major loops with float64 accumulation; no transposed copies.

import { type FloatArray, allocLike } from './array.js';

/** y = x w^T + b. */
export function linear(
  x: FloatArray,        // x: [N, I]
  w: FloatArray,        // w: [O, I]
  b: FloatArray | null, // b: [O]
  N: number, I: number, O: number,
): FloatArray {         // y: [N, O]
  const y = allocLike(x, N * O);
  for (let n = 0; n < N; n++) {
    const xRow = n * I;
    for (let o = 0; o < O; o++) {
      const wRow = o * I;
      let sum = b ? b[o] : 0;
      for (let i = 0; i < I; i++) sum += x[xRow + i] * w[wRow + i];
      y[n * O + o] = sum;
    }
  }
  return y;
}

/** dx = dy w. */
export function linearBackwardData(
  dy: FloatArray, // dy: [N, O]
  w: FloatArray,  // w: [O, I]
  N: number, I: number, O: number,
): FloatArray {   // dx: [N, I]
  const dx = allocLike(dy, N * I);
  const acc = new Float64Array(I);
  for (let n = 0; n < N; n++) {
    acc.fill(0);
    for (let o = 0; o < O; o++) {
      const d = dy[n * O + o];
      const wRow = o * I;
      for (let i = 0; i < I; i++) acc[i] += d * w[wRow + i];
    }
    dx.set(acc, n * I);
  }
  return dx;
}

/** dw = dy^T x, db = sum of dy over N (when withBias). */
export function linearBackwardWeights(
  x: FloatArray,  // x: [N, I]
  dy: FloatArray, // dy: [N, O]
  N: number, I: number, O: number,
  withBias: boolean,
): { dw: FloatArray; db: FloatArray | null } { // dw: [O, I], db: [O]
  const acc = new Float64Array(O * I);
  for (let n = 0; n < N; n++) {
    const xRow = n * I;
    for (let o = 0; o < O; o++) {
      const d = dy[n * O + o];
      const aRow = o * I;
      for (let i = 0; i < I; i++) acc[aRow + i] += d * x[xRow + i];
    }
  }
  const dw = allocLike(x, O * I);
  dw.set(acc);
  let db: FloatArray | null = null;
  if (withBias) {
    db = allocLike(x, O);
    for (let o = 0; o < O; o++) {
      let sum = 0;
      for (let n = 0; n < N; n++) sum += dy[n * O + o];
      db[o] = sum;
    }
  }
  return { dw, db };
}
