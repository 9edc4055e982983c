// bf16 mixed precision: the reference backend's bf16 convolution (inputs rounded to bf16 to
// nearest even, sums in float64, output rounded to bf16) judges native's, pass by pass; batch
// norm on bf16 activations; a few resnet20 training steps track fp32; BN-folded bf16
// inference keeps fp32's logits within 2% of their scale; which precision a machine gets.
// Where the CPU has no AVX-512 (oneDNN 2.6 has no bf16 there) the native tests are skipped
// with the CPU named: a skip, never a pass.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
  autocast, backendByName, batchNorm, conv2d, conv2dFused, createModel, crossEntropy, fuseForInference, keep, linear, noGrad,
  randn, resolvePrecision, Rng, SGD, tensor, tidy, type Backend, type Conv2dOptions, type Tensor,
} from '../src/index.js';
import { roundBf16 } from '../src/backend/reference/bf16.js';
import { DataLoader, FASHION_MNIST_DIR } from '../src/data/index.js';
import { loadSplits, transformsFor } from '../src/train/data.js';
import { loadRunCheckpoint, Trainer } from '../src/train/index.js';
import { assertClose } from './helpers/compare.js';

const native = backendByName('native');
const reference = backendByName('reference');
const nativeIsa = native.info().isa;
const noBf16 = nativeIsa.startsWith('avx512') ? null
  : `no bf16 on this CPU (${cpus()[0]?.model ?? 'unknown'}, oneDNN ISA ${nativeIsa}): oneDNN 2.6 needs AVX-512 for bf16`;

/** max |a - e| / max |e|: the error relative to the tensor's scale. */
function scaledError(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let d = 0, s = 0;
  for (let i = 0; i < e.length; i++) { d = Math.max(d, Math.abs(a[i] - e[i])); s = Math.max(s, Math.abs(e[i])); }
  return d / s;
}

describe('bf16 rounding (reference)', () => {
  it('rounds to nearest, ties to even, keeps NaN and infinities', () => {
    assert.equal(roundBf16(1), 1);
    assert.equal(roundBf16(1 + 2 ** -8), 1);                     // tie, 1 is even
    assert.equal(roundBf16(1 + 3 * 2 ** -8), 1 + 2 ** -6);        // tie, rounds up to even
    assert.equal(roundBf16(1 + 2 ** -8 + 2 ** -12), 1 + 2 ** -7); // above the tie
    assert.equal(roundBf16(-3.14159), -3.140625);
    assert.equal(roundBf16(3.4e38), Infinity);                   // past the largest bf16
    assert.equal(roundBf16(-Infinity), -Infinity);
    assert.ok(Number.isNaN(roundBf16(NaN)));
  });

  it('a bf16 convolution is the fp32 one on rounded inputs, rounded', () => {
    const rng = new Rng(1);
    const x = randn([1, 2, 5, 5], rng, { backend: reference });
    const w = randn([3, 2, 3, 3], rng, { backend: reference });
    const round = (t: Tensor) => tensor((t.toFloat32Array()).map(roundBf16), t.shape, { backend: reference });
    const want = conv2d(round(x), round(w), null, { padding: 1 }).toFloat32Array().map(roundBf16);
    assert.deepEqual(conv2d(x, w, null, { padding: 1, precision: 'bf16' }).toFloat32Array(), want);
  });
});

interface Case { name: string; x: number[]; w: number[]; opts: Conv2dOptions }
const CASES: Case[] = [
  { name: 'resnet20 stem 1->16 3x3', x: [4, 1, 28, 28], w: [16, 1, 3, 3], opts: { padding: 1 } },
  { name: 'imagenet stem 3->16 7x7/2', x: [2, 3, 30, 30], w: [16, 3, 7, 7], opts: { stride: 2, padding: 3 } },
  { name: '16->32 3x3/2', x: [4, 16, 14, 14], w: [32, 16, 3, 3], opts: { stride: 2, padding: 1 } },
  { name: '32->64 1x1/2 (downsample)', x: [2, 32, 9, 9], w: [64, 32, 1, 1], opts: { stride: 2 } },
  { name: '24->24 3x3 (padded block)', x: [3, 24, 7, 7], w: [24, 24, 3, 3], opts: { padding: 1 } },
  { name: 'grouped 32->32 3x3, 4 groups', x: [2, 32, 8, 8], w: [32, 8, 3, 3], opts: { padding: 1, groups: 4 } },
];

