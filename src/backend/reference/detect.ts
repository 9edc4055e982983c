// Reference detection kernels over row-major NCHW: torchvision 0.14's RoIAlign and RoIPool
// (torchvision/csrc/ops/cpu/roi_align_kernel.cpp, roi_pool_kernel.cpp) and PyTorch 1.13's
// upsample_nearest2d / upsample_bilinear2d (aten/src/ATen/native/UpSample.h,
// cpu/UpSampleKernel.cpp, UpSampleBilinear2d.cpp), forward and backward.
// NOTE: sample positions, bin edges and interpolation weights are computed in float32
// (Math.fround at each step, in torch's order), because torch computes them in the input's
// scalar type and a ceil or a truncation of them is discontinuous; the sums are float64.
// Rois are trusted here (finite, batch index in [0, N)): src/detect/ops checked them.

import type { InterpolateGeometry, RoiGeometry } from '../backend.js';
import { type FloatArray, allocLike } from './array.js';

const f = Math.fround;

/** torchvision's per-roi RoIAlign constants (roi_align_kernel.cpp), in float32. */
function roiAlignBox(rois: FloatArray, k: number, g: RoiGeometry) {
  const r = k * 5;
  const scale = f(g.spatialScale);
  const offset = g.aligned ? 0.5 : 0;
  const startW = f(f(rois[r + 1] * scale) - offset);
  const startH = f(f(rois[r + 2] * scale) - offset);
  const endW = f(f(rois[r + 3] * scale) - offset);
  const endH = f(f(rois[r + 4] * scale) - offset);
  let roiW = f(endW - startW);
  let roiH = f(endH - startH);
  if (!g.aligned) { roiW = Math.max(roiW, 1); roiH = Math.max(roiH, 1); } // force malformed rois to 1x1
  const binH = f(roiH / g.OH);
  const binW = f(roiW / g.OW);
  const gridH = g.samplingRatio > 0 ? g.samplingRatio : Math.ceil(f(roiH / g.OH));
  const gridW = g.samplingRatio > 0 ? g.samplingRatio : Math.ceil(f(roiW / g.OW));
  return { batch: Math.trunc(rois[r]), startH, startW, binH, binW, gridH, gridW };
}

/** The sample coordinate of sub-point i of bin p (torch: start + p * bin + (i + .5f) * bin / grid). */
function samplePos(start: number, p: number, bin: number, i: number, grid: number): number {
  return f(f(start + f(p * bin)) + f(f((i + 0.5) * bin) / grid));
}

/** Bilinear corners and weights of (y, x) on an H x W map (torchvision's bilinear_interpolate),
 *  or null when the point lies outside [-1, H] x [-1, W]. */
function corners(H: number, W: number, y: number, x: number):
  { p1: number; p2: number; p3: number; p4: number; w1: number; w2: number; w3: number; w4: number } | null {
  if (y < -1 || y > H || x < -1 || x > W) return null;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  let yLow = Math.trunc(y), xLow = Math.trunc(x), yHigh: number, xHigh: number;
  if (yLow >= H - 1) { yHigh = yLow = H - 1; y = yLow; } else yHigh = yLow + 1;
  if (xLow >= W - 1) { xHigh = xLow = W - 1; x = xLow; } else xHigh = xLow + 1;
  const ly = f(y - yLow), lx = f(x - xLow), hy = f(1 - ly), hx = f(1 - lx);
  return {
    p1: yLow * W + xLow, p2: yLow * W + xHigh, p3: yHigh * W + xLow, p4: yHigh * W + xHigh,
    w1: f(hy * hx), w2: f(hy * lx), w3: f(ly * hx), w4: f(ly * lx),
  };
}

const OUTSIDE = { p1: 0, p2: 0, p3: 0, p4: 0, w1: 0, w2: 0, w3: 0, w4: 0 };

