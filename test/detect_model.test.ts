// Faster R-CNN inference against torchvision 0.14: fasterrcnn_resnet50_fpn (v1) with weights
// from a formula both sides compute (test/helpers/synthetic_weights.ts, see
// scripts/make_detect_fixtures.py), run on two photos at their own sizes: resized and padded
// sizes, anchors, FPN checksums, proposals, RoIAlign of a few rois, detections. Then weights
// files (both key namings, a missing key, a classification checkpoint) and the reference
// backend against the native one on a small net and image.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { backendByName } from '../src/backend/index.js';
import { decodeImage } from '../src/data/image_folder.js';
import { CheckpointError } from '../src/errors.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/registry.js';
import { fuseForInference } from '../src/models/fused.js';
import { tidy } from '../src/tensor/scope.js';
import { tensor } from '../src/tensor/tensor.js';
import { FasterRCNN, type FasterRCNNConfig } from '../src/detect/faster_rcnn.js';
import { interpolate } from '../src/detect/ops/interpolate.js';
import { GeneralizedRCNNTransform } from '../src/detect/transform.js';
import { createDetector } from '../src/detect/models.js';
import { detect, toFloatImage } from '../src/detect/predict.js';
import { loadDetectionWeights, renameLegacyDetectionKeys } from '../src/detect/weights.js';
import { assertMatched } from './helpers/detections.js';
import { syntheticStateDict } from './helpers/synthetic_weights.js';

const ROOT = new URL('..', import.meta.url).pathname;
const IMAGES = join(ROOT, 'test/fixtures/predict/images');
const FX = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/detect/fasterrcnn_resnet50_fpn.json'), 'utf8'));

describe('fasterrcnn_resnet50_fpn vs torchvision 0.14 (native backend)', () => {
  const model = createDetector('fasterrcnn_resnet50_fpn', { backend: backendByName('native') });
  after(() => model.dispose());

  test('state dict keys and shapes are torchvision\'s, in its order', () => {
    const mine = Object.entries(model.stateDict()).map(([k, v]) => [k, v.shape]);
    assert.deepEqual(mine, FX.keys);
    model.loadStateDict(syntheticStateDict(FX.keys, FX.scales));
  });

  for (const im of FX.images) {
    test(`${im.file}: sizes, anchors, features, proposals, RoIAlign, detections`, async () => {
      const img = toFloatImage(await decodeImage(join(IMAGES, im.file)));
      tidy(() => {
        const s = model.stages([img]);
        assert.deepEqual(s.list.imageSizes[0], im.resized);
        assert.deepEqual(s.list.images.shape.slice(2), im.padded);
        const anchors = model.rpn.anchors([s.list.images.shape[2], s.list.images.shape[3]], s.levels);
        im.levels.forEach((lv: { name: string; shape: number[]; count: number; offset: number; first: number[]; last: number[]; sum: number; sumsq: number }, i: number) => {
          const l = s.levels[i];
          assert.equal(l.name, lv.name);
          assert.deepEqual(l.tensor.shape, lv.shape);
          assert.deepEqual(Array.from(anchors.subarray(4 * lv.offset, 4 * lv.offset + 36)), lv.first, `anchors of level ${lv.name}`);
          const end = 4 * (lv.offset + lv.count);
          assert.deepEqual(Array.from(anchors.subarray(end - 12, end)), lv.last, `last anchors of level ${lv.name}`);
          const a = l.tensor.toArray();
          let sum = 0, sq = 0;
          for (const v of a) { sum += v; sq += v * v; }
          assert.ok(Math.abs(sq - lv.sumsq) <= 1e-5 * lv.sumsq, `level ${lv.name}: sum of squares ${sq} vs ${lv.sumsq}`);
          assert.ok(Math.abs(sum - lv.sum) <= 1e-5 * Math.sqrt(lv.sumsq * a.length), `level ${lv.name}: sum ${sum} vs ${lv.sum}`);
        });
        assert.equal(anchors.length / 4, im.levels.reduce((t: number, l: { count: number }) => t + l.count, 0));

        const p = s.proposals[0];
        assert.equal(p.boxes.length / 4, im.numProposals, 'proposal count');
        assertMatched('proposals', p, { boxes: im.proposals, scores: im.proposalScores }, 50, 0.05, 1e-4);

        // RoIAlign of torchvision's own rois on our features: level choice and pooling.
        const roiBoxes = Float32Array.from(im.roi.boxes);
        const groups = model.roiHeads.boxRoiPool.forward(s.levels, [roiBoxes], s.list.imageSizes);
        const S = 7, C = im.roi.channels;
        let rows = 0;
        for (const g of groups) {
          const v = g.pooled.toArray();
          const per = g.pooled.shape[1] * S * S;
          g.index.forEach((r, k) => {
            rows++;
            const want = im.roi.values.slice(r * C * S * S, (r + 1) * C * S * S);
            for (let e = 0; e < C * S * S; e++) {
              const got = v[k * per + e];
              assert.ok(Math.abs(got - want[e]) <= 1e-3 * Math.max(1, Math.abs(want[e])), `RoIAlign roi ${im.roi.index[r]} element ${e}: ${got} vs ${want[e]}`);
            }
          });
        }
        assert.equal(rows, im.roi.index.length);
      });

      const [d] = model.detect([img]);
      const want = im.detections;
      assert.equal(d.scores.length, want.scores.length, 'detection count');
      assert.deepEqual([...d.labels].sort((x, y) => x - y), [...want.labels].sort((x: number, y: number) => x - y), 'labels');
      assertMatched('detections', d, want, want.scores.length, 0.05, 1e-4);
    });
  }
});

