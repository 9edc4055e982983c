// The forward hooks the studies use: `onResponse` (every BN output before its ReLU or the
// addition, in forward order, He et al. 2015 Fig. 7) and `detachBranch` / `detachShortcut`
// (the gradient along chosen paths, Veit et al. 2016 section 6): forward values unchanged,
// the path gradients of every subset of blocks add up to the full gradient, errors.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError, Rng, mul, randn, sum, tensor, tidy, type Tensor } from '../src/index.js';
import { BasicBlock, ResNet, createModel } from '../src/models/index.js';
import { describeEachBackend } from './helpers/backends.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('onResponse: every BN output before its ReLU or addition, named, in forward order; logits unchanged', () => {
  tidy(() => {
    const net = createModel('resnet20', { inChannels: 1, numClasses: 10, seed: 3 }).eval();
    const x = randn([2, 1, 12, 12], new Rng(1));
    const names: string[] = [];
    let negatives = 0;
    const y = net.forward(x, {
      onResponse: (name, r) => {
        names.push(name);
        assert.equal(r.shape[0], 2);
        if (r.toFloat32Array().some((v) => v < 0)) negatives++;
      },
    });
    assert.equal(names.length, 19); // the stem and two per block: the paper's 19 3x3 layers of a 20-layer net
    assert.deepEqual(names.slice(0, 4), ['bn1', 'layer1.0.bn1', 'layer1.0.bn2', 'layer1.1.bn1']);
    assert.equal(names[18], 'layer3.2.bn2');
    assert.equal(negatives, 19, 'responses are taken before the ReLU, so they have negative values');
    assert.ok(maxAbsDiff(y.toFloat32Array(), net.forward(x).toFloat32Array()) === 0);
    const plain = createModel('plain20', { inChannels: 1, numClasses: 10, seed: 3 }).eval();
    const pn: string[] = [];
    plain.forward(x, { onResponse: (n) => pn.push(n) });
    assert.deepEqual(pn, names);
    const pre = createModel('preact_resnet20', { inChannels: 1, numClasses: 10 }).eval();
    const qn: string[] = [];
    pre.forward(x, { onResponse: (n) => qn.push(n) });
    assert.equal(qn[qn.length - 1], 'bn');
    assert.equal(qn.length, 19);
    net.dispose(); plain.dispose(); pre.dispose();
  });
});

describeEachBackend('detachBranch / detachShortcut', (backend) => {
  test('forward unchanged; the gradients along every subset of branches add up to the full input gradient', () => {
    const net = new ResNet({ family: 'cifar', block: 'basic', layers: [1, 1, 1], inChannels: 1, numClasses: 3, seed: 5, backend }).eval();
    const xs = randn([2, 1, 8, 8], new Rng(2), { backend }).toFloat32Array();
    const w = tensor(randn([2, 3], new Rng(4), { backend }).toFloat32Array(), [2, 3], { backend });
    const grad = (branchOn: number[] | null): { y: Float32Array; g: Float32Array } => tidy(() => {
      const x = tensor(xs, [2, 1, 8, 8], { requiresGrad: true, backend });
      const opts = branchOn === null ? {} : {
        detachShortcut: branchOn, detachBranch: [0, 1, 2].filter((i) => !branchOn.includes(i)),
      };
      const y = net.forward(x, opts);
      sum(mul(y, w)).backward();
      const g = (x.grad as Tensor).toFloat32Array();
      return { y: y.toFloat32Array(), g };
    });
    const full = grad(null);
    const total = new Float32Array(full.g.length);
    for (let mask = 0; mask < 8; mask++) {
      const on = [0, 1, 2].filter((i) => (mask >> i) & 1);
      const r = grad(on);
      assert.equal(maxAbsDiff(r.y, full.y), 0, `forward changed with branches ${on.join(',')}`);
      r.g.forEach((v, i) => { total[i] += v; });
    }
    const scale = Math.max(...full.g.map(Math.abs));
    assert.ok(scale > 0);
    assert.ok(maxAbsDiff(total, full.g) <= 1e-4 * scale, `sum of path gradients differs by ${maxAbsDiff(total, full.g)} (scale ${scale})`);
    net.dispose();
    w.dispose();
  });
});

test('detach: plain blocks, unknown blocks and a block in both lists are errors naming it', () => {
  const plain = createModel('plain20', { inChannels: 1 });
  const res = createModel('resnet20', { inChannels: 1 });
  const x = randn([1, 1, 8, 8], new Rng(0));
  assert.throws(() => plain.forward(x, { detachBranch: [1] }), (e: Error) => e instanceof InvalidArgumentError && /layer1\.1 is plain/.test(e.message));
  assert.throws(() => res.forward(x, { detachShortcut: ['layer9.0'] }), (e: Error) => e instanceof InvalidArgumentError && /no block "layer9.0" to detach; valid/.test(e.message));
  assert.throws(() => res.forward(x, { detachBranch: [2], detachShortcut: ['layer1.2'] }), (e: Error) => e instanceof InvalidArgumentError && /layer1\.2 is in both/.test(e.message));
  assert.throws(() => new BasicBlock(4, 4, { shortcut: 'none' }).forward(randn([1, 4, 4, 4], new Rng(0)), { detach: 'branch' }), InvalidArgumentError);
  plain.dispose(); res.dispose(); x.dispose();
});
