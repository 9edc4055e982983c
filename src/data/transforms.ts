// Image transforms as torchvision defines them, on planar CHW images: geometric ones on
// uint8 (or float) pixels, then ToTensor (x / 255 in float32) implicitly at the first float
// op or at the end, then normalisation and random erasing on float32. A transform is plain
// data (a `kind` and its options) so it crosses to worker threads; `applyTransforms` runs a
// list with one seeded Random per sample. Output sizes follow torchvision exactly
// (REFERENCE.md section 2): Resize(int) truncates the long side, CenterCrop rounds half to
// even, RandomResizedCrop and RandomErasing draw their boxes as torchvision's get_params.

import { DataError, InvalidArgumentError, ShapeError } from '../errors.js';
import type { FloatImage, ImageRecord } from './dataset.js';
import type { Random } from './random.js';
import { resizeBilinear, resizeBilinearWindow } from './resample.js';

/**
 * The most pixels (H * W) any transform materialises by default: 64 megapixels, as the
 * decoder's limitInputPixels. Resize + CenterCrop computes only the crop, so this bounds
 * a Resize whose full output is kept, and the output sizes of the crops.
 */
export const DEFAULT_MAX_TRANSFORM_PIXELS = 64 * 1024 * 1024;

/**
 * [height, width], or one number for a square.
 * @example const s: Size = [224, 192];  // or one number: the shorter side / a square
 */
export type Size = number | [number, number];

/** @example const t: Transform[] = [randomCrop(28, { padding: 4 }), randomHorizontalFlip(), normalize([0.286], [0.353])]; */
export type Transform =
  | { kind: 'randomCrop'; size: [number, number]; padding: number }
  | { kind: 'randomHorizontalFlip'; p: number }
  | { kind: 'randomResizedCrop'; size: [number, number]; scale: [number, number]; ratio: [number, number] }
  | { kind: 'resize'; size: Size }
  | { kind: 'centerCrop'; size: [number, number] }
  | { kind: 'normalize'; mean: number[]; std: number[] }
  | { kind: 'subtractMeanImage'; mean: Float32Array; channels: number; height: number; width: number }
  | { kind: 'randomErasing'; p: number; scale: [number, number]; ratio: [number, number]; value: number }
  | { kind: 'toChannels'; channels: 1 | 3 };

type AnyImage = ImageRecord | FloatImage;

function pair(size: Size, name: string): [number, number] {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new InvalidArgumentError(`${name}: 'size' must be a positive integer or [height, width], got ${JSON.stringify(size)}`);
  }
  return [h, w];
}

function range(r: [number, number], name: string, what: string): [number, number] {
  if (!Array.isArray(r) || r.length !== 2 || !(r[0] > 0) || !(r[1] >= r[0])) {
    throw new InvalidArgumentError(`${name}: '${what}' must be [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(r)}`);
  }
  return [r[0], r[1]];
}

function probability(p: number, name: string): number {
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError(`${name}: 'p' must be in [0, 1], got ${p}`);
  return p;
}

/**
 * torchvision RandomCrop(size, padding): zero-pad every side by `padding`, then crop a
 * uniformly placed size box.
 * @example randomCrop(32, { padding: 4 })  // the CIFAR recipe (He et al. 2015, sec. 4.2)
 */
export function randomCrop(size: Size, options: { padding?: number } = {}): Transform {
  const padding = options.padding ?? 0;
  if (!Number.isInteger(padding) || padding < 0) throw new InvalidArgumentError(`randomCrop: 'padding' must be a non-negative integer, got ${padding}`);
  return { kind: 'randomCrop', size: pair(size, 'randomCrop'), padding };
}

/**
 * torchvision RandomHorizontalFlip(p = 0.5).
 * @example const t = randomHorizontalFlip(0.5);
 */
export function randomHorizontalFlip(p = 0.5): Transform {
  return { kind: 'randomHorizontalFlip', p: probability(p, 'randomHorizontalFlip') };
}

/**
 * torchvision RandomResizedCrop(size, scale = (0.08, 1), ratio = (3/4, 4/3)), PIL bilinear.
 * @example const t = randomResizedCrop(224, { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
 */