describe('native y += x in place (gradient accumulation) on conv outputs in their blocked layouts', () => {
  // The same sums as the loop it replaced: f32 exactly, bf16 summed in f32 and rounded once,
  // an f32 x rounded to bf16 first. Large enough for oneDNN's binary add, and a tiny one for the loop.
  for (const [yp, xp, C] of [['fp32', 'fp32', 16], ['bf16', 'bf16', 16], ['bf16', 'fp32', 16], ['bf16', 'bf16', 1]] as const) {
    it(`y ${yp}, x ${xp}, ${C === 1 ? 'a tiny tensor (the loop)' : 'oneDNN\'s add'}`, (t) => {
      if (noBf16 && (yp === 'bf16' || xp === 'bf16')) { t.skip(noBf16); return; }
      const rng = new Rng(3);
      const shape = [4, 3, 20, 20];
      const make = (precision: 'fp32' | 'bf16', seed: number) => {
        const x = tensor(randn(shape, new Rng(seed), { backend: reference }).toFloat32Array(), shape, { backend: native });
        const w = tensor(randn([C, 3, 3, 3], rng, { backend: reference, std: 0.3 }).toFloat32Array(), [C, 3, 3, 3], { backend: native });
        return conv2d(x, w, null, { padding: 1, precision });
      };
      tidy(() => {
        const y = make(yp, 1), x = make(xp, 2);
        const [ya, xa] = [y.toFloat32Array(), x.toFloat32Array()];
        const round = (v: number) => (yp === 'bf16' ? roundBf16(v) : Math.fround(v));
        const want = ya.map((v, i) => round(v + (yp === 'bf16' ? roundBf16(xa[i]) : xa[i])));
        native.axpbyInPlace(y.storage, x.storage, y.shape, 1, 1);
        assert.deepEqual(Array.from(native.read(y.storage, y.shape, 'float32')), Array.from(want));
      });
    });
  }
});

describe('native bf16 convolution against the reference judge', () => {
  for (const c of CASES) {
    it(c.name, (t) => {
      if (noBf16) { t.skip(noBf16); return; }
      const rng = new Rng(7);
      const xs = randn(c.x, rng, { backend: reference }).toFloat32Array();
      const ws = randn(c.w, rng, { backend: reference, std: 0.3 }).toFloat32Array();
      const bs = randn([c.w[0]], rng, { backend: reference }).toFloat32Array();
      const run = (be: Backend) => tidy(() => {
        const x = tensor(xs, c.x, { backend: be, requiresGrad: true });
        const w = tensor(ws, c.w, { backend: be, requiresGrad: true });
        const b = tensor(bs, [c.w[0]], { backend: be, requiresGrad: true });
        const y = conv2d(x, w, b, { ...c.opts, precision: 'bf16' });
        const dy = randn(y.shape, new Rng(9), { backend: be });
        // sum(y * dy) makes the backward see a dense gradient dy
        y.backward(dy);
        const r = residualFused(be, xs, ws, bs, c, dy);
        return { y: y.toFloat32Array(), dx: x.grad!.toFloat32Array(), dw: w.grad!.toFloat32Array(),
          db: b.grad!.toFloat32Array(), fused: r };
      });
      const n = run(native), r = run(reference);
      // Outputs and data gradients are bf16: the same inputs, summed in float32 instead of
      // float64, may round to the neighbouring bf16 (one step = 2^-8 relative).
      assertClose(n.y, r.y, 2 ** -7, `${c.name}: y`, 1e-2);
      assertClose(n.dx, r.dx, 2 ** -7, `${c.name}: dx`, 1e-2);
      assertClose(n.fused, r.fused, 2 ** -7, `${c.name}: conv2dFused + residual + relu`, 1e-2);
      // Weight gradients are float32 sums of exact bf16 products.
      assert.ok(scaledError(n.dw, r.dw) < 1e-5, `${c.name}: dw off by ${scaledError(n.dw, r.dw)} of its scale`);
      assert.ok(scaledError(n.db, r.db) < 1e-5, `${c.name}: db off by ${scaledError(n.db, r.db)} of its scale`);
      // ...and bf16 is really in use: the fp32 answer differs by about bf16's rounding
      const y32 = tidy(() => conv2d(tensor(xs, c.x, { backend: reference }), tensor(ws, c.w, { backend: reference }),
        tensor(bs, [c.w[0]], { backend: reference }), c.opts).toFloat32Array());
      assert.ok(scaledError(n.y, y32) > 1e-4, `${c.name}: the bf16 result equals fp32's; bf16 was not used`);
    });
  }
});

