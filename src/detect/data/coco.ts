// COCO object-detection annotations (`instances.json` + an image folder), read strictly:
// every image, annotation and category is checked, every image file is looked for and its
// header read before anything is returned, and the first problem is a one-line DataError
// naming the JSON file, the image / annotation / category id and what is valid. Loading
// never writes. `raw` keeps the parsed dict as it was (the COCO evaluator works on it).
// Box convention (COCO's): bbox [x, y, w, h] in continuous pixel coordinates, (0, 0) the
// top-left corner of the top-left pixel; boxes for training are [x1, y1, x2, y2] = [x, y,
// x + w, y + h] clipped to the image, as torchvision's references/detection/coco_utils.py.
// NOTE: torchvision's reference silently drops boxes with x2 <= x1 or y2 <= y1; we refuse
// them (and boxes past the image by more than BOX_TOLERANCE) unless `invalidBoxes: 'drop'`.

import { open, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { DataError, InvalidArgumentError } from '../../errors.js';
import { parseJsonText, printable } from './json_text.js';
import { DEFAULT_IMAGE_FORMATS, parseFormats, sharpFormatName, sniffFormat, SNIFF_BYTES, type ImageFormat } from '../../data/image_format.js';

/**
 * How far (in pixels) a box may pass the image's border and still be accepted (then clipped).
 * COCO's boxes come from polygons drawn on pixel corners and stored as floats, so a few of
 * them pass the border by a fraction of a pixel; one pixel allows that and nothing more.
 * @example BOX_TOLERANCE  // 1: a box up to 1 px past the border is clipped, farther is refused
 */
export const BOX_TOLERANCE = 1;

/** @example const img: CocoImage = { id: 1, file_name: '000000.png', width: 320, height: 320 }; */
export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  [key: string]: unknown;
}

/** @example const a: CocoAnnotation = { id: 1, image_id: 1, category_id: 3, bbox: [10, 20, 30, 40], area: 1200, iscrowd: 0 }; */
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** [x, y, w, h], continuous pixel coordinates. */
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0 | 1;
  /** Polygons or RLE; kept in `raw`, not used here. */
  segmentation?: unknown;
  [key: string]: unknown;
}

/** @example const c: CocoCategory = { id: 1, name: 'T-shirt/top' }; */
export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
  [key: string]: unknown;
}

/** A COCO annotation file's top level (`info`, `licenses` and others kept as they are). @example const j: CocoJson = { images: [], annotations: [], categories: [{ id: 1, name: 'cat' }] }; */
export interface CocoJson {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  [key: string]: unknown;
}

/** @example const coco = await loadCoco('synth/instances.json', { invalidBoxes: 'drop', checkImages: false } satisfies CocoOptions); */
export interface CocoOptions {
  /** Folder the `file_name`s are relative to; default `images/` beside the JSON if it exists, else the JSON's folder. */
  imageDir?: string;
  /** 'error' (default): a degenerate box or one past the image is a DataError. 'drop': boxes are clipped to the image and those left empty (w or h <= 0) are left out of `annotationsByImage` (listed in `dropped`), as torchvision's reference does. */
  invalidBoxes?: 'error' | 'drop';
  /** Look for every image file and compare its header's size with the JSON's (default true). */
  checkImages?: boolean;
  /** Image formats accepted, told from the first bytes (default jpeg, png, webp). */
  formats?: readonly string[];
}

/** @example const coco = await loadCoco('synth/instances.json'); const anns: CocoAnnotation[] = coco.annotationsByImage.get(coco.images[0].id) ?? []; */
export interface CocoDataset {
  /** The annotation file. */
  file: string;
  /** The folder image paths are resolved in. */
  imageDir: string;
  /** The parsed JSON, unchanged (for the COCO evaluator). */
  raw: CocoJson;
  /** Images in file order. */
  images: CocoImage[];
  /** Categories in file order. */
  categories: CocoCategory[];
  /** The kept annotations of each image id (every image has an entry, maybe empty). */
  annotationsByImage: Map<number, CocoAnnotation[]>;
  /** Annotations left out by `invalidBoxes: 'drop'`, with why. */
  dropped: { annotationId: number; reason: string }[];
}

