// Detection training against torchvision 0.14 (scripts/make_detect_train_fixtures.py): the
// four losses, the proposals and the gradients of parameters across the net, with frozen
// BatchNorm and trainable_layers 3 (fine-tuning) and with batch-statistics BatchNorm and
// every layer trained (from scratch) on two images of different sizes. Sampling takes every
// candidate, so the figures do not depend on the random draw. Gradient tolerance: relative to
// the gradient's rms, 2e-3 with frozen BatchNorm, 2e-2 with batch statistics, whose backward
// cancels large terms: torchvision's own float32 gradients of the early layers differ from
// its float64 ones by up to 5% of the rms there (measured with the fixture script in float64).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeImage } from '../src/data/image_folder.js';
import { Random } from '../src/data/random.js';
import { createDetector } from '../src/detect/models.js';
import { toFloatImage } from '../src/detect/predict.js';
import { initDetector, setTrainable } from '../src/detect/train/setup.js';
import { trainableGroups } from '../src/optim/optimizer.js';
import { SGD } from '../src/optim/sgd.js';
import { tidy } from '../src/tensor/scope.js';
import { syntheticStateDict } from './helpers/synthetic_weights.js';

const ROOT = join(import.meta.dirname, '..');
const fx = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/detect/train_losses.json'), 'utf8'));

const close = (got: number, want: number, rel: number, what: string): void => {
  assert.ok(Math.abs(got - want) <= rel * Math.max(Math.abs(want), 1e-3), `${what}: ${got} vs torchvision ${want}`);
};

for (const c of fx.cases) {
  test(`training losses and gradients equal torchvision's (${c.name})`, async () => {
    const s = fx.settings;
    const model = createDetector('fasterrcnn_resnet18_fpn', {
      numClasses: s.numClasses,
      transform: { minSize: s.minSize, maxSize: s.maxSize },
      rpn: { preNmsTopNTrain: s.preNmsTopNTrain, postNmsTopNTrain: s.postNmsTopNTrain, batchSizePerImage: s.rpnBatch },
      roiHeads: { batchSizePerImage: s.boxBatch },
    });
    const report = model.loadStateDict(syntheticStateDict(c.keys, fx.scales), { strict: false });
    assert.equal(report.loaded.length, c.keys.length);
    const setModes = setTrainable(model, { trainableLayers: c.frozen ? 3 : 5, frozenBn: c.frozen });
    model.train();
    setModes();
    const images = await Promise.all(c.files.map(async (f: string) => toFloatImage(await decodeImage(join(ROOT, 'test/fixtures/predict/images', f)))));
    const targets = c.targets.map((t: { boxes: number[][]; labels: number[] }) => ({ boxes: Float32Array.from(t.boxes.flat()), labels: Int32Array.from(t.labels) }));
    const r = tidy(() => {
      const l = model.losses(images, targets, new Random(0));
      const total = l.loss.item();
      l.loss.backward();
      return { total, parts: l.parts, proposals: l.proposals };
    });
    for (const [k, v] of Object.entries(c.losses)) close(r.parts[k as keyof typeof r.parts], v as number, 1e-4, k);
    close(r.total, Object.values(c.losses as Record<string, number>).reduce((a, b) => a + b, 0), 1e-4, 'total');
    assert.equal(r.proposals, c.proposals.reduce((a: number, b: number) => a + b, 0) / c.proposals.length, 'proposals per image');
    const params = new Map(model.namedParameters());
    for (const [k, want] of Object.entries(c.grads as Record<string, { sum: number; sumsq: number; first: number[] } | null>)) {
      const p = params.get(k);
      if (want === null) {
        assert.ok(!p || !p.requiresGrad, `${k} trains here but not in torchvision`);
        assert.ok(!p?.grad, `${k} has a gradient`);
        continue;
      }
      assert.ok(p?.grad, `${k}: no gradient`);
      const g = p.grad.toFloat32Array();
      let sum = 0, sumsq = 0;
      for (const v of g) { sum += v; sumsq += v * v; }
      close(sumsq, want.sumsq, 2e-3, `${k} gradient sum of squares`);
      const scale = Math.sqrt(want.sumsq / g.length);
      assert.ok(Math.abs(sum - want.sum) <= 2e-3 * scale * g.length, `${k} gradient sum ${sum} vs ${want.sum}`);
      const tol = c.frozen ? 2e-3 : 2e-2;
      want.first.forEach((w, i) => assert.ok(Math.abs(g[i] - w) <= tol * Math.max(Math.abs(w), scale), `${k} gradient[${i}] ${g[i]} vs ${w}`));
    }
    model.dispose();
  });
}

test('after training steps, inference runs the new weights (the folded copy is rebuilt), as a fresh load of them does', () => {
  const opts = { numClasses: 3, transform: { minSize: 64, maxSize: 64 }, rpn: { postNmsTopNTrain: 50 }, roiHeads: { batchSizePerImage: 32 } };
  const model = createDetector('fasterrcnn_resnet18_fpn', opts);
  initDetector(model, 3);
  const image = { data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => ((i * 7919) % 255) / 255), channels: 3, height: 64, width: 64 };
  const before = model.detect([image])[0];
  const setModes = setTrainable(model, { trainableLayers: 5, frozenBn: false });
  const opt = new SGD(trainableGroups(model.parameters()), { lr: 0.05, momentum: 0, weightDecay: 0, nesterov: false });
  for (let i = 0; i < 2; i++) {
    model.train();
    setModes();
    tidy(() => model.losses([image], [{ boxes: new Float32Array([8, 8, 40, 48]), labels: Int32Array.of(2) }], new Random(i)).loss.backward());
    opt.step();
    opt.zeroGrad();
  }
  model.eval();
  const after = model.detect([image])[0];
  const fresh = createDetector('fasterrcnn_resnet18_fpn', opts);
  fresh.loadStateDict(model.stateDict());
  const want = fresh.detect([image])[0];
  assert.deepEqual([...after.scores], [...want.scores]);
  assert.deepEqual([...after.boxes], [...want.boxes]);
  assert.notDeepEqual([...after.scores], [...before.scores], 'the steps changed the detections');
  for (const m of [model, fresh]) m.dispose();
  opt.dispose();
});
