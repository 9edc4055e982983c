// Image folders as torchvision's ImageFolder reads them: root/<class>/**/<image>, classes
// sorted by name, files sorted within each class, extensions matched case-insensitively.
// Loading lists per-image records (path, label); pixels are decoded on demand with sharp,
// whose work runs in libuv's threads (the JS thread only waits), with bounded concurrency,
// a pixel limit checked from the header, and formats told from the first bytes (JPEG, PNG,
// WebP by default; never SVG: image_format.ts). Walks visit each real file once (symlink
// loops skipped). Decoding matches PIL's `convert('RGB')`: alpha dropped, grey and
// palette expanded to sRGB, EXIF orientation ignored (as torchvision does). 16-bit PNG
// and CMYK JPEG may differ from PIL by a few levels (REFERENCE.md section 2).

import { constants as fsConstants } from 'node:fs';
import type { BigIntStats, Dirent } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, errnoWords, InvalidArgumentError } from '../errors.js';
import { sharedBytes, type ArrayDataset, type ImageRecord } from './dataset.js';
import { dirExists } from './files.js';
import { mixSeed, Random } from './random.js';
import { DEFAULT_IMAGE_FORMATS, describeFormats, extensionsFor, parseFormats, sharpFormatName, sniffFormat, SNIFF_BYTES, type ImageFormat } from './image_format.js';

/**
 * The extensions read by default (lower case): those of DEFAULT_IMAGE_FORMATS.
 * @example const files = await listImages(['photos'], IMAGE_EXTENSIONS);
 */
export const IMAGE_EXTENSIONS = extensionsFor(DEFAULT_IMAGE_FORMATS);

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

async function readDir(d: string): Promise<Dirent[]> {
  try {
    return await readdir(d, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`${d}: cannot list directory: ${errnoWords(e)}`, { cause: e });
  }
}

/**
 * Image files under `dir` in torchvision's order: `sorted(os.walk(dir, followlinks=True))`
 * then sorted names, i.e. directories by full path, each directory's own files first.
 * NOTE: unlike os.walk, each real directory and each real file (device + inode) is visited
 * once: a symlink loop (`l -> .`) is skipped, a link to a file or folder elsewhere is
 * followed the first time it is met (entries in name order, depth first), and a file
 * reached twice (a link beside its target, a hard link) is listed once.
 */
export async function listFiles(dir: string, extensions: string[]): Promise<string[]> {
  const dirs: { path: string; files: string[] }[] = [];
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  const idOf = (st: BigIntStats): string => `${st.dev}:${st.ino}`;
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const walk = async (d: string, id: string, depth: number): Promise<void> => {
    seenDirs.add(id);
    const files: string[] = [];
    dirs.push({ path: d, files });
    const entries = (await readDir(d)).sort((x, y) => byName(x.name, y.name));
    for (const e of entries) {
      const p = join(d, e.name);
      const isImage = extensions.some((x) => e.name.toLowerCase().endsWith(x));
      if (!e.isDirectory() && !e.isSymbolicLink() && !(e.isFile() && isImage)) continue;
      let st: BigIntStats;
      try {
        st = await stat(p, { bigint: true });
      } catch { continue; /* a dangling link, or gone since the listing */ }
      if (st.isDirectory()) {
        if (depth < 32 && !seenDirs.has(idOf(st))) await walk(p, idOf(st), depth + 1);
      } else if (st.isFile() && isImage && !seenFiles.has(idOf(st))) {
        seenFiles.add(idOf(st));
        files.push(e.name);
      }
    }
  };
  let top: BigIntStats;
  try {
    top = await stat(dir, { bigint: true });
  } catch (e) {
    throw new DataError(`${dir}: cannot list directory: ${errnoWords(e)}`, { cause: e });
  }
  await walk(dir, idOf(top), 0);
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
  for (const e of await readDir(root)) {
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
  /**
   * Formats decoded, told from the file's first bytes: default jpeg, png, webp; gif, tiff,
   * avif and heif only when listed here. SVG is never decoded.
   */
  formats?: readonly string[];
}

/** Errors from fs and libvips on one line (libvips ends lines with \n and repeats them). */
export function oneLine(msg: string): string {
  const lines = [...new Set(msg.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== ''))];
  return lines.join('; ').replace(/[\x00-\x1f\x7f]/g, '?');
}

