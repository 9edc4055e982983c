// Host box utilities and cell anchors against torchvision 0.14 on seeded random inputs
// (scripts/make_detect_fixtures.py boxes): nms, batched_nms on both of its CPU paths,
// box_iou, BoxCoder decode / encode, remove_small_boxes, clip_boxes_to_image, cell anchors;
// and topkIndices against a full sort.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { backendByName } from '../src/backend/index.js';
import { generateCellAnchors } from '../src/detect/anchors.js';
import {
  argsortDescending, batchedNms, boxIou, BoxCoder, clipBoxesToImage, nms, removeSmallBoxes, topkIndices,
} from '../src/detect/boxes.js';

const BACKENDS = [backendByName('native'), backendByName('reference')];
const FX = JSON.parse(readFileSync(new URL('./fixtures/detect/boxes.json', import.meta.url), 'utf8'));
const f32 = (a: number[]) => Float32Array.from(a);

function close(got: ArrayLike<number>, want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

test('nms and batchedNms keep what torchvision keeps (coordinate trick and per-class paths)', () => {
  for (const key of ['nms300', 'nms1100']) {
    const c = FX[key];
    assert.deepEqual(Array.from(nms(f32(c.boxes), f32(c.scores), 0.5)), c.keep, `${key} nms`);
    assert.deepEqual(Array.from(batchedNms(f32(c.boxes), f32(c.scores), Int32Array.from(c.idxs), 0.5)), c.batched, `${key} batched_nms`);
  }
  assert.deepEqual(Array.from(batchedNms(new Float32Array(0), new Float32Array(0), new Int32Array(0), 0.5)), []);
});

/** torchvision's nms_kernel.cpp as written: every kept box against every later one. */
function allPairsNms(boxes: Float32Array, scores: Float32Array, thr: number): number[] {
  const f = Math.fround;
  const n = scores.length;
  const order = argsortDescending(scores);
  const area = (i: number) => f(f(boxes[4 * i + 2] - boxes[4 * i]) * f(boxes[4 * i + 3] - boxes[4 * i + 1]));
  const sup = new Uint8Array(n);
  const keep: number[] = [];
  for (let a = 0; a < n; a++) {
    const i = order[a];
    if (sup[i]) continue;
    keep.push(i);
    for (let b = a + 1; b < n; b++) {
      const j = order[b];
      if (sup[j]) continue;
      const xx1 = Math.max(boxes[4 * i], boxes[4 * j]), yy1 = Math.max(boxes[4 * i + 1], boxes[4 * j + 1]);
      const xx2 = Math.min(boxes[4 * i + 2], boxes[4 * j + 2]), yy2 = Math.min(boxes[4 * i + 3], boxes[4 * j + 3]);
      const inter = f(Math.max(0, f(xx2 - xx1)) * Math.max(0, f(yy2 - yy1)));
      if (f(inter / f(f(area(i) + area(j)) - inter)) > thr) sup[j] = 1;
    }
  }
  return keep;
}

test('nms on both backends (native C++; the reference through a grid of near boxes) keeps what the all-pairs loop keeps', () => {
  let s = 7;
  const r = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  for (let trial = 0; trial < 60; trial++) {
    const n = [1, 2, 50, 65, 300, 2000][trial % 6];
    const span = [20, 200, 2000][trial % 3];
    const boxes = new Float32Array(4 * n), scores = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const big = r() < 0.05, w = big ? r() * span : 1 + r() * span / 8, h = big ? r() * span : 1 + r() * span / 8;
      const x = r() * span, y = r() * span;
      boxes.set([x, y, x + w, y + h], 4 * i);
      if (r() < 0.02) boxes.set([x, y, x - w, y + h], 4 * i); // negative width
      if (r() < 0.02) boxes.set(boxes.subarray(4 * (i >> 1), 4 * (i >> 1) + 4), 4 * i); // a duplicate
      if (trial % 10 === 9 && r() < 0.01) boxes[4 * i + 2] = Number.NaN;
      scores[i] = trial % 7 === 3 ? Math.round(r() * 4) / 4 : r(); // ties on some trials
    }
    for (const thr of [0, 0.3, 0.7, 1]) {
      const want = allPairsNms(boxes, scores, thr);
      for (const b of BACKENDS) assert.deepEqual(Array.from(nms(boxes, scores, thr, b)), want, `${b.name}: trial ${trial}, ${n} boxes, threshold ${thr}`);
    }
  }
  const two = f32([0, 0, 10, 10, 20, 20, 30, 30]);
  for (const b of BACKENDS) {
    assert.deepEqual(Array.from(nms(two, f32([0.9, 0.8]), -0.5, b)), [0], `${b.name}: a threshold below 0 drops even disjoint boxes`);
    // NaN scores sort last, ties in index order, on both backends.
    assert.deepEqual(Array.from(nms(f32([0, 0, 1, 1, 5, 5, 6, 6, 10, 10, 11, 11, 20, 20, 21, 21]), f32([Number.NaN, 0.5, 0.9, 0.5]), 0.5, b)), [2, 1, 3, 0], `${b.name}: NaN last`);
    assert.deepEqual(Array.from(nms(new Float32Array(0), new Float32Array(0), 0.5, b)), [], `${b.name}: no boxes`);
  }
  assert.throws(() => nms(two, f32([0.9]), 0.5), /nms: 2 boxes but 1 scores/);
  assert.throws(() => nms(two, f32([0.9, 0.8]), Number.NaN), /nms: iouThreshold must be a number/);
});