/** A parsed JSON value, before it is checked. */
type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: Json): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * A box in the image? Returns null when valid, else why not (one phrase). [x1, y1, x2, y2]
 * continuous coordinates; `tolerance` pixels past the border are allowed.
 * @example checkBoxInImage([0, 0, 10, 10], 8, 8)  // 'x2 = 10 is past the image width 8 (by more than 1 px)'
 */
export function checkBoxInImage(box: readonly number[], width: number, height: number, tolerance = BOX_TOLERANCE): string | null {
  const [x1, y1, x2, y2] = box;
  if (!(x2 > x1)) return `x2 = ${x2} <= x1 = ${x1} (a box needs a positive width)`;
  if (!(y2 > y1)) return `y2 = ${y2} <= y1 = ${y1} (a box needs a positive height)`;
  if (x1 < -tolerance) return `x1 = ${x1} is left of the image (by more than ${tolerance} px)`;
  if (y1 < -tolerance) return `y1 = ${y1} is above the image (by more than ${tolerance} px)`;
  if (x2 > width + tolerance) return `x2 = ${x2} is past the image width ${width} (by more than ${tolerance} px)`;
  if (y2 > height + tolerance) return `y2 = ${y2} is past the image height ${height} (by more than ${tolerance} px)`;
  return null;
}

/**
 * A relative path that stays inside its folder (normalised), or null.
 * @example safeRelativePath('../etc/passwd')  // null
 */
export function safeRelativePath(name: string): string | null {
  if (name === '' || /[\x00-\x1f\x7f]/.test(name) || isAbsolute(name)) return null;
  const n = normalize(name);
  if (n === '..' || n.startsWith(`..${sep}`)) return null;
  return n;
}

const isInt = (v: Json): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: Json): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Validates a parsed COCO dict (no file access); returns it typed. `file` names it in errors.
 * @example const json = checkCocoJson(JSON.parse('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "cat"}]}'), 'instances.json');
 */
export function checkCocoJson(data: Json, file: string): CocoJson {
  const fail = (what: string): never => { throw new DataError(`${file}: ${printable(what)}`); };
  if (!isObject(data)) fail(`expected a JSON object with "images", "annotations" and "categories", got ${Array.isArray(data) ? 'an array' : show(data)}`);
  const top = data as Record<string, Json>;
  for (const k of ['images', 'annotations', 'categories']) {
    if (!(k in top)) fail(`missing section "${k}"; a COCO detection file has "images", "annotations" and "categories" arrays`);
    if (!Array.isArray(top[k])) fail(`"${k}" must be an array, got ${show(top[k])}`);
  }
  const images = top.images as Json[];
  const annotations = top.annotations as Json[];
  const categories = top.categories as Json[];

  const categoryIds = new Set<number>();
  categories.forEach((c, k) => {
    if (!isObject(c)) fail(`categories[${k}] must be an object {id, name}, got ${show(c)}`);
    const o = c as Record<string, Json>;
    const at = isInt(o.id) ? `category id ${o.id}` : `categories[${k}]`;
    if (!isInt(o.id)) fail(`${at}: "id" must be an integer, got ${show(o.id)}`);
    if (typeof o.name !== 'string' || o.name === '') fail(`${at}: "name" must be a non-empty string, got ${show(o.name)}`);
    if (categoryIds.has(o.id as number)) fail(`${at}: duplicate category id (categories[${k}]); ids must be unique`);
    categoryIds.add(o.id as number);
  });
  if (categoryIds.size === 0) fail('"categories" is empty; at least one category {id, name} is needed');

  const imageSizes = new Map<number, [number, number]>();
  const fileNames = new Map<string, number>();
  images.forEach((im, k) => {
    if (!isObject(im)) fail(`images[${k}] must be an object {id, file_name, width, height}, got ${show(im)}`);
    const o = im as Record<string, Json>;
    const at = isInt(o.id) ? `image id ${o.id}` : `images[${k}]`;
    if (!isInt(o.id)) fail(`${at}: "id" must be an integer, got ${show(o.id)}`);
    if (imageSizes.has(o.id as number)) fail(`${at}: duplicate image id (images[${k}]); ids must be unique`);
    if (typeof o.file_name !== 'string' || safeRelativePath(o.file_name) === null) {
      fail(`${at}: "file_name" must be a relative path inside the image folder (no "..", not absolute), got ${show(o.file_name)}`);
    }
    const name = safeRelativePath(o.file_name as string)!;
    if (fileNames.has(name)) fail(`${at}: file_name ${show(o.file_name)} is also image id ${fileNames.get(name)}'s; each image needs its own file`);
    fileNames.set(name, o.id as number);
    for (const key of ['width', 'height']) {
      if (!isInt(o[key]) || (o[key] as number) < 1) fail(`${at}: "${key}" must be a positive integer, got ${show(o[key])}`);
    }
    imageSizes.set(o.id as number, [o.width as number, o.height as number]);
  });

  const annotationIds = new Set<number>();
  annotations.forEach((an, k) => {
    if (!isObject(an)) fail(`annotations[${k}] must be an object {id, image_id, category_id, bbox, area, iscrowd}, got ${show(an)}`);
    const o = an as Record<string, Json>;
    const at = isInt(o.id) ? `annotation id ${o.id}` : `annotations[${k}]`;
    if (!isInt(o.id)) fail(`${at}: "id" must be an integer, got ${show(o.id)}`);
    if (annotationIds.has(o.id as number)) fail(`${at}: duplicate annotation id (annotations[${k}]); ids must be unique`);
    annotationIds.add(o.id as number);
    if (!isInt(o.image_id) || !imageSizes.has(o.image_id)) fail(`${at}: image_id ${show(o.image_id)} is not the id of an image in "images"`);
    if (!isInt(o.category_id) || !categoryIds.has(o.category_id)) {
      fail(`${at}: unknown category_id ${show(o.category_id)}; valid: ${[...categoryIds].sort((a, b) => a - b).join(', ')}`);
    }
    const bbox = o.bbox;
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(isNum)) fail(`${at}: "bbox" must be 4 finite numbers [x, y, w, h], got ${show(bbox)}`);
    if (!isNum(o.area) || o.area < 0) fail(`${at}: "area" must be a finite number >= 0, got ${show(o.area)}`);
    if (o.iscrowd !== 0 && o.iscrowd !== 1) fail(`${at}: "iscrowd" must be 0 or 1, got ${show(o.iscrowd)}`);
  });
  return data as CocoJson;
}

