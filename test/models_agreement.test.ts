// Every registered arch on the `native` backend against the `reference` one (the judge):
// forward values and the gradients of the input and of every parameter.
//
// NOTE: a deep randomly initialised net is chaotic: in training mode batch norm over the
// few values per channel of a tiny input amplifies rounding, and deep plain nets are
// chaotic even in eval mode (a 1-ulp change of the input moves the logits of resnet18 at
// 32x32 by 3e-2 in training mode, of plain110 in eval mode by O(1), on reference itself).
// End-to-end equality of such nets would test nothing but luck. So:
//   1. every arch, block by block: each distinct block of the arch (kind, channels, stride,
//      groups, width, shortcut; blocks repeated within or across archs are run once) in
//      training mode on a random input whose output is 2x2 over a batch of 2, with a random
//      upstream gradient; plus its lesioned forward;
//   2. whole nets, forward and backward, where that is well-conditioned (both families,
//      residual, pre-activation and plain; training and eval mode), with a tolerance of
//      max(floor, 10x what a 1-ulp input perturbation does to reference itself).
// The native backend must load (as in test/helpers/backends.ts): a load failure fails.
// AGREEMENT_ARCHS=resnet20,resnet50 limits part 1 to those archs (for debugging).
// resnet18 and resnet20 in training mode are also checked on both backends against
// PyTorch (models_torch.test.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  backendByName, crossEntropy, mul, noGrad, randn, Rng, sum, tensor, tidy, type Backend,
} from '../src/index.js';
import { BatchNorm2d } from '../src/nn/index.js';
import { createModel, modelNames, type Block, type ResNet } from '../src/models/index.js';
import { randomizeWeights } from './helpers/fixture_weights.js';

interface Run { out: Float32Array; loss: number; dx: Float32Array; grads: Map<string, Float32Array> }

/** Relative to max(|e|, 0.1 * rms(e)): small elements of a tensor (values near a ReLU's
 *  kink, gradients that nearly cancel) are judged on the tensor's scale. */
function relError(a: Float32Array, e: Float32Array): { err: number; at: number } {
  let ss = 0;
  for (const v of e) ss += v * v;
  const floor = 0.1 * Math.sqrt(ss / Math.max(1, e.length)) + 1e-30;
  let err = 0; let at = -1;
  for (let i = 0; i < e.length; i++) {
    const r = Math.abs(a[i] - e[i]) / Math.max(Math.abs(e[i]), floor);
    if (!(r <= err)) { err = r; at = i; }
  }
  return { err, at };
}

function compare(a: Run, b: Run): { out: number; loss: number; grads: number; worst: string } {
  const out = relError(b.out, a.out).err;
  const loss = Math.abs(b.loss - a.loss) / Math.max(Math.abs(a.loss), 1e-6);
  let grads = relError(b.dx, a.dx).err;
  let worst = 'input';
  for (const [k, g] of a.grads) {
    const { err, at } = relError(b.grads.get(k)!, g);
    if (err > grads) { grads = err; worst = `${k}[${at}]: ${b.grads.get(k)![at]} vs ${g[at]}`; }
  }
  return { out, loss, grads, worst };
}

function collect(m: { namedParameters(): [string, { grad: { toFloat32Array(): Float32Array } | null }][]; zeroGrad(): void }, backend: Backend, out: Run): Run {
  for (const [k, p] of m.namedParameters()) {
    assert.ok(p.grad, `${k} has a gradient on ${backend.name}`);
    out.grads.set(k, p.grad.toFloat32Array());
  }
  m.zeroGrad();
  return out;
}

// ---- 1. block by block ----------------------------------------------------------------

function runBlock(block: Block, backend: Backend, xv: Float32Array, xShape: number[], rv: Float32Array): Run & { lesion: Float32Array | null } {
  const x = tensor(xv, xShape, { backend, requiresGrad: true });
  block.zeroGrad();
  const r = tidy(() => {
    const y = block.forward(x);
    const l = sum(mul(y, tensor(rv, y.shape, { backend })));
    l.backward();
    const lesion = block.removable ? noGrad(() => block.forwardWithoutResidual(x).toFloat32Array()) : null;
    return { out: y.toFloat32Array(), loss: l.item(), lesion };
  });
  const run = collect(block, backend, { out: r.out, loss: r.loss, dx: x.grad!.toFloat32Array(), grads: new Map() });
  x.dispose();
  return { ...run, lesion: r.lesion };
}

function blockKey(b: Block): string {
  return `${b.constructor.name} ${b.inChannels}->${b.outChannels} stride ${b.stride} shortcut ${b.shortcutOption} [${b.describe()}]`;
}

const tested = new Set<string>();

