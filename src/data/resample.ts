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

/**
 * Resample.c precompute_coeffs + normalize_coeffs_8bpc, for the box [0, inSize), for the
 * output pixels [outStart, outStart + outCount) only: a pixel's weights depend on its own
 * index and the two sizes alone, so a window of the output costs only its own size.
 */
function precomputeCoeffs(inSize: number, outSize: number, outStart = 0, outCount = outSize): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outCount * 2);
  const kk = new Int32Array(outCount * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let i = 0; i < outCount; i++) {
    const xx = outStart + i;
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
      kk[i * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[i * 2] = xmin;
    bounds[i * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** clip8: the accumulator's top bits, clamped to a byte. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function checkSize(outHeight: number, outWidth: number, op: string): void {
  if (!Number.isInteger(outHeight) || !Number.isInteger(outWidth) || outHeight < 1 || outWidth < 1) {
    throw new InvalidArgumentError(`${op}: output size must be positive integers, got ${outHeight}x${outWidth}`);
  }
}

/**
 * Resizes a uint8 CHW image to outHeight x outWidth as PIL's `Image.resize(size,
 * Image.BILINEAR)` does (torchvision's `Resize` on PIL images). Returns a new image.
 * @example const small = resizeBilinear(img, 256, 341);
 */
export function resizeBilinear(img: ImageRecord, outHeight: number, outWidth: number): ImageRecord {
  checkSize(outHeight, outWidth, 'resizeBilinear');
  return resizeBilinearWindow(img, outHeight, outWidth, 0, 0, outHeight, outWidth);
}

/**
 * The cropHeight x cropWidth window at (top, left) of `img` resized to outHeight x outWidth,
 * pixels outside the resized image 0: bit for bit `cropImage(resizeBilinear(img, outHeight,
 * outWidth), top, left, cropHeight, cropWidth)`, but only the window's pixels (and the
 * source rows they read) are ever computed, so Resize(256) + CenterCrop(224) of a 100000x1
 * image costs a 224x224 image, not a 25600000x256 one.
 * @example const x = resizeBilinearWindow(img, 256, 341, 16, 58, 224, 224);
 */
export function resizeBilinearWindow(img: ImageRecord, outHeight: number, outWidth: number,
  top: number, left: number, cropHeight: number, cropWidth: number): ImageRecord {
  checkSize(outHeight, outWidth, 'resizeBilinearWindow');
  checkSize(cropHeight, cropWidth, 'resizeBilinearWindow (window)');
  const { channels: C, height: H, width: W, data } = img;
  const out = new Uint8Array(C * cropHeight * cropWidth);
  const result: ImageRecord = { data: out, channels: C, height: cropHeight, width: cropWidth };
  // The part of the window inside the resized image: output rows [y0, y1), columns [x0, x1).
  const y0 = Math.max(0, top);
  const y1 = Math.min(outHeight, top + cropHeight);
  const x0 = Math.max(0, left);
  const x1 = Math.min(outWidth, left + cropWidth);
  if (y1 <= y0 || x1 <= x0) return result;
  const rowsOut = y1 - y0;
  const colsOut = x1 - x0;
  const needHorizontal = outWidth !== W;
  const needVertical = outHeight !== H;
  const vert = needVertical ? precomputeCoeffs(H, outHeight, y0, rowsOut) : null;
  // Rows of the source the vertical pass reads (Resample.c: ybox_first, ybox_last).
  const yFirst = vert === null ? y0 : vert.bounds[0];
  const yLast = vert === null ? y1 : vert.bounds[rowsOut * 2 - 2] + vert.bounds[rowsOut * 2 - 1];
  const rows = yLast - yFirst;

  // Horizontal pass (or a plain copy of the columns): tmp is [C, rows, colsOut].
  const tmp = new Uint8Array(C * rows * colsOut);
  if (needHorizontal) {
    const { ksize, bounds, kk } = precomputeCoeffs(W, outWidth, x0, colsOut);
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < rows; y++) {
        const inRow = c * H * W + (y + yFirst) * W;
        const outRow = c * rows * colsOut + y * colsOut;
        for (let xx = 0; xx < colsOut; xx++) {
          const xmin = bounds[xx * 2];
          const xmax = bounds[xx * 2 + 1];
          const kBase = xx * ksize;
          let ss = HALF;
          for (let x = 0; x < xmax; x++) ss += data[inRow + xmin + x] * kk[kBase + x];
          tmp[outRow + xx] = clip8(ss);
        }
      }
    }
  } else {
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < rows; y++) {
        const inRow = c * H * W + (y + yFirst) * W;
        tmp.set(data.subarray(inRow + x0, inRow + x1), c * rows * colsOut + y * colsOut);
      }
    }
  }

  // Vertical pass (or a copy), written into the window at (y0 - top, x0 - left).
  const dy = y0 - top;
  const dx = x0 - left;
  for (let c = 0; c < C; c++) {
    const plane = c * rows * colsOut;
    for (let yy = 0; yy < rowsOut; yy++) {
      const outRow = c * cropHeight * cropWidth + (yy + dy) * cropWidth + dx;
      if (vert === null) {
        out.set(tmp.subarray(plane + yy * colsOut, plane + (yy + 1) * colsOut), outRow);
        continue;
      }
      const { ksize, bounds, kk } = vert;
      const ymin = bounds[yy * 2] - yFirst;
      const ymax = bounds[yy * 2 + 1];
      const kBase = yy * ksize;
      for (let xx = 0; xx < colsOut; xx++) {
        let ss = HALF;
        for (let y = 0; y < ymax; y++) ss += tmp[plane + (y + ymin) * colsOut + xx] * kk[kBase + y];
        out[outRow + xx] = clip8(ss);
      }
    }
  }
  return result;
}
