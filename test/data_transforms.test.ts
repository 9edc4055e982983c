// Transforms: the PIL resize and torchvision's size rules against fixtures from Debian's
// Pillow/torchvision (scripts/make_data_fixtures.py), sharp's decoding against PIL's, and
// the properties of the random transforms (placement, exact flips, hand-computed
// normalisation, erasing bounds), plus the fused fast path equal to the general one.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  applyTransforms, centerCrop, centerCropOffsets, computeStats, cropImage, decodeImage, normalize, Random,
  randomCrop, randomErasing, randomHorizontalFlip, randomResizedCrop, randomResizedCropBox, resize, resizeBilinear,
  resizeOutputSize, roundHalfEven, subtractMeanImage, transformedShape, type ArrayDataset, type ImageRecord, type Transform,
} from '../src/data/index.js';
import { fusedShape, planFused } from '../src/data/fused.js';
import { assembleBatch } from '../src/data/pipeline.js';
import { hwcToChw, lcgBytes } from './helpers/data_files.js';

interface OutEntry { shape: number[]; sha256: string; b64?: string }
interface Case {
  op: string; seed: number; mode: 'RGB' | 'L'; width: number; height: number; out: OutEntry;
  size?: number | [number, number]; resize?: number; crop?: number; resized_shape?: number[]; box?: number[];
  mean?: number[]; std?: number[];
}
const fixtures = JSON.parse(readFileSync(new URL('./fixtures/data/resize.json', import.meta.url), 'utf8')) as {
  pil: string; torchvision: string; cases: Case[]; decodes: { name: string; file_b64: string; out: OutEntry }[];
};

/** The fixture's input image, rebuilt from its LCG seed, as uint8 CHW. */
function input(c: Case): ImageRecord {
  const C = c.mode === 'RGB' ? 3 : 1;
  const hwc = lcgBytes(c.seed, c.width * c.height * C);
  return { data: hwcToChw(hwc, C, c.height, c.width), channels: C, height: c.height, width: c.width };
}

const sha = (b: Uint8Array | Float32Array): string =>
  createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');

/** Compares with the fixture; on failure says how many values differ and by how much. */
function assertBytes(got: ImageRecord, want: OutEntry, what: string): void {
  assert.deepEqual([got.channels, got.height, got.width], want.shape, `${what}: shape`);
  if (sha(got.data) === want.sha256) return;
  let detail = '';
  if (want.b64 !== undefined) {
    const w = Buffer.from(want.b64, 'base64');
    let n = 0;
    let worst = 0;
    for (let i = 0; i < w.length; i++) if (w[i] !== got.data[i]) { n++; worst = Math.max(worst, Math.abs(w[i] - got.data[i])); }
    detail = `: ${n} of ${w.length} values differ, worst by ${worst}`;
  }
  assert.fail(`${what}: differs from PIL ${fixtures.pil}${detail}`);
}

const ones = (C: number, H: number, W: number, f: (c: number, y: number, x: number) => number): ImageRecord => {
  const data = new Uint8Array(C * H * W);
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[(c * H + y) * W + x] = f(c, y, x);
  return { data, channels: C, height: H, width: W };
};

