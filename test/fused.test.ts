// BN-folded inference (src/models/fused.ts): the fused net gives the plain eval-mode
// forward's logits (relative 1e-4 of the logit scale) for every block kind and shortcut
// option, on native and on reference; conv2dFused equals conv + add + relu; misuse errors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  add, backendByName, conv2d, conv2dFused, createModel, fuseForInference, noGrad, randn, relu, Rng, tidy, type ResNet,
} from '../src/index.js';
import { cpus } from 'node:os';
import type { ConvChainSpec } from '../src/backend/backend.js';
import { loadNativeAddon } from '../src/backend/native.js';
import { BatchNorm2d } from '../src/nn/index.js';
import { randomizeWeights, draw } from './helpers/fixture_weights.js';

/** Random gammas/betas/weights and running statistics far from (0, 1), so folding matters. */
function randomizeForEval(m: ResNet, seed: number): void {
  randomizeWeights(m, seed);
  let i = 0;
  for (const mod of m.modules()) {
    if (!(mod instanceof BatchNorm2d)) continue;
    const c = mod.numFeatures;
    mod.loadStateDict({
      running_mean: { data: draw(c, seed * 7 + i, 0.2, 0.5), shape: [c] },
      running_var: { data: draw(c, seed * 7 + i + 1, 1.5, 1.0), shape: [c] },
    }, { strict: false });
    i += 2;
  }
}

function maxRel(a: Float32Array, e: Float32Array): number {
  let scale = 0;
  for (const v of e) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < e.length; i++) err = Math.max(err, Math.abs(a[i] - e[i]));
  return err / Math.max(scale, 1e-6);
}

const CASES: [string, Record<string, unknown>, number[]][] = [
  ['resnet18', { numClasses: 7 }, [2, 3, 64, 48]],
  ['resnet50', { numClasses: 5 }, [1, 3, 64, 64]],
  ['resnext50_32x4d', { numClasses: 5 }, [1, 3, 64, 64]],
  ['resnet20', { inChannels: 1 }, [3, 1, 28, 28]],
  ['resnet20', { shortcut: 'B' }, [2, 3, 32, 32]],
  ['resnet20', { shortcut: 'C' }, [2, 3, 32, 32]],
  ['plain20', {}, [2, 3, 32, 32]],
  ['plain18', { numClasses: 4 }, [1, 3, 64, 64]],
  ['preact_resnet18', { numClasses: 6 }, [2, 3, 32, 32]],
  ['preact_resnet110', {}, [1, 3, 32, 32]],
];

for (const backendName of ['native', 'reference'] as const) {
  describe(`fused inference on ${backendName}`, () => {
    const backend = backendByName(backendName);
    for (const [arch, opts, shape] of CASES) {
      // reference is slow on the big ImageNet nets: judge it on the CIFAR ones and resnet18.
      if (backendName === 'reference' && /resnet50|resnext|preact_resnet110/.test(arch)) continue;
      test(`${arch} ${JSON.stringify(opts)} at ${shape.join('x')}: fused logits = eval logits`, () => {
        const m = createModel(arch, { ...opts, backend, seed: 3 } as never).eval();
        randomizeForEval(m, 11);
        const fused = fuseForInference(m);
        try {
          tidy(() => {
            const x = randn(shape, new Rng(5), { backend });
            const plain = noGrad(() => m.forward(x)).toFloat32Array();
            const fast = fused.forward(x).toFloat32Array();
            assert.equal(fast.length, plain.length);
            const err = maxRel(fast, plain);
            assert.ok(err <= 1e-4, `${arch}: fused vs plain relative error ${err}`);
          });
        } finally {
          fused.dispose();
          m.dispose();
        }
      });
    }
  });
}