describe('fasterrcnn_resnet50_fpn, both photos in one batch (padded together) vs torchvision', () => {
  test('proposal counts and detections per image', async () => {
    const model = createDetector('fasterrcnn_resnet50_fpn', { backend: backendByName('native') });
    model.loadStateDict(syntheticStateDict(FX.keys, FX.scales));
    const imgs = await Promise.all(FX.images.map(async (im: { file: string }) => toFloatImage(await decodeImage(join(IMAGES, im.file)))));
    const s = tidy(() => {
      const st = model.stages(imgs);
      return { padded: st.list.images.shape.slice(2), counts: st.proposals.map((p) => p.scores.length) };
    });
    assert.deepEqual(s.padded, FX.batch.padded);
    assert.deepEqual(s.counts, FX.batch.numProposals);
    const dets = model.detect(imgs);
    dets.forEach((d, n) => {
      const want = FX.batch.detections[n];
      assert.equal(d.scores.length, want.scores.length, `image ${n}: detection count`);
      assertMatched(`image ${n} detections`, d, want, want.scores.length, 0.05, 1e-4);
    });
    model.dispose();
  });
});

// A small net: resnet18 trunk at width 1/8, 8 FPN channels, a 16-wide box head, 3 classes.
function smallConfig(extra: Partial<FasterRCNNConfig> = {}): FasterRCNNConfig {
  return {
    name: 'fasterrcnn_small', backbone: 'resnet18', backboneOptions: { width: 0.125 }, numClasses: 3,
    fpnOutChannels: 8, representationSize: 16, transform: { minSize: 96, maxSize: 160 },
    roiHeads: { scoreThresh: 0.3 }, categories: ['__background__', 'a', 'b'], ...extra,
  };
}

function smallWeights(model: FasterRCNN): Map<string, { data: Float32Array; shape: number[] }> {
  const keys = Object.entries(model.stateDict()).map(([k, v]) => [k, v.shape] as [string, number[]]);
  return syntheticStateDict(keys, { 'roi_heads.box_predictor.cls_score.weight': 4 });
}

