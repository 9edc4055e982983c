// A small residual conv net against PyTorch (test/fixtures/small_net.json, made by
// scripts/make_fixtures.py with Debian's python3-torch): logits, loss, every parameter
// gradient by state-dict name, the running statistics, and a few SGD steps of loss.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  add, avgPool2d, batchNorm, conv2d, crossEntropy, flatten, globalAvgPool2d, linear, maxPool2d, noGrad, relu,
  sgdStep, tensor, tidy, zeros, type Tensor,
} from '../src/index.js';
import { describeEachBackend } from './helpers/backends.js';
import { assertClose } from './helpers/compare.js';

interface Fixture {
  torch: string; x: number[]; x_shape: number[]; labels: number[]; label_smoothing: number;
  state_dict: Record<string, number[]>; shapes: Record<string, number[]>;
  logits: number[]; loss: number; grads: Record<string, number[]>; running_after: Record<string, number[]>;
  sgd: { lr: number; momentum: number; weight_decay: number; nesterov: boolean; losses: number[] };
  eval_logits_after_sgd: number[];
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/small_net.json', import.meta.url), 'utf8')) as Fixture;

describeEachBackend('small conv net vs PyTorch ' + fx.torch, (backend) => {
  function load(): Map<string, Tensor> {
    const p = new Map<string, Tensor>();
    for (const [k, v] of Object.entries(fx.state_dict)) {
      if (k.endsWith('num_batches_tracked')) continue;
      const isParam = !k.includes('running');
      p.set(k, tensor(v, fx.shapes[k], { backend, requiresGrad: isParam }));
    }
    return p;
  }
  function forward(p: Map<string, Tensor>, x: Tensor, training: boolean): Tensor {
    const P = (k: string) => p.get(k)!;
    const bn = (t: Tensor, name: string, fuse = false) => batchNorm(t, P(`${name}.weight`), P(`${name}.bias`),
      P(`${name}.running_mean`), P(`${name}.running_var`), { training, relu: fuse });
    let h = bn(conv2d(x, P('conv1.weight'), null, { stride: 2, padding: 3 }), 'bn1', true);
    h = maxPool2d(h, { kernelSize: 3, stride: 2, padding: 1 });
    const y = bn(conv2d(h, P('conv2.weight'), null, { padding: 1, groups: 2 }), 'bn2');
    h = relu(add(h, y));
    h = avgPool2d(h, { kernelSize: 3, stride: 1, padding: 1, countIncludePad: false });
    h = relu(bn(conv2d(h, P('conv3.weight'), P('conv3.bias'), { stride: 2 }), 'bn3'));
    return linear(flatten(globalAvgPool2d(h)), P('fc.weight'), P('fc.bias'));
  }

  test('logits, loss, every parameter gradient and running statistics', () => {
    const p = load();
    const x = tensor(fx.x, fx.x_shape, { backend });
    const labels = tensor(Int32Array.from(fx.labels), [fx.labels.length], { backend, dtype: 'int32' });
    const { logits, loss } = tidy(() => {
      const logits = forward(p, x, true);
      const loss = crossEntropy(logits, labels, { labelSmoothing: fx.label_smoothing });
      loss.backward();
      return { logits, loss };
    });
    assertClose(logits.toArray(), fx.logits, 1e-4, 'logits');
    assertClose([loss.item()], [fx.loss], 1e-5, 'loss');
    for (const [k, g] of Object.entries(fx.grads)) {
      const t = p.get(k)!;
      assert.ok(t.grad, `${k} has a gradient`);
      assertClose(t.grad.toArray(), g, 1e-3, `grad ${k}`, 1e-2);
    }
    for (const [k, v] of Object.entries(fx.running_after)) {
      if (k.endsWith('num_batches_tracked')) continue;
      assertClose(p.get(k)!.toArray(), v, 1e-4, k);
    }
    for (const t of [...p.values(), x, labels, logits, loss]) t.dispose();
  });

  test('four SGD steps (momentum, nesterov, weight decay) follow PyTorch\'s losses; eval logits after', () => {
    const p = load();
    const x = tensor(fx.x, fx.x_shape, { backend });
    const labels = tensor(Int32Array.from(fx.labels), [fx.labels.length], { backend, dtype: 'int32' });
    const bufs = new Map<string, Tensor>();
    const losses: number[] = [];
    for (let step = 0; step < fx.sgd.losses.length; step++) {
      losses.push(tidy(() => {
        const loss = crossEntropy(forward(p, x, true), labels, { labelSmoothing: fx.label_smoothing });
        loss.backward();
        return loss.item();
      }));
      noGrad(() => {
        for (const [k, t] of p) {
          if (!t.requiresGrad || !t.grad) continue;
          let buf = bufs.get(k);
          if (!buf) { buf = zeros(t.shape, { backend }); bufs.set(k, buf); }
          sgdStep(t, t.grad, buf, { lr: fx.sgd.lr, momentum: fx.sgd.momentum, dampening: 0, weightDecay: fx.sgd.weight_decay,
            nesterov: fx.sgd.nesterov, initBuffer: step === 0 });
          t.grad.dispose();
          t.grad = null;
        }
      });
    }
    assertClose(losses, fx.sgd.losses, 1e-4, 'loss trajectory');
    const evalLogits = tidy(() => noGrad(() => forward(p, x, false)));
    assertClose(evalLogits.toArray(), fx.eval_logits_after_sgd, 1e-3, 'eval logits after SGD', 1e-2);
    for (const t of [...p.values(), ...bufs.values(), x, labels, evalLogits]) t.dispose();
  });
});