describe('native bf16 linear (autocast, as torch.autocast on the CPU) against the reference judge', () => {
  for (const [N, I, O] of [[4, 64, 10], [512, 392, 96], [3, 17, 5]]) {
    it(`[${N}, ${I}] x [${O}, ${I}]: y, dx, dw, db; f32 outputs; autocast picks it`, (t) => {
      if (noBf16) { t.skip(noBf16); return; }
      const rng = new Rng(11);
      const xs = randn([N, I], rng, { backend: reference }).toFloat32Array();
      const ws = randn([O, I], rng, { backend: reference, std: 0.2 }).toFloat32Array();
      const bs = randn([O], rng, { backend: reference }).toFloat32Array();
      const dys = randn([N, O], rng, { backend: reference }).toFloat32Array();
      const run = (be: Backend, viaAutocast: boolean) => tidy(() => {
        const x = tensor(xs, [N, I], { backend: be, requiresGrad: true });
        const w = tensor(ws, [O, I], { backend: be, requiresGrad: true });
        const b = tensor(bs, [O], { backend: be, requiresGrad: true });
        const y = viaAutocast ? autocast('bf16', () => linear(x, w, b)) : linear(x, w, b, { precision: 'bf16' });
        y.backward(tensor(dys, [N, O], { backend: be }));
        return { y: y.toFloat32Array(), dx: x.grad!.toFloat32Array(), dw: w.grad!.toFloat32Array(), db: b.grad!.toFloat32Array() };
      });
      const n = run(native, true), r = run(reference, false);
      // bf16 inputs, f32 sums (native) against float64 sums (reference); the outputs stay f32.
      for (const k of ['y', 'dx', 'dw', 'db'] as const) assert.ok(scaledError(n[k], r[k]) < 1e-5, `${k} off by ${scaledError(n[k], r[k])} of its scale`);
      // ...and bf16 is really in use: the fp32 answer differs by about bf16's rounding
      const y32 = tidy(() => linear(tensor(xs, [N, I], { backend: reference }), tensor(ws, [O, I], { backend: reference }), tensor(bs, [O], { backend: reference })).toFloat32Array());
      assert.ok(scaledError(n.y, y32) > 1e-4, 'the bf16 result equals fp32\'s; bf16 was not used');
      assert.ok(scaledError(n.y, y32) < 2e-2, `bf16 linear off fp32 by ${scaledError(n.y, y32)} of its scale`);
    });
  }
});

function residualFused(be: Backend, xs: Float32Array, ws: Float32Array, bs: Float32Array, c: Case, r: Tensor): Float32Array {
  return noGrad(() => conv2dFused(tensor(xs, c.x, { backend: be }), tensor(ws, c.w, { backend: be }),
    tensor(bs, [c.w[0]], { backend: be }), { ...c.opts, residual: r, relu: true, precision: 'bf16' }).toFloat32Array());
}