describe('detection weights files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'detect-weights-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('today\'s names (.safetensors) and the pre-0.13 names (.pth) load; a missing key is one line', () => {
    const src = new FasterRCNN(smallConfig());
    const sd = smallWeights(src);
    src.loadStateDict(sd);
    const modern = join(dir, 'modern.safetensors');
    saveWeights(modern, sd);
    const legacyMap = new Map([...sd].map(([k, v]) => [k.replace(/^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.(weight|bias)$/, '$1.$2').replace(/^rpn\.head\.conv\.0\.0\./, 'rpn.head.conv.'), v]));
    assert.ok(legacyMap.has('rpn.head.conv.weight') && legacyMap.has('backbone.fpn.inner_blocks.0.weight'));
    assert.equal(renameLegacyDetectionKeys(legacyMap).renamed, 18);
    const legacy = join(dir, 'legacy.pth');
    saveWeights(legacy, legacyMap);

    const a = new FasterRCNN(smallConfig());
    const ra = loadDetectionWeights(a, modern);
    assert.equal(ra.backboneOnly, false);
    assert.equal(a.bnEps, 1e-5);
    const b = new FasterRCNN(smallConfig());
    const rb = loadDetectionWeights(b, legacy);
    assert.ok(rb.notes.some((n) => /renamed 18 key/.test(n)), rb.notes.join(' | '));
    assert.equal(b.bnEps, 0, 'torchvision v1 COCO files use FrozenBatchNorm2d eps 0');
    const want = src.stateDict(), ga = a.stateDict(), gb = b.stateDict();
    for (const k of Object.keys(want)) {
      assert.deepEqual(ga[k].data, want[k].data, k);
      assert.deepEqual(gb[k].data, want[k].data, k);
    }

    const missing = new Map(sd);
    missing.delete('rpn.head.cls_logits.bias');
    missing.set('roi_heads.extra.weight', { data: new Float32Array(2), shape: [2] });
    const bad = join(dir, 'missing.safetensors');
    saveWeights(bad, missing);
    assert.throws(() => loadDetectionWeights(new FasterRCNN(smallConfig()), bad), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /missing\.safetensors: does not fit fasterrcnn_small: 1 missing key\(s\): rpn\.head\.cls_logits\.bias; 1 unexpected key\(s\): roi_heads\.extra\.weight/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    for (const m of [src, a, b]) m.dispose();
  });

  test('a classification checkpoint initialises the backbone only', () => {
    const cls = createModel('resnet18', { width: 0.125, numClasses: 5, seed: 3 });
    const file = join(dir, 'cls.safetensors');
    saveWeights(file, cls.stateDict());
    const det = new FasterRCNN(smallConfig());
    const r = loadDetectionWeights(det, file);
    assert.equal(r.backboneOnly, true);
    const body = det.backbone.body.stateDict(), want = cls.stateDict();
    for (const k of Object.keys(body)) assert.deepEqual(body[k].data, want[k].data, k);
    const wrong = join(dir, 'wrong.safetensors');
    saveWeights(wrong, createModel('resnet34', { width: 0.125 }).stateDict());
    assert.throws(() => loadDetectionWeights(new FasterRCNN(smallConfig()), wrong), /wrong\.safetensors: a classification checkpoint that does not fit the backbone of fasterrcnn_small.*unexpected key\(s\): backbone\.body\.layer1\.2/);
    cls.dispose();
    det.dispose();
  });
});

test('reference backend equals native on a small net and image', async () => {
  const img = toFloatImage(await decodeImage(join(IMAGES, 'f_150x100.jpg')));
  const run = (name: 'native' | 'reference') => {
    const m = new FasterRCNN(smallConfig({ backend: backendByName(name) }));
    m.loadStateDict(smallWeights(m));
    const out = tidy(() => {
      const s = m.stages([img]);
      return {
        levels: s.levels.map((l) => l.tensor.toArray()),
        proposals: s.proposals[0],
        logits: m.roiHeads.predict(s.levels, s.proposals, s.list.imageSizes).logits,
        detections: s.detections[0],
      };
    });
    m.dispose();
    return out;
  };
  const n = run('native'), r = run('reference');
  n.levels.forEach((a, i) => {
    let worst = 0;
    for (let e = 0; e < a.length; e++) worst = Math.max(worst, Math.abs(a[e] - r.levels[i][e]) / Math.max(1, Math.abs(a[e])));
    assert.ok(worst < 1e-4, `level ${i}: worst relative difference ${worst}`);
  });
  assert.ok(n.proposals.scores.length > 10);
  assert.equal(r.proposals.scores.length, n.proposals.scores.length);
  assertMatched('proposals', r.proposals, { boxes: Array.from(n.proposals.boxes), scores: Array.from(n.proposals.scores) }, n.proposals.scores.length, 0.01, 1e-5);
  assert.ok(n.detections.scores.length > 0, 'the small net should detect something');
  assert.equal(r.detections.scores.length, n.detections.scores.length);
  assertMatched('detections', r.detections, { boxes: Array.from(n.detections.boxes), scores: Array.from(n.detections.scores), labels: Array.from(n.detections.labels) }, n.detections.scores.length, 0.01, 1e-5);
});

