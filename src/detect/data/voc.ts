// Pascal VOC detection annotations: ROOT/Annotations/ID.xml, ROOT/JPEGImages/, and the split
// lists ROOT/ImageSets/Main/SPLIT.txt (one image id a line). Each object has a name, a
// bndbox, difficult and truncated flags. Read strictly: every problem is a one-line
// DataError naming the XML file, the object's index and the field.
// Coordinates: VOC writes 1-based, inclusive pixel indices (xmin = 1 is the first column,
// xmax = width the last). `box` is the continuous [x1, y1, x2, y2] = [xmin - 1, ymin - 1,
// xmax, ymax] (pixel i covering [i - 1, i)), as Detectron2's data/datasets/pascal_voc.py;
// `bndbox` keeps the file's numbers for the VOC evaluator (its +1 widths).

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { DataError } from '../../errors.js';
import { printable } from './json_text.js';
import { BOX_TOLERANCE, checkBoxInImage, checkImageFiles, safeRelativePath, type CocoAnnotation, type CocoDataset, type CocoImage, type CocoJson } from './coco.js';

/**
 * The 20 Pascal VOC classes, in the order of the devkit (category ids 1..20 in vocToCoco).
 * @example VOC_CLASSES.indexOf('person')  // 14
 */
export const VOC_CLASSES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
];

/** @example const o: VocObject = (await loadVoc('VOC2007')).images[0].objects[0]; console.log(o.name, o.box, o.difficult); */
export interface VocObject {
  name: string;
  /** As written in the file: 1-based inclusive pixel indices. */
  bndbox: { xmin: number; ymin: number; xmax: number; ymax: number };
  /** Continuous [x1, y1, x2, y2] = [xmin - 1, ymin - 1, xmax, ymax]. */
  box: [number, number, number, number];
  difficult: boolean;
  truncated: boolean;
}

/** One parsed annotation file. @example const a: VocAnnotation = (await loadVoc('VOC2007')).images[0]; */
export interface VocAnnotation {
  /** The XML file (for errors). */
  file: string;
  /** <filename>: the image's name in JPEGImages/. */
  filename: string;
  width: number;
  height: number;
  depth: number;
  objects: VocObject[];
}

/** @example const voc = await loadVoc('VOC2007', { split: 'test' } satisfies VocOptions); */
export interface VocOptions {
  /** ImageSets/Main/SPLIT.txt; default 'trainval'. */
  split?: string;
  /** Class names (default VOC_CLASSES); an object named otherwise is an error. */
  classes?: readonly string[];
  /** Look for every image and compare its header's size with the XML's (default true). */
  checkImages?: boolean;
  /** Image formats accepted (default jpeg, png, webp). */
  formats?: readonly string[];
}

/** @example const voc: VocDataset = await loadVoc('VOC2007'); */
export interface VocDataset {
  root: string;
  split: string;
  classes: string[];
  imageDir: string;
  /** Image ids in split order, and their annotations. */
  ids: string[];
  images: VocAnnotation[];
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false, // numbers are checked here, with the field named
  trimValues: true,
  isArray: (name, path) => path === 'annotation.object',
});

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses one VOC annotation XML (`file` names it in errors; nothing is read from disk).
 * @example
 * const xml = '<annotation><filename>1.jpg</filename><size><width>9</width><height>9</height></size></annotation>';
 * const a = parseVocXml(xml, 'Annotations/1.xml');
 * a.objects.filter((o) => !o.difficult).map((o) => o.box);
 */
