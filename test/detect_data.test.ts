// Detection data (issue 16): `resnet detect synth` scenes (deterministic per seed, valid
// COCO, train and test items apart), the strict COCO reader (each bad file a one-line
// DataError naming the file and the id, nothing written), the Pascal VOC reader on a tiny
// hand-written set, and the DetectionDataset (labels, flip, collate). Fashion-MNIST is
// replaced by small IDX files made here (rectangles), so no dataset package is needed.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { DataError } from '../src/errors.js';
import { loadCoco, type CocoJson } from '../src/detect/data/coco.js';
import { loadVoc, parseVocXml, vocToCoco } from '../src/detect/data/voc.js';
import { renderScene, writeSynthDataset } from '../src/detect/data/synth.js';
import { collateDetection, DetectionDataset, hflipSample } from '../src/detect/data/dataset.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from '../src/data/idx.js';
import { idxBytes, tempDir } from './helpers/data_files.js';

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const tmp = tempDir('resnet-detdata-');
after(() => tmp.remove());

/** Fashion-MNIST-like IDX files: item k is a 255 rectangle on black, its label from labelOf. */
function writeItems(dir: string): { nTrain: number; nTest: number; trainLabels: number[]; testLabels: number[] } {
  mkdirSync(dir, { recursive: true });
  const make = (prefix: string, n: number, labelOf: (k: number) => number): number[] => {
    const images = new Uint8Array(n * 784);
    for (let k = 0; k < n; k++) {
      const [r0, c0] = [2 + (k % 5), 3 + ((k * 3) % 7)];
      const [r1, c1] = [r0 + 8 + (k % 11), c0 + 6 + ((k * 5) % 9)];
      for (let r = r0; r <= Math.min(r1, 27); r++) for (let c = c0; c <= Math.min(c1, 27); c++) images[k * 784 + r * 28 + c] = 255;
    }
    const labels = Array.from({ length: n }, (_, k) => labelOf(k));
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idxBytes([n, 28, 28], images));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idxBytes([n], Uint8Array.from(labels)));
    return labels;
  };
  return { nTrain: 40, nTest: 15, trainLabels: make('train', 40, (k) => k % 10), testLabels: make('t10k', 15, (k) => (k * 3 + 1) % 10) };
}

const ITEMS_DIR = join(tmp.dir, 'fmnist');
const items = writeItems(ITEMS_DIR);