test('detect(): files in, named boxes in the image\'s pixels, scoreThresh filters', async () => {
  const m = new FasterRCNN(smallConfig());
  m.loadStateDict(smallWeights(m));
  const [all] = await detect(m, [join(IMAGES, 'f_150x100.jpg')]);
  assert.ok(all.scores.length > 0);
  for (const [x1, y1, x2, y2] of all.boxes) assert.ok(x1 >= 0 && y1 >= 0 && x2 <= 150 && y2 <= 100 && x1 <= x2 && y1 <= y2);
  assert.ok(all.names.every((nm, i) => nm === ['__background__', 'a', 'b'][all.labels[i]]));
  const t = (all.scores[0] + all.scores[all.scores.length - 1]) / 2;
  const [some] = await detect(m, [join(IMAGES, 'f_150x100.jpg')], { scoreThresh: t });
  assert.deepEqual(some.scores, all.scores.filter((s) => s >= t));
  await assert.rejects(detect(m, [join(IMAGES, 'nope.jpg')]), /nope\.jpg/);
  m.dispose();
});

test('transform: an image already at its resized size is normalised only, the same as through the resize (both backends)', () => {
  const [h, w] = [64, 96];
  const data = Float32Array.from({ length: 3 * h * w }, (_, i) => ((i * 7919) % 1000) / 999);
  const t = new GeneralizedRCNNTransform({ minSize: 64, maxSize: 96 });
  for (const name of ['reference', 'native'] as const) {
    const be = backendByName(name);
    const list = t.forward([{ data, channels: 3, height: h, width: w }], be);
    assert.deepEqual(list.imageSizes, [[h, w]]);
    const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
    const normalised = data.map((v, i) => Math.fround(Math.fround(v - Math.fround(mean[Math.floor(i / (h * w))])) / Math.fround(std[Math.floor(i / (h * w))])));
    const through = interpolate(tensor(normalised, [1, 3, h, w], { backend: be }), { scaleFactor: 1, mode: 'bilinear', alignCorners: false, recomputeScaleFactor: true });
    const got = list.images.toFloat32Array();
    const want = through.toFloat32Array();
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = (c * h + y) * w + x;
      assert.equal(got[(c * list.images.shape[2] + y) * list.images.shape[3] + x], want[i], `${name}: pixel ${c},${y},${x}`);
      assert.equal(want[i], normalised[i], `${name}: the resize at scale 1 is the identity at ${c},${y},${x}`);
    }
    list.images.dispose();
    through.dispose();
  }
});