describe('PIL resize and torchvision size rules (fixtures)', () => {
  for (const c of fixtures.cases) {
    test(`${c.op} ${c.mode} ${c.width}x${c.height} (seed ${c.seed})`, () => {
      const img = input(c);
      if (c.op === 'resize') {
        const [h, w] = c.size as [number, number];
        assertBytes(resizeBilinear(img, h, w), c.out, 'resize');
      } else if (c.op === 'resize_center_crop') {
        const [h, w] = resizeOutputSize(img.height, img.width, c.resize!);
        assert.deepEqual([img.channels, h, w], c.resized_shape, 'Resize output size');
        const r = resizeBilinear(img, h, w);
        const [top, left] = centerCropOffsets(h, w, c.crop!, c.crop!);
        assertBytes(cropImage(r, top, left, c.crop!, c.crop!), c.out, 'resize + centre crop');
        // Through the transform list too: floats are the same bytes / 255.
        const f = applyTransforms(img, [resize(c.resize!), centerCrop(c.crop!)], new Random(0));
        const u8 = Uint8Array.from(f.data, (v) => Math.round(v * 255));
        assertBytes({ ...f, data: u8 }, c.out, 'applyTransforms');
      } else if (c.op === 'resized_crop') {
        const [i, j, h, w] = c.box!;
        const s = c.size as number;
        assertBytes(resizeBilinear(cropImage(img, i, j, h, w), s, s), c.out, 'resized_crop');
      } else if (c.op === 'eval_pipeline') {
        const f = applyTransforms(img, [resize(c.resize!), centerCrop(c.crop!), normalize(c.mean!, c.std!)], new Random(0));
        assert.deepEqual([f.channels, f.height, f.width], c.out.shape);
        if (sha(f.data) !== c.out.sha256) {
          const want = new Float32Array(new Uint8Array(Buffer.from(c.out.b64!, 'base64')).buffer);
          let worst = 0;
          for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(want[k] - f.data[k]));
          assert.fail(`eval pipeline differs from torchvision ${fixtures.torchvision}, worst by ${worst}`);
        }
      } else {
        assert.fail(`unknown fixture op ${c.op}`);
      }
    });
  }

  test('size rules: long side truncated, centre offsets half to even', () => {
    assert.deepEqual(resizeOutputSize(683, 1024, 256), [256, 383]); // rounding would give 384
    assert.deepEqual(resizeOutputSize(1024, 683, 256), [383, 256]);
    assert.deepEqual(resizeOutputSize(10, 10, [3, 4]), [3, 4]);
    assert.deepEqual(centerCropOffsets(224, 341, 224, 224), [0, 58]); // 58.5 -> 58, Math.round says 59
    assert.deepEqual(centerCropOffsets(227, 343, 224, 224), [2, 60]); // 1.5 -> 2, 59.5 -> 60
    assert.deepEqual([roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5), roundHalfEven(-0.5), roundHalfEven(2.4)], [0, 2, 2, -0, 2]);
    assert.deepEqual(transformedShape([resize(256), centerCrop(224)], 3, 683, 1024), [3, 224, 224]);
  });
});

describe('decoding agrees with PIL convert("RGB")', () => {
  for (const d of fixtures.decodes) {
    test(d.name, async () => {
      const img = await decodeImage(Buffer.from(d.file_b64, 'base64'), {}, d.name);
      assertBytes(img, d.out, d.name);
    });
  }
});

