// AdamW (PyTorch 1.13's torch.optim.AdamW) against a float64 transcription of torch's
// _single_tensor_adamw: groups, decoupled weight decay, amsgrad, per-parameter step counts;
// the fused kernel on native vs reference; exact resume through stateDict and through a
// checkpoint (old SGD checkpoints still load); a Trainer run with optimizer 'adamw'; the
// CLI flags and their errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { backendByName, conv2d, sum, tensor, tidy, type Backend, type Tensor } from '../src/index.js';
import { adamwUpdate } from '../src/backend/reference/adamw.js';
import { AdamW, SGD, trainableGroups } from '../src/optim/index.js';
import { writeSafetensors, type NamedArray } from '../src/io/safetensors.js';
import { adamwStep } from '../src/tensor/ops/adamw.js';
import { Linear } from '../src/nn/index.js';
import { CHECKPOINT_FORMAT, loadCheckpoint, readMetrics, saveCheckpoint, Trainer, type CheckpointMeta, type TrainConfig } from '../src/train/index.js';
import { makeBandsIdx } from './helpers/data_files.js';

const reference = backendByName('reference');
const native = backendByName('native');
const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli/main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-adamw-'));

interface Hyper { lr: number; b1: number; b2: number; eps: number; wd: number; amsgrad: boolean }
interface State64 { t: number; m: number[]; v: number[]; vmax: number[] }

/** torch/optim/adamw.py (1.13) _single_tensor_adamw for one parameter, in float64. */
function torchAdamw64(p: number[], g: number[], s: State64, h: Hyper): void {
  s.t += 1;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.wd;
    s.m[i] = s.m[i] * h.b1 + (1 - h.b1) * g[i];
    s.v[i] = s.v[i] * h.b2 + (1 - h.b2) * g[i] * g[i];
    const bc1 = 1 - h.b1 ** s.t;
    const bc2 = 1 - h.b2 ** s.t;
    let v = s.v[i];
    if (h.amsgrad) { s.vmax[i] = Math.max(s.vmax[i], s.v[i]); v = s.vmax[i]; }
    const denom = Math.sqrt(v) / Math.sqrt(bc2) + h.eps;
    p[i] += (-h.lr / bc1) * (s.m[i] / denom);
  }
}

/** A deterministic gradient for parameter `k` at step `t`, with signs and scales that vary. */
function gradAt(k: number, t: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(1.3 * i + 0.7 * t + k) * (i % 3 === 0 ? 1e-3 : 0.5) + (t % 2 ? 0.01 : -0.02));
}

function setGrad(p: Tensor, g: number[]): void {
  p.grad?.dispose();
  p.grad = tensor(g, p.shape, { backend: p.backend });
}

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-3));
  return worst;
}

test('the first step by hand: p = p (1 - lr wd) - lr g / (|g| + eps)', () => {
  const p = tensor([1, -2], [2], { backend: reference, requiresGrad: true });
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.1 });
  setGrad(p, [0.5, -4]);
  opt.step();
  // bias-corrected m / sqrt(v) is g / |g| on the first step
  const want = [1 * 0.99 - 0.1 * 0.5 / (0.5 + 1e-8), -2 * 0.99 + 0.1 * 4 / (4 + 1e-8)];
  const got = p.toArray();
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < 1e-6, `p[${i}] = ${got[i]}, want ${w}`));
  assert.deepEqual(opt.groups[0].betas, [0.9, 0.999], "torch's defaults");
  assert.equal(opt.groups[0].eps, 1e-8);
  assert.equal(new AdamW([p]).groups[0].weightDecay, 1e-2, "torch's AdamW default weight decay");
  assert.equal(new AdamW([p]).groups[0].lr, 1e-3);
  opt.dispose(); p.dispose();
});