test('roiPool: boxes go to FPN levels by torchvision\'s LevelMapper, canonical scale and level as given', () => {
  // Levels P2..P5 of a 128x128 image; sides 24, 56, 112, 224, 448 and a 30x100 box.
  const levels = [32, 16, 8, 4].map((s, i) => ({ name: String(i), tensor: tensor(new Float32Array(s * s), [1, 1, s, s]) }));
  const boxes = Float32Array.from([0, 0, 24, 24, 0, 0, 56, 56, 0, 0, 112, 112, 0, 0, 224, 224, 0, 0, 448, 448, 0, 0, 30, 100]);
  const sides = [[128, 128]] as const;
  // floor(k0 + log2(sqrt(area) / s0) + 1e-6), clamped to 2..5, minus 2.
  const torchvision = new FasterRCNN(smallConfig());
  assert.deepEqual([...torchvision.roiHeads.boxRoiPool.assignLevels(levels, boxes, sides).level], [0, 0, 1, 2, 3, 0]);
  const at56 = new FasterRCNN(smallConfig({ roiPool: { canonicalScale: 56 } }));
  assert.deepEqual([...at56.roiHeads.boxRoiPool.assignLevels(levels, boxes, sides).level], [0, 2, 3, 3, 3, 1]);
  const level3 = new FasterRCNN(smallConfig({ roiPool: { canonicalScale: 56, canonicalLevel: 3 } }));
  assert.deepEqual([...level3.roiHeads.boxRoiPool.assignLevels(levels, boxes, sides).level], [0, 1, 2, 3, 3, 0]);
  for (const m of [torchvision, at56, level3]) m.dispose();
  assert.throws(() => new FasterRCNN(smallConfig({ roiPool: { canonicalScale: 0 } })), /MultiScaleRoIAlign: 'canonicalScale' must be a number > 0 and 'canonicalLevel' an integer, got 0 and undefined/);
});

test('detectPredict (the CLI action): one-line errors for a bad arch, no weights, a bad threshold', async () => {
  const { detectPredict } = await import('../src/cli/detect_predict.js');
  const img = [join(IMAGES, 'f_150x100.jpg')];
  await assert.rejects(detectPredict(img, { arch: 'yolo' }), /--arch: unknown detection arch 'yolo'; valid: fasterrcnn_resnet18_fpn, .*fasterrcnn_resnet50_c4/);
  await assert.rejects(detectPredict(img, {}), /--weights is required/);
  await assert.rejects(detectPredict(img, { weights: 'w.pth', scoreThresh: '2' }), /--score-thresh must be a number in \[0, 1\], got '2'/);
});

test('fused backbone: features() and runStage() equal ResNet.features; bnEps overrides; folded weights survive a tidy', () => {
  const net = createModel('resnet18', { width: 0.125, seed: 5 }).eval();
  for (const [k, v] of net.namedBuffers()) {
    if (k.endsWith('running_var')) net.loadStateDict({ [k]: { data: Float32Array.from(v.toArray(), (_, i) => 0.5 + (i % 7) / 7), shape: v.shape } }, { strict: false });
  }
  const x = tensor(Float32Array.from({ length: 2 * 3 * 64 * 48 }, (_, i) => Math.sin(i * 0.37)), [2, 3, 64, 48]);
  const fast = tidy(() => fuseForInference(net));  // built inside a scope, used outside it
  const want = tidy(() => net.features(x).maps.slice(1).map((m) => m.tensor.toArray()));
  const got = tidy(() => fast.features(x).map((t) => t.toArray()));
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
    assert.ok(worst < 1e-4, `${what}: worst relative difference ${worst}`);
  };
  want.forEach((w, i) => close(got[i], w, `layer${i + 1}`));
  assert.equal(tidy(() => fast.features(x, 3).length), 3);
  const l4 = tidy(() => {
    const c4 = fast.features(x, 3)[2];
    return fast.runStage(c4, 3).toArray();
  });
  close(l4, want[3], 'runStage(layer4)');
  const same = fuseForInference(net, { bnEps: 1e-5 }), other = fuseForInference(net, { bnEps: 0.5 });
  close(tidy(() => same.features(x)[0].toArray()), want[0], 'bnEps 1e-5');
  const diff = tidy(() => other.features(x)[0].toArray());
  assert.ok(diff.some((v, i) => Math.abs(v - want[0][i]) > 1e-3), 'bnEps 0.5 must change the output');
  assert.throws(() => fuseForInference(net, { bnEps: -1 }), /'bnEps' must be a number >= 0/);
  assert.throws(() => fast.runStage(x, 3), /input must be \[N, 32, H, W\]/);
  for (const f of [fast, same, other]) f.dispose();
  x.dispose();
  net.dispose();
});
