// Image folders as torchvision's ImageFolder reads them: root/<class>/**/<image>, classes
// sorted by name, files sorted within each class, extensions matched case-insensitively.
// Loading lists per-image records (path, label); pixels are decoded on demand with sharp,
// whose work runs in libuv's threads (the JS thread only waits), with bounded concurrency
// and a pixel limit. Decoding matches PIL's `convert('RGB')`: alpha dropped, grey and
// palette expanded to sRGB, EXIF orientation ignored (as torchvision does). 16-bit PNG
// and CMYK JPEG may differ from PIL by a few levels (REFERENCE.md section 2).

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, InvalidArgumentError } from '../errors.js';
import { sharedBytes, type ArrayDataset, type ImageRecord } from './dataset.js';
import { dirExists } from './files.js';
import { mixSeed, Random } from './random.js';

/**
 * The extensions read by default (lower case).
 * @example const files = await listImages(['photos'], IMAGE_EXTENSIONS);
 */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

/**
 * Default cap on decoded pixels per image (a decompression-bomb guard): 64 megapixels.
 * @example const img = await decodeImage('huge.png', { limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS * 4 });
 */
export const DEFAULT_LIMIT_INPUT_PIXELS = 64 * 1024 * 1024;

/**
 * @example
 * const folder = await loadImageFolder('photos');
 * for (const s of folder.samples.slice(0, 3)) console.log(s.path, folder.classes[s.label]);
 */
export interface ImageSample {
  path: string;
  label: number;
}

/**
 * A folder of images, one subfolder per class; pixels are decoded when needed.
 * @example const folder: ImageFolderDataset = await loadImageFolder('photos');  // photos/<class>/<image>
 */
export interface ImageFolderDataset {
  root: string;
  classes: string[];
  samples: ImageSample[];
  n: number;
  /** Images decode to RGB. */
  channels: 3;
}

/** @example const val = await loadImageFolder('photos', { split: 'val', valFraction: 0.1, seed: 1 } satisfies ImageFolderOptions); */
export interface ImageFolderOptions {
  /** 'all' (default), or 'train' / 'val' of a deterministic split by valFraction and seed. */
  split?: 'all' | 'train' | 'val';
  /** Share of each class held out for 'val' (0..1); required with split 'train' / 'val'. */
  valFraction?: number;
  /** Seed of the split. Default 0. */
  seed?: number;
  /** File extensions to read, lower case with the dot. Default jpg, jpeg, png, webp. */
  extensions?: string[];
}

/**
 * Image files under `dir` in torchvision's order: `sorted(os.walk(dir, followlinks=True))`
 * then sorted names, i.e. directories by full path, each directory's own files first.
 */
export async function listFiles(dir: string, extensions: string[]): Promise<string[]> {
  const dirs: { path: string; files: string[] }[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    const files: string[] = [];
    dirs.push({ path: d, files });
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const st = await stat(p);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch { /* a dangling link is skipped */ }
      }
      if (isDir && depth < 32) await walk(p, depth + 1);
      else if (isFile && extensions.some((x) => e.name.toLowerCase().endsWith(x))) files.push(e.name);
    }
  };
  await walk(dir, 0);
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  dirs.sort((a, b) => byName(a.path, b.path));
  return dirs.flatMap((d) => d.files.sort(byName).map((f) => join(d.path, f)));
}

/**
 * Lists an image folder: one subfolder per class (sorted names, as torchvision ImageFolder).
 * @example
 *   const train = await loadImageFolder('photos', { split: 'train', valFraction: 0.1, seed: 1 });
 *   const val = await loadImageFolder('photos', { split: 'val', valFraction: 0.1, seed: 1 });
 */