export function randomResizedCrop(size: Size, options: { scale?: [number, number]; ratio?: [number, number] } = {}): Transform {
  return {
    kind: 'randomResizedCrop', size: pair(size, 'randomResizedCrop'),
    scale: range(options.scale ?? [0.08, 1.0], 'randomResizedCrop', 'scale'),
    ratio: range(options.ratio ?? [3 / 4, 4 / 3], 'randomResizedCrop', 'ratio'),
  };
}

/**
 * torchvision Resize(size): a number sets the short side (long side truncated); [h, w] is exact.
 * @example const t = resize(256);  // shorter side to 256, PIL's antialiased bilinear
 */
export function resize(size: Size): Transform {
  pair(size, 'resize'); // validates
  return { kind: 'resize', size: typeof size === 'number' ? size : [size[0], size[1]] };
}

/**
 * torchvision CenterCrop(size): offsets round half to even; zero-pads when the image is smaller.
 * @example const t = centerCrop(224);
 */
export function centerCrop(size: Size): Transform {
  return { kind: 'centerCrop', size: pair(size, 'centerCrop') };
}

/**
 * torchvision Normalize(mean, std) after ToTensor: (x / 255 - mean[c]) / std[c].
 * @example const t = normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
 */
export function normalize(mean: number[], std: number[]): Transform {
  if (!Array.isArray(mean) || !Array.isArray(std) || mean.length === 0 || mean.length !== std.length) {
    throw new InvalidArgumentError(`normalize: 'mean' and 'std' must be arrays of the same length (one per channel), got ${mean?.length} and ${std?.length}`);
  }
  if (std.some((s) => !(s > 0))) throw new InvalidArgumentError(`normalize: every 'std' must be > 0, got [${std.join(', ')}]`);
  return { kind: 'normalize', mean: [...mean], std: [...std] };
}

/**
 * Subtracts a per-pixel mean image (in x / 255 units): the paper's "per-pixel mean
 * subtracted" (He et al. 2015, sec. 3.4 and 4.2). Put it before randomCrop so that the
 * zero padding equals the mean. `stats` comes from computeStats on the training set.
 * @example const t = subtractMeanImage(computeStats(train));
 */
export function subtractMeanImage(stats: { meanImage: Float32Array; channels: number; height: number; width: number }): Transform {
  const { meanImage, channels, height, width } = stats;
  if (meanImage.length !== channels * height * width) {
    throw new ShapeError(`subtractMeanImage: mean image has ${meanImage.length} values, expected C*H*W = ${channels}*${height}*${width}`);
  }
  return { kind: 'subtractMeanImage', mean: meanImage, channels, height, width };
}

/**
 * torchvision RandomErasing(p = 0.5, scale = (0.02, 0.33), ratio = (0.3, 3.3), value = 0), on float32.
 * @example const t = randomErasing({ p: 0.5, value: 0 });  // after normalize
 */
export function randomErasing(options: { p?: number; scale?: [number, number]; ratio?: [number, number]; value?: number } = {}): Transform {
  const value = options.value ?? 0;
  if (!Number.isFinite(value)) throw new InvalidArgumentError(`randomErasing: 'value' must be a finite number, got ${value}`);
  return {
    kind: 'randomErasing', p: probability(options.p ?? 0.5, 'randomErasing'),
    scale: range(options.scale ?? [0.02, 0.33], 'randomErasing', 'scale'),
    ratio: range(options.ratio ?? [0.3, 3.3], 'randomErasing', 'ratio'), value,
  };
}

/**
 * Python's round(): halves go to the even neighbour (round(58.5) == 58).
 * @example roundHalfEven(2.5)  // 2
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's Resize output size for an image of h x w (REFERENCE.md section 2).
 * @example resizeOutputSize(480, 640, 256)  // [256, 341]
 */
export function resizeOutputSize(height: number, width: number, size: Size): [number, number] {
  if (typeof size !== 'number') return [size[0], size[1]];
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [newLong, size] : [size, newLong];
}

/**
 * torchvision CenterCrop offsets (top, left) for a crop of ch x cw from h x w (may be negative: padding).
 * @example centerCropOffsets(256, 341, 224, 224)  // [16, 58]
 */