/** Every file under dir, with its size and mtime: to see that nothing was written. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else { const st = statSync(p); out.push(`${p} ${st.size} ${st.mtimeMs}`); }
    }
  };
  walk(dir);
  return out;
}

function filesOf(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  m.set('instances.json', readFileSync(join(dir, 'instances.json')));
  for (const f of readdirSync(join(dir, 'images'))) m.set(f, readFileSync(join(dir, 'images', f)));
  return m;
}

describe('detect synth', () => {
  const opts = { images: 6, size: 128, maxObjects: 5, data: ITEMS_DIR };

  test('same seed: byte-identical files; another seed: other scenes; valid COCO', async () => {
    const a = join(tmp.dir, 'synth-a'), b = join(tmp.dir, 'synth-b'), c = join(tmp.dir, 'synth-c');
    const ra = await writeSynthDataset({ ...opts, out: a, seed: 7 });
    await writeSynthDataset({ ...opts, out: b, seed: 7 });
    await writeSynthDataset({ ...opts, out: c, seed: 8 });
    const [fa, fb, fc] = [filesOf(a), filesOf(b), filesOf(c)];
    assert.deepEqual([...fa.keys()].sort(), ['000000.png', '000001.png', '000002.png', '000003.png', '000004.png', '000005.png', 'instances.json']);
    for (const [k, v] of fa) assert.ok(v.equals(fb.get(k)!), `${k} differs between two runs with seed 7`);
    for (const k of fa.keys()) if (k !== 'instances.json') assert.ok(!fa.get(k)!.equals(fc.get(k)!), `${k} is the same with seeds 7 and 8`);
    // No temp folder left beside the output.
    assert.deepEqual(readdirSync(tmp.dir).filter((n) => n.includes('.tmp-')), []);

    const json = JSON.parse(fa.get('instances.json')!.toString('utf8')) as CocoJson;
    assert.equal(ra.annotations, json.annotations.length);
    assert.deepEqual(json.categories.map((cat) => [cat.id, cat.name]), FASHION_MNIST_CLASSES.map((n, k) => [k + 1, n]));
    assert.equal(json.images.length, 6);
    const ids = new Set<number>();
    for (const an of json.annotations) {
      const [x, y, w, h] = an.bbox;
      assert.ok([x, y, w, h].every(Number.isInteger) && w > 0 && h > 0, `annotation ${an.id}: ${String(an.bbox)}`);
      assert.ok(x >= 0 && y >= 0 && x + w <= 128 && y + h <= 128, `annotation ${an.id} outside the 128x128 image: ${String(an.bbox)}`);
      assert.ok(w <= 112 && h <= 112);
      assert.equal(an.area, w * h);
      assert.equal(an.iscrowd, 0);
      assert.ok(an.category_id >= 1 && an.category_id <= 10);
      assert.ok(!ids.has(an.id)); ids.add(an.id);
      assert.ok(json.images.some((im) => im.id === an.image_id));
    }
    // It reads back through the strict reader, headers and all.
    const coco = await loadCoco(join(a, 'instances.json'));
    assert.equal(coco.images.length, 6);
    assert.equal(coco.dropped.length, 0);
  });

  test('train scenes use training items only, test scenes test items only', async () => {
    for (const split of ['train', 'test'] as const) {
      const out = join(tmp.dir, `synth-split-${split}`);
      await writeSynthDataset({ ...opts, images: 8, out, seed: 1, split });
      const json = JSON.parse(readFileSync(join(out, 'instances.json'), 'utf8')) as CocoJson;
      assert.equal((json.info as { split: string }).split, split);
      const [n, labels] = split === 'train' ? [items.nTrain, items.trainLabels] : [items.nTest, items.testLabels];
      assert.ok(json.annotations.length > 0);
      for (const an of json.annotations) {
        const k = an.fmnist_index as number;
        assert.ok(Number.isInteger(k) && k >= 0 && k < n, `${split}: item ${k} is not one of the ${n} ${split} items`);
        assert.equal(an.category_id, labels[k] + 1, `${split}: item ${k}'s category`);
      }
    }
  });

  test('a box is the tight box of the scaled item; overlaps are capped', () => {
    const n = 3;
    const full = { images: new Uint8Array(n * 784).fill(255), labels: Uint8Array.from([0, 4, 9]), n, channels: 1, height: 28, width: 28, classes: FASHION_MNIST_CLASSES };
    for (let index = 0; index < 20; index++) {
      const { objects, rgb } = renderScene(full, { seed: 3, index, size: 200, maxObjects: 6, split: 'train' });
      assert.equal(rgb.length, 200 * 200 * 3);
      assert.ok(objects.length >= 1);
      for (const [k, o] of objects.entries()) {
        const [x, y, w, h] = o.bbox;
        assert.equal(w, h, 'a square item gives a square box');
        assert.ok(w >= 24 && w <= 112, `side ${w}`);
        assert.ok(x >= 0 && y >= 0 && x + w <= 200 && y + h <= 200);
        for (const p of objects.slice(0, k)) {
          const iw = Math.min(x + w, p.bbox[0] + p.bbox[2]) - Math.max(x, p.bbox[0]);
          const ih = Math.min(y + h, p.bbox[1] + p.bbox[3]) - Math.max(y, p.bbox[1]);
          const inter = iw > 0 && ih > 0 ? iw * ih : 0;
          assert.ok(inter <= 0.5 * p.bbox[2] * p.bbox[3], 'a later object covers at most half of an earlier box');
          assert.ok(inter / (w * h + p.bbox[2] * p.bbox[3] - inter) <= 0.5, 'IoU <= 0.5');
        }
      }
    }
  });

  test('real Fashion-MNIST test items: a valid COCO folder that reads back', { skip: existsSync(FASHION_MNIST_DIR) ? false : `${FASHION_MNIST_DIR} is absent` }, async () => {
    const out = join(tmp.dir, 'synth-real');
    const r = await writeSynthDataset({ out, images: 4, seed: 2, split: 'test' });
    const coco = await loadCoco(join(out, 'instances.json'));
    assert.equal(coco.images.length, 4);
    assert.equal(coco.raw.annotations.length, r.annotations);
    assert.deepEqual(coco.images.map((im) => [im.width, im.height]), [[320, 320], [320, 320], [320, 320], [320, 320]]);
    const s = await new DetectionDataset(coco).get(3);
    assert.equal(s.image.length, 3 * 320 * 320);
    assert.equal(s.labels.length, coco.annotationsByImage.get(4)!.length);
  });

  test('CLI: --help lists the options; a non-empty --out is refused (nothing written) unless --force on an earlier output', () => {
    const help = execFileSync(process.execPath, [BIN, 'detect', 'synth', '--help'], { encoding: 'utf8' });
    for (const flag of ['--out', '--images', '--seed', '--size', '--split', '--max-objects', '--force']) assert.ok(help.includes(flag), `${flag} missing from --help`);
    const out = join(tmp.dir, 'synth-cli');
    const args = [BIN, 'detect', 'synth', '--out', out, '--images', '3', '--size', '96', '--data', ITEMS_DIR, '--json'];
    const r1 = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })) as { images: number; annotations: number };
    assert.equal(r1.images, 3);
    const before = snapshot(out);
    const again = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^resnet: detect synth: --out: cannot write .*synth-cli: the folder is not empty .*--force/);
    assert.equal(again.stderr.trim().split('\n').length, 1);
    assert.deepEqual(snapshot(out), before);
    const forced = spawnSync(process.execPath, [...args, '--force', '--seed', '5'], { encoding: 'utf8' });
    assert.equal(forced.status, 0, forced.stderr);
    assert.notDeepEqual(snapshot(out), before);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const foreign = spawnSync(process.execPath, [...args, '--force'], { encoding: 'utf8' });
    assert.equal(foreign.status, 1);
    assert.match(foreign.stderr, /--force replaces only an earlier synth output .*notes\.txt; left it alone/);
    assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'mine');
    const bad = spawnSync(process.execPath, [BIN, 'detect', 'synth', '--out', join(tmp.dir, 'x'), '--images', '0'], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--images must be an integer >= 1, got '0'/);
    const noData = spawnSync(process.execPath, [BIN, 'detect', 'synth', '--out', join(tmp.dir, 'sub', 'new'), '--images', '2', '--data', join(tmp.dir, 'nowhere')], { encoding: 'utf8' });
    assert.equal(noData.status, 1);
    assert.match(noData.stderr, /^resnet: .*fashion-mnist/i);
    assert.ok(!existsSync(join(tmp.dir, 'sub')), 'nothing created when the items cannot be read');
  });
});

/** A tiny valid COCO folder: two PNGs (16x12 and 20x10), categories 3 and 7. */
async function writeCoco(dir: string): Promise<{ file: string; json: CocoJson }> {
  mkdirSync(join(dir, 'images'), { recursive: true });
  // a.png: left half red, right half blue (to see the flip).
  const a = Buffer.alloc(16 * 12 * 3);
  for (let y = 0; y < 12; y++) for (let x = 0; x < 16; x++) a.set(x < 8 ? [255, 0, 0] : [0, 0, 255], (y * 16 + x) * 3);
  await sharp(a, { raw: { width: 16, height: 12, channels: 3 } }).png().toFile(join(dir, 'images', 'a.png'));
  await sharp(Buffer.alloc(20 * 10 * 3, 128), { raw: { width: 20, height: 10, channels: 3 } }).png().toFile(join(dir, 'images', 'b.png'));
  const json: CocoJson = {
    images: [{ id: 1, file_name: 'a.png', width: 16, height: 12 }, { id: 2, file_name: 'b.png', width: 20, height: 10 }],
    annotations: [
      { id: 10, image_id: 1, category_id: 7, bbox: [1, 2, 5, 4], area: 20, iscrowd: 0 },
      { id: 11, image_id: 1, category_id: 3, bbox: [8, 0, 8.4, 12], area: 100.8, iscrowd: 1, segmentation: { counts: [], size: [12, 16] } },
      { id: 12, image_id: 2, category_id: 3, bbox: [0, 0, 20, 10], area: 200, iscrowd: 0 },
    ],
    categories: [{ id: 3, name: 'three' }, { id: 7, name: 'seven' }],
  };
  const file = join(dir, 'instances.json');
  writeFileSync(file, JSON.stringify(json, null, 1));
  return { file, json };
}