export async function loadImageFolder(root: string, options: ImageFolderOptions = {}): Promise<ImageFolderDataset> {
  const extensions = (options.extensions ?? IMAGE_EXTENSIONS).map((x) => x.toLowerCase());
  const split = options.split ?? 'all';
  if (split !== 'all' && split !== 'train' && split !== 'val') {
    throw new InvalidArgumentError(`loadImageFolder: 'split' must be 'all', 'train' or 'val', got '${String(split)}'`);
  }
  if (!(await dirExists(root))) throw new DataError(`${root}: image folder not found, expected a directory with one subfolder per class`);
  const classes: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true })) {
    // As os.scandir's is_dir(): a link to a directory counts.
    if (e.isDirectory() || (e.isSymbolicLink() && await dirExists(join(root, e.name)))) classes.push(e.name);
  }
  classes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (classes.length === 0) throw new DataError(`${root}: no class subfolders found, expected one subfolder per class`);
  const samples: ImageSample[] = [];
  for (let label = 0; label < classes.length; label++) {
    const files = await listFiles(join(root, classes[label]), extensions);
    if (files.length === 0) {
      throw new DataError(`${join(root, classes[label])}: no images found for class '${classes[label]}', expected files ending in ${extensions.join(', ')}`);
    }
    for (const path of files) samples.push({ path, label });
  }
  const ds: ImageFolderDataset = { root, classes, samples, n: samples.length, channels: 3 };
  if (split === 'all') {
    if (options.valFraction !== undefined) throw new InvalidArgumentError(`loadImageFolder: 'valFraction' needs split 'train' or 'val'`);
    return ds;
  }
  if (options.valFraction === undefined) throw new InvalidArgumentError(`loadImageFolder: split '${split}' needs 'valFraction'`);
  return splitImageFolder(ds, options.valFraction, options.seed ?? 0)[split];
}

/**
 * A deterministic, stratified split: from each class, round(count * valFraction) samples
 * chosen by `seed` go to val, the rest to train; both keep the folder order.
 * @example const { train, val } = splitImageFolder(await loadImageFolder('photos'), 0.2, 1);
 */
export function splitImageFolder(ds: ImageFolderDataset, valFraction: number, seed = 0): { train: ImageFolderDataset; val: ImageFolderDataset } {
  if (!(valFraction >= 0 && valFraction <= 1)) {
    throw new InvalidArgumentError(`splitImageFolder: 'valFraction' must be in [0, 1], got ${valFraction}`);
  }
  const byClass: number[][] = ds.classes.map(() => []);
  ds.samples.forEach((s, i) => byClass[s.label].push(i));
  const isVal = new Uint8Array(ds.n);
  byClass.forEach((idx, label) => {
    const perm = new Random(mixSeed(seed, label)).permutation(idx.length);
    const count = Math.floor(idx.length * valFraction + 0.5);
    for (let k = 0; k < count; k++) isVal[idx[perm[k]]] = 1;
  });
  const train = ds.samples.filter((_, i) => !isVal[i]);
  const val = ds.samples.filter((_, i) => isVal[i]);
  return {
    train: { ...ds, samples: train, n: train.length },
    val: { ...ds, samples: val, n: val.length },
  };
}

type SharpFactory = typeof import('sharp').default;
let sharpModule: Promise<SharpFactory> | null = null;

/** sharp, loaded on first use (so IDX and CIFAR users never load libvips). */
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then((m) => m.default).catch((e: unknown) => {
    sharpModule = null;
    throw new DataError(`sharp could not be loaded to decode images (${(e as Error).message}); install it with: npm install sharp@~0.35`, { cause: e });
  });
  return sharpModule;
}

/** @example const img = await decodeImage('cat.jpg', { limitInputPixels: 4096 * 4096 } satisfies DecodeOptions); */
export interface DecodeOptions {
  /** Largest width*height accepted; default 64 megapixels. */
  limitInputPixels?: number;
}

/**
 * Decodes to interleaved RGB, [H, W, 3] as sharp gives it (the loader hands this to a worker,
 * which makes it planar there, off the main thread).
 * @example
 * const hwc = await decodeImageHwc('cat.jpg');  // interleaved [H, W, 3]
 * const chw = hwcToChw(hwc);
 */
export async function decodeImageHwc(input: string | Uint8Array, options: DecodeOptions = {}, name?: string): Promise<ImageRecord> {
  const sharp = await loadSharp();
  const what = name ?? (typeof input === 'string' ? input : 'image bytes');
  const limitInputPixels = options.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS;
  let result: { data: Buffer; info: import('sharp').OutputInfo };
  try {
    result = await sharp(input, { limitInputPixels })
      .removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message;
    const why = /pixel limit/i.test(msg) ? `larger than limitInputPixels = ${limitInputPixels}` : msg.trim();
    throw new DataError(`${what}: cannot decode image, expected a JPEG, PNG or WebP file (${why})`, { cause: e });
  }
  const { data, info } = result;
  const { width: W, height: H, channels: C } = info;
  if (C !== 3 || data.length !== W * H * 3) {
    throw new DataError(`${what}: decoded to ${C} channels and ${data.length} bytes, expected 3 channels of ${W}x${H}`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), channels: 3, height: H, width: W };
}