export function parseVocXml(text: string, file: string, classes: readonly string[] = VOC_CLASSES): VocAnnotation {
  const fail = (what: string): never => { throw new DataError(`${file}: ${printable(what)}`); };
  let doc: Node;
  try {
    const valid = XMLValidator.validate(text);
    if (valid !== true) fail(`malformed XML: ${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`);
    doc = parser.parse(text) as Node;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${file}: cannot parse the XML: ${printable((e as Error).message)}`, { cause: e });
  }
  const ann = doc.annotation;
  if (!isNode(ann)) fail('expected an <annotation> root element (Pascal VOC)');
  const a = ann as Node;
  const text1 = (node: Node, key: string, where: string): string => {
    const v = node[key];
    if (v === undefined) fail(`${where}: missing <${key}>`);
    if (typeof v !== 'string') fail(`${where}: <${key}> must hold text, got an element or a list`);
    return v as string;
  };
  const int = (node: Node, key: string, where: string, min: number): number => {
    const s = text1(node, key, where);
    const v = Number(s);
    if (s === '' || !Number.isInteger(v) || v < min) fail(`${where}: <${key}> must be an integer >= ${min}, got '${s}'`);
    return v;
  };
  // VOC 2012 writes some coordinates as decimals (e.g. 273.5): any finite number.
  const num = (node: Node, key: string, where: string): number => {
    const s = text1(node, key, where);
    const v = Number(s);
    if (s === '' || !Number.isFinite(v)) fail(`${where}: <${key}> must be a number, got '${s}'`);
    return v;
  };
  const flag = (node: Node, key: string, where: string): boolean => {
    if (node[key] === undefined) return false;
    const s = text1(node, key, where);
    if (s !== '0' && s !== '1') fail(`${where}: <${key}> must be 0 or 1, got '${s}'`);
    return s === '1';
  };
  const filename = text1(a, 'filename', '<annotation>');
  if (safeRelativePath(filename) === null) fail(`<filename> must be a file name inside JPEGImages/, got ${JSON.stringify(filename)}`);
  if (!isNode(a.size)) fail('missing <size> with <width>, <height>, <depth>');
  const size = a.size as Node;
  const width = int(size, 'width', '<size>', 1);
  const height = int(size, 'height', '<size>', 1);
  const depth = size.depth === undefined ? 3 : int(size, 'depth', '<size>', 1);
  const objects = ((a.object ?? []) as unknown[]).map((o, k): VocObject => {
    const where = `object ${k}`;
    if (!isNode(o)) fail(`${where}: <object> must hold <name> and <bndbox>`);
    const obj = o as Node;
    const name = text1(obj, 'name', where);
    if (!classes.includes(name)) fail(`${where}: unknown class <name> '${name}'; valid: ${classes.join(', ')}`);
    if (!isNode(obj.bndbox)) fail(`${where} ('${name}'): missing <bndbox> with <xmin>, <ymin>, <xmax>, <ymax>`);
    const bb = obj.bndbox as Node;
    const bndbox = { xmin: num(bb, 'xmin', `${where} <bndbox>`), ymin: num(bb, 'ymin', `${where} <bndbox>`), xmax: num(bb, 'xmax', `${where} <bndbox>`), ymax: num(bb, 'ymax', `${where} <bndbox>`) };
    const box: [number, number, number, number] = [bndbox.xmin - 1, bndbox.ymin - 1, bndbox.xmax, bndbox.ymax];
    const why = checkBoxInImage(box, width, height);
    if (why !== null) {
      fail(`${where} ('${name}'): <bndbox> xmin ${bndbox.xmin} ymin ${bndbox.ymin} xmax ${bndbox.xmax} ymax ${bndbox.ymax} (1-based) in a ${width}x${height} image: ` +
        `${why}; valid: 1 <= xmin <= xmax <= width, 1 <= ymin <= ymax <= height (within ${BOX_TOLERANCE} px)`);
    }
    return { name, bndbox, box, difficult: flag(obj, 'difficult', where), truncated: flag(obj, 'truncated', where) };
  });
  return { file, filename, width, height, depth, objects };
}

async function readText(path: string, what: string): Promise<string> {
  try { return await readFile(path, 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(`${path}: cannot read ${what}: ${code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`, { cause: e });
  }
}

/**
 * Reads a VOC split: the ids of ImageSets/Main/SPLIT.txt, each Annotations/ID.xml, and
 * (unless checkImages: false) each image's existence and header size.
 * @example
 * const voc = await loadVoc('VOCdevkit/VOC2007', { split: 'test' });
 * const coco = vocToCoco(voc);  // then a DetectionDataset over it
 */
export async function loadVoc(root: string, options: VocOptions = {}): Promise<VocDataset> {
  const split = options.split ?? 'trainval';
  const classes = [...(options.classes ?? VOC_CLASSES)];
  const listFile = join(root, 'ImageSets', 'Main', `${split}.txt`);
  const ids = (await readText(listFile, `the '${split}' split list`)).split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]).filter((l) => l !== '');
  ids.forEach((id, k) => {
    if (safeRelativePath(id) === null || id.includes('/')) throw new DataError(`${listFile}: line ${k + 1}: '${printable(id)}' is not an image id (a file name without folders)`);
  });
  if (ids.length === 0) throw new DataError(`${listFile}: lists no image ids; expected one id a line`);
  const images: VocAnnotation[] = [];
  for (const id of ids) {
    const file = join(root, 'Annotations', `${id}.xml`);
    images.push(parseVocXml(await readText(file, `the annotation of image '${id}' (listed in ${listFile})`), file, classes));
  }
  const imageDir = join(root, 'JPEGImages');
  if (options.checkImages ?? true) {
    try { await stat(imageDir); } catch { throw new DataError(`${imageDir}: does not exist; a VOC folder holds Annotations/, JPEGImages/ and ImageSets/Main/`); }
    const asCoco = images.map((a, k): CocoImage => ({ id: k + 1, file_name: a.filename, width: a.width, height: a.height }));
    await checkImageFiles(asCoco, imageDir, listFile, options.formats, (im) => images[im.id - 1].file);
  }
  return { root, split, classes, imageDir, ids, images };
}

/**
 * The VOC split as a COCO dataset (category ids 1..K in `classes` order, image ids 1..N in
 * split order, bbox [x1, y1, x2 - x1, y2 - y1] of the continuous box; difficult objects kept
 * with `difficult: 1` as an extra field), for DetectionDataset.
 * @example const ds = new DetectionDataset(vocToCoco(await loadVoc('VOC2007')));
 */
export function vocToCoco(voc: VocDataset): CocoDataset {
  let annId = 0;
  const images: CocoImage[] = voc.images.map((a, k) => ({ id: k + 1, file_name: a.filename, width: a.width, height: a.height }));
  const annotations: CocoAnnotation[] = voc.images.flatMap((a, k) => a.objects.map((o): CocoAnnotation => {
    const [x1, y1, x2, y2] = o.box;
    return { id: ++annId, image_id: k + 1, category_id: voc.classes.indexOf(o.name) + 1, bbox: [x1, y1, x2 - x1, y2 - y1], area: (x2 - x1) * (y2 - y1), iscrowd: 0, difficult: o.difficult ? 1 : 0 };
  }));
  const raw: CocoJson = { images, annotations, categories: voc.classes.map((name, k) => ({ id: k + 1, name })) };
  const annotationsByImage = new Map<number, CocoAnnotation[]>(images.map((im) => [im.id, []]));
  for (const a of annotations) annotationsByImage.get(a.image_id)!.push(a);
  return { file: join(voc.root, 'ImageSets', 'Main', `${voc.split}.txt`), imageDir: voc.imageDir, raw, images, categories: raw.categories, annotationsByImage, dropped: [] };
}