describe('native agrees with reference: every arch, block by block (training mode)', () => {
  for (const arch of (process.env.AGREEMENT_ARCHS?.split(',') ?? modelNames())) {
    test(arch, (t) => {
      const ref = backendByName('reference');
      const nat = backendByName('native');
      const model = createModel(arch, { numClasses: 7, init: 'none', backend: ref });
      let fresh = 0;
      for (const { block } of model.blocks()) {
        const key = blockKey(block);
        if (tested.has(key)) continue;
        tested.add(key);
        fresh++;
        randomizeWeights(block, tested.size);
        block.train();
        const s = 2 * block.stride;
        const xShape = [2, block.inChannels, s, s];
        const rng = new Rng(tested.size);
        const xv = randn(xShape, rng, { backend: ref }).toFloat32Array();
        const rv = randn([2 * block.outChannels * 4], rng, { backend: ref }).toFloat32Array();
        const a = runBlock(block, ref, xv, xShape, rv);
        block.to(nat);
        const b = runBlock(block, nat, xv, xShape, rv);
        block.to(ref);
        const e = compare(a, b);
        assert.ok(e.out <= 2e-4, `${arch} ${key}: output relative error ${e.out.toExponential(2)}`);
        assert.ok(e.grads <= 1e-3, `${arch} ${key}: gradient relative error ${e.grads.toExponential(2)} at ${e.worst}`);
        if (a.lesion) {
          const le = relError(b.lesion!, a.lesion).err;
          assert.ok(le <= 1e-4, `${arch} ${key}: lesioned output relative error ${le.toExponential(2)}`);
        }
      }
      t.diagnostic(`${model.blocks().length} blocks, ${fresh} distinct not seen in an earlier arch`);
      model.dispose();
    });
  }
});

// ---- 2. whole nets --------------------------------------------------------------------

function runNet(model: ResNet, backend: Backend, xv: Float32Array, shape: number[], labels: number[]): Run {
  const x = tensor(xv, shape, { backend, requiresGrad: true });
  const y = tensor(Int32Array.from(labels), [labels.length], { backend, dtype: 'int32' });
  model.zeroGrad();
  const r = tidy(() => {
    const z = model.forward(x);
    const l = crossEntropy(z, y);
    l.backward();
    return { out: z.toFloat32Array(), loss: l.item() };
  });
  const out = collect(model, backend, { out: r.out, loss: r.loss, dx: x.grad!.toFloat32Array(), grads: new Map() });
  x.dispose(); y.dispose();
  return out;
}

/** Running statistics := those of one batch (momentum 1 for one training forward). */
function calibrate(model: ResNet, backend: Backend, shape: number[], seed: number): void {
  const bns = model.modules().filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
  for (const bn of bns) bn.momentum = 1;
  model.train();
  const x = randn(shape, new Rng(seed), { backend });
  tidy(() => noGrad(() => model.forward(x)));
  x.dispose();
  for (const bn of bns) bn.momentum = 0.1;
}

/** How far reference's own results move when the input is perturbed by 1 ulp. */
function sensitivity(model: ResNet, ref: Backend, a: Run, xv: Float32Array, shape: number[]): { out: number; loss: number; grads: number } {
  const noisy = xv.map((x, i) => x * (1 + (i % 2 ? 1 : -1) * 2 ** -23));
  return compare(a, runNet(model, ref, noisy, shape, [2, 5]));
}

describe('native agrees with reference: whole nets where that is well-conditioned', () => {
  // NOTE: plain18 is left out of training mode: there its gradients are
  // ill-conditioned in float32 (at 64x64, native and PyTorch float32 alike miss PyTorch float64
  // by 1.9 at layer2.1.conv1.weight; reference, accumulating in float64, by 2e-4). Gradient
  // tolerance 5e-3: PyTorch's own float32 resnet18 gradients miss float64 by 2.7e-3.
  const CASES: [string, number, 'train' | 'eval'][] = [
    ['resnet18', 48, 'train'], ['preact_resnet18', 48, 'train'], ['plain18', 48, 'eval'],
    ['resnet20', 16, 'train'], ['preact_resnet20', 16, 'train'], ['plain20', 16, 'train'], ['resnet20', 16, 'eval'],
    ['preact_resnet20', 16, 'eval'], ['resnet18', 48, 'eval'],
  ];
  for (const [arch, size, mode] of CASES) {
    test(`${arch} at ${size}x${size}, ${mode} mode`, (t) => {
      const nat = backendByName('native');
      const ref = backendByName('reference');
      const shape = [2, 3, size, size];
      const model = createModel(arch, { numClasses: 7, init: 'none', backend: nat });
      randomizeWeights(model, 4);
      if (mode === 'eval') { calibrate(model, nat, [8, 3, size, size], 9); model.eval(); }
      model.to(ref);
      const xv = randn(shape, new Rng(8), { backend: ref }).toFloat32Array();
      const a = runNet(model, ref, xv, shape, [2, 5]);
      const sens = sensitivity(model, ref, a, xv, shape);
      model.to(nat);
      const b = runNet(model, nat, xv, shape, [2, 5]);
      model.dispose();
      const e = compare(a, b);
      t.diagnostic(`logits ${e.out.toExponential(2)} (1-ulp sensitivity ${sens.out.toExponential(2)}), gradients ${e.grads.toExponential(2)} (sensitivity ${sens.grads.toExponential(2)})`);
      assert.ok(e.out <= Math.max(2e-4, 10 * sens.out), `${arch} logits: relative error ${e.out.toExponential(2)}`);
      assert.ok(e.loss <= Math.max(1e-5, 10 * sens.loss), `${arch} loss: relative error ${e.loss.toExponential(2)}`);
      assert.ok(e.grads <= Math.max(5e-3, 10 * sens.grads), `${arch} gradients: relative error ${e.grads.toExponential(2)} at ${e.worst}`);
    });
  }
});