test('AdamW follows torch 1.13 over 6 steps: two groups, weight decay, amsgrad, a parameter skipped on a step', () => {
  const shapes = [[3, 4], [5], [2, 3]];
  const init = shapes.map((s, k) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i + k) * 0.8));
  const ps = shapes.map((s, k) => tensor(init[k], s, { backend: reference, requiresGrad: true }));
  const g0: Hyper = { lr: 0.02, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.05, amsgrad: false };
  const g1: Hyper = { lr: 0.01, b1: 0.8, b2: 0.99, eps: 1e-6, wd: 0, amsgrad: true };
  const opt = new AdamW([
    { params: [ps[0], ps[2]] },
    { params: [ps[1]], lr: g1.lr, betas: [g1.b1, g1.b2], eps: g1.eps, weightDecay: 0, amsgrad: true },
  ], { lr: g0.lr, weightDecay: g0.wd });
  const hyper = [g0, g1, g0];
  const want = init.map((a) => [...a]);
  const st: State64[] = init.map((a) => ({ t: 0, m: a.map(() => 0), v: a.map(() => 0), vmax: a.map(() => 0) }));
  for (let t = 1; t <= 6; t++) {
    ps.forEach((p, k) => {
      if (k === 2 && t === 3) { p.grad?.dispose(); p.grad = null; return; } // no gradient: no step, its count stays
      const g = gradAt(k, t, p.numel);
      setGrad(p, g);
      torchAdamw64(want[k], g, st[k], hyper[k]);
    });
    opt.step();
  }
  ps.forEach((p, k) => {
    const err = maxRelErr(p.toArray(), want[k]);
    assert.ok(err < 2e-5, `param ${k}: max relative error ${err} against torch's algorithm in float64`);
  });
  const s = opt.stateDict();
  assert.equal(s.kind, 'adamw');
  assert.deepEqual(s.state.map((g) => g.map((p) => p!.step)), [[6, 5], [6]], 'per-parameter step counts');
  assert.deepEqual(Object.keys(s.state[1][0]!.buffers).sort(), ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']);
  assert.deepEqual(Object.keys(s.state[0][0]!.buffers).sort(), ['exp_avg', 'exp_avg_sq'], 'no amsgrad buffer without amsgrad');
  assert.ok(maxRelErr(s.state[1][0]!.buffers.max_exp_avg_sq, st[1].vmax) < 2e-5);
  opt.zeroGrad(); opt.dispose();
  for (const p of ps) p.dispose();
});

test('AdamW matches torch.optim.AdamW itself (PyTorch 1.13, float32) on both backends: groups, amsgrad, a skipped step', () => {
  // test/fixtures/optim/adamw_torch.json: scripts/make_optim_fixtures.py with Debian's python3-torch.
  const fx = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/optim/adamw_torch.json'), 'utf8')) as {
    shapes: number[][]; init: number[][]; grads: number[][][]; skip: { step: number; param: number };
    groups: { params: number[]; lr: number; weightDecay: number; betas?: [number, number]; eps?: number }[];
    defaults: { lr: number; betas: [number, number]; eps: number; weightDecay: number };
    cases: { amsgrad: boolean; after: number[][][] }[];
  };
  for (const be of [reference, native]) {
    for (const c of fx.cases) {
      const ps = fx.shapes.map((s, k) => tensor(fx.init[k], s, { backend: be, requiresGrad: true }));
      const opt = new AdamW(fx.groups.map((g) => ({ ...g, params: g.params.map((k) => ps[k]) })), { ...fx.defaults, amsgrad: c.amsgrad });
      c.after.forEach((want, step) => {
        ps.forEach((p, k) => {
          if (step === fx.skip.step && k === fx.skip.param) { p.grad?.dispose(); p.grad = null; } else setGrad(p, fx.grads[step][k]);
        });
        opt.step();
        ps.forEach((p, k) => {
          const err = maxRelErr(p.toArray(), want[k]);
          assert.ok(err < 1e-5, `${be.name}, amsgrad ${c.amsgrad}, step ${step + 1}, param ${k}: max relative error ${err} against torch`);
        });
      });
      opt.zeroGrad(); opt.dispose();
      for (const p of ps) p.dispose();
    }
  }
});

