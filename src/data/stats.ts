// Statistics of a training set for normalisation, in ToTensor units (x / 255): per-channel
// mean and (population) std, as torchvision recipes quote them, and the per-pixel mean
// image the paper subtracts (He et al. 2015, sec. 3.4 and 4.2). Sums are exact (integers in
// float64) so the result does not depend on the order of the images.

import { InvalidArgumentError } from '../errors.js';
import type { ArrayDataset } from './dataset.js';

/** @example const { mean, std, meanImage }: DatasetStats = computeStats(train); */
export interface DatasetStats {
  /** Per channel, in [0, 1]. */
  mean: number[];
  /** Per channel population std, in [0, 1] units. */
  std: number[];
  /** Per pixel mean, [C, H, W] float32, in [0, 1]. */
  meanImage: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/**
 * Mean and std per channel and the mean image of an array dataset (use the training split).
 * @example
 *   const stats = computeStats(train);
 *   const t = [randomCrop(28, { padding: 4 }), randomHorizontalFlip(), normalize(stats.mean, stats.std)];
 */
export function computeStats(ds: ArrayDataset): DatasetStats {
  const { n, channels: C, height: H, width: W, images } = ds;
  if (n < 1) throw new InvalidArgumentError('computeStats: the dataset is empty');
  const size = C * H * W;
  const plane = H * W;
  const pixelSums = new Float64Array(size);
  const sums = new Float64Array(C);
  const squares = new Float64Array(C);
  for (let i = 0; i < n; i++) {
    const base = i * size;
    for (let c = 0; c < C; c++) {
      let s = 0;
      let q = 0;
      const o = c * plane;
      for (let p = 0; p < plane; p++) {
        const v = images[base + o + p];
        pixelSums[o + p] += v;
        s += v;
        q += v * v;
      }
      sums[c] += s;
      squares[c] += q;
    }
  }
  const count = n * plane;
  // uint8 pixels are in 0..255; float32 ones already in ToTensor units.
  const unit = images instanceof Float32Array ? 1 : 255;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < C; c++) {
    const m = sums[c] / count;
    mean.push(m / unit);
    std.push(Math.sqrt(Math.max(0, squares[c] / count - m * m)) / unit);
  }
  const meanImage = new Float32Array(size);
  for (let i = 0; i < size; i++) meanImage[i] = pixelSums[i] / n / unit;
  return { mean, std, meanImage, channels: C, height: H, width: W };
}
