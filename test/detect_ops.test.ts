// The detection ops (src/detect/ops) against torchvision 0.14 / PyTorch 1.13 fixtures
// (scripts/make_detect_ops_fixtures.py), forward and the gradient wrt x, on both backends;
// the reference kernels' backward as the adjoint of their forward in float64; empty rois;
// one-line errors for bad inputs.
// Run: node --import tsx --test test/detect_ops.test.ts

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import type { Backend, InterpolateGeometry, RoiGeometry } from '../src/backend/backend.js';
import {
  interpolate as refInterpolate, interpolateBackward as refInterpolateBackward, roiAlign as refRoiAlign,
  roiAlignBackward as refRoiAlignBackward, roiPool as refRoiPool, roiPoolBackward as refRoiPoolBackward,
} from '../src/backend/reference/detect.js';
import {
  FrozenBatchNorm2d, type InterpolateOptions, type Reduction, binaryCrossEntropyWithLogits, interpolate, roiAlign, roiPool,
  smoothL1Loss,
} from '../src/detect/ops/index.js';
import { backendByName } from '../src/backend/index.js';
import { type NativeAddon, NativeBackend, loadNativeAddon } from '../src/backend/native.js';
import { NativeError, ResnetError } from '../src/errors.js';
import { add, conv2d, mul, sum } from '../src/tensor/ops/index.js';
import { tensor, type Tensor } from '../src/tensor/tensor.js';
import { describeEachBackend } from './helpers/backends.js';
import { assertClose } from './helpers/compare.js';
import { Rng } from './helpers/random.js';

const FIX = JSON.parse(readFileSync(new URL('./fixtures/detect/ops.json', import.meta.url), 'utf8'));

/** The fixture script's inputs: distinct values, exact in float32. */
function pattern(n: number, seed: number, div: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((((i + seed) * 7919) % 10007) - 5003) / div;
  return a;
}

function pat(be: Backend, shape: number[], seed: number, div: number, requiresGrad = false): Tensor {
  return tensor(pattern(shape.reduce((a, b) => a * b, 1), seed, div), shape, { backend: be, requiresGrad });
}

const TOL = 1e-5;
/** Relative error below |expected| = 0.1 is measured against 0.1 (float32 sums that cancel). */
const FLOOR = 0.1;

/** y = f(x); then backward with the fixture's upstream gradient; compares y and x.grad. */
function checkCase(be: Backend, what: string, x: Tensor, f: (x: Tensor) => Tensor, dySeed: number,
  want: { y: number[]; dx: number[] }, outShape?: readonly number[]): void {
  const y = f(x);
  if (outShape) assert.deepEqual(y.shape, outShape, `${what}: output shape`);
  assertClose(y.toFloat32Array(), want.y, TOL, `${what}: y`, FLOOR);
  const dy = pat(be, [...y.shape], dySeed, 2048);
  y.backward(dy);
  assertClose(x.grad!.toFloat32Array(), want.dx, TOL, `${what}: dx`, FLOOR);
  x.grad!.dispose();
  x.grad = null;
  y.dispose();
  dy.dispose();
}

interface RoiAlignCase { rois: number[][]; outputSize: [number, number]; spatialScale: number; samplingRatio: number; aligned: boolean; y: number[]; dx: number[] }
interface RoiPoolCase { rois: number[][]; outputSize: [number, number]; spatialScale: number; y: number[]; dx: number[] }
interface InterpCase extends InterpolateOptions { outShape: number[]; y: number[]; dx: number[] }

const ROI = FIX.inputs.roi;
const INTERP = FIX.inputs.interpolate;