test('the reference kernel on float64 arrays is the float64 algorithm; on float32 it rounds each operation', () => {
  const n = 7;
  const h: Hyper = { lr: 0.003, b1: 0.85, b2: 0.995, eps: 1e-7, wd: 0.2, amsgrad: true };
  const p64 = Float64Array.from({ length: n }, (_, i) => i / 3 - 1);
  const m64 = new Float64Array(n); const v64 = new Float64Array(n); const x64 = new Float64Array(n);
  const want = [...p64];
  const s: State64 = { t: 0, m: new Array(n).fill(0), v: new Array(n).fill(0), vmax: new Array(n).fill(0) };
  for (let t = 1; t <= 4; t++) {
    const g = gradAt(9, t, n);
    torchAdamw64(want, g, s, h);
    adamwUpdate(p64, Float64Array.from(g), m64, v64, x64, { lr: h.lr, beta1: h.b1, beta2: h.b2, eps: h.eps, weightDecay: h.wd, step: t, amsgrad: true });
  }
  for (let i = 0; i < n; i++) assert.ok(Math.abs(p64[i] - want[i]) <= 1e-15 * Math.max(1, Math.abs(want[i])), `p[${i}] ${p64[i]} vs ${want[i]}`);
  assert.throws(() => adamwUpdate(p64, p64.slice(), m64, v64, null, { lr: 1, beta1: 0.9, beta2: 0.9, eps: 0, weightDecay: 0, step: 1, amsgrad: true }), /amsgrad needs 'maxExpAvgSq'/);
});

test('native and reference agree on the fused step, with a weight gradient in the layout oneDNN chose', () => {
  const shape = [8, 4, 3, 3];
  const n = 8 * 4 * 3 * 3;
  const w0 = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.3);
  const x0 = Array.from({ length: 2 * 4 * 6 * 6 }, (_, i) => Math.cos(i * 0.11));
  const run = (backend: Backend): { w: Float32Array; state: Record<string, Float32Array> } => {
    const w = tensor(w0, shape, { backend, requiresGrad: true });
    const x = tensor(x0, [2, 4, 6, 6], { backend });
    const opt = new AdamW([w], { lr: 0.01, weightDecay: 0.1, amsgrad: true });
    for (let t = 0; t < 4; t++) {
      // on native the conv's weight gradient may come blocked: the step works in its layout
      tidy(() => sum(conv2d(x, w, null, { padding: 1 })).backward());
      // the same gradient on both backends, so only the update is compared
      const g = w.grad!.toFloat32Array();
      setGrad(w, [...g].map((v, i) => v * 1e-2 + Math.sin(i + t) * 1e-3));
      opt.step();
      opt.zeroGrad();
    }
    const out = { w: w.toFloat32Array(), state: opt.stateDict().state[0][0]!.buffers };
    opt.dispose(); w.dispose(); x.dispose();
    return out;
  };
  const a = run(reference);
  const b = run(native);
  // The gradients differ between backends (oneDNN sums in another order), so agreement is to
  // float32 rounding of slightly different inputs; the update itself is the same chain.
  const err = maxRelErr(b.w, a.w);
  assert.ok(err < 1e-4, `weights: max relative error ${err}`);
  for (const k of ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']) assert.ok(maxRelErr(b.state[k], a.state[k]) < 1e-3, k);
});

test('native and reference give the same bits for the same inputs', () => {
  const shape = [3, 17];
  const n = 51;
  const out: Float32Array[] = [];
  for (const backend of [reference, native]) {
    const p = tensor(Array.from({ length: n }, (_, i) => (i - 25) / 7), shape, { backend });
    const m = tensor(new Array(n).fill(0), shape, { backend });
    const v = tensor(new Array(n).fill(0), shape, { backend });
    const vmax = tensor(new Array(n).fill(0), shape, { backend });
    for (let t = 1; t <= 5; t++) {
      const g = tensor(gradAt(3, t, n), shape, { backend });
      adamwStep(p, g, { expAvg: m, expAvgSq: v, maxExpAvgSq: vmax }, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: t, amsgrad: true });
      g.dispose();
    }
    out.push(p.toFloat32Array());
    for (const x of [p, m, v, vmax]) x.dispose();
  }
  let differ = 0;
  for (let i = 0; i < n; i++) if (out[0][i] !== out[1][i]) differ++;
  assert.equal(differ, 0, `${differ} of ${n} elements differ (max relative error ${maxRelErr(out[1], out[0])})`);
});

