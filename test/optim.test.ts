// SGD (parameter groups, state round trip) and the learning-rate schedules.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backendByName, mul, sum, tensor, tidy } from '../src/index.js';
import { lrAt, ReduceOnPlateau, SGD } from '../src/optim/index.js';

const backend = backendByName('reference');

test('SGD with momentum follows torch.optim.SGD on f(p) = sum(p * c)', () => {
  // d f / d p = c constant: buf_1 = c, buf_t = 0.9 buf + c; p -= lr * buf (wd 0).
  const p = tensor([1, 2], [2], { backend, requiresGrad: true });
  const c = tensor([0.5, -1], [2], { backend });
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
  let buf = [0, 0];
  const expect = [1, 2];
  for (let step = 0; step < 3; step++) {
    opt.zeroGrad();
    tidy(() => sum(mul(p, c)).backward());
    opt.step();
    buf = step === 0 ? [0.5, -1] : buf.map((b, i) => 0.9 * b + [0.5, -1][i]);
    expect.forEach((_, i) => { expect[i] -= 0.1 * buf[i]; });
  }
  const got = p.toArray();
  expect.forEach((e, i) => assert.ok(Math.abs(got[i] - e) < 1e-6, `p[${i}] ${got[i]} vs ${e}`));
  // The state round-trips into a fresh optimiser.
  const s = opt.stateDict();
  const opt2 = new SGD([p], { lr: 0.1, momentum: 0.9 });
  opt2.loadStateDict(s);
  assert.deepEqual(opt2.stateDict().state[0][0], s.state[0][0]);
  opt.dispose(); opt2.dispose(); p.dispose(); c.dispose();
});

test('parameter groups: no weight decay on one group', () => {
  const a = tensor([1], [1], { backend, requiresGrad: true });
  const b = tensor([1], [1], { backend, requiresGrad: true });
  const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.1, weightDecay: 0 }], { lr: 0.1, weightDecay: 0.5 });
  tidy(() => sum(mul(a, tensor([0], [1], { backend }))).backward());
  tidy(() => sum(mul(b, tensor([0], [1], { backend }))).backward());
  opt.step();
  assert.ok(Math.abs(a.toArray()[0] - 0.95) < 1e-7);
  assert.equal(b.toArray()[0], 1);
  assert.throws(() => new SGD([a], { lr: 0.1, nesterov: true }), /nesterov needs momentum > 0/);
  a.dispose(); b.dispose();
});

test('schedules: step, multistep, cosine, warm-up, reduce on plateau', () => {
  assert.equal(lrAt({ kind: 'step', stepSize: 30 }, 0.1, 29), 0.1);
  assert.ok(Math.abs(lrAt({ kind: 'step', stepSize: 30 }, 0.1, 30) - 0.01) < 1e-12);
  assert.ok(Math.abs(lrAt({ kind: 'multistep', milestones: [150, 225] }, 0.1, 225) - 0.001) < 1e-12);
  assert.equal(lrAt({ kind: 'cosine', epochs: 10 }, 0.1, 0), 0.1);
  assert.ok(Math.abs(lrAt({ kind: 'cosine', epochs: 10 }, 0.1, 5) - 0.05) < 1e-12);
  assert.ok(lrAt({ kind: 'cosine', epochs: 10 }, 0.1, 10) < 1e-12);
  assert.ok(Math.abs(lrAt({ kind: 'constant' }, 0.1, 0, 2) - 0.01) < 1e-12, 'warm-up starts at a tenth');
  assert.ok(Math.abs(lrAt({ kind: 'constant' }, 0.1, 1, 2) - 0.055) < 1e-12, 'and ramps linearly');
  assert.equal(lrAt({ kind: 'constant' }, 0.1, 2, 2), 0.1);
  const r = new ReduceOnPlateau({ patience: 1 });
  assert.deepEqual([1, 0.9, 0.9, 0.9, 0.9].map((m) => r.step(m)), [1, 1, 1, 0.1, 0.1]);
});
