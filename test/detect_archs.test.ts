// The paper's C4 Faster R-CNN (conv1..layer3 trunk, RPN on that stride-16 map with 15 anchors
// per location, 14x14 RoIAlign, layer4 + global average pooling per region) against the same
// detector composed from torchvision 0.14's parts, and fasterrcnn_resnet50_fpn_v2 against
// torchvision's builder (scripts/make_detect_fixtures.py), with formula weights, at test
// settings (min size 320, 64 proposals). Also: the resnet18 / 34 FPN
// archs' state-dict keys are those of torchvision's resnet_fpn_backbone detectors.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeImage } from '../src/data/image_folder.js';
import { createDetector } from '../src/detect/models.js';
import { toFloatImage } from '../src/detect/predict.js';
import { tidy } from '../src/tensor/scope.js';
import { assertMatched } from './helpers/detections.js';
import { syntheticStateDict } from './helpers/synthetic_weights.js';

const ROOT = new URL('..', import.meta.url).pathname;
const FIX = join(ROOT, 'test/fixtures/detect');

for (const arch of ['fasterrcnn_resnet50_c4', 'fasterrcnn_resnet50_fpn_v2']) {
  test(`${arch} matches torchvision: keys, sizes, proposals, detections`, async () => {
    const fx = JSON.parse(readFileSync(join(FIX, `${arch}.json`), 'utf8'));
    const model = createDetector(arch, {
      transform: { minSize: fx.settings.minSize, maxSize: fx.settings.maxSize },
      rpn: { postNmsTopN: fx.settings.postNmsTopN },
    });
    const mine = Object.entries(model.stateDict()).map(([k, v]) => [k, v.shape]);
    assert.deepEqual(mine, fx.keys);
    model.loadStateDict(syntheticStateDict(fx.keys, fx.scales));
    const im = fx.images[0];
    const img = toFloatImage(await decodeImage(join(ROOT, 'test/fixtures/predict/images', im.file)));
    tidy(() => {
      const s = model.stages([img]);
      assert.deepEqual(s.list.imageSizes[0], im.resized);
      assert.deepEqual(s.list.images.shape.slice(2), im.padded);
      if (arch.endsWith('_c4')) assert.deepEqual(s.levels.map((l) => l.tensor.shape), [[1, 1024, im.padded[0] / 16, im.padded[1] / 16]]);
      assert.equal(s.proposals[0].scores.length, im.numProposals);
      assertMatched('proposals', s.proposals[0], { boxes: im.proposals, scores: im.proposalScores }, Math.min(50, im.numProposals), 0.05, 1e-4);
    });
    const [d] = model.detect([img]);
    assert.equal(d.scores.length, im.detections.scores.length, 'detection count');
    assertMatched('detections', d, im.detections, im.detections.scores.length, 0.05, 1e-4);
    model.dispose();
  });
}

test('fasterrcnn_resnet18_fpn / resnet34_fpn keys are torchvision resnet_fpn_backbone detectors\'', () => {
  const fx = JSON.parse(readFileSync(join(FIX, 'fpn_keys.json'), 'utf8'));
  for (const arch of ['fasterrcnn_resnet18_fpn', 'fasterrcnn_resnet34_fpn']) {
    const model = createDetector(arch);
    // torchvision's backbone uses FrozenBatchNorm2d there: no num_batches_tracked.
    const mine = Object.entries(model.stateDict()).filter(([k]) => !k.endsWith('num_batches_tracked')).map(([k, v]) => [k, v.shape]);
    assert.deepEqual(mine, fx[arch], arch);
    model.dispose();
  }
});

test('fasterrcnn_resnet18_c4 / resnet34_c4: the C4 form over basic-block trunks (one stride-16 map of 256 channels, layer4 per region giving 512 features), roiOutputSize sets the pooled side', () => {
  for (const arch of ['fasterrcnn_resnet18_c4', 'fasterrcnn_resnet34_c4']) {
    const model = createDetector(arch, { numClasses: 4, roiOutputSize: 6, transform: { minSize: 64, maxSize: 64 }, rpn: { postNmsTopN: 20 } });
    const sd = model.stateDict();
    const keys = Object.keys(sd);
    assert.ok(keys.includes('backbone.layer3.1.conv2.weight') && !keys.some((k) => k.startsWith('backbone.layer4')), `${arch}: trunk conv1..layer3`);
    assert.deepEqual(sd['roi_heads.box_head.layer4.0.conv1.weight'].shape, [512, 256, 3, 3]);
    assert.deepEqual(sd['roi_heads.box_predictor.cls_score.weight'].shape, [4, 512]);
    assert.deepEqual(sd['roi_heads.box_predictor.bbox_pred.weight'].shape, [16, 512]);
    assert.deepEqual(sd['rpn.head.cls_logits.weight'].shape, [15, 256, 1, 1]);
    model.loadStateDict(syntheticStateDict(Object.entries(sd).map(([k, v]) => [k, v.shape]), {}));
    const img = { data: new Float32Array(3 * 64 * 64).map((_, i) => (i % 97) / 97), channels: 3, height: 64, width: 64 };
    tidy(() => {
      const s = model.stages([img]);
      assert.deepEqual(s.levels.map((l) => [l.name, l.tensor.shape]), [['0', [1, 256, 4, 4]]]);
      const [g] = model.roiHeads.boxRoiPool.forward(s.levels, [new Float32Array([4, 4, 40, 40, 10, 8, 60, 30])], s.list.imageSizes);
      assert.deepEqual(g.pooled.shape, [2, 256, 6, 6]);
      assert.deepEqual(model.roiHeads.boxHead.forward(g.pooled).shape, [2, 512]);
    });
    model.dispose();
  }
  assert.throws(() => createDetector('fasterrcnn_resnet18_c4', { roiOutputSize: 0 }), /roiOutputSize must be an integer >= 1, got 0/);
});