/**
 * [x1, y1, x2, y2] of a COCO [x, y, w, h].
 * @example xywhToXyxy([10, 20, 30, 40])  // [10, 20, 40, 60]
 */
export function xywhToXyxy(b: readonly number[]): [number, number, number, number] {
  return [b[0], b[1], b[0] + b[2], b[1] + b[3]];
}

/**
 * A box [x1, y1, x2, y2] clipped to a width x height image (torchvision's clip_boxes_to_image).
 * @example clipBox([-0.5, 2, 33, 9], 32, 32)  // [0, 2, 32, 9]
 */
export function clipBox(b: readonly number[], width: number, height: number): [number, number, number, number] {
  const c = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  return [c(b[0], width), c(b[1], height), c(b[2], width), c(b[3], height)];
}

/** The first bytes of a file, or null when it is missing / not a regular file. */
async function head(path: string): Promise<Uint8Array | 'missing' | 'not a file'> {
  let st;
  try { st = await stat(path); } catch { return 'missing'; }
  if (!st.isFile()) return 'not a file';
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Checks that every image exists (all looked for first, so the error says how many are
 * missing), is of an accepted format, and that its header's size equals the JSON's.
 * `label` names the annotation file in errors. Reads headers only (sharp metadata).
 * @example await checkImageFiles([{ id: 1, file_name: 'a.png', width: 32, height: 32 }], 'images', 'instances.json');
 */
export async function checkImageFiles(images: readonly CocoImage[], imageDir: string, label: string, formatsIn?: readonly string[],
  nameOf: (im: CocoImage) => string = (im) => `${label}: image id ${im.id}`): Promise<void> {
  const formats: readonly ImageFormat[] = formatsIn === undefined ? DEFAULT_IMAGE_FORMATS : parseFormats(formatsIn);
  const heads = await mapLimit(images, 8, (im) => head(join(imageDir, im.file_name)));
  const missing = images.filter((_, k) => typeof heads[k] === 'string');
  if (missing.length > 0) {
    const im = missing[0];
    const k = images.indexOf(im);
    throw new DataError(`${nameOf(im)}: ${join(imageDir, im.file_name)} ${heads[k] === 'missing' ? 'does not exist' : 'is not a regular file'}` +
      ` (${missing.length} of ${images.length} image files missing${missing.length > 1 ? `, also ${missing.slice(1, 4).map((m) => m.file_name).join(', ')}${missing.length > 4 ? ', ...' : ''}` : ''})`);
  }
  const sharp = (await import('sharp')).default;
  await mapLimit(images, 4, async (im, k) => {
    const path = join(imageDir, im.file_name);
    const found = sniffFormat(heads[k] as Uint8Array);
    if (found === null || found === 'svg' || !formats.includes(found)) {
      throw new DataError(`${nameOf(im)}: ${path} is ${found === null ? 'not a recognised image' : `a ${found} file`}; accepted formats: ${formats.join(', ')}`);
    }
    let meta;
    try { meta = await sharp(path, { limitInputPixels: false }).metadata(); } catch (e) {
      throw new DataError(`${nameOf(im)}: ${path}: cannot read the image header (${(e as Error).message.split('\n')[0]})`, { cause: e });
    }
    if (meta.format !== sharpFormatName(found)) throw new DataError(`${nameOf(im)}: ${path} starts like ${found} but reads as ${String(meta.format)}`);
    if (meta.width !== im.width || meta.height !== im.height) {
      throw new DataError(`${nameOf(im)}: the annotation says ${im.width}x${im.height} (width x height) but ${path} is ${meta.width}x${meta.height}`);
    }
  });
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, k: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => { while (next < items.length) { const k = next++; out[k] = await fn(items[k], k); } };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function isDir(p: string): Promise<boolean> {
  try { return (await stat(p)).isDirectory(); } catch { return false; }
}

/**
 * A COCO folder as the CLI names it: a folder holding `instances.json` (and `images/`), or the
 * annotation file itself (its images beside it). Returns the file loadCoco reads.
 * @example const coco = await loadCocoFolder('synth-test');  // synth-test/instances.json
 */
export async function loadCocoFolder(path: string): Promise<CocoDataset> {
  return path.endsWith('.json') ? loadCoco(path, { imageDir: dirname(path) }) : loadCoco(join(path, 'instances.json'));
}

/**
 * Reads and checks a COCO `instances.json` and its images (see the file comment).
 * @example
 * const coco = await loadCoco('synth/instances.json');  // images in synth/images/
 * console.log(coco.images.length, coco.categories.map((c) => c.name));
 */
export async function loadCoco(file: string, options: CocoOptions = {}): Promise<CocoDataset> {
  const invalidBoxes = options.invalidBoxes ?? 'error';
  if (invalidBoxes !== 'error' && invalidBoxes !== 'drop') throw new InvalidArgumentError(`loadCoco: invalidBoxes must be 'error' or 'drop', got '${String(invalidBoxes)}'`);
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(`${file}: cannot read the COCO annotation file: ${code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory, expected instances.json' : (e as Error).message}`, { cause: e });
  }
  const raw = checkCocoJson(parseJsonText(text, file), file);
  const beside = join(dirname(file), 'images');
  const imageDir = options.imageDir ?? ((await isDir(beside)) ? beside : dirname(file));
  const sizes = new Map(raw.images.map((im) => [im.id, im] as const));
  const annotationsByImage = new Map<number, CocoAnnotation[]>(raw.images.map((im) => [im.id, []]));
  const dropped: CocoDataset['dropped'] = [];
  for (const a of raw.annotations) {
    const im = sizes.get(a.image_id)!;
    const box = xywhToXyxy(a.bbox);
    const why = checkBoxInImage(box, im.width, im.height);
    if (why !== null) {
      if (invalidBoxes === 'error') {
        throw new DataError(`${file}: annotation id ${a.id} (image id ${a.image_id}, ${im.width}x${im.height}): bbox ${show(a.bbox)} [x, y, w, h]: ${why}; ` +
          `valid boxes have w > 0, h > 0 and lie inside the image (within ${BOX_TOLERANCE} px); invalidBoxes: 'drop' leaves such boxes out`);
      }
      // torchvision's reference: clip to the image, then drop what is empty.
      const [x1, y1, x2, y2] = clipBox(box, im.width, im.height);
      if (!(x2 > x1 && y2 > y1)) {
        dropped.push({ annotationId: a.id, reason: why });
        continue;
      }
    }
    annotationsByImage.get(a.image_id)!.push(a);
  }
  if (options.checkImages ?? true) await checkImageFiles(raw.images, imageDir, file, options.formats);
  return { file, imageDir, raw, images: raw.images, categories: raw.categories, annotationsByImage, dropped };
}