describe('native batch norm on bf16 activations', () => {
  for (const relu of [false, true]) {
    it(`training forward and backward${relu ? ' with fused ReLU' : ''} (128x16x14x14 and a padded 24-channel block)`, (t) => {
      if (noBf16) { t.skip(noBf16); return; }
      for (const [N, C, H] of [[128, 16, 14], [8, 24, 5]]) {
        const rng = new Rng(3);
        const xs = randn([N, 1, H, H], rng).toFloat32Array();
        const ws = randn([C, 1, 3, 3], rng, { std: 0.5 }).toFloat32Array();
        const gs = randn([C], rng, { std: 0.3 }).toFloat32Array().map((v) => 1 + v);
        const bs = randn([C], rng, { std: 0.3 }).toFloat32Array();
        // a bf16 conv output is the batch norm's input, as in a bf16 network
        const h = tidy(() => keep(conv2d(tensor(xs, [N, 1, H, H], { backend: native }), tensor(ws, [C, 1, 3, 3], { backend: native }),
          null, { padding: 1, precision: 'bf16' })));
        const hv = h.toFloat32Array();
        // dy as a bf16 network hands it over (a bf16 conv's data gradient): bf16 values
        const dys = randn(h.shape, rng).toFloat32Array().map(roundBf16);
        const run = (be: Backend, input: Tensor) => tidy(() => {
          const x = be === native ? input : tensor(hv, input.shape, { backend: be });
          x.requiresGrad = true;
          const g = tensor(gs, [C], { backend: be, requiresGrad: true });
          const b = tensor(bs, [C], { backend: be, requiresGrad: true });
          const rm = tensor(new Float32Array(C), [C], { backend: be });
          const rv = tensor(new Float32Array(C).fill(1), [C], { backend: be });
          const y = batchNorm(x, g, b, rm, rv, { training: true, relu });
          y.backward(tensor(dys, y.shape, { backend: be }));
          const out = { y: y.toFloat32Array(), dx: x.grad!.toFloat32Array(), dg: g.grad!.toFloat32Array(),
            db: b.grad!.toFloat32Array(), rm: rm.toFloat32Array(), rv: rv.toFloat32Array() };
          x.grad!.dispose(); x.grad = null; x.requiresGrad = false;
          return out;
        });
        const n = run(native, h), r = run(reference, h);
        h.dispose();
        const what = `bn ${N}x${C}x${H}x${H}${relu ? ' relu' : ''}`;
        assertClose(n.rm, r.rm, 1e-5, `${what}: running mean`, 1e-2);
        assertClose(n.rv, r.rv, 1e-5, `${what}: running var`, 1e-2);
        assertClose(n.dg, r.dg, 2e-3, `${what}: dgamma`, 1);
        assertClose(n.db, r.db, 2e-3, `${what}: dbeta`, 1);
        // y and dx are stored as bf16 (one rounding: 2^-8 relative)
        assert.ok(scaledError(n.y, r.y) < 2 ** -7, `${what}: y off by ${scaledError(n.y, r.y)}`);
        assert.ok(scaledError(n.dx, r.dx) < 2 ** -6, `${what}: dx off by ${scaledError(n.dx, r.dx)}`);
      }
    });
  }
});

describe('bf16 networks', () => {
  it('resnet20 training in bf16 tracks fp32 over 12 SGD steps', (t) => {
    if (noBf16) { t.skip(noBf16); return; }
    const losses = (precision: 'fp32' | 'bf16'): number[] => {
      const m = createModel('resnet20', { inChannels: 1, seed: 0 });
      m.train();
      const opt = new SGD(m.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
      const rng = new Rng(3);
      const x = randn([32, 1, 28, 28], rng);
      const y = tensor(Int32Array.from({ length: 32 }, (_, i) => i % 10), [32], { dtype: 'int32' });
      const out: number[] = [];
      for (let s = 0; s < 12; s++) {
        out.push(tidy(() => {
          const l = autocast(precision, () => crossEntropy(m.forward(x), y));
          l.backward();
          return l.item();
        }));
        opt.step();
        opt.zeroGrad();
      }
      for (const [name, p] of m.namedParameters()) {
        assert.ok(p.toFloat32Array().every(Number.isFinite), `${precision}: ${name} not finite`);
      }
      x.dispose(); y.dispose(); m.dispose();
      return out;
    };
    const a = losses('fp32'), b = losses('bf16');
    assert.ok(b[11] < b[0] * 0.8, `bf16 loss did not fall: ${b.join(', ')}`);
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) < 0.03 * a[0], `step ${i}: fp32 loss ${a[i]}, bf16 ${b[i]}`);
    }
  });

  it('BN-folded bf16 inference keeps fp32 logits within 2% of their scale (resnet18, resnet50 at width 1/4)', (t) => {
    if (noBf16) { t.skip(noBf16); return; }
    for (const arch of ['resnet18', 'resnet50']) {
      const m = createModel(arch, { numClasses: 100, width: 0.25, seed: 1 });
      m.eval();
      const x = randn([2, 3, 64, 64], new Rng(5));
      const fp32 = fuseForInference(m), bf16 = fuseForInference(m, { precision: 'bf16' });
      const a = tidy(() => fp32.forward(x).toFloat32Array()), b = tidy(() => bf16.forward(x).toFloat32Array());
      const again = tidy(() => bf16.forward(x).toFloat32Array()); // the bf16 weights are made once and kept
      assert.deepEqual(again, b, `${arch}: a second bf16 forward differs`);
      assert.ok(scaledError(b, a) < 0.02, `${arch}: bf16 logits off by ${scaledError(b, a)} of the logit scale`);
      assert.ok(scaledError(b, a) > 0, `${arch}: bf16 logits equal fp32's; bf16 was not used`);
      fp32.dispose(); bf16.dispose(); x.dispose(); m.dispose();
    }
  });
});

