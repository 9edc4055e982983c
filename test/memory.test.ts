// Memory is deterministic: 2,000 training steps of a small conv net on `native`, in fp32 and
// in bf16 mixed precision (where the CPU has AVX-512), leave resident memory flat (growth
// under 5% after warm-up) and the live-tensor count and the backend's live storages where
// they started.
// NOTE: a single RSS reading moves by +-7% from step to step here (glibc returning and
// re-taking arenas), with no trend; a leak is a trend. So growth is the median of the last
// six readings (every 100 steps, after a GC) against the median of six early ones.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import {
  add, autocast, backendByName, batchNorm, conv2d, crossEntropy, flatten, globalAvgPool2d, linear, liveTensors, noGrad, randn,
  relu, Rng, sgdStep, tensor, tidy, zeros, type Tensor,
} from '../src/index.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

for (const precision of ['fp32', 'bf16'] as const) test(`2,000 ${precision} training steps on native: RSS flat, no tensor or storage left behind`, (t) => {
  const backend = backendByName('native');
  const isa = backend.info().isa;
  if (precision === 'bf16' && !isa.startsWith('avx512')) { t.skip(`no bf16 here: oneDNN ISA ${isa} (oneDNN 2.6 needs AVX-512)`); return; }
  const rng = new Rng(7);
  const tensorsAtStart = liveTensors();
  const storagesAtStart = backend.live().count;
  const p = {
    w1: randn([8, 1, 3, 3], rng, { backend, std: 0.4, requiresGrad: true }),
    g1: tensor(new Float32Array(8).fill(1), [8], { backend, requiresGrad: true }),
    b1: zeros([8], { backend, requiresGrad: true }),
    w2: randn([8, 8, 3, 3], rng, { backend, std: 0.15, requiresGrad: true }),
    fc: randn([4, 8], rng, { backend, std: 0.3, requiresGrad: true }),
    fb: zeros([4], { backend, requiresGrad: true }),
  };
  const rm = zeros([8], { backend });
  const rv = tensor(new Float32Array(8).fill(1), [8], { backend });
  const bufs = new Map<Tensor, Tensor>(Object.values(p).map((t) => [t, zeros(t.shape, { backend })]));
  const x = randn([8, 1, 12, 12], rng, { backend });
  const labels = tensor(Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]), [8], { backend, dtype: 'int32' });

  const rss: number[] = [];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  let liveBytesAfterWarmup = 0;
  let firstLoss = 0;
  let lastLoss = 0;
  for (let step = 0; step < 2000; step++) {
    const loss = tidy(() => {
      const l = autocast(precision, () => {
        const h = batchNorm(conv2d(x, p.w1, null, { padding: 1 }), p.g1, p.b1, rm, rv, { training: true, relu: true });
        const y = relu(add(h, conv2d(h, p.w2, null, { padding: 1 })));
        return crossEntropy(linear(flatten(globalAvgPool2d(y)), p.fc, p.fb), labels);
      });
      l.backward();
      noGrad(() => {
        for (const t of Object.values(p)) {
          sgdStep(t, t.grad!, bufs.get(t)!, { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false, initBuffer: step === 0 });
          t.grad!.dispose();
          t.grad = null;
        }
      });
      return l.item();
    });
    if (step === 0) firstLoss = loss;
    lastLoss = loss;
    if (step % 100 === 99) { gc(); rss.push(process.memoryUsage().rss); }
    if (step === 299) liveBytesAfterWarmup = backend.live().bytes;
  }
  const rssAfterWarmup = median(rss.slice(2, 8));
  const rssEnd = median(rss.slice(-6));
  const growth = (rssEnd - rssAfterWarmup) / rssAfterWarmup;
  assert.equal(backend.live().bytes, liveBytesAfterWarmup, 'native bytes in use do not grow');
  assert.ok(Number.isFinite(lastLoss) && lastLoss < firstLoss, `the net learns (loss ${firstLoss} -> ${lastLoss})`);
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(2)}% (${(rssAfterWarmup / 2 ** 20).toFixed(1)} -> ${(rssEnd / 2 ** 20).toFixed(1)} MiB)`);

  for (const t of [...Object.values(p), ...bufs.values(), rm, rv, x, labels]) t.dispose();
  assert.equal(liveTensors(), tensorsAtStart, 'live tensors back to the start');
  assert.equal(backend.live().count, storagesAtStart, 'live native storages back to the start');
});
