// Judge 3 of STYLE.md: every differentiable reference kernel's backward against central
// finite differences of its forward, in float64 throughout, over seeded random shapes.
// Objective L = sum(out * u) with random u, so every output element matters; dy = u.
// Plus known values: conv by hand, conv against a naive loop, softmax CE by hand, SGD
// against a hand-computed torch.optim.SGD trajectory, and the ReferenceBackend wrapper.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Conv2dGeometry, Pool2dGeometry, SgdParams } from '../src/backend/backend.js';
import { DisposedError, InvalidArgumentError } from '../src/errors.js';
import { batchNormBackward, batchNormInfer, batchNormInferBackward, batchNormTrain } from '../src/backend/reference/batch_norm.js';
import { conv2d, conv2dBackwardData, conv2dBackwardWeights } from '../src/backend/reference/conv.js';
import { add, affineScalar, axpbyInPlace, mul, relu, reluBackward } from '../src/backend/reference/eltwise.js';
import { linear, linearBackwardData, linearBackwardWeights } from '../src/backend/reference/linear.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from '../src/backend/reference/loss.js';
import { avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward } from '../src/backend/reference/pool.js';
import { sum } from '../src/backend/reference/reduce.js';
import { sgdUpdate } from '../src/backend/reference/sgd.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { Rng } from './helpers/random.js';

type F64 = Float64Array;
const EPS = 1e-6;
const TOL = 1e-6;
/** At most this many elements of one input are perturbed (a random sample beyond it). */
const MAX_CHECKS = 160;

/** Checks analytic gradients against central differences of L = sum(f(inputs) * u).
 *  `backward(u)` returns one gradient per input (null: input not differentiated). */