describe('random transforms', () => {
  test('randomCrop with padding keeps the size and places the original in the zero-padded frame', () => {
    const img = ones(2, 6, 5, (c, y, x) => 1 + c * 100 + y * 10 + x); // no zero pixel
    const pad = 2;
    const offsets = new Set<string>();
    for (let s = 0; s < 200; s++) {
      const out = applyTransforms(img, [randomCrop([6, 5], { padding: pad })], new Random(s));
      assert.deepEqual([out.channels, out.height, out.width], [2, 6, 5]);
      // Find where pixel (0,0,0) of the original went: the crop's top-left is (pad - dy, pad - dx).
      let dy = NaN;
      let dx = NaN;
      for (let y = 0; y < 6 && Number.isNaN(dy); y++) for (let x = 0; x < 5; x++) if (Math.round(out.data[y * 5 + x] * 255) === 1) { dy = y; dx = x; break; }
      const top = Number.isNaN(dy) ? null : pad - dy;
      const left = Number.isNaN(dx) ? null : pad - dx;
      // Every output pixel is the padded image's pixel at (y + top - pad, x + left - pad).
      for (let t = 0; t <= 2 * pad; t++) {
        for (let l = 0; l <= 2 * pad; l++) {
          if ((top !== null && t !== top) || (left !== null && l !== left)) continue;
          let ok = true;
          for (let c = 0; c < 2 && ok; c++) for (let y = 0; y < 6 && ok; y++) for (let x = 0; x < 5 && ok; x++) {
            const sy = y + t - pad;
            const sx = x + l - pad;
            const want = sy >= 0 && sy < 6 && sx >= 0 && sx < 5 ? img.data[(c * 6 + sy) * 5 + sx] : 0;
            ok = Math.round(out.data[(c * 6 + y) * 5 + x] * 255) === want;
          }
          if (ok) offsets.add(`${t},${l}`);
        }
      }
    }
    // All 25 placements occur, and each output matched one of them.
    assert.equal(offsets.size, (2 * pad + 1) ** 2);
    const cifar = applyTransforms(ones(3, 32, 32, () => 7), [randomCrop(32, { padding: 4 })], new Random(3));
    assert.deepEqual([cifar.channels, cifar.height, cifar.width], [3, 32, 32]);
  });

  test('horizontal flip is an exact mirror; p = 0 and p = 1 are certain; p = 0.5 flips about half', () => {
    const img = ones(3, 4, 7, (c, y, x) => c * 50 + y * 9 + x);
    const f = applyTransforms(img, [randomHorizontalFlip(1)], new Random(1));
    for (let c = 0; c < 3; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 7; x++) {
      assert.equal(f.data[(c * 4 + y) * 7 + x], Math.fround(img.data[(c * 4 + y) * 7 + 6 - x] / 255));
    }
    assert.deepEqual(applyTransforms(img, [randomHorizontalFlip(0)], new Random(1)).data, Float32Array.from(img.data, (v) => v / 255));
    assert.deepEqual(applyTransforms(img, [randomHorizontalFlip(1), randomHorizontalFlip(1)], new Random(1)).data, Float32Array.from(img.data, (v) => v / 255));
    let flips = 0;
    for (let s = 0; s < 1000; s++) if (applyTransforms(img, [randomHorizontalFlip()], new Random(s)).data[0] !== Math.fround(img.data[0] / 255)) flips++;
    assert.ok(flips > 430 && flips < 570, `${flips} flips of 1000`);
  });

  test('normalize against hand values (float32, as torchvision)', () => {
    const img: ImageRecord = { data: Uint8Array.from([0, 128, 255, 10, 20, 30]), channels: 2, height: 1, width: 3 };
    const out = applyTransforms(img, [normalize([0.5, 0.25], [0.25, 0.5])], new Random(0));
    const f = Math.fround;
    const want = [0, 128, 255].map((v) => f(f(f(v / 255) - 0.5) / 0.25)).concat([10, 20, 30].map((v) => f(f(f(v / 255) - 0.25) / 0.5)));
    assert.deepEqual(Array.from(out.data), want);
    assert.equal(out.data[0], -2);
    assert.equal(out.data[2], 2);
    assert.ok(Math.abs(out.data[1] - (128 / 255 - 0.5) / 0.25) < 1e-6);
    assert.throws(() => applyTransforms(ones(3, 1, 1, () => 0), [normalize([0.5, 0.5], [1, 1])], new Random(0)), /normalize: 2 means for an image of 3 channels/);
  });

  test('random erasing: a rectangle of value 0 within torchvision bounds, the rest untouched', () => {
    const H = 32;
    const W = 32;
    const img = ones(3, H, W, () => 200);
    let erased = 0;
    for (let s = 0; s < 400; s++) {
      const out = applyTransforms(img, [randomErasing()], new Random(s));
      let minY = H; let maxY = -1; let minX = W; let maxX = -1; let count = 0;
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        const v = out.data[y * W + x];
        if (v === 0) { count++; minY = Math.min(minY, y); maxY = Math.max(maxY, y); minX = Math.min(minX, x); maxX = Math.max(maxX, x); } else assert.equal(v, Math.fround(200 / 255));
      }
      if (count === 0) continue;
      erased++;
      const h = maxY - minY + 1;
      const w = maxX - minX + 1;
      assert.equal(count, h * w, 'a filled rectangle');
      for (let c = 1; c < 3; c++) for (let y = minY; y <= maxY; y++) for (let x = minX; x <= maxX; x++) assert.equal(out.data[(c * H + y) * W + x], 0, 'every channel');
      assert.ok(h < H && w < W, 'smaller than the image');
      // Area within scale (0.02, 0.33) up to the rounding of h and w; aspect within (0.3, 3.3) likewise.
      const area = (h * w) / (H * W);
      assert.ok(area > 0.02 * 0.8 && area < 0.33 * 1.2, `area ${area}`);
      assert.ok(h / w > 0.3 * 0.7 && h / w < 3.3 / 0.7, `aspect ${h / w}`);
    }
    assert.ok(erased > 150 && erased < 250, `${erased} of 400 erased with p = 0.5`);
    const never = applyTransforms(img, [randomErasing({ p: 0 })], new Random(1));
    assert.ok(never.data.every((v) => v === Math.fround(200 / 255)));
  });

  test('randomResizedCrop: output size, box inside the image, full box equals resize', () => {
    const img = ones(3, 30, 40, (c, y, x) => (c * 31 + y * 7 + x * 3) & 255);
    for (let s = 0; s < 100; s++) {
      const rng = new Random(s);
      const [i, j, h, w] = randomResizedCropBox(30, 40, [0.08, 1], [3 / 4, 4 / 3], rng);
      assert.ok(i >= 0 && j >= 0 && h >= 1 && w >= 1 && i + h <= 30 && j + w <= 40, `box ${[i, j, h, w]}`);
      const out = applyTransforms(img, [randomResizedCrop(16)], new Random(s));
      assert.deepEqual([out.channels, out.height, out.width], [3, 16, 16]);
    }
    const whole = applyTransforms(img, [randomResizedCrop([15, 20], { scale: [1, 1], ratio: [4 / 3, 4 / 3] })], new Random(5));
    const ref = resizeBilinear(img, 15, 20);
    assert.deepEqual(Array.from(whole.data), Array.from(ref.data, (v) => Math.fround(v / 255)));
    assert.throws(() => applyTransforms(img, [normalize([0], [1]), resize(8)], new Random(0)), /resize: works on uint8 images; put it before normalize/);
  });

  test('centre crop larger than the image pads with zeros as torchvision', () => {
    const img = ones(1, 3, 3, () => 255);
    const out = applyTransforms(img, [centerCrop([5, 6])], new Random(0));
    // torchvision pads left (6-3)//2 = 1, right 2, top 1, bottom 1.
    const rows = Array.from({ length: 5 }, (_, y) => Array.from(out.data.subarray(y * 6, y * 6 + 6)).join(''));
    assert.deepEqual(rows, ['000000', '011100', '011100', '011100', '000000']);
  });

  test('per-pixel mean: computeStats by hand, subtracted before a padded crop the padding is the mean', () => {
    const images = Uint8Array.from([0, 10, 20, 30, /* image 2 */ 100, 110, 120, 130]);
    const ds: ArrayDataset = { images, labels: Uint8Array.from([0, 1]), n: 2, channels: 1, height: 2, width: 2, classes: ['a', 'b'] };
    const stats = computeStats(ds);
    assert.deepEqual(Array.from(stats.meanImage), [50, 60, 70, 80].map((v) => Math.fround(v / 255)));
    assert.ok(Math.abs(stats.mean[0] - 65 / 255) < 1e-12);
    const sd = Math.sqrt([0, 10, 20, 30, 100, 110, 120, 130].reduce((a, v) => a + (v - 65) ** 2, 0) / 8) / 255;
    assert.ok(Math.abs(stats.std[0] - sd) < 1e-12);
    const out = applyTransforms({ data: images.subarray(0, 4), channels: 1, height: 2, width: 2 },
      [subtractMeanImage(stats), randomCrop(2, { padding: 1 })], new Random(2));
    const centred = [0, 10, 20, 30].map((v, k) => Math.fround(Math.fround(v / 255) - stats.meanImage[k]));
    for (const v of out.data) assert.ok(v === 0 || centred.includes(v), `${v} is a centred pixel or padding`);
  });
});

