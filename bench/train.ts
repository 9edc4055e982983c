// Training throughput: resnet20 on 1x28x28 Fashion-MNIST at batch 128, the Trainer's step
// (forward, cross-entropy, backward, SGD) fed by the DataLoader with the default recipe's
// augmentation; reports images/s and the share of step time spent waiting for data.
// bench/peer_torch.py (--mode train) does the same step in PyTorch (Debian's python3-torch) for comparison.
//   node --import tsx bench/train.ts [--steps 200] [--batch 128] [--json]

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { computeStats, createModel, crossEntropy, DataLoader, loadFashionMnist, SGD, tensor, tidy } from '../src/index.js';
import { trainTransforms } from '../src/train/data.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const steps = arg('steps', 200);
const batchSize = arg('batch', 128);
const warm = 10;
const train = await loadFashionMnist({ split: 'train' });
const stats = computeStats(train);
const loader = new DataLoader(train, { batchSize, seed: 0, workers: arg("workers", 1), transforms: trainTransforms('standard', 28, 28, stats.mean, stats.std) });
const model = createModel('resnet20', { inChannels: 1, numClasses: 10, seed: 0 }).train();
const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
let i = 0;
let t0 = 0;
let images = 0;
try {
  outer: for (let e = 0; ; e++) {
    for await (const { x, y, shape } of loader.epoch(e)) {
      if (i === warm) { t0 = performance.now(); loader.resetStats(); images = 0; }
      tidy(() => {
        const loss = crossEntropy(model.forward(tensor(x, shape)), tensor(y, [y.length], { dtype: 'int32' }));
        loss.backward();
        return loss.item();
      });
      opt.step();
      opt.zeroGrad();
      images += y.length;
      if (++i === warm + steps) break outer;
    }
  }
} finally {
  await loader.close();
}
const seconds = (performance.now() - t0) / 1000;
const r = { images_per_sec: images / seconds, wait_share: loader.stats.waitMs / 1000 / seconds, steps, batch: batchSize, load: loadavg()[0] };
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(r)}\n`);
else process.stdout.write(`resnet20 batch ${batchSize}: ${r.images_per_sec.toFixed(0)} img/s, data wait ${(100 * r.wait_share).toFixed(1)}% of step time (load average ${r.load.toFixed(2)})\n`);