describeEachBackend('detect ops vs torchvision', (be) => {
  const roisOf = (rows: number[][]) => tensor(rows.flat(), [rows.length, 5], { backend: be });

  it('roiAlign: aligned false/true, sampling 2 and adaptive, scales 1/4 and 1/16', () => {
    const cases = FIX.cases.roiAlign as RoiAlignCase[];
    assert.ok(cases.length >= 8);
    for (const c of cases) {
      const x = pat(be, ROI.shape, ROI.seed, ROI.div, true);
      const rois = roisOf(c.rois);
      const what = `roiAlign(scale ${c.spatialScale}, sampling ${c.samplingRatio}, aligned ${c.aligned})`;
      checkCase(be, what, x, (t) => roiAlign(t, rois, c), ROI.dySeed, c,
        [c.rois.length, ROI.shape[1], ...c.outputSize]);
      x.dispose();
      rois.dispose();
    }
  });

  it('roiPool: scales 1/4 and 1/16', () => {
    for (const c of FIX.cases.roiPool as RoiPoolCase[]) {
      const x = pat(be, ROI.shape, ROI.seed, ROI.div, true);
      const rois = roisOf(c.rois);
      checkCase(be, `roiPool(scale ${c.spatialScale}, ${c.outputSize})`, x, (t) => roiPool(t, rois, c), ROI.dySeed, c,
        [c.rois.length, ROI.shape[1], ...c.outputSize]);
      x.dispose();
      rois.dispose();
    }
  });

  it('interpolate: nearest and bilinear, by size and by scale factor', () => {
    for (const c of FIX.cases.interpolate as InterpCase[]) {
      const x = pat(be, INTERP.shape, INTERP.seed, INTERP.div, true);
      const { y: _y, dx: _dx, outShape, ...opts } = c;
      checkCase(be, `interpolate(${JSON.stringify(opts)})`, x, (t) => interpolate(t, opts), INTERP.dySeed, c, outShape);
      x.dispose();
    }
  });

  const LOSS = FIX.inputs.loss;
  const lossInputs = (scale: number) => {
    const x = pattern(LOSS.n, LOSS.inputSeed, LOSS.div).map((v) => v * scale);
    return tensor(x, [LOSS.n], { backend: be, requiresGrad: true });
  };

  it('smoothL1Loss: beta 1/9 and 1, every reduction', () => {
    const t = tensor(pattern(LOSS.n, LOSS.targetSeed, LOSS.div), [LOSS.n], { backend: be });
    for (const c of FIX.cases.smoothL1 as { beta: number; reduction: Reduction; y: number[]; dx: number[] }[]) {
      const x = lossInputs(1);
      checkCase(be, `smoothL1Loss(beta ${c.beta}, ${c.reduction})`, x, (v) => smoothL1Loss(v, t, c), LOSS.dySeed, c,
        c.reduction === 'none' ? [LOSS.n] : []);
      x.dispose();
    }
  });

  it('binaryCrossEntropyWithLogits: every reduction', () => {
    const t = tensor(pattern(LOSS.n, 7, 1024).map((v) => (v > 0 ? 1 : 0)), [LOSS.n], { backend: be });
    for (const c of FIX.cases.bce as { reduction: Reduction; y: number[]; dx: number[] }[]) {
      const x = lossInputs(LOSS.bceLogitScale);
      checkCase(be, `binaryCrossEntropyWithLogits(${c.reduction})`, x, (v) => binaryCrossEntropyWithLogits(v, t, c),
        LOSS.dySeed, c, c.reduction === 'none' ? [LOSS.n] : []);
      x.dispose();
    }
  });

  it('the losses give the target a gradient too, and reject bad arguments', () => {
    const x = tensor([0.05, -2, 3], [3], { backend: be, requiresGrad: true });
    const t = tensor([0, 0.5, 1], [3], { backend: be, requiresGrad: true });
    smoothL1Loss(x, t, { beta: 0.1, reduction: 'sum' }).backward();
    assertClose(t.grad!.toFloat32Array(), [-0.5, 1, -1], 1e-6, 'smoothL1Loss dtarget');
    assert.throws(() => smoothL1Loss(x, tensor([1, 2], [2], { backend: be })), /smoothL1Loss: shapes must match, got \[3\] and \[2\]/);
    assert.throws(() => smoothL1Loss(x, t, { beta: -1 }), /smoothL1Loss: 'beta' must be a finite number >= 0/);
    assert.throws(() => binaryCrossEntropyWithLogits(x, t, { reduction: 'avg' as Reduction }), /'reduction' must be 'sum', 'mean' or 'none'/);
    const e = binaryCrossEntropyWithLogits(tensor(new Float32Array(0), [0], { backend: be }), tensor(new Float32Array(0), [0], { backend: be }));
    assert.ok(Number.isNaN(e.item()), 'the mean of nothing is NaN, as torch');
  });

  it('FrozenBatchNorm2d: eps 0 and 1e-5, gradient wrt x only, torchvision state-dict keys', () => {
    const FB = FIX.inputs.frozenBn;
    for (const c of FIX.cases.frozenBn as { eps: number; weight: number[]; bias: number[]; runningMean: number[]; runningVar: number[]; y: number[]; dx: number[] }[]) {
      const bn = new FrozenBatchNorm2d(3, c.eps, { backend: be });
      assert.deepEqual(Object.keys(bn.stateDict()), ['weight', 'bias', 'running_mean', 'running_var']);
      bn.loadStateDict({
        weight: tensor(c.weight, [3], { backend: be }), bias: tensor(c.bias, [3], { backend: be }),
        running_mean: tensor(c.runningMean, [3], { backend: be }), running_var: tensor(c.runningVar, [3], { backend: be }),
      });
      assert.equal(bn.parameters().length, 0, 'nothing to train');
      for (const training of [true, false]) {
        if (training) bn.train(); else bn.eval();
        const x = pat(be, FB.shape, FB.seed, FB.div, true);
        checkCase(be, `FrozenBatchNorm2d(eps ${c.eps}, ${training ? 'train' : 'eval'})`, x, (v) => bn.forward(v), FB.dySeed, c, FB.shape);
        x.dispose();
      }
      assert.throws(() => bn.forward(pat(be, [1, 4, 2, 2], 0, 1)), /FrozenBatchNorm2d: input 'x' \[1, 4, 2, 2\] has 4 channels, expected 3/);
      bn.dispose();
    }
  });

  it('empty rois give [0, C, OH, OW] and a zero gradient', () => {
    const x = pat(be, [1, 3, 4, 4], 0, 1024, true);
    const rois = tensor(new Float32Array(0), [0, 5], { backend: be });
    for (const op of ['align', 'pool'] as const) {
      const y = op === 'align'
        ? roiAlign(x, rois, { outputSize: [2, 3], spatialScale: 1, samplingRatio: -1, aligned: true })
        : roiPool(x, rois, { outputSize: [2, 3], spatialScale: 1 });
      assert.deepEqual(y.shape, [0, 3, 2, 3]);
      assert.equal(y.toFloat32Array().length, 0);
      y.backward(tensor(new Float32Array(0), [0, 3, 2, 3], { backend: be }));
      assert.deepEqual([...x.grad!.toFloat32Array()], new Array(48).fill(0));
      x.grad!.dispose();
      x.grad = null;
    }
  });

  it('the rois may be disposed before backward', () => {
    const x = pat(be, [2, 2, 6, 6], 0, 1024, true);
    const rois = tensor([1, 0.5, 0.5, 4, 5], [1, 5], { backend: be });
    const y = roiAlign(x, rois, { outputSize: 2, spatialScale: 1, samplingRatio: 2, aligned: false });
    rois.dispose();
    y.backward(tensor(new Float32Array(8).fill(1), [1, 2, 2, 2], { backend: be }));
    let s = 0;
    for (const v of x.grad!.toFloat32Array()) s += v;
    assert.ok(Math.abs(s - 8) < 1e-5, `the weights of each bin sum to 1: total ${s}`);
  });

  it('forward and backward leave no storage behind', () => {
    const before = be.live().count;
    const x = pat(be, [2, 3, 6, 7], 0, 1024, true);
    const rois = tensor([0, 1, 1, 20, 12, 1, -3, 2, 9, 30], [2, 5], { backend: be });
    const t = tensor(new Float32Array(2 * 3 * 4), [2, 3, 2, 2], { backend: be });
    const bn = new FrozenBatchNorm2d(3, 0, { backend: be });
    const outs = [
      roiAlign(x, rois, { outputSize: 2, spatialScale: 0.5, samplingRatio: -1, aligned: false }),
      roiPool(x, rois, { outputSize: 2, spatialScale: 0.5 }),
      interpolate(x, { scaleFactor: 1.5, mode: 'bilinear', recomputeScaleFactor: true }),
      interpolate(x, { size: [3, 3], mode: 'nearest' }),
      bn.forward(x),
    ];
    const flat = outs.slice(0, 2).map((y) => smoothL1Loss(y, t, { reduction: 'sum' }));
    for (const y of [...outs.slice(2), ...flat]) {
      const dy = tensor(new Float32Array(y.numel).fill(1), y.shape, { backend: be });
      y.backward(dy);
      dy.dispose();
    }
    for (const y of [...outs, ...flat]) y.dispose();
    for (const v of [x, rois, t]) v.dispose();
    bn.dispose();
    assert.equal(be.live().count, before);
  });

  it('bad inputs are one-line errors naming the op and argument', () => {
    const x = pat(be, [2, 3, 8, 8], 0, 1024);
    const r = (rows: number[], k: number) => tensor(rows, [k, rows.length / k], { backend: be });
    const ra = { outputSize: 2, spatialScale: 1, samplingRatio: 2, aligned: false };
    const expectErr = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof ResnetError, `a ResnetError, got ${String(e)}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
      return true;
    });
    expectErr(() => roiAlign(pat(be, [3, 8, 8], 0, 1), r([0, 0, 0, 1, 1], 1), ra), /roiAlign: input 'x' must be 4-D \[N, C, H, W\], got \[3, 8, 8\]/);
    expectErr(() => roiAlign(x, r([0, 0, 0, 1], 1), ra), /roiAlign: input 'rois' must be \[K, 5\].*got \[1, 4\]/);
    expectErr(() => roiPool(x, tensor([0, 0, 0, 1, 1], [5], { backend: be }), { outputSize: 2, spatialScale: 1 }), /roiPool: input 'rois' must be \[K, 5\]/);
    expectErr(() => roiAlign(x, r([2, 0, 0, 1, 1], 1), ra), /roiAlign: rois row 0 has batch index 2, valid: 0\.\.1/);
    expectErr(() => roiPool(x, r([0, 0, 0, 1, 1, -1, 0, 0, 1, 1], 2), { outputSize: 2, spatialScale: 1 }), /roiPool: rois row 1 has batch index -1/);
    expectErr(() => roiAlign(x, r([0, 0, NaN, 1, 1], 1), ra), /roiAlign: rois row 0 has coordinate NaN/);
    expectErr(() => roiAlign(x, r([0, 0, 0, 1, 1], 1), { ...ra, outputSize: -1 }), /roiAlign: 'outputSize' must be an integer >= 1/);
    expectErr(() => roiAlign(x, r([0, 0, 0, 1, 1], 1), { ...ra, spatialScale: 0 }), /roiAlign: 'spatialScale' must be a finite number > 0/);
    expectErr(() => roiAlign(x, tensor([0, 0, 0, 1, 1], [1, 5], { backend: be, dtype: 'int32' }), ra), /roiAlign: 'rois' must be float32/);
    expectErr(() => interpolate(x, { size: [-2, 4], mode: 'nearest' }), /interpolate: 'size' must be integers >= 1, got \[-2, 4\]/);
    expectErr(() => interpolate(x, { scaleFactor: 0.1, mode: 'bilinear' }), /interpolate: 'scaleFactor' \[0\.1, 0\.1\] gives output size \[0, 0\]/);
    expectErr(() => interpolate(x, { mode: 'bilinear' }), /interpolate: give exactly one of 'size' and 'scaleFactor', got neither/);
    expectErr(() => interpolate(x, { size: [4, 4], scaleFactor: 2, mode: 'bilinear' }), /got both/);
    expectErr(() => interpolate(x, { size: [4, 4], mode: 'nearest', alignCorners: true }), /'alignCorners' can only be set with mode 'bilinear'/);
    expectErr(() => interpolate(x, { size: [4, 4], mode: 'bilinear', recomputeScaleFactor: true }), /not meaningful with an explicit 'size'/);
    expectErr(() => interpolate(x, { size: [4, 4], mode: 'bicubic' as 'bilinear' }), /'mode' must be 'nearest' or 'bilinear'/);
    expectErr(() => interpolate(pat(be, [8, 8], 0, 1), { size: [4, 4], mode: 'nearest' }), /interpolate: input 'x' must be 4-D/);
  });
});

describe('reference detection kernels: backward is the adjoint of forward (float64)', () => {
  const rng = new Rng(16);
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
  const rand = (n: number) => Float64Array.from({ length: n }, () => rng.uniform(-1, 1));

  it('roiAlign and roiPool', () => {
    for (let t = 0; t < 6; t++) {
      const g: RoiGeometry = { N: 2, C: 3, H: 5 + t, W: 9 - t, K: 5, OH: 2 + (t % 2), OW: 3, spatialScale: t % 2 ? 0.5 : 0.25,
        samplingRatio: t % 3 - 1, aligned: t % 2 === 0 };
      const rois = new Float64Array(g.K * 5);
      for (let k = 0; k < g.K; k++) {
        rois.set([k % 2, rng.uniform(-8, 30), rng.uniform(-8, 30), rng.uniform(-8, 40), rng.uniform(-8, 40)], k * 5);
      }
      const x = rand(g.N * g.C * g.H * g.W);
      const dy = rand(g.K * g.C * g.OH * g.OW);
      const lhs = dot(refRoiAlign(x, rois, g), dy);
      const rhs = dot(x, refRoiAlignBackward(dy, rois, g));
      assert.ok(Math.abs(lhs - rhs) <= 1e-9 * Math.max(1, Math.abs(lhs)), `roiAlign <Ax, dy> ${lhs} != <x, A'dy> ${rhs}`);
      const { y, argmax } = refRoiPool(x, rois, g);
      const dx = refRoiPoolBackward(dy, rois, argmax, g);
      assert.ok(Math.abs(dot(y, dy) - dot(x, dx)) <= 1e-9 * Math.max(1, Math.abs(dot(y, dy))), 'roiPool: max is linear in the chosen x');
    }
  });

  it('interpolate', () => {
    for (const mode of ['nearest', 'bilinear'] as const) {
      for (const [H, W, OH, OW, ac, sh] of [[5, 7, 9, 13, false, null], [6, 4, 3, 9, true, null], [4, 4, 7, 6, false, 1.9],
        [3, 5, 6, 10, false, null], [5, 5, 5, 5, true, null], [7, 3, 1, 1, true, null]] as const) {
        const g: InterpolateGeometry = { N: 2, C: 2, H, W, OH, OW, mode, alignCorners: mode === 'bilinear' && ac, scaleH: sh, scaleW: sh };
        const x = rand(g.N * g.C * H * W), dy = rand(g.N * g.C * OH * OW);
        const lhs = dot(refInterpolate(x, g), dy), rhs = dot(x, refInterpolateBackward(dy, g));
        assert.ok(Math.abs(lhs - rhs) <= 1e-9 * Math.max(1, Math.abs(lhs)), `${mode} ${H}x${W} -> ${OH}x${OW}: ${lhs} != ${rhs}`);
      }
    }
  });
});