/** y: [K, C, OH, OW], the mean of gridH x gridW bilinear samples per bin. */
export function roiAlign(
  x: FloatArray,    // x: [N, C, H, W]
  rois: FloatArray, // rois: [K, 5]
  g: RoiGeometry,
): FloatArray {
  const { C, H, W, K, OH, OW } = g;
  const y = allocLike(x, K * C * OH * OW);
  for (let k = 0; k < K; k++) {
    const b = roiAlignBox(rois, k, g);
    const count = Math.max(b.gridH * b.gridW, 1);
    const pre: (ReturnType<typeof corners>)[] = [];
    for (let ph = 0; ph < OH; ph++) {
      for (let pw = 0; pw < OW; pw++) {
        for (let iy = 0; iy < b.gridH; iy++) {
          const yy = samplePos(b.startH, ph, b.binH, iy, b.gridH);
          for (let ix = 0; ix < b.gridW; ix++) pre.push(corners(H, W, yy, samplePos(b.startW, pw, b.binW, ix, b.gridW)));
        }
      }
    }
    for (let c = 0; c < C; c++) {
      const xBase = (b.batch * C + c) * H * W;
      let at = 0;
      for (let o = 0; o < OH * OW; o++) {
        let acc = 0;
        for (let s = 0; s < b.gridH * b.gridW; s++) {
          const p = pre[at++] ?? OUTSIDE; // torchvision adds 0 * x[0] for a sample outside the map
          acc += p.w1 * x[xBase + p.p1] + p.w2 * x[xBase + p.p2] + p.w3 * x[xBase + p.p3] + p.w4 * x[xBase + p.p4];
        }
        y[(k * C + c) * OH * OW + o] = acc / count;
      }
    }
  }
  return y;
}

/** dx: [N, C, H, W], each bin's gradient spread over its samples' corners with their weights. */
export function roiAlignBackward(
  dy: FloatArray,   // dy: [K, C, OH, OW]
  rois: FloatArray, // rois: [K, 5]
  g: RoiGeometry,
): FloatArray {
  const { N, C, H, W, K, OH, OW } = g;
  const acc = new Float64Array(N * C * H * W);
  for (let k = 0; k < K; k++) {
    const b = roiAlignBox(rois, k, g);
    const count = b.gridH * b.gridW; // NOTE: torchvision's backward has no max(count, 1); an empty grid adds nothing
    for (let ph = 0; ph < OH; ph++) {
      for (let pw = 0; pw < OW; pw++) {
        for (let iy = 0; iy < b.gridH; iy++) {
          const yy = samplePos(b.startH, ph, b.binH, iy, b.gridH);
          for (let ix = 0; ix < b.gridW; ix++) {
            const p = corners(H, W, yy, samplePos(b.startW, pw, b.binW, ix, b.gridW));
            if (!p) continue;
            for (let c = 0; c < C; c++) {
              const d = dy[((k * C + c) * OH + ph) * OW + pw] / count;
              const base = (b.batch * C + c) * H * W;
              acc[base + p.p1] += d * p.w1;
              acc[base + p.p2] += d * p.w2;
              acc[base + p.p3] += d * p.w3;
              acc[base + p.p4] += d * p.w4;
            }
          }
        }
      }
    }
  }
  const dx = allocLike(dy, acc.length);
  dx.set(acc);
  return dx;
}

