// GeneralizedRCNNTransform (torchvision models/detection/transform.py, v0.14), inference
// side: normalise each image ((x - mean) / std in float32), resize it so its short side is
// minSize unless the long side would pass maxSize (scale = min(minSize / short,
// maxSize / long) in float32; F.interpolate bilinear, align_corners=False, with that
// scale_factor and recompute_scale_factor=True: output = floor(size * scale)), pad the batch
// with zeros to a multiple of sizeDivisible (32), and map boxes back to the original size
// afterwards; training targets are scaled the other way (resize_boxes). Not here: fixed_size,
// masks and keypoints.

import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import type { FloatImage } from '../data/dataset.js';
import { InvalidArgumentError } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { interpolate, interpolateGeometry, type InterpolateOptions } from './ops/interpolate.js';

const f = Math.fround;

/** @example const o: TransformOptions = { minSize: 800, maxSize: 1333 }; */
export interface TransformOptions {
  /** Short side after resizing (torchvision's min_size; default 800). */
  minSize?: number;
  /** Cap of the long side (default 1333). */
  maxSize?: number;
  /** Per-channel mean and std (default ImageNet's, as torchvision). */
  imageMean?: readonly number[];
  imageStd?: readonly number[];
  /** The padded batch's height and width are multiples of this (default 32). */
  sizeDivisible?: number;
}

/** @example const { images, imageSizes }: ImageList = new GeneralizedRCNNTransform().forward([toFloatImage(img)]); */
export interface ImageList {
  /** The padded batch [N, 3, H, W]. */
  images: Tensor;
  /** Each image's [height, width] after resizing, before padding. */
  imageSizes: [number, number][];
  /** Each image's [height, width] as given. */
  originalSizes: [number, number][];
}

/**
 * @example
 * const t = new GeneralizedRCNNTransform({ minSize: 800, maxSize: 1333 });
 * const list = t.forward([toFloatImage(img)]);  // planar RGB in [0, 1]
 */
export class GeneralizedRCNNTransform {
  readonly minSize: number;
  readonly maxSize: number;
  readonly imageMean: number[];
  readonly imageStd: number[];
  readonly sizeDivisible: number;

  constructor(opts: TransformOptions = {}) {
    this.minSize = opts.minSize ?? 800;
    this.maxSize = opts.maxSize ?? 1333;
    this.imageMean = [...(opts.imageMean ?? [0.485, 0.456, 0.406])];
    this.imageStd = [...(opts.imageStd ?? [0.229, 0.224, 0.225])];
    this.sizeDivisible = opts.sizeDivisible ?? 32;
    for (const [k, v] of [['minSize', this.minSize], ['maxSize', this.maxSize], ['sizeDivisible', this.sizeDivisible]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`GeneralizedRCNNTransform: '${k}' must be an integer >= 1, got ${String(v)}`);
    }
    if (this.imageMean.length !== this.imageStd.length || !this.imageStd.every((s) => s > 0)) {
      throw new InvalidArgumentError(`GeneralizedRCNNTransform: imageMean and imageStd must have one value per channel and std > 0, got ${JSON.stringify(this.imageMean)} / ${JSON.stringify(this.imageStd)}`);
    }
  }

  /** The resize factor of an image of [h, w] (float32, as torch computes it). */
  scale(h: number, w: number): number {
    return Math.min(f(this.minSize / f(Math.min(h, w))), f(this.maxSize / f(Math.max(h, w))));
  }

