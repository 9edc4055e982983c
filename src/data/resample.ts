// PIL's antialiased bilinear resize, ported from Pillow's src/libImaging/Resample.c
// (ImagingResample with the BILINEAR filter, 8 bits per channel) so that our resize equals
// torchvision's on PIL images bit for bit: separable, horizontal pass then vertical pass,
// filter support scaled by the downscale factor, coefficients normalised to sum 1 then
// rounded to fixed point with PRECISION_BITS = 32 - 8 - 2 = 22, accumulators start at
// 1 << 21 (round half up), results clipped to 0..255.
// NOTE: sharp's resize is not this (5-97 levels off); never resize with sharp.

import { InvalidArgumentError } from '../errors.js';
import type { ImageRecord } from './dataset.js';

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Resample.c bilinear_filter: the triangle, support 1. */
function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

interface Coeffs {
  ksize: number;
  /** Per output pixel: first input index and how many inputs. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output pixel. */
  kk: Int32Array;
}

/** Resample.c precompute_coeffs + normalize_coeffs_8bpc, for the box [0, inSize). */
function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bilinearFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      let v = 0;
      if (x < xmax) v = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** clip8: the accumulator's top bits, clamped to a byte. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes a uint8 CHW image to outHeight x outWidth as PIL's `Image.resize(size,
 * Image.BILINEAR)` does (torchvision's `Resize` on PIL images). Returns a new image.
 * @example const small = resizeBilinear(img, 256, 341);
 */
export function resizeBilinear(img: ImageRecord, outHeight: number, outWidth: number): ImageRecord {
  const { channels: C, height: H, width: W, data } = img;
  if (!Number.isInteger(outHeight) || !Number.isInteger(outWidth) || outHeight < 1 || outWidth < 1) {
    throw new InvalidArgumentError(`resizeBilinear: output size must be positive integers, got ${outHeight}x${outWidth}`);
  }
  if (outHeight === H && outWidth === W) {
    return { data: data.slice(), channels: C, height: H, width: W };
  }
  const needHorizontal = outWidth !== W;
  const needVertical = outHeight !== H;
  const vert = precomputeCoeffs(H, outHeight);
  // Rows of the source the vertical pass reads (Resample.c: ybox_first, ybox_last).
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[outHeight * 2 - 2] + vert.bounds[outHeight * 2 - 1];

  let src = data;
  let srcH = H;
  let srcW = W;
  let rowShift = 0;
  if (needHorizontal) {
    const horiz = precomputeCoeffs(W, outWidth);
    const rows = yLast - yFirst;
    const tmp = new Uint8Array(C * rows * outWidth);
    const { ksize, bounds, kk } = horiz;
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < rows; y++) {
        const inRow = c * H * W + (y + yFirst) * W;
        const outRow = c * rows * outWidth + y * outWidth;
        for (let xx = 0; xx < outWidth; xx++) {
          const xmin = bounds[xx * 2];
          const xmax = bounds[xx * 2 + 1];
          const kBase = xx * ksize;
          let ss = HALF;
          for (let x = 0; x < xmax; x++) ss += data[inRow + xmin + x] * kk[kBase + x];
          tmp[outRow + xx] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcH = rows;
    srcW = outWidth;
    rowShift = yFirst;
  }
  if (!needVertical) {
    return { data: src === data ? data.slice() : src, channels: C, height: srcH, width: srcW };
  }
  const out = new Uint8Array(C * outHeight * srcW);
  const { ksize, bounds, kk } = vert;
  for (let c = 0; c < C; c++) {
    const plane = c * srcH * srcW;
    for (let yy = 0; yy < outHeight; yy++) {
      const ymin = bounds[yy * 2] - rowShift;
      const ymax = bounds[yy * 2 + 1];
      const kBase = yy * ksize;
      const outRow = c * outHeight * srcW + yy * srcW;
      for (let xx = 0; xx < srcW; xx++) {
        let ss = HALF;
        for (let y = 0; y < ymax; y++) ss += src[plane + (y + ymin) * srcW + xx] * kk[kBase + y];
        out[outRow + xx] = clip8(ss);
      }
    }
  }
  return { data: out, channels: C, height: outHeight, width: srcW };
}
