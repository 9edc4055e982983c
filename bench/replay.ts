// Our trainer's inner loop (loader, model, SGD, warm-up + cosine schedule), step by step, for
// bench/replay_torch.py to replay in PyTorch from the same initial weights on the same
// batches. Writes PREFIX_init.safetensors, PREFIX_step1.safetensors (weights after one step),
// PREFIX_x.f32 / PREFIX_y.json (every batch, as the loader gave it) and PREFIX_run.json
// (per step: lr, epoch, batch size, loss, training error; the normalisation).
//   node --import tsx bench/replay.ts --arch resnet56 --subset 10000 --steps 316 --out /tmp/r/a
//   /usr/bin/python3 bench/replay_torch.py /tmp/r/a 56
// Options: --backend native|reference, --seed S, --epochs E (of the schedule), --wd, --warmup.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { backendByName } from '../src/backend/index.js';
import { DataLoader } from '../src/data/loader.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { createModel } from '../src/models/index.js';
import { lrAt } from '../src/optim/schedule.js';
import { SGD } from '../src/optim/sgd.js';
import { crossEntropy } from '../src/tensor/ops/loss.js';
import { tidy } from '../src/tensor/scope.js';
import { tensor } from '../src/tensor/tensor.js';
import { describeInput, loadSplits, transformsFor } from '../src/train/data.js';
import type { ResNet } from '../src/models/resnet.js';

const { values: a } = parseArgs({
  options: {
    arch: { type: 'string', default: 'resnet56' }, subset: { type: 'string', default: '10000' },
    steps: { type: 'string', default: '316' }, backend: { type: 'string', default: 'native' },
    seed: { type: 'string', default: '0' }, epochs: { type: 'string', default: '4' },
    wd: { type: 'string', default: '1e-4' }, warmup: { type: 'string', default: '1' }, out: { type: 'string' },
  },
});
if (!a.out) throw new Error('replay: --out PREFIX is required');
const [subset, steps, seed, epochs, wd, warmup] = [a.subset, a.steps, a.seed, a.epochs, a.wd, a.warmup].map(Number);
const backend = backendByName(a.backend as 'native' | 'reference');
const { train } = await loadSplits('fashion-mnist', undefined);
const input = describeInput(train);
const model = createModel(a.arch!, { inChannels: 1, numClasses: 10, seed, backend });
const weights = (m: ResNet) => Object.entries(m.stateDict()).filter(([k]) => !k.endsWith('num_batches_tracked'));
writeSafetensors(`${a.out}_init.safetensors`, weights(model));
const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: wd });
const loader = new DataLoader(train, { batchSize: 128, seed, shuffle: true, subset, transforms: transformsFor(train, true, 'none', input) });
const nb = loader.length;
const xs: Float32Array[] = [];
const ys: number[] = [];
const run = { lrs: [] as number[], epochs: [] as number[], sizes: [] as number[], losses: [] as number[], errs: [] as number[], mean: input.mean, std: input.std };
model.train();
outer: for (let epoch = 0; ; epoch++) {
  let batch = 0;
  for await (const { x, y, shape } of loader.epoch(epoch)) {
    const lr = lrAt({ kind: 'cosine', epochs }, 0.1, epoch + batch / nb, warmup);
    opt.setLr(lr);
    xs.push(Float32Array.from(x));
    ys.push(...y);
    const r = tidy(() => {
      const logits = model.forward(tensor(x, shape, { backend }));
      const loss = crossEntropy(logits, tensor(y, [y.length], { dtype: 'int32', backend }));
      loss.backward();
      const l = logits.toFloat32Array();
      let wrong = 0;
      for (let n = 0; n < y.length; n++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (l[n * 10 + k] > l[n * 10 + best]) best = k;
        if (best !== y[n]) wrong++;
      }
      return { loss: loss.item(), err: wrong / y.length };
    });
    opt.step();
    opt.zeroGrad();
    run.lrs.push(lr); run.epochs.push(epoch); run.sizes.push(y.length); run.losses.push(r.loss); run.errs.push(r.err);
    if (run.lrs.length === 1) writeSafetensors(`${a.out}_step1.safetensors`, weights(model));
    batch++;
    if (run.lrs.length >= steps) break outer;
  }
}
await loader.close();
const X = new Float32Array(xs.reduce((n, v) => n + v.length, 0));
let at = 0;
for (const v of xs) { X.set(v, at); at += v.length; }
writeFileSync(`${a.out}_x.f32`, X);
writeFileSync(`${a.out}_y.json`, JSON.stringify(ys));
writeFileSync(`${a.out}_run.json`, JSON.stringify(run));
console.log(`${a.arch} ${a.backend}: ${run.lrs.length} steps, loss ${run.losses[0].toFixed(4)} -> ${run.losses.at(-1)!.toFixed(4)}; wrote ${a.out}_*`);
process.exit(0);