/** C's round(): half away from zero (Math.round rounds half up). */
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** y: [K, C, OH, OW] max over each bin; argmax: index into the H * W plane, -1 for an empty bin (y 0). */
export function roiPool(
  x: FloatArray,    // x: [N, C, H, W]
  rois: FloatArray, // rois: [K, 5]
  g: RoiGeometry,
): { y: FloatArray; argmax: Int32Array } {
  const { C, H, W, K, OH, OW } = g;
  const y = allocLike(x, K * C * OH * OW);
  const argmax = new Int32Array(K * C * OH * OW);
  const scale = f(g.spatialScale);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let k = 0; k < K; k++) {
    const r = k * 5;
    const batch = Math.trunc(rois[r]);
    const startW = roundHalfAway(f(rois[r + 1] * scale)), startH = roundHalfAway(f(rois[r + 2] * scale));
    const endW = roundHalfAway(f(rois[r + 3] * scale)), endH = roundHalfAway(f(rois[r + 4] * scale));
    const binH = f(Math.max(endH - startH + 1, 1) / OH); // malformed rois forced to 1x1
    const binW = f(Math.max(endW - startW + 1, 1) / OW);
    for (let ph = 0; ph < OH; ph++) {
      const h0 = clip(Math.floor(f(ph * binH)) + startH, H), h1 = clip(Math.ceil(f((ph + 1) * binH)) + startH, H);
      for (let pw = 0; pw < OW; pw++) {
        const w0 = clip(Math.floor(f(pw * binW)) + startW, W), w1 = clip(Math.ceil(f((pw + 1) * binW)) + startW, W);
        const empty = h1 <= h0 || w1 <= w0;
        for (let c = 0; c < C; c++) {
          const xBase = (batch * C + c) * H * W;
          let best = empty ? 0 : -3.4028234663852886e38; // -FLT_MAX
          let at = -1;
          for (let h = h0; h < h1; h++) {
            for (let w = w0; w < w1; w++) {
              const v = x[xBase + h * W + w];
              if (v > best) { best = v; at = h * W + w; }
            }
          }
          const o = ((k * C + c) * OH + ph) * OW + pw;
          y[o] = best;
          argmax[o] = at;
        }
      }
    }
  }
  return { y, argmax };
}

/** dx: [N, C, H, W], each dy added at its bin's argmax in its roi's image. */
export function roiPoolBackward(
  dy: FloatArray,     // dy: [K, C, OH, OW]
  rois: FloatArray,   // rois: [K, 5]
  argmax: Int32Array, // argmax: [K, C, OH, OW]
  g: RoiGeometry,
): FloatArray {
  const { N, C, H, W, K, OH, OW } = g;
  const acc = new Float64Array(N * C * H * W);
  for (let k = 0; k < K; k++) {
    const batch = Math.trunc(rois[k * 5]);
    for (let c = 0; c < C; c++) {
      const base = (batch * C + c) * H * W;
      for (let o = 0; o < OH * OW; o++) {
        const i = (k * C + c) * OH * OW + o;
        if (argmax[i] >= 0) acc[base + argmax[i]] += dy[i];
      }
    }
  }
  const dx = allocLike(dy, acc.length);
  dx.set(acc);
  return dx;
}

/** ATen's compute_scales_value: 1 / scale when the user's scale reached the kernel, else in / out. */
function scalesValue(scale: number | null, inSize: number, outSize: number): number {
  return scale !== null && scale > 0 ? f(1 / scale) : f(inSize / outSize);
}

/** upsample_nearest2d's source index of each output index (UpSample.h nearest_idx). */
export function nearestIndices(inSize: number, outSize: number, scale: number | null): Int32Array {
  const idx = new Int32Array(outSize);
  const s = scalesValue(scale, inSize, outSize);
  for (let o = 0; o < outSize; o++) {
    if (outSize === inSize) idx[o] = o;
    else if (outSize === 2 * inSize) idx[o] = o >> 1;
    else idx[o] = Math.min(Math.floor(f(o * s)), inSize - 1);
  }
  return idx;
}

/** upsample_bilinear2d's two source indices and weights per output index along one axis
 *  (UpSampleKernel.cpp compute_source_index_and_lambda, UpSample.h area_pixel_*). */
export function linearIndices(inSize: number, outSize: number, alignCorners: boolean, scale: number | null):
  { i0: Int32Array; i1: Int32Array; l0: Float32Array; l1: Float32Array } {
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize);
  const l0 = new Float32Array(outSize), l1 = new Float32Array(outSize);
  const ratio = alignCorners ? (outSize > 1 ? f((inSize - 1) / (outSize - 1)) : 0) : scalesValue(scale, inSize, outSize);
  for (let o = 0; o < outSize; o++) {
    if (outSize === inSize) { i0[o] = i1[o] = o; l0[o] = 1; l1[o] = 0; continue; }
    // NOTE: ratio * (o + 0.5) - 0.5 is evaluated in double (o + 0.5 is a double) and then stored as float
    let real = alignCorners ? f(ratio * o) : f(ratio * (o + 0.5) - 0.5);
    if (!alignCorners && real < 0) real = 0;
    i0[o] = Math.trunc(real);
    i1[o] = i0[o] + (i0[o] < inSize - 1 ? 1 : 0);
    l1[o] = Math.min(Math.max(f(real - i0[o]), 0), 1);
    l0[o] = f(1 - l1[o]);
  }
  return { i0, i1, l0, l1 };
}

