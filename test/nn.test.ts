// The nn layer: Module bookkeeping (definition order, state dict, load report, to, train /
// eval, dispose), Parameter, and each layer's shapes, defaults and errors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CheckpointError, Rng, ShapeError, backendByName, liveTensors, noGrad, randn, tensor, tidy, type Tensor,
} from '../src/index.js';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, Module, Parameter, ReLU, Sequential,
} from '../src/nn/index.js';

const ref = backendByName('reference');

class Net extends Module {
  readonly conv = this.registerModule('conv', new Conv2d(2, 4, 3, { padding: 1, bias: false, backend: ref, rng: new Rng(1) }));
  readonly bn = this.registerModule('bn', new BatchNorm2d(4, { backend: ref }));
  readonly head = this.registerModule('head', new Sequential(new AdaptiveAvgPool2d(1)));
  readonly fc = this.registerModule('fc', new Linear(4, 3, { backend: ref, rng: new Rng(2) }));
  override forward(x: Tensor): Tensor {
    const h = this.head.forward(this.bn.forward(this.conv.forward(x), { relu: true }));
    return this.fc.forward(tensor(h.toFloat32Array(), [h.shape[0], h.shape[1]], { backend: ref }));
  }
}

describe('Module', () => {
  test('parameters, buffers and state-dict keys come in definition order, as PyTorch', () => {
    const n = new Net();
    assert.deepEqual(n.namedParameters().map(([k]) => k), ['conv.weight', 'bn.weight', 'bn.bias', 'fc.weight', 'fc.bias']);
    assert.deepEqual(n.namedBuffers().map(([k]) => k), ['bn.running_mean', 'bn.running_var']);
    assert.deepEqual(Object.keys(n.stateDict()), ['conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var',
      'bn.num_batches_tracked', 'fc.weight', 'fc.bias']);
    assert.deepEqual(n.stateDictShapes().map(([, s]) => s), [[4, 2, 3, 3], [4], [4], [4], [4], [], [3, 4], [3]]);
    assert.deepEqual(n.namedModules().map(([k]) => k), ['', 'conv', 'bn', 'head', 'head.0', 'fc']);
    assert.equal(n.numParameters(), 72 + 8 + 15);
    assert.equal(n.getSubmodule('head.0').constructor.name, 'AdaptiveAvgPool2d');
    assert.throws(() => n.getSubmodule('head.1'), /no module 'head.1'/);
    n.dispose();
  });

  test('train() and eval() reach every descendant', () => {
    const n = new Net();
    assert.ok(n.modules().every((m) => m.training));
    n.eval();
    assert.ok(n.modules().every((m) => !m.training));
    n.train();
    assert.ok(n.bn.training);
    n.dispose();
  });

  test('parameters survive the tidy they were made in; dispose() frees everything', () => {
    const before = liveTensors();
    const n = tidy(() => new Net());
    assert.ok(!n.conv.weight.disposed);
    assert.equal(liveTensors() - before, 7, 'five parameters and two running statistics');
    n.dispose();
    assert.equal(liveTensors(), before);
  });

  test('loadStateDict: in place, accepts tensors and int64 counters, replaces a non-finite target', () => {
    const a = new Net();
    const b = new Net();
    const sd = a.stateDict();
    sd['bn.num_batches_tracked'] = { data: Int32Array.of(5), shape: [] };
    const w = b.conv.weight;
    const input = { ...sd, 'fc.weight': a.fc.weight, 'bn.num_batches_tracked': { data: BigInt64Array.of(7n), shape: [] } };
    const r = b.loadStateDict(input);
    assert.equal(r.loaded.length, 8);
    assert.equal(b.conv.weight, w, 'same Parameter object');
    assert.deepEqual(b.stateDict()['conv.weight'], sd['conv.weight']);
    assert.deepEqual(b.stateDict()['fc.weight'], sd['fc.weight']);
    assert.equal(b.bn.numBatchesTracked, 7);
    // A NaN in the target cannot be overwritten in place (0 * NaN): the tensor is replaced.
    const c = new Net();
    const nan = { ...c.stateDict()['fc.bias'], data: Float32Array.of(NaN, 1, 2) };
    c.loadStateDict({ 'fc.bias': nan }, { strict: false });
    c.loadStateDict({ 'fc.bias': sd['fc.bias'] }, { strict: false });
    assert.deepEqual(c.fc.bias!.toFloat32Array(), sd['fc.bias'].data);
    assert.ok(c.fc.bias!.requiresGrad);
    assert.throws(() => c.loadStateDict({ 'fc.bias': { data: new Float32Array(2), shape: [3] } }, { strict: false }),
      (e: Error) => e instanceof CheckpointError && /'fc.bias' holds 2 values but its shape \[3\] needs 3/.test(e.message));
    for (const m of [a, b, c]) m.dispose();
  });

  test('to(backend) moves parameters and buffers, keeping values and requiresGrad', () => {
    const n = new Net();
    const sd = n.stateDict();
    n.conv.weight.requiresGrad = false;
    n.to(backendByName('native'));
    assert.ok(n.parameters().every((p) => p.backend.name === 'native'));
    assert.ok(n.buffers().every((p) => p.backend.name === 'native'));
    assert.deepEqual(n.stateDict(), sd);
    assert.equal(n.conv.weight.requiresGrad, false);
    assert.ok(n.conv.weight instanceof Parameter);
    n.dispose();
  });

  test('registration errors and toString', () => {
    class Bad extends Module {
      constructor(name: string) { super(); this.registerModule(name, new ReLU()); this.registerModule('x', new ReLU()); }
    }
    assert.throws(() => new Bad('x'), /'x' is already registered/);
    assert.throws(() => new Bad('a.b'), /name 'a.b' must be letters, digits or '_'/);
    const s = new Sequential(new Conv2d(3, 8, 3, { stride: 2, bias: false, backend: ref }), new BatchNorm2d(8, { backend: ref }), new ReLU());
    assert.equal(s.toString(), [
      'Sequential(',
      '  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), bias=False)',
      '  (1): BatchNorm2d(8, eps=0.00001, momentum=0.1)',
      '  (2): ReLU()',
      ')',
    ].join('\n'));
    assert.equal(s.length, 3);
    assert.equal(s.at(-1).constructor.name, 'ReLU');
    assert.throws(() => s.at(3), /index 3 out of range \[0, 3\)/);
    s.dispose();
  });
});

