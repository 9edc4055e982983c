// `resnet detect predict` and `resnet detect eval` end to end through the compiled CLI: a
// small Faster R-CNN (resnet18-FPN, seeded weights saved as safetensors) on synthetic scenes.
// predict prints the agreed JSON with boxes inside each image; eval prints the 12 COCO
// numbers, and they are exactly what the COCO evaluator gives for predict's detections (the
// two commands agree); bad flags are one-line errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { setBackend } from '../src/backend/index.js';
import { writeSynthDataset } from '../src/detect/data/synth.js';
import { COCO_STAT_NAMES, evaluateCoco, toCocoDetections } from '../src/detect/eval/coco_eval.js';
import { createDetector } from '../src/detect/models.js';
import { saveWeights } from '../src/io/weights.js';
import { idxBytes, tempDir } from './helpers/data_files.js';
import { syntheticStateDict } from './helpers/synthetic_weights.js';

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const ARCH = 'fasterrcnn_resnet18_fpn';
const tmp = tempDir('resnet-detect-cli-');
after(() => tmp.remove());
let weights: string;
let data: string;

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 240_000 });
}

before(async () => {
  setBackend('reference');
  // Items: a bright blob per Fashion-MNIST-like item, 20 of them.
  const items = join(tmp.dir, 'fmnist');
  mkdirSync(items, { recursive: true });
  const img = new Uint8Array(20 * 784);
  for (let k = 0; k < 20; k++) for (let r = 4; r < 24; r++) for (let c = 6 + (k % 4); c < 22; c++) img[k * 784 + r * 28 + c] = 200;
  for (const p of ['train', 't10k']) {
    writeFileSync(join(items, `${p}-images-idx3-ubyte`), idxBytes([20, 28, 28], img));
    writeFileSync(join(items, `${p}-labels-idx1-ubyte`), idxBytes([20], Uint8Array.from({ length: 20 }, (_, k) => k % 10)));
  }
  data = join(tmp.dir, 'scenes');
  await writeSynthDataset({ out: data, images: 2, size: 64, seed: 3, data: items, split: 'test' });
  // Seeded weights with the detector's own keys (torchvision's names), and 91 COCO classes.
  const m = createDetector(ARCH);
  const keys = Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]] as [string, number[]]);
  m.loadStateDict(syntheticStateDict(keys, { 'roi_heads.box_predictor.cls_score.weight': 4 }));
  weights = join(tmp.dir, 'det.safetensors');
  saveWeights(weights, m.stateDict());
  m.dispose();
});