/** y: [N, C, OH, OW], nearest or bilinear resampling of each map. */
export function interpolate(
  x: FloatArray, // x: [N, C, H, W]
  g: InterpolateGeometry,
): FloatArray {
  const { N, C, H, W, OH, OW } = g;
  const y = allocLike(x, N * C * OH * OW);
  if (g.mode === 'nearest') {
    const rows = nearestIndices(H, OH, g.scaleH), cols = nearestIndices(W, OW, g.scaleW);
    for (let p = 0; p < N * C; p++) {
      for (let oh = 0; oh < OH; oh++) {
        const src = p * H * W + rows[oh] * W, dst = (p * OH + oh) * OW;
        for (let ow = 0; ow < OW; ow++) y[dst + ow] = x[src + cols[ow]];
      }
    }
    return y;
  }
  const r = linearIndices(H, OH, g.alignCorners, g.scaleH), c = linearIndices(W, OW, g.alignCorners, g.scaleW);
  for (let p = 0; p < N * C; p++) {
    const base = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const row0 = base + r.i0[oh] * W, row1 = base + r.i1[oh] * W;
      for (let ow = 0; ow < OW; ow++) {
        const a = x[row0 + c.i0[ow]] * c.l0[ow] + x[row0 + c.i1[ow]] * c.l1[ow];
        const b = x[row1 + c.i0[ow]] * c.l0[ow] + x[row1 + c.i1[ow]] * c.l1[ow];
        y[(p * OH + oh) * OW + ow] = a * r.l0[oh] + b * r.l1[oh];
      }
    }
  }
  return y;
}

/** dx: [N, C, H, W], each dy sent back to the inputs it was read from, with the same weights. */
export function interpolateBackward(
  dy: FloatArray, // dy: [N, C, OH, OW]
  g: InterpolateGeometry,
): FloatArray {
  const { N, C, H, W, OH, OW } = g;
  const acc = new Float64Array(N * C * H * W);
  if (g.mode === 'nearest') {
    const rows = nearestIndices(H, OH, g.scaleH), cols = nearestIndices(W, OW, g.scaleW);
    for (let p = 0; p < N * C; p++) {
      for (let oh = 0; oh < OH; oh++) {
        const dst = p * H * W + rows[oh] * W, src = (p * OH + oh) * OW;
        for (let ow = 0; ow < OW; ow++) acc[dst + cols[ow]] += dy[src + ow];
      }
    }
  } else {
    const r = linearIndices(H, OH, g.alignCorners, g.scaleH), c = linearIndices(W, OW, g.alignCorners, g.scaleW);
    for (let p = 0; p < N * C; p++) {
      const base = p * H * W;
      for (let oh = 0; oh < OH; oh++) {
        const row0 = base + r.i0[oh] * W, row1 = base + r.i1[oh] * W;
        for (let ow = 0; ow < OW; ow++) {
          const d = dy[(p * OH + oh) * OW + ow];
          const d0 = d * r.l0[oh], d1 = d * r.l1[oh];
          acc[row0 + c.i0[ow]] += d0 * c.l0[ow];
          acc[row0 + c.i1[ow]] += d0 * c.l1[ow];
          acc[row1 + c.i0[ow]] += d1 * c.l0[ow];
          acc[row1 + c.i1[ow]] += d1 * c.l1[ow];
        }
      }
    }
  }
  const dx = allocLike(dy, acc.length);
  dx.set(acc);
  return dx;
}
