// `resnet detect synth`: a COCO-format detection dataset of scenes made from Fashion-MNIST
// items, so a detector can be trained and measured on a small machine with no download.
// Each scene: a seeded textured background (noise, gradient or stripes), then 1..maxObjects
// items scaled from 28x28 to 24..112 px (PIL bilinear, resample.ts), tinted, and pasted
// with their own intensity as alpha (their black background is transparent; intensities
// under VISIBLE_MIN are fully transparent), later ones on top. A box is the tight box of
// the item's visible pixels after scaling; a placement is redrawn while its box overlaps
// an earlier one by IoU > 0.5 or covers more than half of it (so every object stays
// identifiable). `split: 'train'` draws Fashion-MNIST's training items, 'test' its test items:
// held-out scenes never show a training item. Everything comes from mixSeed(seed, split,
// scene), so one seed gives byte-identical files and another seed other scenes.
// Written into a temp folder beside --out, renamed into place at the end (nothing half-written).

import { mkdir, mkdtemp, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, OutputError } from '../../errors.js';
import type { ArrayDataset } from '../../data/dataset.js';
import { FASHION_MNIST_CLASSES, loadFashionMnist } from '../../data/idx.js';
import { mixSeed, Random } from '../../data/random.js';
import { resizeBilinear } from '../../data/resample.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { CocoAnnotation, CocoCategory, CocoImage, CocoJson } from './coco.js';

/**
 * Item intensities below this (of 255) are transparent: the tight box is over the pixels at or above it.
 * @example VISIBLE_MIN  // 24
 */
export const VISIBLE_MIN = 24;

/** @example const opts: SceneOptions = { seed: 0, index: 0, size: 320, maxObjects: 6, split: 'train' }; */
export interface SceneOptions {
  seed: number;
  /** The scene's index (its image id is index + 1). */
  index: number;
  size: number;
  maxObjects: number;
  split: 'train' | 'test';
  /** Side of a scaled item, [min, max] pixels (default [24, 112], capped at size). */
  scale?: readonly [number, number];
}

/** @example const o: SynthObject = renderScene(await loadFashionMnist(), { seed: 0, index: 0, size: 320, maxObjects: 6, split: 'train' }).objects[0]; console.log(o.bbox, o.categoryId); */
export interface SynthObject {
  /** [x, y, w, h], integers, tight around the visible pixels. */
  bbox: [number, number, number, number];
  /** 1..10: Fashion-MNIST's label + 1. */
  categoryId: number;
  /** The item's index in its Fashion-MNIST split. */
  item: number;
}

/** @example const scene: Scene = renderScene(await loadFashionMnist(), { seed: 0, index: 0, size: 320, maxObjects: 6, split: 'train' }); */
export interface Scene {
  /** Interleaved RGB [size, size, 3]. */
  rgb: Uint8Array;
  size: number;
  objects: SynthObject[];
}

/**
 * The COCO categories of the synthetic scenes: ids 1..10, Fashion-MNIST's names.
 * @example synthCategories()[0]  // { id: 1, name: 'T-shirt/top', supercategory: 'fashion' }
 */
export function synthCategories(): CocoCategory[] {
  return FASHION_MNIST_CLASSES.map((name, k) => ({ id: k + 1, name, supercategory: 'fashion' }));
}

/** A colour from HSV (h in [0, 1), s, v in [0, 1]) as 0..255 RGB. */
function hsv(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6) % 6;
  const f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i];
  return [r * 255, g * 255, b * 255];
}

