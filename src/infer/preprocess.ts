// Inference preprocessing exactly as torchvision's eval pipeline on a PIL image
// (REFERENCE.md section 2): decode with sharp (as PIL's convert('RGB'), or 'L' for one
// channel), Resize(S) with PIL's antialiased bilinear filter (long side truncated), then
// CenterCrop(C) (offsets round half to even), ToTensor (x / 255) and Normalize(mean, std).
// The steps are the data layer's (decodeImage, transforms.ts, resample.ts); this file only
// chooses and orders them, and lists the image files of the command line's arguments.

import { stat } from 'node:fs/promises';
import { DataError, InvalidArgumentError } from '../errors.js';
import type { FloatImage, ImageRecord } from '../data/dataset.js';
import { decodeImage, IMAGE_EXTENSIONS, listFiles, type DecodeOptions } from '../data/image_folder.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/presets.js';
import { Random } from '../data/random.js';
import { applyTransforms, centerCrop, DEFAULT_MAX_TRANSFORM_PIXELS, normalize, resize, type Size, type Transform } from '../data/transforms.js';

/** @example const x = await preprocessImage('digit.png', { channels: 1, resize: 28, crop: 28, mean: [0.286], std: [0.353] } satisfies PreprocessOptions); */
export interface PreprocessOptions extends DecodeOptions {
  /** Shorter side after resizing (torchvision Resize(int)); [h, w] resizes exactly; 0 keeps the size. Default 256. */
  resize?: Size;
  /** Centre crop (torchvision CenterCrop); 0 keeps the whole image. Default 224. */
  crop?: Size;
  /** Per-channel mean and std of Normalize. Default ImageNet's. */
  mean?: number[];
  std?: number[];
  /** 3 (RGB, default) or 1 (PIL's convert('L'): ITU-R 601-2 luma). */
  channels?: 1 | 3;
}

function sizeOption(v: Size | undefined, dflt: number, name: string): Size | 0 {
  const s = v ?? dflt;
  if (s === 0) return 0;
  const ok = (d: unknown) => typeof d === 'number' && Number.isInteger(d) && d >= 1;
  if (typeof s === 'number' ? !ok(s) : !(Array.isArray(s) && s.length === 2 && s.every(ok))) {
    throw new InvalidArgumentError(`preprocessImage: '${name}' must be 0 (none), a positive integer or [height, width], got ${JSON.stringify(s)}`);
  }
  return s;
}

/**
 * The transform list of the options (resize, crop, normalize), validated.
 * @example const t = preprocessTransforms({ resize: 256, crop: 224 });  // [resize, centerCrop, normalize]
 */
export function preprocessTransforms(options: PreprocessOptions = {}): Transform[] {
  const r = sizeOption(options.resize, 256, 'resize');
  const c = sizeOption(options.crop, 224, 'crop');
  const list: Transform[] = [];
  if (r !== 0) list.push(resize(r));
  if (c !== 0) list.push(centerCrop(c));
  list.push(normalize(options.mean ?? IMAGENET_MEAN, options.std ?? IMAGENET_STD));
  return list;
}

/**
 * PIL's RGB -> L (Convert.c, L24): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
 * @example const grey = rgbToGrey(await decodeImage('cat.jpg'));  // PIL's convert('L')
 */
export function rgbToGrey(img: ImageRecord): ImageRecord {
  if (img.channels !== 3) throw new InvalidArgumentError(`rgbToGrey: expected a 3-channel image, got ${img.channels} channels`);
  const plane = img.height * img.width;
  const out = new Uint8Array(plane);
  const d = img.data;
  for (let i = 0; i < plane; i++) out[i] = (d[i] * 19595 + d[plane + i] * 38470 + d[2 * plane + i] * 7471 + 0x8000) >>> 16;
  return { data: out, channels: 1, height: img.height, width: img.width };
}

/**
 * Preprocesses an already decoded uint8 [3, H, W] image (see preprocessImage).
 * @example const x = preprocessDecoded(await decodeImage('cat.jpg'), { resize: 256, crop: 224 });
 */
export function preprocessDecoded(img: ImageRecord, options: PreprocessOptions = {}, transforms = preprocessTransforms(options)): FloatImage {
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new InvalidArgumentError(`preprocessImage: 'channels' must be 1 or 3, got ${String(channels)}`);
  const src = channels === 1 && img.channels === 3 ? rgbToGrey(img) : img;
  // Resize, crop and normalize draw no random numbers; applyTransforms wants a stream anyway.
  return applyTransforms(src, transforms, new Random(0), options.limitInputPixels ?? DEFAULT_MAX_TRANSFORM_PIXELS);
}

/**
 * Decodes an image file (or its bytes) and preprocesses it as torchvision's
 * Resize(resize) + CenterCrop(crop) + ToTensor + Normalize(mean, std) does on a PIL image.
 * Returns float32 planar [C, H, W]. Undecodable input is a DataError naming the file.
 * @example
 *   const x = await preprocessImage('cat.jpg');  // { data: Float32Array(3*224*224), channels: 3, height: 224, width: 224 }
 *   const full = await preprocessImage('cat.jpg', { resize: 0, crop: 0 });  // the whole image, normalised
 */
export async function preprocessImage(input: string | Uint8Array, options: PreprocessOptions = {}): Promise<FloatImage> {
  const transforms = preprocessTransforms(options);
  const img = await decodeImage(input, options);
  return preprocessDecoded(img, options, transforms);
}

/**
 * The image files named by `paths`: a file is taken as it is; a directory is walked for
 * jpg, jpeg, png and webp files (any case; `extensions` changes the list), in torchvision's
 * sorted order, each real file once (symlink loops skipped). A missing path is a DataError
 * naming it; so is a directory holding no image.
 * @example const images = await listImages(['photos', 'cat.jpg']);  // files, and image files under folders
 */
export async function listImages(paths: readonly string[], extensions = IMAGE_EXTENSIONS): Promise<string[]> {
  if (paths.length === 0) throw new InvalidArgumentError('listImages: no image files or directories given');
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (e) {
      throw new DataError(`${p}: no such image file or directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (!isDir) { out.push(p); continue; }
    const files = await listFiles(p, extensions);
    if (files.length === 0) throw new DataError(`${p}: no images found, expected files ending in ${extensions.join(', ')}`);
    out.push(...files);
  }
  return out;
}