/**
 * Interleaved [H, W, C] -> planar [C, H, W].
 * @example const planar = hwcToChw(await decodeImageHwc('cat.jpg'));  // [3, H, W]
 */
export function hwcToChw(img: ImageRecord): ImageRecord {
  const { channels: C, height: H, width: W, data } = img;
  const out = new Uint8Array(data.length);
  const plane = H * W;
  if (C === 3) {
    for (let p = 0, q = 0; p < plane; p++, q += 3) {
      out[p] = data[q];
      out[plane + p] = data[q + 1];
      out[2 * plane + p] = data[q + 2];
    }
  } else {
    for (let p = 0; p < plane; p++) for (let c = 0; c < C; c++) out[c * plane + p] = data[p * C + c];
  }
  return { data: out, channels: C, height: H, width: W };
}

/**
 * Decodes an image file (or its bytes) to uint8 RGB, planar [3, H, W]. No resizing.
 * @example const img = await decodeImage('cat.jpg'); // { data, channels: 3, height, width }
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions = {}, name?: string): Promise<ImageRecord> {
  return hwcToChw(await decodeImageHwc(input, options, name));
}

/**
 * At most `slots` async jobs at once, started in the order they were asked for.
 * @example
 * const limit = new Limiter(4);
 * const images = await Promise.all(files.map((f) => limit.run(() => decodeImage(f))));
 */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly slots: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.slots) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** Runs `fn` over items with at most `concurrency` at once; results in order. */
export async function mapBounded<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const runner = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, runner));
  return out;
}

/** @example const { images } = await decodeImageFolder(await loadImageFolder('photos'), { concurrency: 2 } satisfies DecodeFolderOptions); */
export interface DecodeFolderOptions extends DecodeOptions {
  /** Images decoded at once; default 4 (libuv's pool size). */
  concurrency?: number;
}

/**
 * Decodes every image of a folder dataset into per-image records (sizes may differ).
 * @example const { images, labels } = await decodeImageFolder(await loadImageFolder('photos'), { concurrency: 4 });
 */
export async function decodeImageFolder(ds: ImageFolderDataset, options: DecodeFolderOptions = {}): Promise<{ images: ImageRecord[]; labels: Int32Array; classes: string[] }> {
  const images = await mapBounded(ds.samples, options.concurrency ?? 4, (s) => decodeImage(s.path, options));
  return { images, labels: Int32Array.from(ds.samples, (s) => s.label), classes: [...ds.classes] };
}

/**
 * Stacks same-size images into an ArrayDataset (after decodeImageFolder and, say, a
 * resize of each). A different size is a DataError naming the image index.
 * @example
 * const { images, labels, classes } = await decodeImageFolder(await loadImageFolder('icons'));
 * const ds = stackImages(images, labels, classes);  // same-size images only
 */
export function stackImages(images: ImageRecord[], labels: Int32Array | Uint8Array, classes: string[], names?: string[]): ArrayDataset<Uint8Array> {
  if (images.length === 0) throw new InvalidArgumentError('stackImages: no images');
  if (labels.length !== images.length) throw new InvalidArgumentError(`stackImages: ${labels.length} labels for ${images.length} images`);
  const { channels: C, height: H, width: W } = images[0];
  const size = C * H * W;
  const out = sharedBytes(images.length * size);
  images.forEach((img, i) => {
    if (img.channels !== C || img.height !== H || img.width !== W) {
      throw new DataError(`${names?.[i] ?? `image ${i}`}: is ${img.channels}x${img.height}x${img.width}, expected ${C}x${H}x${W} like the first image; resize first`);
    }
    out.set(img.data, i * size);
  });
  const lab = new Int32Array(new SharedArrayBuffer(labels.length * 4));
  lab.set(labels);
  return { images: out, labels: lab, n: images.length, channels: C, height: H, width: W, classes: [...classes] };
}