export function centerCropOffsets(height: number, width: number, cropHeight: number, cropWidth: number): [number, number] {
  if (cropHeight > height || cropWidth > width) {
    // torchvision pads by ((cw - w) // 2, (ch - h) // 2, ...) then crops at round(0)=0.
    const padTop = cropHeight > height ? Math.floor((cropHeight - height) / 2) : 0;
    const padLeft = cropWidth > width ? Math.floor((cropWidth - width) / 2) : 0;
    const ph = cropHeight > height ? cropHeight : height;
    const pw = cropWidth > width ? cropWidth : width;
    return [roundHalfEven((ph - cropHeight) / 2) - padTop, roundHalfEven((pw - cropWidth) / 2) - padLeft];
  }
  return [roundHalfEven((height - cropHeight) / 2), roundHalfEven((width - cropWidth) / 2)];
}

/**
 * torchvision RandomResizedCrop.get_params: [top, left, height, width] of the crop box.
 * @example const [top, left, h, w] = randomResizedCropBox(480, 640, [0.08, 1], [3 / 4, 4 / 3], new Random(1));
 */
export function randomResizedCropBox(height: number, width: number, scale: [number, number], ratio: [number, number], rng: Random): [number, number, number, number] {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return [rng.int(height - h + 1), rng.int(width - w + 1), h, w];
    }
  }
  // Fallback to a central crop.
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
}

/**
 * torchvision RandomErasing.get_params: [top, left, height, width], or null for no erasing.
 * @example const box = randomErasingBox(32, 32, [0.02, 0.33], [0.3, 3.3], new Random(1));  // null: nothing erased
 */
export function randomErasingBox(height: number, width: number, scale: [number, number], ratio: [number, number], rng: Random): [number, number, number, number] | null {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const eraseArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const h = roundHalfEven(Math.sqrt(eraseArea * aspect));
    const w = roundHalfEven(Math.sqrt(eraseArea / aspect));
    if (!(h < height && w < width)) continue;
    return [rng.int(height - h + 1), rng.int(width - w + 1), h, w];
  }
  return null;
}

/**
 * Crops the box at (top, left) of size h x w; pixels outside the image are 0 (padding).
 * Works on uint8 and float images alike; always returns a new image.
 * @example const patch = cropImage(img, 4, 4, 24, 24);
 */
export function cropImage<T extends AnyImage>(img: T, top: number, left: number, h: number, w: number): T {
  const { channels: C, height: H, width: W, data } = img;
  const out = (data instanceof Uint8Array ? new Uint8Array(C * h * w) : new Float32Array(C * h * w)) as T['data'];
  const x0 = Math.max(0, -left);
  const x1 = Math.min(w, W - left);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= H || x1 <= x0) continue;
      const src = c * H * W + sy * W + left;
      out.set(data.subarray(src + x0, src + x1), c * h * w + y * w + x0);
    }
  }
  return { ...img, data: out, height: h, width: w };
}

/**
 * Mirrors an image left-right (a new image).
 * @example const mirrored = flipImage(img);
 */
export function flipImage<T extends AnyImage>(img: T): T {
  const { channels: C, height: H, width: W, data } = img;
  const out = (data instanceof Uint8Array ? new Uint8Array(data.length) : new Float32Array(data.length)) as T['data'];
  for (let r = 0; r < C * H; r++) {
    const o = r * W;
    for (let x = 0; x < W; x++) out[o + x] = data[o + W - 1 - x];
  }
  return { ...img, data: out };
}

/**
 * ToTensor: uint8 -> float32 x / 255 (correctly rounded, as torch's float32 division).
 * @example const f = toFloat(img);  // x / 255, float32
 */
export function toFloat(img: ImageRecord): FloatImage {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i] / 255;
  return { data: out, channels: img.channels, height: img.height, width: img.width };
}

function isFloat(img: AnyImage): img is FloatImage {
  return img.data instanceof Float32Array;
}

function needUint8(img: AnyImage, kind: string): ImageRecord {
  if (isFloat(img)) {
    throw new InvalidArgumentError(`${kind}: works on uint8 images; put it before normalize, subtractMeanImage and randomErasing (a float32 dataset: resize its images beforehand)`);
  }
  return img;
}

/** A DataError when an h x w output would exceed the cap (the image's size named). */
function checkPixels(img: AnyImage, h: number, w: number, op: string, maxPixels: number): void {
  if (h * w > maxPixels) {
    throw new DataError(`${op}: the ${img.width}x${img.height} image (width x height) would become ${w}x${h} = ${h * w} pixels, ` +
      `above the limit of ${maxPixels}${op === 'resize' ? '; crop it after the resize (--crop, or a centerCrop transform: only the crop is computed)' : ''}`);
  }
}

