// Reference 2-D max and average pooling over row-major NCHW with PyTorch semantics
// (aten/src/ATen/native/cpu/{MaxPoolKernel,AvgPoolKernel}.cpp): floor mode, symmetric
// padding that counts as -inf for max, and for average either counts in the divisor
// (count_include_pad=true) or not. No dilation, no ceil mode, no divisor_override.
// Max pooling saves the argmax of each output as an index into its input plane (ih * W + iw),
// the first maximum on ties, NaN winning (`val > max || isnan(val)`), as PyTorch does.

import type { Pool2dGeometry } from '../backend.js';
import { type FloatArray, allocLike } from './array.js';

/** y = max over each window; argmax: [N, C, OH, OW] indices into the H * W plane. */
export function maxPool2d(
  x: FloatArray, // x: [N, C, H, W]
  g: Pool2dGeometry,
): { y: FloatArray; argmax: Int32Array } { // y: [N, C, OH, OW]
  const { N, C, H, W, OH, OW, kernelH, kernelW, strideH, strideW, padH, padW } = g;
  const y = allocLike(x, N * C * OH * OW);
  const argmax = new Int32Array(N * C * OH * OW);
  for (let p = 0; p < N * C; p++) {
    const xBase = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.max(oh * strideH - padH, 0);
      const h1 = Math.min(oh * strideH - padH + kernelH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.max(ow * strideW - padW, 0);
        const w1 = Math.min(ow * strideW - padW + kernelW, W);
        let best = -Infinity;
        let at = h0 * W + w0; // PyTorch starts from the window's first element
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) {
            const v = x[xBase + ih * W + iw];
            if (v > best || Number.isNaN(v)) { best = v; at = ih * W + iw; }
          }
        }
        const o = (p * OH + oh) * OW + ow;
        y[o] = best;
        argmax[o] = at;
      }
    }
  }
  return { y, argmax };
}

/** dx: each dy routed to its window's argmax (accumulating where windows overlap). */
export function maxPool2dBackward(
  dy: FloatArray,     // dy: [N, C, OH, OW]
  argmax: Int32Array, // argmax: [N, C, OH, OW], from maxPool2d
  g: Pool2dGeometry,
): FloatArray {       // dx: [N, C, H, W]
  const { N, C, H, W, OH, OW } = g;
  const dx = allocLike(dy, N * C * H * W);
  const acc = new Float64Array(H * W);
  for (let p = 0; p < N * C; p++) {
    acc.fill(0);
    const base = p * OH * OW;
    for (let o = 0; o < OH * OW; o++) acc[argmax[base + o]] += dy[base + o];
    dx.set(acc, p * H * W);
  }
  return dx;
}

/** Per output position along one axis: the window clipped to the input, [lo, hi), and its
 *  length clipped only to the padded input (PyTorch's pool_size factor for count_include_pad). */
function avgAxis(out: number, size: number, kernel: number, stride: number, pad: number):
  { lo: Int32Array; hi: Int32Array; padded: Int32Array } {
  const lo = new Int32Array(out), hi = new Int32Array(out), padded = new Int32Array(out);
  for (let o = 0; o < out; o++) {
    const start = o * stride - pad;
    const end = Math.min(start + kernel, size + pad);
    padded[o] = end - start;
    lo[o] = Math.max(start, 0);
    hi[o] = Math.min(end, size);
  }
  return { lo, hi, padded };
}

/** The divisor of window (oh, ow): the padded window, or its in-bounds part only. */
function divisor(rows: ReturnType<typeof avgAxis>, cols: ReturnType<typeof avgAxis>, oh: number, ow: number,
  countIncludePad: boolean): number {
  return countIncludePad
    ? rows.padded[oh] * cols.padded[ow]
    : (rows.hi[oh] - rows.lo[oh]) * (cols.hi[ow] - cols.lo[ow]);
}

/** y = mean over each window (see divisor). A window of padding only gives 0, as PyTorch. */
export function avgPool2d(
  x: FloatArray, // x: [N, C, H, W]
  g: Pool2dGeometry,
  countIncludePad: boolean,
): FloatArray {  // y: [N, C, OH, OW]
  const { N, C, H, W, OH, OW, kernelH, kernelW, strideH, strideW, padH, padW } = g;
  const rows = avgAxis(OH, H, kernelH, strideH, padH);
  const cols = avgAxis(OW, W, kernelW, strideW, padW);
  const y = allocLike(x, N * C * OH * OW);
  for (let p = 0; p < N * C; p++) {
    const xBase = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = rows.lo[oh], h1 = rows.hi[oh];
      for (let ow = 0; ow < OW; ow++) {
        const w0 = cols.lo[ow], w1 = cols.hi[ow];
        if (h0 >= h1 || w0 >= w1) continue;
        let sum = 0;
        for (let ih = h0; ih < h1; ih++) {
          const row = xBase + ih * W;
          for (let iw = w0; iw < w1; iw++) sum += x[row + iw];
        }
        y[(p * OH + oh) * OW + ow] = sum / divisor(rows, cols, oh, ow, countIncludePad);
      }
    }
  }
  return y;
}

/** dx: each dy / divisor spread over its window. */
export function avgPool2dBackward(
  dy: FloatArray, // dy: [N, C, OH, OW]
  g: Pool2dGeometry,
  countIncludePad: boolean,
): FloatArray {   // dx: [N, C, H, W]
  const { N, C, H, W, OH, OW, kernelH, kernelW, strideH, strideW, padH, padW } = g;
  const rows = avgAxis(OH, H, kernelH, strideH, padH);
  const cols = avgAxis(OW, W, kernelW, strideW, padW);
  const dx = allocLike(dy, N * C * H * W);
  const acc = new Float64Array(H * W);
  for (let p = 0; p < N * C; p++) {
    acc.fill(0);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = rows.lo[oh], h1 = rows.hi[oh];
      for (let ow = 0; ow < OW; ow++) {
        const w0 = cols.lo[ow], w1 = cols.hi[ow];
        if (h0 >= h1 || w0 >= w1) continue;
        const v = dy[(p * OH + oh) * OW + ow] / divisor(rows, cols, oh, ow, countIncludePad);
        for (let ih = h0; ih < h1; ih++) {
          const row = ih * W;
          for (let iw = w0; iw < w1; iw++) acc[row + iw] += v;
        }
      }
    }
    dx.set(acc, p * H * W);
  }
  return dx;
}