test('boxIou, BoxCoder, removeSmallBoxes, clipBoxesToImage equal torchvision', () => {
  close(boxIou(f32(FX.iou.a), f32(FX.iou.b)), FX.iou.iou, 1e-7, 'box_iou');
  const coder = new BoxCoder([10, 10, 5, 5]);
  const dec = coder.decode(f32(FX.coder.codes), f32(FX.coder.boxes));
  close(dec, FX.coder.decoded, 1e-6, 'decode');
  const first = new Float32Array(20 * 4);
  for (let i = 0; i < 20; i++) first.set(dec.subarray(8 * i, 8 * i + 4), 4 * i);
  close(coder.encode(first, f32(FX.coder.boxes)), FX.coder.encoded, 1e-5, 'encode');
  assert.deepEqual(Array.from(removeSmallBoxes(f32(FX.small.boxes), 1e-2)), FX.small.keep);
  assert.deepEqual(Array.from(clipBoxesToImage(f32(FX.small.boxes), [7, 9])), Array.from(f32(FX.small.clipped)));
  assert.throws(() => nms(f32([0, 0, 1]), f32([1]), 0.5), /nms: boxes must be a Float32Array of 4 numbers per box/);
});

test('cell anchors are torchvision\'s (rounded half to even)', () => {
  assert.deepEqual(Array.from(generateCellAnchors([32, 64, 128, 256, 512], [0.5, 1, 2])), FX.cellAnchors[0]);
  assert.deepEqual(Array.from(generateCellAnchors([20, 45.5], [0.3, 1.7])), FX.cellAnchors[1]);
});

test('argsortDescending is a stable descending sort: ties in their given order, -0 as +0, NaN last, any values', () => {
  let seed = 11;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  // The judge: a stable comparator sort of the positions (Array.prototype.sort is stable).
  const judge = (s: ArrayLike<number>, idx: number[]) => idx
    .map((i, pos) => ({ i, pos, v: s[i] }))
    .sort((a, b) => (Number.isNaN(a.v) ? (Number.isNaN(b.v) ? a.pos - b.pos : 1) : Number.isNaN(b.v) ? -1 : b.v - a.v || a.pos - b.pos))
    .map((e) => e.i);
  const special = [0, -0, Infinity, -Infinity, Number.NaN, 3.4e38, -3.4e38, 1e-45, -1e-45];
  for (let t = 0; t < 60; t++) {
    const n = 1 + Math.floor(rnd() * 3000);
    const v = Float32Array.from({ length: n }, () => (rnd() < 0.1 ? special[Math.floor(rnd() * special.length)] : Math.round((rnd() - 0.5) * 40) / 8));
    const all = Array.from({ length: n }, (_, i) => i);
    assert.deepEqual(Array.from(argsortDescending(v)), judge(v, all), `trial ${t}`);
    // A subset in a shuffled order: ties keep that order, not the indices' own.
    const some = all.filter(() => rnd() < 0.5).sort(() => rnd() - 0.5);
    assert.deepEqual(Array.from(argsortDescending(v, some)), judge(v, some), `trial ${t}, listed indices`);
    // Values that are not float32 (a plain array of doubles) sort the same way.
    const doubles = Array.from(v, (x) => x + rnd() * 1e-9);
    assert.deepEqual(Array.from(argsortDescending(doubles, some)), judge(doubles, some), `trial ${t}, doubles`);
  }
});

test('topkIndices equals the head of a stable descending sort, ties included', () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let t = 0; t < 100; t++) {
    const n = 1 + Math.floor(rnd() * 2000), k = Math.floor(rnd() * (n + 3));
    const v = Float32Array.from({ length: n }, () => Math.round(rnd() * 40) / 8);
    assert.deepEqual(Array.from(topkIndices(v, k)), Array.from(argsortDescending(v).subarray(0, k)));
  }
});