/**
 * Grey to RGB (the plane repeated) or RGB to grey (PIL's convert('L'): ITU-R 601-2 luma,
 * L = R * 299/1000 + G * 587/1000 + B * 114/1000, in PIL's fixed point), on uint8 images;
 * an image that has the channels already is returned as is. Fine-tuning uses it when the
 * weights want other channels than the data have.
 * @example toChannels(3)  // grey Fashion-MNIST into an ImageNet net
 */
export function toChannels(channels: number): Transform {
  if (channels !== 1 && channels !== 3) throw new InvalidArgumentError(`toChannels: 'channels' must be 1 or 3, got ${String(channels)}`);
  return { kind: 'toChannels', channels };
}

function convertChannels(img: ImageRecord, channels: 1 | 3): ImageRecord {
  if (img.channels === channels) return img;
  const plane = img.height * img.width;
  if (channels === 3 && img.channels === 1) {
    const out = new Uint8Array(3 * plane);
    for (let c = 0; c < 3; c++) out.set(img.data.subarray(0, plane), c * plane);
    return { ...img, data: out, channels: 3 };
  }
  if (channels === 1 && img.channels === 3) {
    const d = img.data;
    const out = new Uint8Array(plane);
    // PIL's ImagingConvert RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
    for (let i = 0; i < plane; i++) out[i] = (d[i] * 19595 + d[plane + i] * 38470 + d[2 * plane + i] * 7471 + 0x8000) >>> 16;
    return { ...img, data: out, channels: 1 };
  }
  throw new ShapeError(`toChannels: cannot make ${channels} channel(s) of an image of ${img.channels}`);
}

/** One transform on one image. */
function applyOne(img: AnyImage, t: Transform, rng: Random, maxPixels: number): AnyImage {
  if (t.kind === 'randomCrop' || t.kind === 'randomResizedCrop' || t.kind === 'centerCrop') checkPixels(img, t.size[0], t.size[1], t.kind, maxPixels);
  switch (t.kind) {
    case 'randomCrop': {
      const [th, tw] = t.size;
      const h = img.height + 2 * t.padding;
      const w = img.width + 2 * t.padding;
      if (h < th || w < tw) {
        throw new ShapeError(`randomCrop: crop ${th}x${tw} is larger than the padded image ${h}x${w}`);
      }
      const top = h === th ? 0 : rng.int(h - th + 1);
      const left = w === tw ? 0 : rng.int(w - tw + 1);
      return cropImage(img, top - t.padding, left - t.padding, th, tw);
    }
    case 'randomHorizontalFlip':
      return rng.next() < t.p ? flipImage(img) : img;
    case 'randomResizedCrop': {
      const u8 = needUint8(img, 'randomResizedCrop');
      const [top, left, h, w] = randomResizedCropBox(u8.height, u8.width, t.scale, t.ratio, rng);
      return resizeBilinear(cropImage(u8, top, left, h, w), t.size[0], t.size[1]);
    }
    case 'resize': {
      const u8 = needUint8(img, 'resize');
      const [h, w] = resizeOutputSize(u8.height, u8.width, t.size);
      if (!(h === u8.height && w === u8.width)) checkPixels(u8, h, w, 'resize', maxPixels);
      return h === u8.height && w === u8.width ? u8 : resizeBilinear(u8, h, w);
    }
    case 'centerCrop': {
      const [ch, cw] = t.size;
      if (ch === img.height && cw === img.width) return img;
      const [top, left] = centerCropOffsets(img.height, img.width, ch, cw);
      return cropImage(img, top, left, ch, cw);
    }
    case 'normalize': {
      const f = isFloat(img) ? img : toFloat(img);
      const C = f.channels;
      if (t.mean.length !== 1 && t.mean.length !== C) {
        throw new ShapeError(`normalize: ${t.mean.length} means for an image of ${C} channels`);
      }
      const out = new Float32Array(f.data.length);
      const plane = f.height * f.width;
      for (let c = 0; c < C; c++) {
        const m = Math.fround(t.mean.length === 1 ? t.mean[0] : t.mean[c]);
        const s = Math.fround(t.std.length === 1 ? t.std[0] : t.std[c]);
        for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = Math.fround(f.data[i] - m) / s;
      }
      return { ...f, data: out };
    }
    case 'subtractMeanImage': {
      const f = isFloat(img) ? img : toFloat(img);
      if (f.channels !== t.channels || f.height !== t.height || f.width !== t.width) {
        throw new ShapeError(`subtractMeanImage: mean image is ${t.channels}x${t.height}x${t.width}, the image is ${f.channels}x${f.height}x${f.width}`);
      }
      const out = new Float32Array(f.data.length);
      for (let i = 0; i < out.length; i++) out[i] = f.data[i] - t.mean[i];
      return { ...f, data: out };
    }
    case 'randomErasing': {
      const f = isFloat(img) ? img : toFloat(img);
      if (!(rng.next() < t.p)) return f;
      const box = randomErasingBox(f.height, f.width, t.scale, t.ratio, rng);
      if (box === null) return f;
      const [top, left, h, w] = box;
      const out = f === img ? new Float32Array(f.data) : f.data;
      for (let c = 0; c < f.channels; c++) {
        for (let y = top; y < top + h; y++) {
          const o = c * f.height * f.width + y * f.width;
          out.fill(t.value, o + left, o + left + w);
        }
      }
      return { ...f, data: out };
    }
    case 'toChannels':
      return convertChannels(needUint8(img, 'toChannels'), t.channels);
    default:
      throw new InvalidArgumentError(`applyTransforms: unknown transform kind '${(t as { kind: unknown }).kind}'`);
  }
}

