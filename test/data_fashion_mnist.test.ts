// The real Fashion-MNIST from Debian's dataset-fashion-mnist (scripts/setup.sh installs it):
// 60000 train and 10000 test images of 28x28, labels in 0..9, ten of each class in test.
// Skipped, saying why, where the directory is absent.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { DataLoader, FASHION_MNIST_DIR, computeStats, cifarTrainTransforms, loadFashionMnist } from '../src/data/index.js';

const skip = existsSync(FASHION_MNIST_DIR) ? false : `${FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`;

test('Fashion-MNIST loads 60000/10000 images of 28x28 with labels in 0..9', { skip }, async () => {
  const [train, testSet] = await Promise.all([loadFashionMnist({ split: 'train' }), loadFashionMnist({ split: 'test' })]);
  assert.equal(train.n, 60000);
  assert.equal(testSet.n, 10000);
  for (const ds of [train, testSet]) {
    assert.deepEqual([ds.channels, ds.height, ds.width], [1, 28, 28]);
    assert.equal(ds.images.length, ds.n * 784);
    const counts = new Array(10).fill(0);
    for (const l of ds.labels) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(ds.n / 10)); // balanced: 6000 / 1000 per class
  }
  assert.equal(train.classes[9], 'Ankle boot');
  const stats = computeStats(train);
  assert.ok(Math.abs(stats.mean[0] - 0.2860) < 1e-3 && Math.abs(stats.std[0] - 0.3530) < 1e-3, JSON.stringify(stats.mean));
  // A few batches of the training recipe through the workers.
  const loader = new DataLoader(train, { batchSize: 128, seed: 0, workers: 1, subset: 1024, transforms: cifarTrainTransforms(28, stats.mean, stats.std) });
  try {
    let n = 0;
    for await (const b of loader.epoch(0)) {
      assert.deepEqual(b.shape.slice(1), [1, 28, 28]);
      n += b.shape[0];
    }
    assert.equal(n, 1024);
  } finally {
    await loader.close();
  }
});