/** A seeded textured background into `out` (float RGB, interleaved). */
function background(out: Float32Array, size: number, rng: Random): void {
  const kind = rng.int(3);
  const c0 = hsv(rng.next(), rng.uniform(0.1, 0.7), rng.uniform(0.1, 0.55));
  const c1 = hsv(rng.next(), rng.uniform(0.1, 0.7), rng.uniform(0.1, 0.55));
  const grain = rng.uniform(4, 24);
  const angle = rng.uniform(0, Math.PI);
  const ca = Math.cos(angle), sa = Math.sin(angle);
  const period = rng.uniform(6, 48);
  // Coarse noise: a 9x9 grid of weights, bilinearly spread (noise backgrounds).
  const G = 9;
  const grid = Float32Array.from({ length: G * G }, () => rng.next());
  const t = new Float32Array(size);
  // Grain: one value a pixel, from a xorshift32 stream seeded by rng (cheaper than rng.next()).
  let g = (rng.int(0x7fffffff) | 1) >>> 0;
  for (let y = 0; y < size; y++) {
    const gy = (y / size) * (G - 1), iy = Math.floor(gy), fy = gy - iy, iy1 = Math.min(iy + 1, G - 1);
    for (let x = 0; x < size; x++) {
      if (kind === 0) {
        const gx = (x / size) * (G - 1), ix = Math.floor(gx), fx = gx - ix, ix1 = Math.min(ix + 1, G - 1);
        t[x] = (grid[iy * G + ix] * (1 - fx) + grid[iy * G + ix1] * fx) * (1 - fy) + (grid[iy1 * G + ix] * (1 - fx) + grid[iy1 * G + ix1] * fx) * fy;
      } else if (kind === 1) {
        t[x] = ((x - size / 2) * ca + (y - size / 2) * sa) / (size * 1.42) + 0.5;
      } else {
        t[x] = 0.5 + 0.5 * Math.sin((2 * Math.PI * (x * ca + y * sa)) / period);
      }
    }
    for (let x = 0, o = y * size * 3; x < size; x++, o += 3) {
      g ^= g << 13; g ^= g >>> 17; g ^= g << 5;
      const n = ((g >>> 0) / 4294967296 - 0.5) * grain;
      const u = t[x];
      out[o] = c0[0] + (c1[0] - c0[0]) * u + n;
      out[o + 1] = c0[1] + (c1[1] - c0[1]) * u + n;
      out[o + 2] = c0[2] + (c1[2] - c0[2]) * u + n;
    }
  }
}

/** Area of intersection of two [x1, y1, x2, y2] boxes. */
function intersection(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

const area = (a: readonly number[]): number => (a[2] - a[0]) * (a[3] - a[1]);

/**
 * Renders one scene from a split's items (uint8 [N, 1, 28, 28] with labels 0..9), all its
 * randomness from mixSeed(seed, split, index).
 * @example
 * const items = await loadFashionMnist({ split: 'test' });
 * const { rgb, objects } = renderScene(items, { seed: 1, index: 0, size: 320, maxObjects: 6, split: 'test' });
 */
export function renderScene(items: ArrayDataset<Uint8Array>, opts: SceneOptions): Scene {
  const { size, maxObjects } = opts;
  const rng = new Random(mixSeed(opts.seed, opts.split === 'train' ? 1 : 2, opts.index));
  const pix = new Float32Array(size * size * 3);
  background(pix, size, rng);
  const [smin, smax] = [Math.min(opts.scale?.[0] ?? 24, size), Math.min(opts.scale?.[1] ?? 112, size)];
  const count = 1 + rng.int(maxObjects);
  const plane = items.height * items.width;
  const boxes: number[][] = [];
  const objects: SynthObject[] = [];
  for (let k = 0; k < count; k++) {
    const item = rng.int(items.n);
    const s = smin + rng.int(smax - smin + 1);
    const scaled = resizeBilinear({ data: items.images.subarray(item * plane, (item + 1) * plane), channels: 1, height: items.height, width: items.width }, s, s).data;
    let bx1 = s, by1 = s, bx2 = -1, by2 = -1;
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      if (scaled[y * s + x] >= VISIBLE_MIN) { bx1 = Math.min(bx1, x); bx2 = Math.max(bx2, x); by1 = Math.min(by1, y); by2 = Math.max(by2, y); }
    }
    const tint = hsv(rng.next(), rng.uniform(0.4, 1), rng.uniform(0.8, 1));
    if (bx2 < 0) continue; // an item with no visible pixel
    let placed: number[] | null = null;
    let x0 = 0, y0 = 0;
    for (let tries = 0; tries < 30 && placed === null; tries++) {
      x0 = rng.int(size - s + 1);
      y0 = rng.int(size - s + 1);
      const box = [x0 + bx1, y0 + by1, x0 + bx2 + 1, y0 + by2 + 1];
      const ok = boxes.every((b) => {
        const inter = intersection(box, b);
        return inter / (area(box) + area(b) - inter) <= 0.5 && inter <= 0.5 * area(b);
      });
      if (ok) placed = box;
    }
    if (placed === null) continue;
    for (let y = by1; y <= by2; y++) for (let x = bx1; x <= bx2; x++) {
      const v = scaled[y * s + x];
      if (v < VISIBLE_MIN) continue;
      const alpha = v / 255;
      const shade = 0.45 + 0.55 * alpha; // the item's own texture shows through its tint
      const o = ((y0 + y) * size + (x0 + x)) * 3;
      for (let c = 0; c < 3; c++) pix[o + c] = pix[o + c] * (1 - alpha) + tint[c] * shade * alpha;
    }
    boxes.push(placed);
    objects.push({ bbox: [placed[0], placed[1], placed[2] - placed[0], placed[3] - placed[1]], categoryId: items.labels[item] + 1, item });
  }
  const rgb = new Uint8Array(pix.length);
  for (let i = 0; i < pix.length; i++) rgb[i] = Math.min(255, Math.max(0, Math.round(pix[i])));
  return { rgb, size, objects };
}