describe('layers', () => {
  test('Conv2d and Linear: shapes, PyTorch default init bounds, analytic shapes and multiply-adds', () => {
    const c = new Conv2d(4, 6, [3, 5], { stride: 2, padding: [1, 2], groups: 2, backend: ref, rng: new Rng(3) });
    assert.deepEqual(c.weight.shape, [6, 2, 3, 5]);
    const bound = 1 / Math.sqrt(2 * 3 * 5);
    assert.ok(c.weight.toFloat32Array().every((v) => Math.abs(v) <= bound));
    assert.ok(c.bias!.toFloat32Array().every((v) => Math.abs(v) <= bound));
    const x = randn([2, 4, 9, 9], new Rng(4), { backend: ref });
    const y = c.forward(x);
    const t = { macs: 0 };
    assert.deepEqual(c.traceShape([2, 4, 9, 9], t), [...y.shape]);
    assert.equal(t.macs, 2 * 6 * 5 * 5 * 2 * 3 * 5);
    assert.throws(() => new Conv2d(3, 6, 3, { groups: 2 }), /inChannels 3 and outChannels 6 must both be divisible by groups=2/);
    assert.throws(() => c.forward(randn([2, 3, 9, 9], new Rng(4), { backend: ref })), ShapeError);
    const l = new Linear(5, 2, { backend: ref });
    const lt = { macs: 0 };
    assert.deepEqual(l.traceShape([3, 5], lt), [3, 2]);
    assert.equal(lt.macs, 30);
    assert.equal(new Linear(5, 2, { bias: false, backend: ref }).bias, null);
    assert.throws(() => new Linear(0, 2), /'inFeatures' must be an integer >= 1, got 0/);
    for (const m of [c, l]) m.dispose();
    x.dispose(); y.dispose();
  });

  test('BatchNorm2d: defaults, training counts batches and updates statistics, eval uses them', () => {
    const bn = new BatchNorm2d(3, { backend: ref });
    assert.deepEqual([bn.eps, bn.momentum], [1e-5, 0.1]);
    const x = randn([4, 3, 2, 2], new Rng(5), { backend: ref });
    noGrad(() => bn.forward(x).dispose());
    assert.equal(bn.numBatchesTracked, 1);
    assert.ok(bn.runningMean.toFloat32Array().some((v) => v !== 0));
    bn.eval();
    const y = noGrad(() => bn.forward(x));
    assert.equal(bn.numBatchesTracked, 1);
    const m = bn.runningMean.toFloat32Array(); const v = bn.runningVar.toFloat32Array();
    const xv = x.toFloat32Array(); const yv = y.toFloat32Array();
    for (let i = 0; i < xv.length; i++) {
      const c = Math.floor(i / 4) % 3;
      assert.ok(Math.abs(yv[i] - (xv[i] - m[c]) / Math.sqrt(v[c] + 1e-5)) < 1e-5);
    }
    assert.throws(() => bn.forward(randn([1, 4, 2, 2], new Rng(1), { backend: ref })), /BatchNorm2d: input 'x' \[1, 4, 2, 2\] has 4 channels, expected 3/);
    assert.equal(new BatchNorm2d(2, { weightInit: 0, backend: ref }).weight.toFloat32Array().every((g) => g === 0), true);
    bn.dispose(); x.dispose(); y.dispose();
  });

  test('pools, ReLU, Identity: shapes and errors', () => {
    assert.deepEqual(new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }).traceShape([1, 64, 112, 112]), [1, 64, 56, 56]);
    assert.deepEqual(new AvgPool2d({ kernelSize: 2 }).traceShape([1, 8, 7, 7]), [1, 8, 3, 3]);
    assert.deepEqual(new AdaptiveAvgPool2d(1).traceShape([2, 512, 7, 5]), [2, 512, 1, 1]);
    assert.throws(() => new AdaptiveAvgPool2d(2), /only outputSize 1 \(global average pooling\) is supported, got 2/);
    assert.throws(() => new MaxPool2d({ kernelSize: 2, padding: 2 }), /padding 2x2 must be at most half the kernel/);
    const x = tensor(Float32Array.of(-1, 2), [1, 2, 1, 1], { backend: ref });
    assert.deepEqual(new ReLU().forward(x).toFloat32Array(), Float32Array.of(0, 2));
    assert.equal(new Identity().forward(x), x);
  });
});