  /** Normalises, resizes and batches float images ([C, H, W] in [0, 1]). */
  forward(imgs: readonly FloatImage[], backend: Backend = getBackend()): ImageList {
    if (imgs.length === 0) throw new InvalidArgumentError('GeneralizedRCNNTransform: no images');
    const C = this.imageMean.length;
    const resized: { data: Float32Array; h: number; w: number }[] = [];
    const originalSizes: [number, number][] = [];
    noGrad(() => {
      imgs.forEach((img, n) => {
        if (img.channels !== C || img.data.length !== C * img.height * img.width) {
          throw new InvalidArgumentError(`GeneralizedRCNNTransform: image ${n} must be planar [${C}, H, W] float32, got ${img.channels} channels, ${img.height}x${img.width}, ${img.data.length} values`);
        }
        const x = normalize(img.data, img.height * img.width, this.imageMean, this.imageStd);
        const resize: InterpolateOptions = { scaleFactor: this.scale(img.height, img.width), mode: 'bilinear', alignCorners: false, recomputeScaleFactor: true };
        const g = interpolateGeometry([1, C, img.height, img.width], resize);
        if (g.OH === img.height && g.OW === img.width) {
          // The size stays (an image already at min/max size, as in training at the data's
          // size): with the scale recomputed as 1 every output pixel is its input pixel times
          // 1 plus a neighbour times 0, so the resize is the identity. Skip its round trip.
          resized.push({ data: x, h: img.height, w: img.width });
        } else {
          const t = tensor(x, [1, C, img.height, img.width], { backend });
          const y = interpolate(t, resize);
          resized.push({ data: y.toArray() as Float32Array, h: y.shape[2], w: y.shape[3] });
          t.dispose();
          y.dispose();
        }
        originalSizes.push([img.height, img.width]);
      });
    });
    const d = this.sizeDivisible;
    const H = Math.ceil(Math.max(...resized.map((r) => r.h)) / d) * d;
    const W = Math.ceil(Math.max(...resized.map((r) => r.w)) / d) * d;
    const batch = new Float32Array(imgs.length * C * H * W);
    resized.forEach((r, n) => {
      for (let c = 0; c < C; c++) {
        for (let y = 0; y < r.h; y++) {
          batch.set(r.data.subarray((c * r.h + y) * r.w, (c * r.h + y + 1) * r.w), ((n * C + c) * H + y) * W);
        }
      }
    });
    return { images: tensor(batch, [imgs.length, C, H, W], { backend }), imageSizes: resized.map((r) => [r.h, r.w]), originalSizes };
  }

  /** Boxes of a resized image mapped back to its original size (resize_boxes), in place. */
  postprocessBoxes(boxes: Float32Array, imageSize: readonly [number, number], originalSize: readonly [number, number]): Float32Array {
    return scaleBoxes(boxes, imageSize, originalSize);
  }

  /** A copy of `boxes` [K, 4] of an image of `originalSize` scaled to its resized
   *  `imageSize` (resize_boxes: the targets of training). */
  resizeBoxes(boxes: Float32Array, originalSize: readonly [number, number], imageSize: readonly [number, number]): Float32Array {
    return scaleBoxes(boxes.slice(), originalSize, imageSize);
  }
}

/** Scales boxes in place from an image of size `from` to one of size `to` ([h, w]), with
 *  torchvision's float32 ratios. */
function scaleBoxes(boxes: Float32Array, from: readonly [number, number], to: readonly [number, number]): Float32Array {
  const rh = f(to[0] / from[0]), rw = f(to[1] / from[1]);
  for (let i = 0; i < boxes.length; i += 4) {
    boxes[i] = f(boxes[i] * rw);
    boxes[i + 1] = f(boxes[i + 1] * rh);
    boxes[i + 2] = f(boxes[i + 2] * rw);
    boxes[i + 3] = f(boxes[i + 3] * rh);
  }
  return boxes;
}

/** (x - mean) / std per channel of a planar image, each step rounded to float32 as torch computes it. */
function normalize(data: Float32Array, plane: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const x = new Float32Array(data.length);
  for (let c = 0; c < mean.length; c++) {
    const m = f(mean[c]), s = f(std[c]);
    for (let i = c * plane; i < (c + 1) * plane; i++) x[i] = f(f(data[i] - m) / s);
  }
  return x;
}
