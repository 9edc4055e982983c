// Host box utilities and cell anchors against torchvision 0.14 on seeded random inputs
// (scripts/make_detect_fixtures.py boxes): nms, batched_nms on both of its CPU paths,
// box_iou, BoxCoder decode / encode, remove_small_boxes, clip_boxes_to_image, cell anchors;
// and topkIndices against a full sort.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateCellAnchors } from '../src/detect/anchors.js';
import {
  argsortDescending, batchedNms, boxIou, BoxCoder, clipBoxesToImage, nms, removeSmallBoxes, topkIndices,
} from '../src/detect/boxes.js';

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

test('topkIndices equals the head of a stable descending sort, ties included', () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let t = 0; t < 100; t++) {
    const n = 1 + Math.floor(rnd() * 2000), k = Math.floor(rnd() * (n + 3));
    const v = Float32Array.from({ length: n }, () => Math.round(rnd() * 40) / 8);
    assert.deepEqual(Array.from(topkIndices(v, k)), Array.from(argsortDescending(v).subarray(0, k)));
  }
});