describe('fused fast path', () => {
  test('gives the same batches as the general path, bit for bit', () => {
    const C = 3; const H = 9; const W = 11;
    const n = 24;
    const images = lcgBytes(77, n * C * H * W);
    const lists: Transform[][] = [
      [randomCrop([9, 11], { padding: 4 }), randomHorizontalFlip(), normalize([0.4, 0.5, 0.6], [0.2, 0.25, 0.3])],
      [randomHorizontalFlip(), randomCrop([7, 7], { padding: 2 }), randomHorizontalFlip(0.7), normalize([0.5], [0.5]), randomErasing({ p: 0.8 })],
      [centerCrop([13, 5]), randomHorizontalFlip()],
      [randomCrop(6), centerCrop(4)],
      [subtractMeanImage({ meanImage: Float32Array.from(lcgBytes(9, C * H * W), (v) => v / 300), channels: C, height: H, width: W }),
        randomCrop([9, 11], { padding: 4 }), randomHorizontalFlip(), randomErasing({ p: 0.9 })],
      [],
    ];
    for (const transforms of lists) {
      const plan = planFused(transforms);
      assert.ok(plan !== null && fusedShape(plan, { data: images.subarray(0, C * H * W), channels: C, height: H, width: W }) !== null, 'takes the fused path');
      const seeds = Uint32Array.from({ length: n }, (_, k) => 1000 + k);
      const make = (noFused: boolean) => assembleBatch(n, (k) => ({ data: images.subarray(k * C * H * W, (k + 1) * C * H * W), channels: C, height: H, width: W }),
        (k) => k % 5, seeds, transforms, (k) => `image ${k}`, noFused);
      const a = make(false);
      const b = make(true);
      assert.deepEqual(a.shape, b.shape);
      assert.equal(sha(a.x), sha(b.x), JSON.stringify(transforms.map((t) => t.kind)));
      assert.deepEqual(a.y, b.y);
    }
  });
});
