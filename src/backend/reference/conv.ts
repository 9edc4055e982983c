// Reference 2-D convolution (a cross-correlation, as PyTorch's F.conv2d) with stride, zero
// padding, dilation and groups, and its two backwards. Plain loops over row-major NCHW; no
// layouts, no blocking. The geometry is resolved and valid before a call (tensor/geometry.ts);
// these kernels never check it. Every sum is accumulated in float64.
// Index map: y[n, k, oh, ow] += w[k, c', r, s] * x[n, g*C/groups + c', oh*strideH - padH + r*dilationH, ...]
// with g = floor(k / (K/groups)).

import type { Conv2dGeometry } from '../backend.js';
import { type FloatArray, allocLike } from './array.js';

/** For each kernel tap t in [0, taps): the output positions [lo[t], hi[t]) whose input index
 *  o*stride - pad + t*dilation lies in [0, size). Hoisted out of every inner loop. */
function tapRanges(taps: number, dilation: number, stride: number, pad: number, size: number, outSize: number):
  { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(taps);
  const hi = new Int32Array(taps);
  for (let t = 0; t < taps; t++) {
    const off = t * dilation - pad;
    const a = Math.max(0, Math.ceil(-off / stride));
    const b = Math.min(outSize, Math.floor((size - 1 - off) / stride) + 1);
    lo[t] = a;
    hi[t] = Math.max(a, b);
  }
  return { lo, hi };
}

/** y = conv(x, w) + b. */
export function conv2d(
  x: FloatArray,        // x: [N, C, H, W]
  w: FloatArray,        // w: [K, C/groups, R, S]
  b: FloatArray | null, // b: [K]
  g: Conv2dGeometry,
): FloatArray {         // y: [N, K, OH, OW]
  const { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = g;
  const Cg = C / groups;
  const Kg = K / groups;
  const rows = tapRanges(R, dilationH, strideH, padH, H, OH);
  const cols = tapRanges(S, dilationW, strideW, padW, W, OW);
  const y = allocLike(x, N * K * OH * OW);
  const acc = new Float64Array(OH * OW);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      acc.fill(b ? b[k] : 0);
      const c0 = Math.floor(k / Kg) * Cg;
      for (let cg = 0; cg < Cg; cg++) {
        const xBase = (n * C + c0 + cg) * H * W;
        const wBase = (k * Cg + cg) * R * S;
        for (let r = 0; r < R; r++) {
          const ihOff = r * dilationH - padH;
          const ohLo = rows.lo[r], ohHi = rows.hi[r];
          for (let s = 0; s < S; s++) {
            const wv = w[wBase + r * S + s];
            const iwOff = s * dilationW - padW;
            const owLo = cols.lo[s], owHi = cols.hi[s];
            for (let oh = ohLo; oh < ohHi; oh++) {
              const xRow = xBase + (oh * strideH + ihOff) * W + iwOff;
              const aRow = oh * OW;
              for (let ow = owLo; ow < owHi; ow++) acc[aRow + ow] += wv * x[xRow + ow * strideW];
            }
          }
        }
      }
      y.set(acc, (n * K + k) * OH * OW);
    }
  }
  return y;
}

/** dx = conv2d's gradient with respect to x (a transposed convolution of dy). */
export function conv2dBackwardData(
  dy: FloatArray, // dy: [N, K, OH, OW]
  w: FloatArray,  // w: [K, C/groups, R, S]
  g: Conv2dGeometry,
): FloatArray {   // dx: [N, C, H, W]
  const { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = g;
  const Cg = C / groups;
  const Kg = K / groups;
  const rows = tapRanges(R, dilationH, strideH, padH, H, OH);
  const cols = tapRanges(S, dilationW, strideW, padW, W, OW);
  const dx = allocLike(dy, N * C * H * W);
  const acc = new Float64Array(C * H * W); // one image of dx
  for (let n = 0; n < N; n++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const dyBase = (n * K + k) * OH * OW;
      const c0 = Math.floor(k / Kg) * Cg;
      for (let cg = 0; cg < Cg; cg++) {
        const aBase = (c0 + cg) * H * W;
        const wBase = (k * Cg + cg) * R * S;
        for (let r = 0; r < R; r++) {
          const ihOff = r * dilationH - padH;
          const ohLo = rows.lo[r], ohHi = rows.hi[r];
          for (let s = 0; s < S; s++) {
            const wv = w[wBase + r * S + s];
            const iwOff = s * dilationW - padW;
            const owLo = cols.lo[s], owHi = cols.hi[s];
            for (let oh = ohLo; oh < ohHi; oh++) {
              const aRow = aBase + (oh * strideH + ihOff) * W + iwOff;
              const dyRow = dyBase + oh * OW;
              for (let ow = owLo; ow < owHi; ow++) acc[aRow + ow * strideW] += wv * dy[dyRow + ow];
            }
          }
        }
      }
    }
    dx.set(acc, n * C * H * W);
  }
  return dx;
}

/** dw (and db = sum of dy over N, OH, OW when withBias) of conv2d. */
export function conv2dBackwardWeights(
  x: FloatArray,  // x: [N, C, H, W]
  dy: FloatArray, // dy: [N, K, OH, OW]
  g: Conv2dGeometry,
  withBias: boolean,
): { dw: FloatArray; db: FloatArray | null } { // dw: [K, C/groups, R, S], db: [K]
  const { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = g;
  const Cg = C / groups;
  const Kg = K / groups;
  const rows = tapRanges(R, dilationH, strideH, padH, H, OH);
  const cols = tapRanges(S, dilationW, strideW, padW, W, OW);
  const dw = allocLike(x, K * Cg * R * S);
  for (let k = 0; k < K; k++) {
    const c0 = Math.floor(k / Kg) * Cg;
    for (let cg = 0; cg < Cg; cg++) {
      for (let r = 0; r < R; r++) {
        const ihOff = r * dilationH - padH;
        const ohLo = rows.lo[r], ohHi = rows.hi[r];
        for (let s = 0; s < S; s++) {
          const iwOff = s * dilationW - padW;
          const owLo = cols.lo[s], owHi = cols.hi[s];
          let sum = 0;
          for (let n = 0; n < N; n++) {
            const xBase = (n * C + c0 + cg) * H * W;
            const dyBase = (n * K + k) * OH * OW;
            for (let oh = ohLo; oh < ohHi; oh++) {
              const xRow = xBase + (oh * strideH + ihOff) * W + iwOff;
              const dyRow = dyBase + oh * OW;
              for (let ow = owLo; ow < owHi; ow++) sum += dy[dyRow + ow] * x[xRow + ow * strideW];
            }
          }
          dw[((k * Cg + cg) * R + r) * S + s] = sum;
        }
      }
    }
  }
  let db: FloatArray | null = null;
  if (withBias) {
    db = allocLike(x, K);
    for (let k = 0; k < K; k++) {
      let sum = 0;
      for (let n = 0; n < N; n++) {
        const base = (n * K + k) * OH * OW;
        for (let i = 0; i < OH * OW; i++) sum += dy[base + i];
      }
      db[k] = sum;
    }
  }
  return { dw, db };
}
