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
  type InterpolateOptions, interpolate, roiAlign, roiPool,
} from '../src/detect/ops/index.js';
import { ResnetError } from '../src/errors.js';
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