describe('native: the conv chain (one call per fused forward)', () => {
  const backend = backendByName('native');
  const isa = backend.info().isa;
  /** Counts the chains fuseForInference compiles on the native backend while `f` runs. */
  function countingChains<T>(f: () => T): { value: T; compiled: number } {
    const real = backend.convChain!.bind(backend);
    let compiled = 0;
    backend.convChain = (spec: ConvChainSpec) => { compiled++; return real(spec); };
    try {
      return { value: f(), compiled };
    } finally {
      delete (backend as { convChain?: unknown }).convChain;  // the prototype's again
    }
  }
  const same = (a: Float32Array, b: Float32Array, what: string) => {
    assert.equal(a.length, b.length, what);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
  };

  const chained: [string, Record<string, unknown>, number[][], ('fp32' | 'bf16')[]][] = [
    ['resnet18', { numClasses: 7 }, [[2, 3, 64, 48], [1, 3, 40, 40], [2, 3, 64, 48]], ['fp32', 'bf16']],
    ['resnet50', { numClasses: 5 }, [[1, 3, 64, 64]], ['fp32', 'bf16']],
    ['resnext50_32x4d', { numClasses: 5 }, [[1, 3, 64, 64]], ['fp32']],
    ['resnet20', { inChannels: 1 }, [[3, 1, 28, 28], [64, 1, 28, 28]], ['fp32', 'bf16']],
    ['resnet20', { shortcut: 'B' }, [[2, 3, 32, 32]], ['fp32']],
    ['resnet20', { shortcut: 'C' }, [[2, 3, 32, 32]], ['fp32']],
    ['plain20', {}, [[2, 3, 32, 32]], ['fp32']],
  ];
  for (const [arch, opts, shapes, precisions] of chained) {
    for (const precision of precisions) {
      test(`${arch} ${JSON.stringify(opts)} ${precision}: chained logits equal the op-by-op ones bit for bit, at ${shapes.map((s) => s.join('x')).join(', ')}`, (t) => {
        if (precision === 'bf16' && !isa.startsWith('avx512')) {
          t.skip(`no bf16 on this CPU (${cpus()[0]?.model ?? 'unknown'}, oneDNN ISA ${isa}): oneDNN 2.6 needs AVX-512 for bf16`);
          return;
        }
        const m = createModel(arch, { ...opts, backend, seed: 3 } as never).eval();
        randomizeForEval(m, 11);
        const { value: fused, compiled: atFuse } = countingChains(() => fuseForInference(m, { precision }));
        const steps = fuseForInference(m, { precision, chain: false });
        try {
          let compiled = atFuse;
          for (const [k, shape] of shapes.entries()) {
            tidy(() => {
              const x = randn(shape, new Rng(5 + k), { backend });
              const r = countingChains(() => fused.forward(x).toFloat32Array());
              compiled += r.compiled;
              same(r.value, steps.forward(x).toFloat32Array(), `${arch} at ${shape.join('x')}`);
            });
          }
          assert.equal(compiled, 1, 'one chain, compiled on the first forward and reused at every input size');
        } finally {
          fused.dispose();
          steps.dispose();
          m.dispose();
        }
      });
    }
  }

  test('features() and runStage() run as chains of their own and equal the op-by-op ones; the stages\' outputs stay readable', () => {
    const m = createModel('resnet50', { numClasses: 5, backend, seed: 3 }).eval();
    randomizeForEval(m, 12);
    const fused = fuseForInference(m);
    const steps = fuseForInference(m, { chain: false });
    try {
      tidy(() => {
        const x = randn([2, 3, 64, 64], new Rng(9), { backend });
        const a = countingChains(() => fused.features(x, 3));
        const b = steps.features(x, 3);
        assert.equal(a.compiled, 1);
        assert.deepEqual(a.value.map((t) => t.shape), b.map((t) => t.shape));
        a.value.forEach((t, i) => same(t.toFloat32Array(), b[i].toFloat32Array(), `stage ${i + 1}`));
        const c5 = countingChains(() => fused.runStage(a.value[2], 3));
        same(c5.value.toFloat32Array(), steps.runStage(b[2], 3).toFloat32Array(), 'layer4 on layer3');
        same(a.value[2].toFloat32Array(), b[2].toFloat32Array(), 'layer3 after layer4 ran on it');
      });
    } finally {
      fused.dispose();
      steps.dispose();
      m.dispose();
    }
  });

  test('nets with no chain form (pre-activation units) run op by op', () => {
    for (const arch of ['preact_resnet18', 'preact_resnet110']) {
      const m = createModel(arch, { backend, seed: 3 }).eval();
      const fused = fuseForInference(m);
      try {
        const r = countingChains(() => tidy(() => fused.forward(randn([1, 3, 32, 32], new Rng(1), { backend })).shape));
        assert.equal(r.compiled, 0, arch);
      } finally {
        fused.dispose();
        m.dispose();
      }
    }
  });

  test('repeated runs leave no storage behind; the outputs are the only new ones', () => {
    const m = createModel('resnet18', { numClasses: 3, backend, seed: 3 }).eval();
    const fused = fuseForInference(m);
    try {
      const x = randn([2, 3, 48, 48], new Rng(2), { backend });
      tidy(() => { fused.forward(x); });
      const before = backend.live().count;
      for (let i = 0; i < 20; i++) tidy(() => { fused.forward(x); });
      assert.equal(backend.live().count, before);
      x.dispose();
    } finally {
      fused.dispose();
      m.dispose();
    }
  });

  test('bad specs and freed weights are errors naming the node, never a crash', () => {
    const w = randn([8, 3, 3, 3], new Rng(1), { backend });
    const x = randn([1, 3, 8, 8], new Rng(2), { backend });
    const conv = { op: 'conv' as const, src: -1, relu: true, weight: w.storage, bias: null, K: 8, R: 3, S: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
    assert.throws(() => backend.convChain!({ nodes: [{ ...conv, src: 0 }], outputs: [0], inChannels: 3, precision: 'fp32' }), /convChain: node 0: 'src' and 'residual' must name an earlier node or -1/);
    assert.throws(() => backend.convChain!({ nodes: [conv], outputs: [1], inChannels: 3, precision: 'fp32' }), /'outputs' must hold node indices 0\.\.0/);
    assert.throws(() => backend.convChain!({ nodes: [{ ...conv, K: 4 }], outputs: [0], inChannels: 3, precision: 'fp32' }).run(x.storage), /node 0: weight is not \[K, C\/groups, R, S\]/);
    const chain = backend.convChain!({ nodes: [conv], outputs: [0], inChannels: 3, precision: 'fp32' });
    assert.throws(() => chain.run(randn([1, 4, 8, 8], new Rng(3), { backend }).storage), /x must be a float \[N, 3, H, W\] storage/);
    backend.free(chain.run(x.storage)[0]);
    w.dispose();
    assert.throws(() => chain.run(x.storage), /node 0 weight' was already freed/);
    chain.free();
    assert.throws(() => chain.run(x.storage), /'chain' was already freed/);
    x.dispose();
  });
});

describe('native fp32: Winograd', () => {
  const backend = backendByName('native');
  const g = { N: 4, C: 64, H: 28, W: 28, K: 64, R: 3, S: 3, OH: 28, OW: 28, strideH: 1, strideW: 1, padH: 1, padW: 1,
    dilationH: 1, dilationW: 1, groups: 1 };

  test('3x3 stride-1 layers run Winograd where oneDNN has it (AVX-512), unless RESNET_WINOGRAD=0; in training from 64 channels', () => {
    const info = backend.info();
    const off = process.env.RESNET_WINOGRAD === '0';
    assert.equal(info.winograd, info.isa.startsWith('avx512') && !off, `isa ${info.isa}, winograd ${info.winograd}`);
    const impl = loadNativeAddon().implInfo('conv2dFused', { ...g, relu: true }).impl;
    if (info.winograd) assert.match(impl, /wino/);
    else assert.doesNotMatch(impl, /wino/);
    // a strided 3x3 and a 1x1 stay direct
    assert.doesNotMatch(loadNativeAddon().implInfo('conv2dFused', { ...g, strideH: 2, strideW: 2, OH: 14, OW: 14 }).impl, /wino/);
    assert.doesNotMatch(loadNativeAddon().implInfo('conv2dFused', { ...g, R: 1, S: 1, padH: 0, padW: 0 }).impl, /wino/);
    // training: all three passes from 64 channels in and out; fewer stay direct
    for (const kind of ['conv2d', 'conv2dBackwardData', 'conv2dBackwardWeights'] as const) {
      const impl = loadNativeAddon().implInfo(kind, g).impl;
      if (info.winograd) assert.match(impl, /wino/, kind);
      else assert.doesNotMatch(impl, /wino/, kind);
      assert.doesNotMatch(loadNativeAddon().implInfo(kind, { ...g, C: 32, K: 32 }).impl, /wino/, `${kind} at 32 channels`);
    }
  });

  test('one fused net at several batch sizes in turn (each its own Winograd weight layout): the eval logits each time', () => {
    const m = createModel('resnet20', { inChannels: 1, backend, seed: 3 }).eval();
    randomizeForEval(m, 13);
    const fused = fuseForInference(m);
    try {
      for (const n of [500, 1, 64, 500]) {
        tidy(() => {
          const x = randn([n, 1, 28, 28], new Rng(n), { backend });
          const err = maxRel(fused.forward(x).toFloat32Array(), noGrad(() => m.forward(x)).toFloat32Array());
          assert.ok(err <= 1e-4, `batch ${n}: fused vs plain relative error ${err}`);
        });
      }
    } finally {
      fused.dispose();
      m.dispose();
    }
  });
});

describe('conv2dFused', () => {
  for (const backendName of ['native', 'reference'] as const) {
    test(`${backendName}: relu(conv + b + residual) equals the three ops`, () => {
      const backend = backendByName(backendName);
      const rng = new Rng(2);
      tidy(() => {
        const x = randn([2, 8, 9, 9], rng, { backend });
        const w = randn([16, 8, 3, 3], rng, { backend, std: 0.2 });
        const b = randn([16], rng, { backend });
        const r = randn([2, 16, 5, 5], rng, { backend });
        const want = relu(add(conv2d(x, w, b, { stride: 2, padding: 1 }), r)).toFloat32Array();
        const got = conv2dFused(x, w, b, { stride: 2, padding: 1, residual: r, relu: true }).toFloat32Array();
        assert.ok(maxRel(got, want) <= 1e-5);
        const noRelu = conv2dFused(x, w, null, { stride: 2, padding: 1, residual: r }).toFloat32Array();
        const want2 = add(conv2d(x, w, null, { stride: 2, padding: 1 }), r).toFloat32Array();
        assert.ok(maxRel(noRelu, want2) <= 1e-5);
        assert.ok(noRelu.some((v) => v < 0), 'without relu, negatives stay');
        // consumeResidual: the same result; on native, summed into the residual's own memory
        // when it is in the output's layout (a fused conv's output is), after which it says it is gone
        const h = conv2dFused(x, w, null, { stride: 2, padding: 1 });
        const want3 = relu(add(conv2d(x, w, b, { stride: 2, padding: 1 }), h)).toFloat32Array();
        const got3 = conv2dFused(x, w, b, { stride: 2, padding: 1, residual: h, relu: true, consumeResidual: true });
        assert.ok(maxRel(got3.toFloat32Array(), want3) <= 1e-5);
        if (backendName === 'native') assert.throws(() => h.toFloat32Array(), /read: 's' was already freed/);
        else assert.equal(h.toFloat32Array().length, 2 * 16 * 5 * 5);
      });
    });
  }

  test('refuses a wrong residual shape, and inputs that require a gradient', () => {
    const rng = new Rng(1);
    tidy(() => {
      const x = randn([1, 4, 6, 6], rng);
      const w = randn([4, 4, 3, 3], rng, { requiresGrad: true });
      assert.throws(() => noGrad(() => conv2dFused(x, w, null, { padding: 1, residual: randn([1, 4, 5, 5], rng) })), /residual must have the output's shape \[1, 4, 6, 6\]/);
      assert.throws(() => conv2dFused(x, w, null, { padding: 1 }), /inference only.*noGrad/);
    });
  });

  test('fused net: wrong input channels and use after dispose are clear errors', () => {
    const m = createModel('resnet20').eval();
    const f = fuseForInference(m);
    tidy(() => assert.throws(() => f.forward(randn([1, 1, 32, 32], new Rng(0))), /resnet20 \(fused\): input must be \[N, 3, H, W\], got \[1, 1, 32, 32\]/));
    f.dispose();
    tidy(() => assert.throws(() => f.forward(randn([1, 3, 32, 32], new Rng(0))), /after dispose/));
  });
});