/** @example await writeSynthDataset({ out: 'synth-train', images: 2000, seed: 0, split: 'train' } satisfies SynthOptions); */
export interface SynthOptions {
  /** The folder to create: out/images/000000.png ..., out/instances.json. */
  out: string;
  /** Number of scenes. */
  images: number;
  /** Default 0. */
  seed?: number;
  /** Scene side in pixels (square), default 320. */
  size?: number;
  /** Fashion-MNIST split the items come from; default 'train'. */
  split?: 'train' | 'test';
  /** At most this many objects a scene (at least 1), default 6. */
  maxObjects?: number;
  /** Replace an earlier synth output in `out` (a folder holding only images/ and instances.json). */
  force?: boolean;
  /** Folder of the Fashion-MNIST IDX files (default Debian's /usr/share/datasets/fashion-mnist). */
  data?: string;
}

/** @example const { images, annotations }: SynthResult = await writeSynthDataset({ out: 'synth', images: 10 }); */
export interface SynthResult {
  out: string;
  images: number;
  annotations: number;
  /** Objects of each category id 1..10, index 0 unused. */
  perCategory: number[];
  seconds: number;
}

function intOption(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`detect synth: ${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** What is in `out` now: 'absent', 'empty', or throws unless it may be replaced. */
async function checkOut(out: string, force: boolean): Promise<'absent' | 'empty' | 'replace'> {
  let st;
  try { st = await stat(out); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new OutputError('detect synth: --out', out, (e as Error).message, (e as NodeJS.ErrnoException).code);
  }
  if (!st.isDirectory()) throw new OutputError('detect synth: --out', out, 'it exists and is not a directory; give a new folder', 'ENOTDIR');
  const entries = await readdir(out);
  if (entries.length === 0) return 'empty';
  if (!force) throw new OutputError('detect synth: --out', out, `the folder is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); give a new folder, or --force to replace an earlier synth output`, 'EEXIST');
  const foreign = entries.filter((e) => e !== 'images' && e !== 'instances.json');
  if (foreign.length > 0) {
    throw new OutputError('detect synth: --out', out, `--force replaces only an earlier synth output (images/ and instances.json), but the folder also holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}; left it alone`);
  }
  return 'replace';
}

/**
 * Writes a synthetic COCO scene dataset (see the file comment): out/images/NNNNNN.png and
 * out/instances.json, all at once (a temp folder beside `out`, renamed at the end).
 * @example
 * const r = await writeSynthDataset({ out: 'synth-test', images: 500, seed: 1, split: 'test' });
 * console.log(`${r.images} scenes, ${r.annotations} boxes`);
 */
export async function writeSynthDataset(options: SynthOptions): Promise<SynthResult> {
  const t0 = performance.now();
  const images = intOption(options.images, 'images', 1, 1_000_000);
  const seed = intOption(options.seed ?? 0, 'seed', 0, 2 ** 32 - 1);
  const size = intOption(options.size ?? 320, 'size', 32, 4096);
  const maxObjects = intOption(options.maxObjects ?? 6, 'maxObjects', 1, 64);
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new InvalidArgumentError(`detect synth: split must be 'train' or 'test', got '${String(split)}'`);
  if (typeof options.out !== 'string' || options.out === '') throw new InvalidArgumentError('detect synth: out (the folder to write) is required');
  const out = resolve(options.out);
  const state = await checkOut(out, options.force === true);
  // Read before anything is created: a missing dataset leaves no folder behind.
  const items = await loadFashionMnist({ split, ...(options.data === undefined ? {} : { dir: options.data }) });
  const sharp = (await import('sharp')).default;
  const parent = dirname(out);
  try { await mkdir(parent, { recursive: true }); } catch (e) {
    throw new OutputError('detect synth: --out', out, `cannot create its parent folder: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  }

  let tmp: string;
  try { tmp = await mkdtemp(join(parent, `.${basename(out)}.tmp-`)); } catch (e) {
    throw new OutputError('detect synth: --out', out, `cannot create a temp folder beside it: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  }
  try {
    await mkdir(join(tmp, 'images'));
    const cocoImages: CocoImage[] = [];
    const annotations: CocoAnnotation[] = [];
    const perCategory = new Array<number>(11).fill(0);
    // Render on this thread, encode on libuv's (a few PNGs in flight).
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < images; i++) {
      const scene = renderScene(items, { seed, index: i, size, maxObjects, split });
      const fileName = `${String(i).padStart(6, '0')}.png`;
      cocoImages.push({ id: i + 1, file_name: fileName, width: size, height: size });
      for (const o of scene.objects) {
        annotations.push({
          id: annotations.length + 1, image_id: i + 1, category_id: o.categoryId, bbox: o.bbox, area: o.bbox[2] * o.bbox[3], iscrowd: 0,
          fmnist_index: o.item,
        });
        perCategory[o.categoryId]++;
      }
      const job = sharp(scene.rgb, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer()
        .then((png) => writeFile(join(tmp, 'images', fileName), png))
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const json: CocoJson = {
      info: { description: 'resnet-ts synthetic detection scenes: Fashion-MNIST items on textured backgrounds', generator: 'resnet detect synth', seed, split, size, max_objects: maxObjects },
      licenses: [],
      images: cocoImages,
      annotations,
      categories: synthCategories(),
    };
    writeFileAtomic(join(tmp, 'instances.json'), [new TextEncoder().encode(`${JSON.stringify(json)}\n`)], 'detect synth');
    if (state === 'empty') await rmdir(out);
    if (state === 'replace') {
      const old = `${tmp}.old`;
      await rename(out, old);
      try { await rename(tmp, out); } catch (e) {
        await rename(old, out).catch(() => {});
        throw e;
      }
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, out);
    }
    return { out, images, annotations: annotations.length, perCategory, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (e instanceof OutputError || e instanceof InvalidArgumentError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') throw new OutputError('detect synth: --out', out, `${(e as Error).message}; nothing was written`, code);
    throw e;
  }
}