function gradcheck(rng: Rng, names: string[], inputs: F64[], f: () => Float64Array | Float32Array,
  backward: (u: F64) => (Float64Array | Float32Array | null)[]): void {
  const y0 = f();
  assert.ok(y0 instanceof Float64Array, 'kernels given float64 inputs return float64');
  const u = rng.array(y0.length);
  const loss = (): number => { const y = f(); let s = 0; for (let i = 0; i < y.length; i++) s += y[i] * u[i]; return s; };
  const grads = backward(u);
  assert.equal(grads.length, inputs.length);
  for (let a = 0; a < inputs.length; a++) {
    const x = inputs[a];
    const g = grads[a];
    if (g === null) continue;
    assert.ok(g instanceof Float64Array, `d${names[a]} is float64`);
    assert.equal(g.length, x.length, `d${names[a]} has ${g.length} elements, expected ${x.length}`);
    const idx = x.length <= MAX_CHECKS ? [...x.keys()] : rng.permutation(x.length).slice(0, MAX_CHECKS);
    let worst = 0, worstAt = -1, worstNum = 0;
    for (const j of idx) {
      const v = x[j];
      x[j] = v + EPS; const lp = loss();
      x[j] = v - EPS; const lm = loss();
      x[j] = v;
      const num = (lp - lm) / (2 * EPS);
      const err = Math.abs(num - g[j]) / Math.max(1, Math.abs(num), Math.abs(g[j]));
      if (!(err <= worst)) { worst = err; worstAt = j; worstNum = num; }
    }
    assert.ok(worst <= TOL,
      `d${names[a]}[${worstAt}]: analytic ${g[worstAt]}, numeric ${worstNum}, relative error ${worst} > ${TOL}`);
  }
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    assert.ok(err <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${err})`);
  }
}

const f64 = (xs: number[]): F64 => Float64Array.from(xs);

// ---- geometry (resolved here as the tensor layer would) -----------------------------------

const outSize = (size: number, k: number, stride: number, pad: number, dil: number): number =>
  Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;

interface ConvSpec {
  N: number; C: number; H: number; W: number; K: number; R: number; S: number;
  stride: [number, number]; pad: [number, number]; dil: [number, number]; groups: number;
}

function convGeom(s: ConvSpec): Conv2dGeometry {
  return {
    N: s.N, C: s.C, H: s.H, W: s.W, K: s.K, R: s.R, S: s.S,
    OH: outSize(s.H, s.R, s.stride[0], s.pad[0], s.dil[0]), OW: outSize(s.W, s.S, s.stride[1], s.pad[1], s.dil[1]),
    strideH: s.stride[0], strideW: s.stride[1], padH: s.pad[0], padW: s.pad[1],
    dilationH: s.dil[0], dilationW: s.dil[1], groups: s.groups,
  };
}

function poolGeom(N: number, C: number, H: number, W: number, k: [number, number], stride: [number, number],
  pad: [number, number]): Pool2dGeometry {
  return {
    N, C, H, W, OH: outSize(H, k[0], stride[0], pad[0], 1), OW: outSize(W, k[1], stride[1], pad[1], 1),
    kernelH: k[0], kernelW: k[1], strideH: stride[0], strideW: stride[1], padH: pad[0], padW: pad[1],
  };
}

/** The definition, one output at a time with bounds checks: the judge of conv2d's loop bounds. */
function naiveConv(x: F64, w: F64, b: F64 | null, g: Conv2dGeometry): F64 {
  const { N, C, H, W, K, R, S, OH, OW, groups } = g;
  const Cg = C / groups, Kg = K / groups;
  const y = new Float64Array(N * K * OH * OW);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let acc = b ? b[k] : 0;
    for (let cg = 0; cg < Cg; cg++) for (let r = 0; r < R; r++) for (let s = 0; s < S; s++) {
      const ih = oh * g.strideH - g.padH + r * g.dilationH;
      const iw = ow * g.strideW - g.padW + s * g.dilationW;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const c = Math.floor(k / Kg) * Cg + cg;
      acc += w[((k * Cg + cg) * R + r) * S + s] * x[((n * C + c) * H + ih) * W + iw];
    }
    y[((n * K + k) * OH + oh) * OW + ow] = acc;
  }
  return y;
}

// ---- convolution ----------------------------------------------------------------------------

/** Fixed coverage (each option at least once) with random sizes; then fully random specs. */
function convSpecs(rng: Rng): ConvSpec[] {
  const odd = (lo: number, hi: number): number => 2 * rng.int(Math.ceil((lo - 1) / 2), Math.floor((hi - 1) / 2)) + 1;
  type Base = Omit<ConvSpec, 'N' | 'C' | 'H' | 'W' | 'K'> & { cg?: number; kg?: number; depthwise?: boolean };
  const fixed: Base[] = [
    { R: 3, S: 3, stride: [1, 1], pad: [1, 1], dil: [1, 1], groups: 1 },
    { R: 3, S: 3, stride: [2, 2], pad: [1, 1], dil: [1, 1], groups: 1 },
    { R: 1, S: 1, stride: [1, 1], pad: [0, 0], dil: [1, 1], groups: 1 },
    { R: 1, S: 1, stride: [2, 2], pad: [0, 0], dil: [1, 1], groups: 1 },
    { R: 7, S: 7, stride: [2, 2], pad: [3, 3], dil: [1, 1], groups: 1 },
    { R: 3, S: 3, stride: [1, 1], pad: [0, 0], dil: [2, 2], groups: 2 },
    { R: 3, S: 3, stride: [2, 2], pad: [3, 3], dil: [2, 2], groups: 2 },
    { R: 3, S: 3, stride: [2, 2], pad: [1, 1], dil: [1, 1], groups: 0, depthwise: true },
    { R: 3, S: 3, stride: [1, 1], pad: [1, 1], dil: [2, 2], groups: 0, depthwise: true, kg: 2 },
    { R: 1, S: 3, stride: [2, 1], pad: [0, 1], dil: [1, 2], groups: 1 },
    { R: 3, S: 1, stride: [1, 2], pad: [3, 0], dil: [2, 1], groups: 2 },
  ];
  const specs: ConvSpec[] = [];
  const make = (b: Base): ConvSpec => {
    const groups = b.depthwise ? rng.int(2, 4) : b.groups;
    const Cg = b.depthwise ? 1 : rng.int(1, 3);
    const Kg = b.kg ?? (b.depthwise ? 1 : rng.int(1, 3));
    const big = b.R * b.S >= 49;
    const N = big ? rng.int(1, 2) : rng.pick([1, 2, 3]);
    // the smallest input that still gives one output, then a few more (odd sizes)
    const minH = Math.max(1, b.dil[0] * (b.R - 1) + 1 - 2 * b.pad[0]);
    const minW = Math.max(1, b.dil[1] * (b.S - 1) + 1 - 2 * b.pad[1]);
    const H = odd(minH, minH + (big ? 6 : 8));
    const W = odd(minW, minW + (big ? 6 : 8));
    return { ...b, N, C: Cg * groups, K: Kg * groups, H, W, groups };
  };
  for (const b of fixed) specs.push(make(b));
  for (let i = 0; i < 8; i++) {
    const R = rng.pick([1, 3, 7]), S = rng.pick([1, 3, 7]);
    const pick2 = (xs: number[]): [number, number] => [rng.pick(xs), rng.pick(xs)];
    specs.push(make({
      R, S, stride: pick2([1, 2]), pad: pick2([0, 1, 3]), dil: pick2([1, 2]), groups: rng.pick([1, 2]),
      depthwise: rng.next() < 0.2,
    }));
  }
  return specs;
}

describe('conv2d', () => {
  it('matches a hand-computed 3x3 input, 2x2 kernel, stride 2, padding 1, bias', () => {
    // x = [[1 2 3] [4 5 6] [7 8 9]], w = [[1 2] [3 4]], OH = OW = floor((3 + 2 - 2) / 2) + 1 = 2
    // y00 = 4*1; y01 = 3*2 + 4*3; y10 = 2*4 + 4*7; y11 = 1*5 + 2*6 + 3*8 + 4*9; all + 0.5
    const g = convGeom({ N: 1, C: 1, H: 3, W: 3, K: 1, R: 2, S: 2, stride: [2, 2], pad: [1, 1], dil: [1, 1], groups: 1 });
    const y = conv2d(f64([1, 2, 3, 4, 5, 6, 7, 8, 9]), f64([1, 2, 3, 4]), f64([0.5]), g);
    assert.deepEqual([...y], [4.5, 18.5, 36.5, 77.5]);
  });

  it('matches a hand-computed dilated kernel and a grouped 1x1', () => {
    // dilation 2: the 2x2 kernel touches the corners: 1*1 + 2*3 + 3*7 + 4*9 = 64
    const gd = convGeom({ N: 1, C: 1, H: 3, W: 3, K: 1, R: 2, S: 2, stride: [1, 1], pad: [0, 0], dil: [2, 2], groups: 1 });
    assert.deepEqual([...conv2d(f64([1, 2, 3, 4, 5, 6, 7, 8, 9]), f64([1, 2, 3, 4]), null, gd)], [64]);
    // groups 2: output channel k sees only input channel k
    const gg = convGeom({ N: 1, C: 2, H: 2, W: 2, K: 2, R: 1, S: 1, stride: [1, 1], pad: [0, 0], dil: [1, 1], groups: 2 });
    assert.deepEqual([...conv2d(f64([1, 2, 3, 4, 5, 6, 7, 8]), f64([2, -1]), null, gg)], [2, 4, 6, 8, -5, -6, -7, -8]);
  });

  const rng = new Rng(0xc0ffee);
  for (const spec of convSpecs(rng)) {
    const g = convGeom(spec);
    const label = `N${g.N} C${g.C} ${g.H}x${g.W} K${g.K} ${g.R}x${g.S} stride ${g.strideH},${g.strideW} ` +
      `pad ${g.padH},${g.padW} dil ${g.dilationH},${g.dilationW} groups ${g.groups} -> ${g.OH}x${g.OW}`;
    it(`forward and gradients: ${label}`, () => {
      const x = rng.array(g.N * g.C * g.H * g.W);
      const w = rng.array(g.K * (g.C / g.groups) * g.R * g.S);
      const b = rng.array(g.K);
      assertClose(conv2d(x, w, b, g), naiveConv(x, w, b, g), 1e-12, 'conv2d vs naive');
      gradcheck(rng, ['x', 'w', 'b'], [x, w, b], () => conv2d(x, w, b, g), (dy) => {
        const { dw, db } = conv2dBackwardWeights(x, dy, g, true);
        return [conv2dBackwardData(dy, w, g), dw, db];
      });
    });
  }
});

// ---- batch norm -----------------------------------------------------------------------------

/** Draws BN inputs whose pre-activation stays at least `margin` from the ReLU kink. */
function bnInputs(rng: Rng, shape: number[], margin: number): { x: F64; gamma: F64; beta: F64 } {
  const C = shape[1];
  for (;;) {
    const x = rng.array(shape.reduce((a, b) => a * b), -2, 2);
    const gamma = rng.array(C, 0.5, 1.5);
    for (let c = 0; c < C; c++) if (rng.next() < 0.3) gamma[c] = -gamma[c];
    const beta = rng.array(C, -0.5, 0.5);
    const { y } = batchNormTrain(x, gamma, beta, shape, 1e-5, false);
    if (y.every((v) => Math.abs(v) > margin)) return { x, gamma, beta };
  }
}

describe('batch norm', () => {
  const rng = new Rng(0xb17);
  const shapes = [[2, 3, 5, 5], [1, 2, 3, 7], [4, 3, 1, 1], [3, 1, 3, 3], [1, 4, 5, 3]];
  for (const shape of shapes) {
    for (const fuseRelu of [false, true]) {
      it(`train: dx, dgamma, dbeta, [${shape}]${fuseRelu ? ' + relu' : ''}`, () => {
        const eps = 1e-5;
        const { x, gamma, beta } = bnInputs(rng, shape, 1e-3);
        const { mean, variance } = batchNormTrain(x, gamma, beta, shape, eps, fuseRelu);
        gradcheck(rng, ['x', 'gamma', 'beta'], [x, gamma, beta],
          () => batchNormTrain(x, gamma, beta, shape, eps, fuseRelu).y, (dy) => {
            const r = batchNormBackward(dy, x, gamma, fuseRelu ? beta : null, mean, variance, shape, eps, fuseRelu);
            return [r.dx, r.dgamma, r.dbeta];
          });
      });

      it(`infer: dx, dgamma, dbeta, [${shape}]${fuseRelu ? ' + relu' : ''}`, () => {
        const eps = 1e-5;
        const { x, gamma, beta } = bnInputs(rng, shape, 1e-3);
        const mean = rng.array(shape[1], -0.1, 0.1);
        const variance = rng.array(shape[1], 0.8, 1.5);
        // keep away from the kink under these statistics too
        const y = batchNormInfer(x, gamma, beta, mean, variance, shape, eps, false);
        for (let i = 0; i < y.length; i++) if (Math.abs(y[i]) < 1e-3) x[i] += 0.01;
        gradcheck(rng, ['x', 'gamma', 'beta'], [x, gamma, beta],
          () => batchNormInfer(x, gamma, beta, mean, variance, shape, eps, fuseRelu), (dy) => {
            const r = batchNormInferBackward(dy, x, gamma, fuseRelu ? beta : null, mean, variance, shape, eps, fuseRelu);
            return [r.dx, r.dgamma, r.dbeta];
          });
      });
    }
  }

  it('train uses the biased variance; infer with the batch statistics gives the same y', () => {
    const shape = [2, 2, 1, 2];
    // channel 0: 1, 2, 3, 4 (mean 2.5, biased variance 1.25); channel 1: 0, 0, 2, 2 (mean 1, variance 1)
    const x = f64([1, 2, 0, 0, 3, 4, 2, 2]);
    const gamma = f64([1, 2]), beta = f64([0, 1]);
    const t = batchNormTrain(x, gamma, beta, shape, 0, false);
    assertClose(t.mean, [2.5, 1], 1e-15, 'mean');
    assertClose(t.variance, [1.25, 1], 1e-15, 'variance');
    assertClose(t.y.subarray(2, 4), [-1, -1], 1e-15, 'y channel 1');
    assertClose(batchNormInfer(x, gamma, beta, t.mean, t.variance, shape, 0, false), t.y, 1e-15, 'infer');
    assert.throws(() => batchNormBackward(x, x, gamma, null, t.mean, t.variance, shape, 0, true), InvalidArgumentError);
  });
});

// ---- pooling ----------------------------------------------------------------------------------

const poolCases: { k: [number, number]; stride: [number, number]; pad: [number, number] }[] = [
  { k: [3, 3], stride: [2, 2], pad: [1, 1] }, // ResNet stem
  { k: [2, 2], stride: [2, 2], pad: [0, 0] },
  { k: [3, 3], stride: [1, 1], pad: [1, 1] },
  { k: [2, 3], stride: [1, 2], pad: [1, 1] },
  { k: [7, 7], stride: [1, 1], pad: [3, 3] },
  { k: [3, 1], stride: [2, 1], pad: [1, 0] },
];

describe('pooling', () => {
  const rng = new Rng(0x9001);
  for (const pc of poolCases) {
    const N = rng.pick([1, 2]), C = rng.int(1, 3);
    const H = 2 * rng.int(Math.ceil(pc.k[0] / 2), 4) + 1, W = 2 * rng.int(Math.ceil(pc.k[1] / 2), 4) + 1;
    const g = poolGeom(N, C, H, W, pc.k, pc.stride, pc.pad);
    const label = `[${N}, ${C}, ${H}, ${W}] kernel ${pc.k} stride ${pc.stride} pad ${pc.pad} -> ${g.OH}x${g.OW}`;

    it(`max pool: ${label}`, () => {
      // distinct values at least ~0.04 apart: no ties, and a 1e-6 nudge never moves the argmax
      const x = Float64Array.from(rng.permutation(N * C * H * W), (v) => 0.05 * v + rng.uniform(0, 0.01) - 1);
      const { argmax } = maxPool2d(x, g);
      gradcheck(rng, ['x'], [x], () => maxPool2d(x, g).y, (dy) => [maxPool2dBackward(dy, argmax, g)]);
    });

    for (const countIncludePad of [true, false]) {
      it(`avg pool (count_include_pad ${countIncludePad}): ${label}`, () => {
        const x = rng.array(N * C * H * W);
        gradcheck(rng, ['x'], [x], () => avgPool2d(x, g, countIncludePad), (dy) => [avgPool2dBackward(dy, g, countIncludePad)]);
      });
    }
  }

  it('max pool pads with -inf (PyTorch), saving plane indices', () => {
    // x = -1 .. -9 (3x3), kernel 3, stride 2, pad 1: padding never wins over negative values
    const g = poolGeom(1, 1, 3, 3, [3, 3], [2, 2], [1, 1]);
    const { y, argmax } = maxPool2d(f64([-1, -2, -3, -4, -5, -6, -7, -8, -9]), g);
    assert.deepEqual([...y], [-1, -2, -4, -5]);
    assert.deepEqual([...argmax], [0, 1, 3, 4]);
  });

  it('avg pool divisor with and without padding (PyTorch)', () => {
    // ones 3x3, kernel 3, stride 1, pad 1: including padding, corners see 4/9 and edges 6/9
    const g = poolGeom(1, 1, 3, 3, [3, 3], [1, 1], [1, 1]);
    const x = new Float64Array(9).fill(1);
    assertClose(avgPool2d(x, g, true), [4, 6, 4, 6, 9, 6, 4, 6, 4].map((v) => v / 9), 1e-15, 'count_include_pad');
    assertClose(avgPool2d(x, g, false), new Array(9).fill(1), 1e-15, 'exclude pad');
  });
});

// ---- elementwise, linear, loss, sum --------------------------------------------------------------

describe('elementwise', () => {
  const rng = new Rng(0xe1e);
  const n = 37;
  /** Random values at least 0.05 away from zero (the ReLU kink). */
  const awayFromZero = (): F64 => rng.array(n).map((v) => Math.sign(v || 1) * (0.05 + Math.abs(v)));

  it('relu and reluBackward', () => {
    const x = awayFromZero();
    gradcheck(rng, ['x'], [x], () => relu(x), (dy) => [reluBackward(dy, relu(x))]);
  });

  it('add (backward: dy, dy)', () => {
    const a = rng.array(n), b = rng.array(n);
    gradcheck(rng, ['a', 'b'], [a, b], () => add(a, b), (dy) => [dy, dy]);
  });

  it('mul (backward: dy * b, dy * a)', () => {
    const a = rng.array(n), b = rng.array(n);
    gradcheck(rng, ['a', 'b'], [a, b], () => mul(a, b), (dy) => [mul(dy, b), mul(dy, a)]);
  });

  it('affineScalar (backward: alpha * dy)', () => {
    const x = rng.array(n);
    gradcheck(rng, ['x'], [x], () => affineScalar(x, -1.7, 0.3), (dy) => [affineScalar(dy, -1.7, 0)]);
  });

  it('known values: relu keeps NaN, axpbyInPlace', () => {
    assert.deepEqual([...relu(f64([-2, 0, 3, NaN]))], [0, 0, 3, NaN]);
    assert.deepEqual([...reluBackward(f64([1, 2, 3]), f64([0, 0.5, NaN]))], [0, 2, 0]);
    const y = f64([1, 2, 3]);
    axpbyInPlace(y, f64([10, 20, 30]), 0.5, 0.1);
    assertClose(y, [1.5, 3, 4.5], 1e-15, 'axpby');
  });
});

describe('linear', () => {
  const rng = new Rng(0x11ea);
  for (const [N, I, O] of [[1, 1, 1], [3, 5, 4], [1, 7, 3], [4, 2, 6]]) {
    for (const withBias of [true, false]) {
      it(`dx, dw${withBias ? ', db' : ''}: N${N} I${I} O${O}`, () => {
        const x = rng.array(N * I), w = rng.array(O * I), b = withBias ? rng.array(O) : null;
        const inputs = b ? [x, w, b] : [x, w];
        gradcheck(rng, ['x', 'w', 'b'].slice(0, inputs.length), inputs, () => linear(x, w, b, N, I, O), (dy) => {
          const { dw, db } = linearBackwardWeights(x, dy, N, I, O, withBias);
          assert.equal(db === null, !withBias);
          return b ? [linearBackwardData(dy, w, N, I, O), dw, db] : [linearBackwardData(dy, w, N, I, O), dw];
        });
      });
    }
  }
});

describe('softmax cross-entropy', () => {
  const rng = new Rng(0x5eed);
  for (const [N, K] of [[1, 2], [4, 5], [3, 10], [2, 1]]) {
    for (const smoothing of [0, 0.1]) {
      it(`dlogits: N${N} K${K} smoothing ${smoothing}`, () => {
        const logits = rng.array(N * K, -3, 3);
        const labels = Int32Array.from({ length: N }, () => rng.int(0, K - 1));
        const { probs } = softmaxCrossEntropy(logits, labels, N, K, smoothing);
        gradcheck(rng, ['logits'], [logits], () => softmaxCrossEntropy(logits, labels, N, K, smoothing).loss,
          (dloss) => [softmaxCrossEntropyBackward(probs, labels, N, K, smoothing, dloss[0])]);
      });
    }
  }

  it('matches hand-computed values, and stays finite for large logits', () => {
    // row 0: z = [1, 2, 3], label 2: lse = log(e + e^2 + e^3) = 3.40760596444438;
    // row 1: z = [0, 0, 0], label 0: lse = log 3 = 1.09861228866811.
    // s = 0:   (0.40760596444438 + 1.09861228866811) / 2
    // s = 0.1: row 0 is lse - 0.9 * 3 - (0.1 / 3) * 6 = 0.50760596444438; row 1 unchanged
    const logits = f64([1, 2, 3, 0, 0, 0]);
    const labels = Int32Array.from([2, 0]);
    assertClose(softmaxCrossEntropy(logits, labels, 2, 3, 0).loss, [0.753109126556245], 1e-14, 'loss s=0');
    assertClose(softmaxCrossEntropy(logits, labels, 2, 3, 0.1).loss, [0.8031091265562451], 1e-14, 'loss s=0.1');
    const big = softmaxCrossEntropy(logits.map((v) => v + 1000), labels, 2, 3, 0.1);
    assertClose(big.loss, [0.8031091265562451], 1e-12, 'loss with logits + 1000');
    assertClose(big.probs.subarray(3), [1 / 3, 1 / 3, 1 / 3], 1e-15, 'probs');
  });
});

describe('sum', () => {
  it('dx = dsum everywhere', () => {
    const rng = new Rng(0x5a8);
    const x = rng.array(23);
    gradcheck(rng, ['x'], [x], () => sum(x), (ds) => [new Float64Array(x.length).fill(ds[0])]);
  });
});

// ---- SGD ------------------------------------------------------------------------------------------

describe('sgdUpdate', () => {
  // Three steps on L = 0.5 * sum(c * p^2) (so grad = c * p), p0 = [1, -0.5, 2], c = [1, 2, 0.5],
  // lr 0.1, by torch.optim.SGD's _single_tensor_sgd. E.g. momentum 0.9, weight decay 0.01, step 1:
  // d = 1 + 0.01 * 1 = 1.01, buf = d, p = 1 - 0.1 * 1.01 = 0.899; step 2: d = 0.899 * 1.01 = 0.90799,
  // buf = 0.9 * 1.01 + 0.90799 = 1.81699, p = 0.899 - 0.181699 = 0.717301. Nesterov step 1:
  // d = 1.01 + 0.9 * 1.01 = 1.919, p = 0.8081.
  const cases: { name: string; p: Omit<SgdParams, 'initBuffer'>; expected: number[][] }[] = [
    {
      name: 'momentum 0.9, weight decay 0.01',
      p: { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: false },
      expected: [
        [0.899, -0.3995, 1.898],
        [0.717301, -0.22875050000000002, 1.7094019999999999],
        [0.48132449899999996, -0.0290970995, 1.452484298],
      ],
    },
    {
      name: 'nesterov, momentum 0.9, weight decay 0.01',
      p: { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: true },
      expected: [
        [0.8081, -0.30905, 1.8062],
        [0.5712156100000001, -0.10961880499999996, 1.54855922],
        [0.3218596734410001, 0.05582554712950008, 1.249531709582],
      ],
    },
    {
      name: 'momentum 0.9, dampening 0.1',
      p: { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0, nesterov: false },
      expected: [
        [0.9, -0.4, 1.9],
        [0.729, -0.238, 1.7245],
        [0.50949, -0.04935999999999996, 1.4889474999999999],
      ],
    },
    {
      name: 'no momentum (no buffer), weight decay 0.1',
      p: { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0.1, nesterov: false },
      expected: [
        [0.89, -0.395, 1.88],
        [0.7921, -0.31205, 1.7671999999999999],
        [0.704969, -0.2465195, 1.661168],
      ],
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const c = [1, 2, 0.5];
      const param = f64([1, -0.5, 2]);
      const buf = tc.p.momentum !== 0 ? new Float64Array(3).fill(NaN) : null; // initBuffer must ignore it
      tc.expected.forEach((want, step) => {
        const grad = param.map((v, i) => c[i] * v);
        sgdUpdate(param, grad, buf, { ...tc.p, initBuffer: step === 0 });
        assertClose(param, want, 1e-14, `step ${step + 1}`);
      });
    });
  }

  it('momentum without a buffer is an error', () => {
    assert.throws(() => sgdUpdate(f64([1]), f64([1]), null,
      { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, initBuffer: true }), InvalidArgumentError);
  });
});

// ---- the Backend wrapper ---------------------------------------------------------------------------

describe('ReferenceBackend', () => {
  it('info, storage lifetime and live()', () => {
    const be = new ReferenceBackend();
    assert.deepEqual(be.info(), { backend: 'reference', onednn: null, threads: 1, isa: 'none' });
    assert.deepEqual(be.live(), { count: 0, bytes: 0 });
    const a = be.fromArray(Float32Array.from([1, 2, 3, 4]), [2, 2], 'float32');
    const l = be.full([3], 'int32', 7);
    assert.deepEqual(be.live(), { count: 2, bytes: 28 });
    assert.deepEqual([...be.read(l, [3], 'int32')], [7, 7, 7]);
    const r = be.reshape(a, [2, 2], [4]);
    be.free(a);
    assert.deepEqual([...be.read(r, [4], 'float32')], [1, 2, 3, 4]);
    assert.throws(() => be.free(a), DisposedError);
    assert.throws(() => be.read(a, [2, 2], 'float32'), DisposedError);
    be.free(r); be.free(l);
    assert.deepEqual(be.live(), { count: 0, bytes: 0 });
  });

  it('float32 kernels agree with the float64 ones', () => {
    const be = new ReferenceBackend();
    const rng = new Rng(0xf32);
    const g = convGeom({ N: 2, C: 4, H: 7, W: 5, K: 6, R: 3, S: 3, stride: [2, 1], pad: [1, 1], dil: [1, 1], groups: 2 });
    const x = rng.array(2 * 4 * 7 * 5), w = rng.array(6 * 2 * 9), b = rng.array(6);
    const put = (a: F64, shape: number[]) => be.fromArray(Float32Array.from(a), shape, 'float32');
    const y = be.conv2d(put(x, [2, 4, 7, 5]), put(w, [6, 2, 3, 3]), put(b, [6]), g);
    assertClose(be.read(y, [2, 6, g.OH, g.OW], 'float32'), conv2d(x, w, b, g), 1e-5, 'conv2d float32');

    const shape = [2, 3, 2, 2];
    const bx = rng.array(24), gamma = rng.array(3, 0.5, 1.5), beta = rng.array(3);
    const t = be.batchNormTrain(put(bx, shape), put(gamma, [3]), put(beta, [3]), shape, 1e-5, true);
    assert.notEqual(t.saved, null);
    const dy = put(rng.array(24), shape);
    const back = be.batchNormBackward(dy, put(bx, shape), put(gamma, [3]), t.mean, t.variance, t.saved, shape, 1e-5, true);
    assert.equal(be.read(back.dgamma, [3], 'float32').length, 3);
    assert.throws(() => be.batchNormBackward(dy, put(bx, shape), put(gamma, [3]), t.mean, t.variance, null, shape, 1e-5, true),
      InvalidArgumentError);

    const pg = poolGeom(1, 1, 3, 3, [3, 3], [2, 2], [1, 1]);
    const mp = be.maxPool2d(put(f64([-1, -2, -3, -4, -5, -6, -7, -8, -9]), [1, 1, 3, 3]), pg);
    assert.deepEqual([...be.read(mp.y, [1, 1, 2, 2], 'float32')], [-1, -2, -4, -5]);
    const dx = be.maxPool2dBackward(put(f64([1, 2, 3, 4]), [1, 1, 2, 2]), mp.saved, pg);
    assert.deepEqual([...be.read(dx, [1, 1, 3, 3], 'float32')], [1, 2, 0, 3, 4, 0, 0, 0, 0]);

    const ce = be.softmaxCrossEntropy(put(f64([1, 2, 3, 0, 0, 0]), [2, 3]), be.fromArray(Int32Array.from([2, 0]), [2], 'int32'), 2, 3, 0.1);
    assertClose(be.read(ce.loss, [], 'float32'), [0.8031091265562451], 1e-6, 'loss float32');
    assertClose(be.read(be.sum(put(f64([1, 2, 3.5]), [3]), [3]), [], 'float32'), [6.5], 0, 'sum');
  });
});