/**
 * Runs transforms on one uint8 CHW image and returns float32 CHW (ToTensor at the first
 * float op or at the end). A float32 image is taken as already in ToTensor units. The input
 * is never modified.
 * @example
 *   const rng = new Random(mixSeed(seed, epoch, i));
 *   const x = applyTransforms(img, [randomCrop(32, { padding: 4 }), randomHorizontalFlip(), normalize(stats.mean, stats.std)], rng);
 */
export function applyTransforms(img: ImageRecord | FloatImage, transforms: readonly Transform[], rng: Random,
  maxPixels = DEFAULT_MAX_TRANSFORM_PIXELS): FloatImage {
  let cur: AnyImage = img;
  for (let i = 0; i < transforms.length; i++) {
    const t = transforms[i];
    const next = transforms[i + 1];
    if (t.kind === 'resize' && next?.kind === 'centerCrop' && !isFloat(cur)) {
      // Resize then CenterCrop: compute only the window the crop keeps (same pixels).
      cur = resizeCenterCrop(cur, t.size, next.size, maxPixels);
      i++;
      continue;
    }
    cur = applyOne(cur, t, rng, maxPixels);
  }
  return isFloat(cur) ? cur : toFloat(cur);
}

/** torchvision Resize(size) then CenterCrop(crop), computing only the crop's pixels. */
function resizeCenterCrop(img: ImageRecord, size: Size, crop: [number, number], maxPixels: number): ImageRecord {
  checkPixels(img, crop[0], crop[1], 'centerCrop', maxPixels);
  const [h, w] = resizeOutputSize(img.height, img.width, size);
  const [ch, cw] = crop;
  if (h === ch && w === cw) {
    if (h === img.height && w === img.width) return img;
    return resizeBilinear(img, h, w);
  }
  const [top, left] = centerCropOffsets(h, w, ch, cw);
  if (h === img.height && w === img.width) return cropImage(img, top, left, ch, cw);
  return resizeBilinearWindow(img, h, w, top, left, ch, cw);
}

/**
 * The [C, H, W] the transforms make from a C x H x W input.
 * @example transformedShape([resize(256), centerCrop(224)], 3, 480, 640)  // [3, 224, 224]
 */
export function transformedShape(transforms: readonly Transform[], channels: number, height: number, width: number): [number, number, number] {
  let h = height;
  let w = width;
  let c = channels;
  for (const t of transforms) {
    if (t.kind === 'toChannels') c = t.channels;
    else if (t.kind === 'randomCrop' || t.kind === 'randomResizedCrop' || t.kind === 'centerCrop') [h, w] = t.size;
    else if (t.kind === 'resize') [h, w] = resizeOutputSize(h, w, t.size);
  }
  return [c, h, w];
}