describe('COCO reader', () => {
  test('reads a valid folder, raw dict kept', async () => {
    const { file, json } = await writeCoco(join(tmp.dir, 'coco-ok'));
    const coco = await loadCoco(file);
    assert.deepEqual(coco.raw, json);
    assert.equal(coco.imageDir, join(tmp.dir, 'coco-ok', 'images'));
    assert.deepEqual(coco.annotationsByImage.get(1)!.map((x) => x.id), [10, 11]);
  });

  type Case = [name: string, edit: (j: CocoJson) => unknown, pattern: RegExp, options?: { raw?: string; remove?: string }];
  const cases: Case[] = [
    ['malformed JSON', () => undefined, /malformed JSON: .*\(at offset 34: line 3, column 18\)/, { raw: '{\n "images": [],\n "annotations": [,]\n}' }],
    ['empty file', () => undefined, /malformed JSON: .*the file is empty/, { raw: '' }],
    ['missing section', (j) => { delete (j as Partial<CocoJson>).annotations; return j; }, /missing section "annotations"; a COCO detection file has "images", "annotations" and "categories"/],
    ['duplicate annotation id', (j) => { j.annotations[1].id = 10; return j; }, /annotation id 10: duplicate annotation id \(annotations\[1\]\)/],
    ['duplicate image id', (j) => { j.images[1].id = 1; return j; }, /image id 1: duplicate image id \(images\[1\]\)/],
    ['duplicate category id', (j) => { j.categories[1].id = 3; return j; }, /category id 3: duplicate category id/],
    ['zero width (x2 <= x1)', (j) => { j.annotations[0].bbox = [5, 2, 0, 4]; return j; }, /annotation id 10 \(image id 1, 16x12\): bbox \[5,2,0,4\] \[x, y, w, h\]: x2 = 5 <= x1 = 5 .*valid boxes have w > 0, h > 0/],
    ['negative height', (j) => { j.annotations[2].bbox = [0, 5, 4, -1]; return j; }, /annotation id 12 .*y2 = 4 <= y1 = 5/],
    ['box past the image', (j) => { j.annotations[0].bbox = [10, 2, 8, 4]; return j; }, /annotation id 10 .*x2 = 18 is past the image width 16 \(by more than 1 px\)/],
    ['box left of the image', (j) => { j.annotations[2].bbox = [-3, 0, 5, 5]; return j; }, /annotation id 12 .*x1 = -3 is left of the image/],
    ['unknown category', (j) => { j.annotations[1].category_id = 5; return j; }, /annotation id 11: unknown category_id 5; valid: 3, 7/],
    ['unknown image id', (j) => { j.annotations[2].image_id = 9; return j; }, /annotation id 12: image_id 9 is not the id of an image/],
    ['bbox of 3 numbers', (j) => { (j.annotations[0] as { bbox: number[] }).bbox = [1, 2, 3]; return j; }, /annotation id 10: "bbox" must be 4 finite numbers \[x, y, w, h\], got \[1,2,3\]/],
    ['iscrowd 2', (j) => { (j.annotations[0] as { iscrowd: number }).iscrowd = 2; return j; }, /annotation id 10: "iscrowd" must be 0 or 1/],
    ['file_name escaping the folder', (j) => { j.images[1].file_name = '../b.png'; return j; }, /image id 2: "file_name" must be a relative path inside the image folder/],
    ['file_name with a newline', (j) => { j.images[0].file_name = 'a\n.png'; return j; }, /image id 1: "file_name" must be a relative path .*got "a\\n\.png"/],
    ['two images, one file', (j) => { j.images[1].file_name = './a.png'; return j; }, /image id 2: file_name "\.\/a\.png" is also image id 1's/],
    ['missing image file', (j) => j, /image id 2: .*b\.png does not exist \(1 of 2 image files missing\)/, { remove: 'b.png' }],
    ['size disagreeing with the file', (j) => { j.images[1].width = 21; return j; }, /image id 2: the annotation says 21x10 \(width x height\) but .*b\.png is 20x10/],
    ['not an image', (j) => j, /image id 2: .*b\.png is not a recognised image; accepted formats: jpeg, png, webp/, { remove: 'b.png>text' }],
  ];
  for (const [name, edit, pattern, extra] of cases) {
    test(`${name}: a one-line DataError naming the file and the id, nothing written`, async () => {
      const dir = join(tmp.dir, `coco-${name.replace(/\W+/g, '-')}`);
      const { file, json } = await writeCoco(dir);
      if (extra?.raw !== undefined) writeFileSync(file, extra.raw);
      else writeFileSync(file, JSON.stringify(edit(structuredClone(json))));
      if (extra?.remove === 'b.png') execFileSync('rm', [join(dir, 'images', 'b.png')]);
      if (extra?.remove === 'b.png>text') writeFileSync(join(dir, 'images', 'b.png'), 'hello');
      const before = snapshot(dir);
      await assert.rejects(loadCoco(file), (e: Error) => {
        assert.ok(e instanceof DataError, `expected a DataError, got ${e.name}: ${e.message}`);
        assert.ok(e.message.startsWith(`${file}: `), e.message);
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      });
      assert.deepEqual(snapshot(dir), before);
    });
  }

  test("invalidBoxes: 'drop' clips boxes and drops the empty ones, as torchvision's reference", async () => {
    const dir = join(tmp.dir, 'coco-drop');
    const { file, json } = await writeCoco(dir);
    json.annotations[0].bbox = [5, 2, 0, 4]; // empty: dropped
    json.annotations[2].bbox = [-3, 0, 5, 5]; // past the left border: clipped to [0, 0, 2, 5]
    writeFileSync(file, JSON.stringify(json));
    const coco = await loadCoco(file, { invalidBoxes: 'drop' });
    assert.deepEqual(coco.dropped.map((d) => d.annotationId), [10]);
    assert.deepEqual(coco.annotationsByImage.get(1)!.map((a) => a.id), [11]);
    const t = new DetectionDataset(coco).target(1);
    assert.deepEqual([...t.boxes], [0, 0, 2, 5]);
  });
});

const VOC_XML = (objects: string, size = '<size><width>20</width><height>10</height><depth>3</depth></size>') => `<annotation>
  <folder>VOC2007</folder>
  <filename>000001.jpg</filename>
  ${size}
  ${objects}
</annotation>`;

describe('Pascal VOC reader', () => {
  const root = join(tmp.dir, 'voc');
  test('reads a tiny set: 1-based bndbox to continuous boxes, difficult and truncated', async () => {
    mkdirSync(join(root, 'Annotations'), { recursive: true });
    mkdirSync(join(root, 'JPEGImages'), { recursive: true });
    mkdirSync(join(root, 'ImageSets', 'Main'), { recursive: true });
    writeFileSync(join(root, 'Annotations', '000001.xml'), VOC_XML(`
      <object><name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
        <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>10</ymax></bndbox></object>
      <object><name>person</name><difficult>1</difficult>
        <bndbox><xmin>3</xmin><ymin>2.5</ymin><xmax>7</xmax><ymax>6</ymax></bndbox></object>`));
    writeFileSync(join(root, 'Annotations', '000002.xml'), VOC_XML('').replace('000001.jpg', '000002.jpg'));
    writeFileSync(join(root, 'ImageSets', 'Main', 'train.txt'), '000001\n000002\n');
    for (const id of ['000001', '000002']) {
      await sharp(Buffer.alloc(20 * 10 * 3, 90), { raw: { width: 20, height: 10, channels: 3 } }).jpeg().toFile(join(root, 'JPEGImages', `${id}.jpg`));
    }
    const voc = await loadVoc(root, { split: 'train' });
    assert.deepEqual(voc.ids, ['000001', '000002']);
    const [a, b] = voc.images;
    assert.equal(a.objects.length, 2);
    assert.deepEqual(a.objects[0], { name: 'dog', bndbox: { xmin: 1, ymin: 1, xmax: 20, ymax: 10 }, box: [0, 0, 20, 10], difficult: false, truncated: true });
    assert.deepEqual(a.objects[1], { name: 'person', bndbox: { xmin: 3, ymin: 2.5, xmax: 7, ymax: 6 }, box: [2, 1.5, 7, 6], difficult: true, truncated: false });
    assert.equal(b.objects.length, 0);
    const coco = vocToCoco(voc);
    assert.deepEqual(coco.raw.annotations.map((x) => [x.category_id, x.bbox, x.difficult]), [[12, [0, 0, 20, 10], 0], [15, [2, 1.5, 5, 4.5], 1]]);
    const s = await new DetectionDataset(coco).get(0);
    assert.deepEqual([...s.boxes], [0, 0, 20, 10, 2, 1.5, 7, 6]);
    assert.deepEqual([...s.labels], [12, 15]);
  });

  const bad: [string, string, RegExp][] = [
    ['malformed XML', '<annotation><filename>a.jpg</filename><size>\n<width>2</width></annotation>', /malformed XML: .*\(line \d+, column \d+\)/],
    ['unknown class', VOC_XML('<object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>'), /object 0: unknown class <name> 'unicorn'; valid: aeroplane, bicycle/],
    ['xmax < xmin', VOC_XML('<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object><object><name>cat</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>7</xmax><ymax>2</ymax></bndbox></object>'),
      /object 1 \('cat'\): <bndbox> xmin 9 ymin 1 xmax 7 ymax 2 \(1-based\) in a 20x10 image: x2 = 7 <= x1 = 8/],
    ['box past the image', VOC_XML('<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>25</xmax><ymax>2</ymax></bndbox></object>'), /object 0 \('cat'\): .*x2 = 25 is past the image width 20/],
    ['missing field', VOC_XML('<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><ymax>2</ymax></bndbox></object>'), /object 0 <bndbox>: missing <xmax>/],
    ['non-numeric field', VOC_XML('<object><name>cat</name><bndbox><xmin>one</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>'), /object 0 <bndbox>: <xmin> must be a number, got 'one'/],
    ['bad difficult', VOC_XML('<object><name>cat</name><difficult>yes</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>'), /object 0: <difficult> must be 0 or 1, got 'yes'/],
    ['missing size', VOC_XML('', ''), /missing <size>/],
    ['not VOC', '<html><body/></html>', /expected an <annotation> root element/],
    ['nested too deep', `<annotation>${'<a>'.repeat(20000)}${'</a>'.repeat(20000)}</annotation>`, /cannot parse the XML: /],
    ['filename escaping the folder', VOC_XML('').replace('000001.jpg', '../x\n.jpg'), /<filename> must be a file name inside JPEGImages\/, got "\.\.\/x\\n\.jpg"/],
  ];
  for (const [name, xml, pattern] of bad) {
    test(`${name}: a one-line DataError naming the XML file and the object`, () => {
      assert.throws(() => parseVocXml(xml, 'Annotations/000009.xml'), (e: Error) => {
        assert.ok(e instanceof DataError, `${e.name}: ${e.message}`);
        assert.ok(e.message.startsWith('Annotations/000009.xml: '), e.message);
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    });
  }

  test('a missing image or annotation names the file', async () => {
    writeFileSync(join(root, 'ImageSets', 'Main', 'val.txt'), '000001\n000003\n');
    await assert.rejects(loadVoc(root, { split: 'val' }), /Annotations\/000003\.xml: cannot read the annotation of image '000003' .*does not exist/);
    await assert.rejects(loadVoc(root, { split: 'nope' }), /ImageSets\/Main\/nope\.txt: cannot read the 'nope' split list: does not exist/);
    const gone = join(tmp.dir, 'voc-gone');
    execFileSync('cp', ['-r', root, gone]);
    execFileSync('rm', [join(gone, 'JPEGImages', '000002.jpg')]);
    await assert.rejects(loadVoc(gone, { split: 'train' }), /Annotations\/000002\.xml: .*JPEGImages\/000002\.jpg does not exist/);
  });
});

describe('DetectionDataset', () => {
  test('float RGB in [0, 1], xyxy boxes, contiguous labels, flip mirrors image and boxes, list collate', async () => {
    const { file } = await writeCoco(join(tmp.dir, 'coco-ds'));
    const coco = await loadCoco(file);
    const ds = new DetectionDataset(coco);
    assert.equal(ds.length, 2);
    assert.deepEqual(ds.classes, ['__background__', 'three', 'seven']);
    assert.deepEqual([...ds.labelMap], [[3, 1], [7, 2]]);
    const s = await ds.get(0);
    assert.equal(s.flipped, false);
    assert.deepEqual([s.height, s.width, s.image.length], [12, 16, 3 * 12 * 16]);
    // Channel-planar: R plane is 1 on the left half, B plane on the right.
    assert.equal(s.image[0], 1); assert.equal(s.image[15], 0);
    assert.equal(s.image[2 * 192], 0); assert.equal(s.image[2 * 192 + 15], 1);
    assert.deepEqual([...s.boxes], [1, 2, 6, 6, 8, 0, 16, 12]); // the second clipped from 16.4 to the width
    assert.deepEqual([...s.labels], [2, 1]);
    assert.deepEqual([...s.categoryIds], [7, 3]);
    assert.deepEqual([...s.iscrowd], [0, 1]);
    assert.equal(s.imageId, 1);

    const f = await new DetectionDataset(coco, { hflip: 1 }).get(0);
    assert.equal(f.flipped, true);
    assert.deepEqual([...f.boxes], [10, 2, 15, 6, 0, 0, 8, 12]);
    assert.equal(f.image[0], 0); assert.equal(f.image[15], 1);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 12; y++) for (let x = 0; x < 16; x++) {
      assert.equal(f.image[c * 192 + y * 16 + x], s.image[c * 192 + y * 16 + 15 - x]);
    }
    const twice = hflipSample(f);
    assert.deepEqual([...twice.boxes], [...s.boxes]);
    assert.deepEqual(twice.image, s.image);

    // hflip 0.5: seeded per (seed, epoch, i), repeatable.
    const half = new DetectionDataset(coco, { hflip: 0.5, seed: 3 });
    const draws = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((e) => half.get(0, e).then((x) => x.flipped)));
    assert.deepEqual(await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((e) => half.get(0, e).then((x) => x.flipped))), draws);
    assert.ok(draws.includes(true) && draws.includes(false), String(draws));

    const batch = collateDetection([s, await ds.get(1)]);
    assert.deepEqual(batch.sizes, [[12, 16], [10, 20]]);
    assert.equal(batch.images.length, 2);
    assert.deepEqual([...batch.targets[1].boxes], [0, 0, 20, 10]);
    assert.deepEqual([...batch.targets[1].labels], [1]);

    const cat = new DetectionDataset(coco, { labels: 'category' });
    assert.deepEqual([...(await cat.get(0)).labels], [7, 3]);
    assert.equal(cat.classes.length, 8);
    assert.throws(() => new DetectionDataset(coco, { hflip: 2 }), /hflip must be a probability in \[0, 1\], got 2/);
    assert.throws(() => ds.target(2), /index 2 out of range 0\.\.1/);
  });
});