/** The first bytes of a regular file (a FIFO, device or directory is refused, never opened). */
async function readHead(path: string): Promise<Uint8Array> {
  let fh: FileHandle | null = null;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new DataError(`${path}: cannot decode image: is a directory, expected an image file`);
    if (!st.isFile()) throw new DataError(`${path}: cannot decode image: not a regular file (a device, FIFO or socket), expected an image file`);
    // O_NONBLOCK: should the path turn into a FIFO after the stat, open does not wait for a writer.
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const buf = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${path}: cannot decode image: ${errnoWords(e)}`, { cause: e });
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * Checks the first bytes of an image against the accepted formats; returns its format.
 * A DataError names the file, what it is and the formats accepted.
 */
async function checkFormat(input: string | Uint8Array, formats: readonly ImageFormat[], what: string): Promise<ImageFormat> {
  const head = typeof input === 'string' ? await readHead(input) : input.subarray(0, SNIFF_BYTES);
  const found = sniffFormat(head);
  const accepted = `accepted formats: ${formats.join(', ')}`;
  if (found === 'svg') {
    throw new DataError(`${what}: cannot decode image: looks like SVG or other XML text, and SVG is not an image format we accept (a vector document that can read other files); ${accepted}`);
  }
  if (found === null) {
    throw new DataError(`${what}: cannot decode image, expected a ${describeFormats(formats)} file (unrecognised first bytes); ${accepted}`);
  }
  if (!formats.includes(found)) {
    const kind = describeFormats([found]);
    throw new DataError(`${what}: cannot decode image: ${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind} file, not read unless enabled ` +
      `(--formats ${[...formats, found].join(',')} or the 'formats' option); ${accepted}`);
  }
  return found;
}

/**
 * Decodes to interleaved RGB, [H, W, 3] as sharp gives it (the loader hands this to a worker,
 * which makes it planar there, off the main thread). The format is checked from the first
 * bytes, the size from the header, both before any pixel is decoded; every failure is a
 * DataError naming the file.
 * @example
 * const hwc = await decodeImageHwc('cat.jpg');  // interleaved [H, W, 3]
 * const chw = hwcToChw(hwc);
 */
export async function decodeImageHwc(input: string | Uint8Array, options: DecodeOptions = {}, name?: string): Promise<ImageRecord> {
  const what = name ?? (typeof input === 'string' ? input : 'image bytes');
  const formats = options.formats === undefined ? DEFAULT_IMAGE_FORMATS : parseFormats(options.formats);
  const limitInputPixels = options.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS;
  const format = await checkFormat(input, formats, what);
  const sharp = await loadSharp();
  let result: { data: Buffer; info: import('sharp').OutputInfo };
  try {
    // The header alone (no pixels), read without the limit so that the error can name the size.
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    if (meta.format !== sharpFormatName(format)) {
      throw new DataError(`${what}: cannot decode image: starts like a ${describeFormats([format])} file but reads as '${String(meta.format)}'; accepted formats: ${formats.join(', ')}`);
    }
    const W = meta.width ?? 0;
    const H = meta.height ?? 0;
    if (W * H > limitInputPixels) {
      throw new DataError(`${what}: cannot decode image: ${W}x${H} (width x height) = ${W * H} pixels, larger than limitInputPixels = ${limitInputPixels}`);
    }
    result = await sharp(input, { limitInputPixels }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    if (e instanceof DataError) throw e;
    const msg = oneLine((e as Error)?.message ?? String(e));
    const why = /pixel limit/i.test(msg) ? `larger than limitInputPixels = ${limitInputPixels}` : msg;
    throw new DataError(`${what}: cannot decode image, expected a valid ${describeFormats([format])} file (${why})`, { cause: e });
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