test('adamwStep and AdamW reject bad arguments with one-line messages', () => {
  const p = tensor([1, 2], [2], { backend: reference });
  const z = (): Tensor => tensor([0, 0], [2], { backend: reference });
  const ok = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1, amsgrad: false };
  assert.throws(() => adamwStep(p, z(), { expAvg: z(), expAvgSq: z() }, { ...ok, beta1: 1 }), /adamwStep: 'beta1' must be in \[0, 1\)/);
  assert.throws(() => adamwStep(p, z(), { expAvg: z(), expAvgSq: z() }, { ...ok, step: 0 }), /'step' must be an integer >= 1, got 0/);
  assert.throws(() => adamwStep(p, z(), { expAvg: z(), expAvgSq: z() }, { ...ok, amsgrad: true }), /amsgrad needs the 'maxExpAvgSq'/);
  assert.throws(() => adamwStep(p, tensor([1], [1], { backend: reference }), { expAvg: z(), expAvgSq: z() }, ok), /shapes must match/);
  const m = z();
  assert.throws(() => adamwStep(p, z(), { expAvg: m, expAvgSq: m }, ok), /must be distinct/);
  assert.throws(() => new AdamW([p], { betas: [0.9, 1] }), /AdamW: group 0 'betas\[1\]' must be a finite number in \[0, 1\), got 1/);
  assert.throws(() => new AdamW([p], { eps: -1 }), /'eps' must be a finite number in \[0, Infinity\]/);
  assert.throws(() => new AdamW([{ params: [p] }, { params: [p], lr: 1 }]), /is in group 0 and group 1; each may be in one group only/);
  const s = new AdamW([p]).stateDict();
  assert.throws(() => new SGD([p], { lr: 0.1 }).loadStateDict(s), /the state is of optimiser 'adamw', this is 'sgd'/);
});

test('trainableGroups leaves frozen parameters out and splits off the 1-D ones without weight decay', () => {
  const fc = new Linear(4, 3);
  const [w, b] = fc.parameters();
  b.requiresGrad = false;
  assert.deepEqual(trainableGroups(fc.parameters()).map((g) => [...g.params]), [[w]]);
  b.requiresGrad = true;
  const groups = trainableGroups(fc.parameters(), true);
  assert.deepEqual(groups.map((g) => [...g.params]), [[w], [b]]);
  assert.equal(groups[1].weightDecay, 0);
  fc.dispose();
});

test('stateDict/loadStateDict: a resumed optimiser ends bit for bit where an uninterrupted one does; nothing leaks', () => {
  const before = native.live();
  const make = (): Tensor[] => [tensor([0.5, -1, 2, 0.1], [2, 2], { backend: native, requiresGrad: true }), tensor([0.3, -0.2], [2], { backend: native, requiresGrad: true })];
  const opts = (ps: Tensor[]) => [{ params: [ps[0]] }, { params: [ps[1]], weightDecay: 0, amsgrad: true }];
  const stepAll = (opt: AdamW, ps: Tensor[], t: number): void => {
    ps.forEach((p, k) => setGrad(p, gradAt(k, t, p.numel)));
    opt.step();
    opt.zeroGrad();
  };
  const a = make();
  const optA = new AdamW(opts(a), { lr: 0.05, weightDecay: 0.1 });
  for (let t = 1; t <= 6; t++) stepAll(optA, a, t);

  const b = make();
  const optB = new AdamW(opts(b), { lr: 0.05, weightDecay: 0.1 });
  for (let t = 1; t <= 3; t++) stepAll(optB, b, t);
  const saved = optB.stateDict();
  const weights = b.map((p) => p.toFloat32Array());
  optB.dispose();
  const c = weights.map((w, k) => tensor(w, b[k].shape, { backend: native, requiresGrad: true }));
  const optC = new AdamW(opts(c), { lr: 0.05, weightDecay: 0.1 });
  optC.loadStateDict(saved);
  for (let t = 4; t <= 6; t++) stepAll(optC, c, t);
  a.forEach((p, k) => assert.deepEqual(c[k].toFloat32Array(), p.toFloat32Array(), `param ${k}`));
  assert.deepEqual(optC.stateDict(), optA.stateDict());
  for (const o of [optA, optC]) o.dispose();
  for (const p of [...a, ...b, ...c]) p.dispose();
  assert.deepEqual(native.live(), before, 'every moment buffer and gradient freed');
});