describe('bf16 inference of a trained net', () => {
  it('resnet20 trained on Fashion-MNIST (fp32): bf16 fused inference gives the fp32 top-1 class on >= 99.5% of the test set', async (t) => {
    if (noBf16) { t.skip(noBf16); return; }
    if (!existsSync(FASHION_MNIST_DIR)) { t.skip(`${FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`); return; }
    const dir = mkdtempSync(join(tmpdir(), 'resnet-bf16-'));
    try {
      const out = join(dir, 'run');
      await new Trainer({ arch: 'resnet20', epochs: 1, subset: 10000, out, precision: 'fp32', workers: 1 }).run();
      const ck = loadRunCheckpoint(out, undefined, 'best');
      const m = createModel(ck.meta.arch, ck.meta.modelOptions);
      m.loadStateDict(ck.model);
      m.eval();
      const { test } = await loadSplits('fashion-mnist', undefined);
      const loader = new DataLoader(test, { batchSize: 500, shuffle: false, workers: 1,
        transforms: transformsFor(test, false, 'none', { ...ck.meta.input, ...ck.meta.norm }) });
      const nets = [fuseForInference(m), fuseForInference(m, { precision: 'bf16' })];
      let same = 0, n = 0, right32 = 0, right16 = 0;
      const argmax = (a: Float32Array, row: number, K: number) => {
        let best = 0;
        for (let k = 1; k < K; k++) if (a[row * K + k] > a[row * K + best]) best = k;
        return best;
      };
      for await (const { x, y, shape } of loader.epoch(0)) {
        const [a, b] = nets.map((net) => tidy(() => net.forward(tensor(x, shape)).toFloat32Array()));
        for (let i = 0; i < y.length; i++) {
          const p32 = argmax(a, i, 10), p16 = argmax(b, i, 10);
          if (p32 === p16) same++;
          if (p32 === y[i]) right32++;
          if (p16 === y[i]) right16++;
          n++;
        }
      }
      await loader.close();
      for (const net of nets) net.dispose();
      m.dispose();
      assert.equal(n, 10000);
      t.diagnostic(`top-1 fp32 ${(100 * right32 / n).toFixed(2)}%, bf16 ${(100 * right16 / n).toFixed(2)}%, same class ${(100 * same / n).toFixed(2)}%`);
      assert.ok(right32 / n > 0.6, `the net learned (fp32 top-1 ${right32 / n})`);
      assert.ok(same / n >= 0.995, `bf16 gives fp32's class on ${(100 * same / n).toFixed(2)}% of the test set`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('resolvePrecision', () => {
  const fake = (isa: string, name: 'native' | 'reference' = 'native', bf16ConvImpl: string | null = `brgconv:${isa}`): Backend =>
    ({ name, info: () => ({ backend: name, onednn: '2.6.3', threads: 2, isa, bf16ConvImpl }) }) as unknown as Backend;

  it("'auto' is bf16 only where oneDNN has AMX and an optimised bf16 convolution", () => {
    assert.equal(resolvePrecision('auto', fake('avx512_core_amx')).precision, 'bf16');
    assert.equal(resolvePrecision('auto', fake('avx512_core_amx', 'native', 'ref:any')).precision, 'fp32');
    assert.match(resolvePrecision('auto', fake('avx512_core_amx', 'native', 'ref:any')).reason, /gets ref:any/);
    const here = native.info();
    assert.equal(resolvePrecision('auto', native).precision, here.isa === 'avx512_core_amx' ? 'bf16' : 'fp32');
    if (here.isa.startsWith('avx512')) assert.match(String(here.bf16ConvImpl), /^(jit|brg)\w*:/);
    else assert.equal(here.bf16ConvImpl, null);
    for (const isa of ['avx2', 'avx512_core', 'avx512_core_bf16']) assert.equal(resolvePrecision('auto', fake(isa)).precision, 'fp32');
    assert.equal(resolvePrecision(undefined, fake('avx2')).precision, 'fp32');
    assert.equal(resolvePrecision('auto', fake('none', 'reference')).precision, 'fp32');
  });

  it("'bf16' without AVX-512 is an error naming the ISA and the way out", () => {
    assert.throws(() => resolvePrecision('bf16', fake('avx2')), /ISA is avx2 \(no AVX-512\).*--precision fp32/);
    assert.equal(resolvePrecision('bf16', fake('avx512_core_bf16')).precision, 'bf16');
    assert.equal(resolvePrecision('bf16', fake('none', 'reference')).precision, 'bf16');
    assert.throws(() => resolvePrecision('fp16' as never, fake('avx2')), /unknown precision 'fp16'; valid: auto, fp32, bf16/);
  });
});