test('detect predict prints each image with its detections (boxes inside the image, scores in [0, 1], COCO names) and draws them with --out', async () => {
  const files = [join(data, 'images', '000000.png'), join(data, 'images', '000001.png')];
  const drawn = join(tmp.dir, 'drawn');
  const r = cli(['detect', 'predict', '--arch', ARCH, '--weights', weights, '--out', drawn, '--json', ...files]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { file: string; detections: { box: number[]; score: number; label: number; name: string }[] }[];
  assert.deepEqual(out.map((o) => o.file), files);
  for (const o of out) {
    for (const d of o.detections) {
      assert.ok(d.box[0] >= 0 && d.box[1] >= 0 && d.box[2] <= 64 && d.box[3] <= 64 && d.box[2] >= d.box[0] && d.box[3] >= d.box[1], JSON.stringify(d.box));
      assert.ok(d.score >= 0.05 && d.score <= 1);
      assert.ok(Number.isInteger(d.label) && d.label >= 1 && d.label <= 90 && typeof d.name === 'string');
    }
  }
  // The drawn images: the scene's size, and differing from the scene where a box was drawn.
  const html = readFileSync(join(drawn, 'index.html'), 'utf8');
  for (const [i, o] of out.entries()) {
    const name = `00000${i}.png`;
    assert.match(html, new RegExp(`<img src="${name}"[^>]*>\\s*<figcaption>[^<]*: ${o.detections.length} detection\\(s\\)`));
    const drawnPx = await sharp(join(drawn, name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const scenePx = await sharp(files[i]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([drawnPx.info.width, drawnPx.info.height], [64, 64]);
    const differ = drawnPx.data.some((v, k) => Math.abs(v - scenePx.data[k]) > 8);
    assert.equal(differ, o.detections.length > 0, `${name}: drawn pixels differ from the scene exactly when there are boxes`);
  }
  assert.ok(out.some((o) => o.detections.length > 0), 'something was drawn');
});

test('detect predict without --json prints a line per image and per detection; --score drops the lower scores', () => {
  const files = [join(data, 'images', '000000.png'), join(data, 'images', '000001.png')];
  const json = cli(['detect', 'predict', '--arch', ARCH, '--weights', weights, '--json', ...files]);
  assert.equal(json.status, 0, json.stderr);
  const all = JSON.parse(json.stdout) as { file: string; detections: { box: number[]; score: number; label: number; name: string }[] }[];
  const scores = all.flatMap((o) => o.detections.map((d) => d.score)).sort((a, b) => a - b);
  assert.ok(scores.length >= 2, 'the seeded detector detects something');
  const cut = (scores[0] + scores.at(-1)!) / 2;
  const text = cli(['detect', 'predict', '--arch', ARCH, '--weights', weights, '--score', String(cut), ...files]);
  assert.equal(text.status, 0, text.stderr);
  const want = all.map((o) => ({ ...o, detections: o.detections.filter((d) => d.score >= cut) }));
  const lines = want.flatMap((o) => [
    `${o.file}: ${o.detections.length} detection${o.detections.length === 1 ? '' : 's'}`,
    ...o.detections.map((d) => `  ${d.score.toFixed(4)}  ${d.name} (${d.label})  [${d.box.map((v) => v.toFixed(1)).join(', ')}]`),
  ]);
  assert.deepEqual(text.stdout.trimEnd().split('\n'), lines);
  assert.ok(lines.length < all.length + scores.length, '--score dropped the lowest detection');
});

test('detect eval prints the 12 COCO numbers, the same as evaluating predict\'s detections', () => {
  const r = cli(['detect', 'eval', '--arch', ARCH, '--weights', weights, '--data', data, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const stats = JSON.parse(r.stdout) as Record<string, number>;
  assert.deepEqual(Object.keys(stats), [...COCO_STAT_NAMES]);
  const gt = JSON.parse(readFileSync(join(data, 'instances.json'), 'utf8'));
  const p = cli(['detect', 'predict', '--arch', ARCH, '--weights', weights, '--json', ...gt.images.map((im: { file_name: string }) => join(data, 'images', im.file_name))]);
  const preds = JSON.parse(p.stdout) as { detections: { box: number[]; score: number; label: number }[] }[];
  const dets = preds.flatMap((o, i) => toCocoDetections(gt.images[i].id, {
    boxes: o.detections.flatMap((d) => d.box), scores: o.detections.map((d) => d.score), labels: o.detections.map((d) => d.label),
  }));
  assert.ok(dets.length > 0, 'the seeded detector detects something');
  const want = evaluateCoco(gt, dets).stats;
  for (const k of COCO_STAT_NAMES) assert.equal(stats[k], want[k], k);
  const text = cli(['detect', 'eval', '--arch', ARCH, '--weights', weights, '--data', data, '--limit', '1']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^ Average Precision {2}\(AP\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=100 \] = -?\d\.\d{3}$/m);
  assert.equal(text.stdout.trim().split('\n').length, 12);
});

test('bad detect flags are one-line errors naming the flag and what is valid', () => {
  const cases: [string[], RegExp][] = [
    [['detect', 'eval', '--arch', 'fasterrcnn_resnet7', '--weights', weights, '--data', data], /--arch: unknown detection arch 'fasterrcnn_resnet7'; valid: .*fasterrcnn_resnet50_fpn/],
    [['detect', 'eval', '--arch', ARCH, '--weights', weights, '--data', data, '--limit', '0'], /--limit must be an integer >= 1/],
    [['detect', 'eval', '--arch', ARCH, '--weights', weights, '--data', join(tmp.dir, 'nowhere')], /nowhere.*instances\.json/],
    [['detect', 'predict', '--arch', ARCH, '--weights', weights, '--score-thresh', '2', join(data, 'images', '000000.png')], /--score-thresh must be a number in \[0, 1\]/],
    [['detect', 'predict', '--arch', ARCH, '--weights', weights, '--score', '-1', join(data, 'images', '000000.png')], /--score must be a number in \[0, 1\]/],
    [['detect', 'predict', '--arch', ARCH, '--weights', weights, '--score', '0.5', '--score-thresh', '0.7', join(data, 'images', '000000.png')], /--score 0\.5 and --score-thresh 0\.7 disagree/],
    [['detect', 'predict', '--arch', ARCH, '--weights', weights, '--out', weights, join(data, 'images', '000000.png')], /--out .*det\.safetensors: is not a directory/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