describe('native detection kernels agree with the reference on larger, blocked and parallel inputs', () => {
  const nat = backendByName('native') as NativeBackend;
  const ref = backendByName('reference');
  const rng = new Rng(2016);

  it('the addon has its own kernels (not the host fallback of an old build)', () => {
    for (const f of ['roiAlign', 'roiAlignBackward', 'roiPool', 'roiPoolBackward', 'interpolate', 'interpolateBackward'] as const) {
      assert.equal(typeof loadNativeAddon()[f], 'function', f);
    }
  });

  it('an addon built before native/detect.cc falls back to the reference kernels on a host copy', () => {
    const addon = loadNativeAddon();
    const old = { ...addon } as Partial<NativeAddon>;
    for (const f of ['roiAlign', 'roiAlignBackward', 'roiPool', 'roiPoolBackward', 'interpolate', 'interpolateBackward'] as const) delete old[f];
    const stale = new NativeBackend(old as NativeAddon);
    const { xn, xr } = features(1, 4, 6, 5);
    const xs = tensor(xn.toFloat32Array(), xn.shape, { backend: stale, requiresGrad: true });
    const rows = randomRois(6, 1, 24, 20);
    const r = tensor(rows, [6, 5], { backend: stale }), rr = tensor(rows, [6, 5], { backend: ref });
    for (const f of [
      (x: Tensor, q: Tensor) => roiAlign(x, q, { outputSize: 2, spatialScale: 0.25, samplingRatio: 2, aligned: false }),
      (x: Tensor, q: Tensor) => roiPool(x, q, { outputSize: 2, spatialScale: 0.25 }),
      (x: Tensor) => interpolate(x, { size: [9, 7], mode: 'bilinear' }),
    ]) {
      const ys = f(xs, r), yr = f(xr, rr);
      assertClose(ys.toFloat32Array(), yr.toFloat32Array(), 1e-6, 'fallback y');
      ys.backward(tensor(new Float32Array(ys.numel).fill(1), ys.shape, { backend: stale }));
      yr.backward(tensor(new Float32Array(yr.numel).fill(1), yr.shape, { backend: ref }));
      assertClose(xs.grad!.toFloat32Array(), xr.grad!.toFloat32Array(), 1e-6, 'fallback dx');
      for (const x of [xs, xr]) { x.grad!.dispose(); x.grad = null; }
    }
  });

  /** x made by a native convolution (oneDNN's blocked layout), and the same values on reference. */
  function features(N: number, C: number, H: number, W: number): { xn: Tensor; xr: Tensor } {
    const inp = tensor(rng.array(N * 3 * H * W), [N, 3, H, W], { backend: nat });
    const w = tensor(rng.array(C * 3 * 9), [C, 3, 3, 3], { backend: nat });
    const xn = conv2d(inp, w, null, { padding: 1 });
    xn.requiresGrad = true;
    const xr = tensor(xn.toFloat32Array(), xn.shape, { backend: ref, requiresGrad: true });
    inp.dispose();
    w.dispose();
    return { xn, xr };
  }

  function randomRois(K: number, N: number, imgH: number, imgW: number): number[] {
    const rows: number[] = [];
    for (let k = 0; k < K; k++) {
      const x1 = rng.uniform(-20, imgW), y1 = rng.uniform(-20, imgH);
      rows.push(rng.int(0, N - 1), x1, y1, x1 + rng.uniform(-5, imgW / 2), y1 + rng.uniform(-5, imgH / 2));
    }
    return rows;
  }

  function agree(what: string, f: (x: Tensor, rois: Tensor | null) => Tensor, xn: Tensor, xr: Tensor, rows: number[] | null): void {
    const rn = rows ? tensor(rows, [rows.length / 5, 5], { backend: nat }) : null;
    const rr = rows ? tensor(rows, [rows.length / 5, 5], { backend: ref }) : null;
    const yn = f(xn, rn), yr = f(xr, rr);
    assert.deepEqual(yn.shape, yr.shape);
    assertClose(yn.toFloat32Array(), yr.toFloat32Array(), TOL, `${what}: y`, FLOOR);
    const dy = rng.array(yr.numel);
    yn.backward(tensor(dy, yn.shape, { backend: nat }));
    yr.backward(tensor(dy, yr.shape, { backend: ref }));
    // NOTE: native sums dx in float32 as torchvision does (hundreds of rois add into one
    // element), the reference in float64: a looser bound than the forward's
    assertClose(xn.grad!.toFloat32Array(), xr.grad!.toFloat32Array(), 1e-4, `${what}: dx`, FLOOR);
    for (const x of [xn, xr]) { x.grad!.dispose(); x.grad = null; }
  }

  it('roiAlign and roiPool: 2 images, 32 channels, 300 rois', () => {
    const { xn, xr } = features(2, 32, 25, 34);
    const rows = randomRois(300, 2, 25 * 16, 34 * 16);
    for (const [sr, aligned] of [[2, false], [0, true], [-1, false]] as const) {
      agree(`roiAlign(sampling ${sr}, aligned ${aligned})`,
        (x, r) => roiAlign(x, r!, { outputSize: 7, spatialScale: 1 / 16, samplingRatio: sr, aligned }), xn, xr, rows);
    }
    agree('roiPool', (x, r) => roiPool(x, r!, { outputSize: [7, 5], spatialScale: 1 / 16 }), xn, xr, rows);
  });

  it('interpolate: blocked input, up and down, nearest and bilinear', () => {
    const { xn, xr } = features(2, 16, 19, 23);
    for (const opts of [
      { size: [38, 46], mode: 'nearest' }, { size: [27, 31], mode: 'nearest' }, { scaleFactor: 0.55, mode: 'nearest' },
      { size: [40, 41], mode: 'bilinear' }, { size: [40, 41], mode: 'bilinear', alignCorners: true },
      { scaleFactor: 1.37, mode: 'bilinear', recomputeScaleFactor: true }, { scaleFactor: [0.5, 0.7], mode: 'bilinear' },
    ] as InterpolateOptions[]) {
      agree(`interpolate(${JSON.stringify(opts)})`, (x) => interpolate(x, opts), xn, xr, null);
    }
  });

  it('gradients of x from several ops (channels-last, plain and blocked) accumulate', () => {
    const { xn, xr } = features(1, 16, 12, 10);
    const rows = randomRois(20, 1, 48, 40);
    const f = (x: Tensor, r: Tensor | null) => {
      const a = roiAlign(x, r!, { outputSize: 3, spatialScale: 0.25, samplingRatio: 2, aligned: true });
      const b = roiAlign(x, r!, { outputSize: 2, spatialScale: 0.25, samplingRatio: -1, aligned: false });
      const c = interpolate(x, { size: [6, 5], mode: 'bilinear' });
      const d = roiPool(x, r!, { outputSize: 2, spatialScale: 0.25 });
      return add(add(sum(mul(a, a)), sum(b)), add(sum(mul(c, c)), sum(d)));
    };
    agree('sum of four ops', f, xn, xr, rows);
  });

  it('direct addon calls with bad rois, geometry or storages throw NativeError, never crash', () => {
    const x = nat.fromArray(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4], 'float32');
    const rows = (r: number[]) => nat.fromArray(Float32Array.from(r), [r.length / 5, 5], 'float32');
    const g = { N: 2, C: 3, H: 4, W: 4, K: 1, OH: 2, OW: 2, spatialScale: 1, samplingRatio: 2, aligned: false };
    assert.throws(() => nat.roiAlign(x, rows([5, 0, 0, 1, 1]), g), (e: unknown) => e instanceof NativeError && /roiAlign: rois row 0 has a batch index outside \[0, 2\)/.test(e.message));
    assert.throws(() => nat.roiPool(x, rows([0, 0, Infinity, 1, 1]), g), (e: unknown) => e instanceof NativeError && /roiPool: .*non-finite/.test(e.message));
    assert.throws(() => nat.roiAlign(x, rows([0, 0, 0, 1, 1]), { ...g, C: 4 }), (e: unknown) => e instanceof NativeError && /'x' has other dims/.test(e.message));
    assert.throws(() => nat.roiAlign(x, rows([0, 0, 0, 1, 1, 0, 0, 0, 1, 1]), g), /'rois' has other dims/);
    assert.throws(() => nat.roiAlignBackward(x, rows([0, 0, 0, 1, 1]), g), /'dy' has other dims/);
    assert.throws(() => nat.interpolate(x, { N: 2, C: 3, H: 4, W: 4, OH: 0, OW: 2, mode: 'nearest', alignCorners: false, scaleH: null, scaleW: null }), /OH, OW >= 1/);
    assert.throws(() => nat.interpolate(x, { N: 2, C: 3, H: 4, W: 4, OH: 2, OW: 2, mode: 'bicubic' as 'nearest', alignCorners: false, scaleH: null, scaleW: null }), /'mode' must be/);
    const { y, saved } = nat.roiPool(x, rows([0, 0, 0, 1, 1]), g);
    assert.throws(() => nat.roiPoolBackward(y, rows([0, 0, 0, 1, 1]), y, g), /'saved' is not this geometry's roiPool argmax/);
    // a scale inconsistent with the sizes cannot make the kernel read outside x
    const yi = nat.interpolate(x, { N: 2, C: 3, H: 4, W: 4, OH: 6, OW: 6, mode: 'bilinear', alignCorners: false, scaleH: 0.01, scaleW: 0.01 });
    assert.equal(nat.read(yi, [2, 3, 6, 6], 'float32').length, 216);
    for (const s of [x, y, saved, yi]) nat.free(s);
  });
});