function meta(step: number, lrs: number[]): CheckpointMeta {
  return {
    format: CHECKPOINT_FORMAT, arch: 'resnet20', modelOptions: {}, epoch: 0, step, loader: { seed: 0, epoch: 0, batch: step }, rng: { seed: 0 },
    partial: { lossSum: 0, wrong: 0, seen: 0, seconds: 0 }, best: null, plateau: null, norm: { mean: [0], std: [1] },
    input: { channels: 1, height: 4, width: 4, classes: ['a', 'b'] }, lrs, config: {}, savedAt: new Date(0).toISOString(),
  };
}

test('checkpoints carry AdamW state (buffers and step counts); an SGD checkpoint from before AdamW still loads', () => {
  const fc = new Linear(3, 2, { backend: native });
  const opt = new AdamW(trainableGroups(fc.parameters(), true), { lr: 0.01, amsgrad: true });
  for (let t = 1; t <= 2; t++) {
    fc.parameters().forEach((p, k) => setGrad(p, gradAt(k, t, p.numel)));
    opt.step();
  }
  opt.zeroGrad();
  const file = join(tmp, 'adamw.safetensors');
  saveCheckpoint(file, fc, opt, meta(2, [0.01, 0.01]));
  const ck = loadCheckpoint(file);
  assert.deepEqual(ck.optim, opt.stateDict());
  assert.deepEqual([...ck.model.keys()].sort(), ['bias', 'weight'], 'the optimiser state is not part of the weights');
  opt.dispose(); fc.dispose();

  // The layout written before AdamW: SGD momentum buffers as optim.<group>.<param>, no optim_state.
  const entries: [string, NamedArray][] = [['w', { data: Float32Array.from([1, 2]), shape: [2] }], ['optim.0.0', { data: Float32Array.from([0.5, -0.5]), shape: [2] }]];
  const h = createHash('sha256');
  for (const [name, a] of entries.slice().sort((p, q) => (p[0] < q[0] ? -1 : 1))) {
    h.update(name); h.update(JSON.stringify(a.shape));
    h.update(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  }
  const old = join(tmp, 'old-sgd.safetensors');
  writeSafetensors(old, entries, { resnet_ts: JSON.stringify(meta(7, [0.1])), optim_layout: '[1]', sha256: h.digest('hex'), format: 'pt' });
  const legacy = loadCheckpoint(old);
  assert.deepEqual(legacy.optim, { kind: 'sgd', lrs: [0.1], state: [[{ step: 7, buffers: { momentum_buffer: Float32Array.from([0.5, -0.5]) } }]] });
  const p = tensor([1, 2], [2], { backend: reference, requiresGrad: true });
  const sgd = new SGD([p], { lr: 0.1, momentum: 0.9 });
  sgd.loadStateDict(legacy.optim!);
  setGrad(p, [0, 0]);
  sgd.step(); // buf = 0.9 * [0.5, -0.5]; p -= 0.1 * buf
  const got = p.toArray();
  assert.ok(Math.abs(got[0] - (1 - 0.045)) < 1e-6 && Math.abs(got[1] - (2 + 0.045)) < 1e-6, `momentum carried on: ${got.join(', ')}`);
  sgd.dispose(); p.dispose();
});

const DATA = makeBandsIdx(join(tmp, 'data'), 192, 64);
const base = (out: string, extra: Partial<TrainConfig> = {}): Partial<TrainConfig> => ({
  arch: 'resnet20', dataset: 'mnist', data: DATA, epochs: 2, batchSize: 32, seed: 5, workers: 1, out, optimizer: 'adamw', ...extra,
});

test("Trainer with optimizer 'adamw': the loss falls, config.json records it, and an interrupted run resumes exactly", async () => {
  const full = join(tmp, 'run-full');
  const losses: number[] = [];
  const r = await new Trainer(base(full, { lr: 3e-3, noWdNormBias: true }), { onProgress: (e) => { if (e.type === 'step') losses.push(e.loss); } }).run();
  assert.equal(r.epochs, 2);
  const first = (losses[0] + losses[1]) / 2;
  const lastTwo = (losses.at(-1)! + losses.at(-2)!) / 2;
  assert.ok(lastTwo < 0.7 * first, `loss ${first} -> ${lastTwo}`);
  const m = readMetrics(join(full, 'metrics.jsonl'));
  assert.ok(m[1].train_loss < m[0].train_loss, `epoch losses ${m.map((x) => x.train_loss).join(', ')}`);
  const cfg = JSON.parse(readFileSync(join(full, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(cfg.optimizer, 'adamw');
  assert.deepEqual(cfg.betas, [0.9, 0.999]);
  assert.equal(cfg.eps, 1e-8);
  assert.equal(cfg.weightDecay, 1e-2, "AdamW's default weight decay, not SGD's");
  assert.equal(cfg.momentum, undefined, 'no SGD-only fields in an AdamW run');
  const ck = loadCheckpoint(join(full, 'last.safetensors'));
  assert.equal(ck.optim!.kind, 'adamw');
  assert.equal(ck.optim!.state[0][0]!.step, 12);

  // Stop after step 4 (mid-epoch 1), then resume: the same weights as the uninterrupted run.
  const cut = join(tmp, 'run-cut');
  const ac = new AbortController();
  const stopped = await new Trainer(base(cut, { lr: 3e-3, noWdNormBias: true }), { signal: ac.signal, onProgress: (e) => { if (e.type === 'step' && e.step === 4) ac.abort(); } }).run();
  assert.ok(stopped.interrupted);
  assert.equal(loadCheckpoint(join(cut, 'last.safetensors')).optim!.state[0][0]!.step, 4);
  await new Trainer(base(cut), { resume: true }).run();
  const a = loadCheckpoint(join(full, 'last.safetensors'));
  const b = loadCheckpoint(join(cut, 'last.safetensors'));
  for (const [k, v] of a.model) assert.deepEqual(b.model.get(k)!.data, v.data, k);
  assert.deepEqual(b.optim, a.optim);
});

test('checkConfig: optimizer names and the options that belong to the other optimizer', () => {
  assert.throws(() => new Trainer(base(join(tmp, 'x'), { optimizer: 'adam' as 'adamw' })), /train: unknown optimizer 'adam'; valid: sgd, adamw/);
  assert.throws(() => new Trainer(base(join(tmp, 'x'), { optimizer: 'sgd', betas: [0.9, 0.99] })), /'betas' is an AdamW option/);
  assert.throws(() => new Trainer(base(join(tmp, 'x'), { nesterov: true })), /'nesterov' is an SGD option/);
  assert.throws(() => new Trainer(base(join(tmp, 'x'), { betas: [0.9, 1.5] })), /'betas' must be two numbers in \[0, 1\)/);
  assert.equal(new Trainer(base(join(tmp, 'x'))).config.lr, 1e-3, "AdamW's default lr when none is given");
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('resnet train --optimizer adamw --lr 1e-3 --weight-decay 0.05 runs; bad values name the valid ones', () => {
  const out = join(tmp, 'cli-run');
  const ok = cli(['train', '--dataset', 'mnist', '--data', DATA, '--epochs', '1', '--subset', '64', '--batch-size', '32', '--workers', '1',
    '--optimizer', 'adamw', '--lr', '1e-3', '--weight-decay', '0.05', '--betas', '0.8,0.99', '--amsgrad', '--out', out, '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual([cfg.optimizer, cfg.lr, cfg.weightDecay, cfg.betas, cfg.amsgrad], ['adamw', 1e-3, 0.05, [0.8, 0.99], true]);
  const bad = (args: string[], re: RegExp): void => {
    const r = cli(['train', '--data', DATA, '--dataset', 'mnist', '--out', join(tmp, 'cli-bad'), ...args]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  };
  bad(['--optimizer', 'adam'], /^resnet: --optimizer must be one of sgd, adamw, got 'adam'$/m);
  bad(['--optimizer', 'adamw', '--betas', '0.9'], /--betas must be two numbers in \[0, 1\) as b1,b2/);
  bad(['--optimizer', 'adamw', '--momentum', '0.9'], /--momentum does not apply to --optimizer adamw; sgd takes --momentum and --nesterov/);
  bad(['--eps', '1e-6'], /--eps does not apply to --optimizer sgd; adamw takes --betas, --eps and --amsgrad/);
  bad(['--wd', '0.1', '--weight-decay', '0.2'], /--wd 0.1 and --weight-decay 0.2 disagree/);
});
