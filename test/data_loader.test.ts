// DataLoader: the order is a function of (seed, epoch); resuming at batch b yields exactly
// the tail of the full epoch; workers and the calling thread give identical batches; worker
// errors arrive as DataError; the process never hangs on the workers.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  DataLoader, loadImageFolder, normalize, randomCrop, randomErasing, randomHorizontalFlip, randomResizedCrop,
  type ArrayDataset, type Batch, type Transform,
} from '../src/data/index.js';
import { Limiter } from '../src/data/image_folder.js';
import { DataError, InvalidArgumentError } from '../src/errors.js';
import { lcgBytes, tempDir, writeImageFolder } from './helpers/data_files.js';

const tmp = tempDir();
after(() => tmp.remove());

function dataset(n: number, C = 1, H = 8, W = 8): ArrayDataset {
  return {
    images: lcgBytes(5, n * C * H * W), labels: Uint8Array.from({ length: n }, (_, i) => i % 10),
    n, channels: C, height: H, width: W, classes: Array.from({ length: 10 }, (_, i) => String(i)),
  };
}

const AUG: Transform[] = [randomCrop(8, { padding: 2 }), randomHorizontalFlip(), normalize([0.5], [0.25]), randomErasing()];

async function collect(loader: DataLoader, epoch: number, startBatch = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch, { startBatch })) out.push(b);
  return out;
}

const digest = (batches: Batch[]): string[] => batches.map((b) =>
  createHash('sha256').update(new Uint8Array(b.x.buffer)).update(new Uint8Array(b.y.buffer)).digest('hex'));

describe('order', () => {
  test('each epoch is a permutation; same seed same order; epochs and seeds differ; no shuffle is 0..n-1', () => {
    const ds = dataset(50);
    const a = new DataLoader(ds, { batchSize: 8, seed: 3, workers: 0 });
    const b = new DataLoader(ds, { batchSize: 8, seed: 3, workers: 0 });
    const c = new DataLoader(ds, { batchSize: 8, seed: 4, workers: 0 });
    for (let e = 0; e < 3; e++) {
      const o = a.order(e);
      assert.deepEqual(Array.from(o).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
      assert.deepEqual(o, b.order(e));
      assert.notDeepEqual(o, c.order(e));
    }
    assert.notDeepEqual(a.order(0), a.order(1));
    assert.deepEqual(Array.from(new DataLoader(ds, { batchSize: 8, shuffle: false, workers: 0 }).order(2)), Array.from({ length: 50 }, (_, i) => i));
  });

  test('batch counts, the short last batch, dropLast, subset, labels follow the order', async () => {
    const ds = dataset(50);
    const l = new DataLoader(ds, { batchSize: 16, seed: 1, workers: 0 });
    assert.equal(l.length, 4);
    const batches = await collect(l, 2);
    assert.deepEqual(batches.map((b) => b.shape[0]), [16, 16, 16, 2]);
    assert.deepEqual(batches[0].shape, [16, 1, 8, 8]);
    const order = l.order(2);
    assert.deepEqual(Array.from(batches.flatMap((b) => Array.from(b.y))), Array.from(order, (i) => ds.labels[i]));
    // Without transforms, x is the image / 255 in the epoch's order.
    assert.equal(batches[1].x[64], Math.fround(ds.images[order[17] * 64] / 255));
    const d = new DataLoader(ds, { batchSize: 16, seed: 1, dropLast: true, workers: 0 });
    assert.equal(d.length, 3);
    assert.deepEqual((await collect(d, 0)).map((b) => b.shape[0]), [16, 16, 16]);
    const s = new DataLoader(ds, { batchSize: 4, subset: 10, shuffle: false, workers: 0 });
    const sb = await collect(s, 0);
    assert.equal(s.size, 10);
    assert.deepEqual(Array.from(sb.flatMap((b) => Array.from(b.y))), Array.from(ds.labels.subarray(0, 10)));
  });
});

describe('workers', () => {
  test('workers 0, 1 and 2 give identical epochs; resume at batch b is the tail; the state says where', async () => {
    const ds = dataset(70, 3, 8, 8);
    const loaders = [0, 1, 2].map((workers) => new DataLoader(ds, { batchSize: 16, seed: 9, workers, prefetch: 3, transforms: AUG }));
    try {
      const full = await Promise.all(loaders.map((l) => collect(l, 1)));
      const ref = digest(full[0]);
      assert.equal(ref.length, 5);
      assert.deepEqual(digest(full[1]), ref, '1 worker');
      assert.deepEqual(digest(full[2]), ref, '2 workers');
      assert.deepEqual(full[2][0].shape, [16, 3, 8, 8]);
      // Resume: a run stopped after batch 2 restarts at state.batch.
      const l = loaders[1];
      let seen = 0;
      for await (const _ of l.epoch(1)) { if (++seen === 2) break; }
      const state = l.state;
      assert.deepEqual(state, { seed: 9, epoch: 1, batch: 2 });
      assert.deepEqual(digest(await collect(l, state.epoch, state.batch)), ref.slice(2));
      assert.deepEqual(l.state, { seed: 9, epoch: 1, batch: 5 });
      assert.deepEqual(await collect(l, 1, 5), []);
      // A different epoch gives different augmentations.
      assert.notDeepEqual(digest(await collect(loaders[2], 2)), ref);
      const st = loaders[2].stats;
      assert.ok(st.batches >= 10 && st.samples >= 140 && st.waitMs >= 0, JSON.stringify(st));
    } finally {
      await Promise.all(loaders.map((l) => l.close()));
    }
  });

  test('image folders through workers: decoded, cropped to one size, same as on the calling thread', async () => {
    const root = join(tmp.dir, 'folder');
    await writeImageFolder(root);
    const ds = await loadImageFolder(root);
    const transforms = [randomResizedCrop(6), randomHorizontalFlip(), normalize([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])];
    const inline = new DataLoader(ds, { batchSize: 3, seed: 2, workers: 0, transforms });
    const pooled = new DataLoader(ds, { batchSize: 3, seed: 2, workers: 1, transforms, decodeConcurrency: 2 });
    try {
      const a = await collect(inline, 0);
      const b = await collect(pooled, 0);
      assert.deepEqual(a.map((x) => x.shape), [[3, 3, 6, 6], [3, 3, 6, 6], [1, 3, 6, 6]]);
      assert.deepEqual(digest(b), digest(a));
      assert.deepEqual(a.flatMap((x) => Array.from(x.y)).sort(), [0, 0, 0, 0, 1, 1, 1]);
    } finally {
      await pooled.close();
    }
  });

  test('errors: mixed sizes and bad transforms from a worker, an undecodable image, use after close', async () => {
    const root = join(tmp.dir, 'folder2');
    await writeImageFolder(root);
    const ds = await loadImageFolder(root);
    const mixed = new DataLoader(ds, { batchSize: 7, shuffle: false, workers: 1 });
    await assert.rejects(collect(mixed, 0), (e: Error) => e instanceof DataError &&
      /b\.webp: is 3x8x8 after the transforms, expected 3x7x9 like .*a\.png; add a resize/.test(e.message));
    await mixed.close();

    const bogus = new DataLoader(dataset(10), { batchSize: 4, workers: 1, transforms: [{ kind: 'bogus' } as unknown as Transform] });
    await assert.rejects(collect(bogus, 0), (e: Error) => e instanceof DataError && /unknown transform kind 'bogus'/.test(e.message));
    await bogus.close();
    await assert.rejects(collect(bogus, 0), InvalidArgumentError);

    const bad = join(tmp.dir, 'bad');
    mkdirSync(join(bad, 'k'), { recursive: true });
    writeFileSync(join(bad, 'k', 'x.png'), 'garbage');
    const broken = new DataLoader(await loadImageFolder(bad), { batchSize: 1, workers: 1 });
    await assert.rejects(collect(broken, 0), (e: Error) => e instanceof DataError && /x\.png: cannot decode image/.test(e.message));
    await broken.close();
    const wrong = { ...dataset(4), labels: Uint8Array.from([0, 1, 12, 3]) };
    assert.throws(() => new DataLoader(wrong, { batchSize: 2 }), (e: Error) => e instanceof DataError && /DataLoader: label 2 is 12, expected a class index in 0\.\.9/.test(e.message));
    assert.throws(() => new DataLoader({ ...dataset(4), n: 5 }, { batchSize: 2 }), /'images' must hold n\*C\*H\*W = 5\*1\*8\*8 = 320 values, got a Uint8Array of 256/);
    assert.throws(() => new DataLoader(dataset(4), { batchSize: 0 }), /'batchSize' must be an integer in \[1, Infinity\], got 0/);
    assert.throws(() => new DataLoader(dataset(4), { batchSize: 2, prefetch: 9 }), /'prefetch' must be an integer in \[1, 8\]/);
  });

  test('close() mid-epoch ends the workers: no handles left, later use is an error', async () => {
    const ports = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker').length;
    const before = ports();
    const l = new DataLoader(dataset(400), { batchSize: 8, workers: 2, prefetch: 4, transforms: AUG });
    for await (const _ of l.epoch(0)) break;
    assert.ok(ports() > before, 'workers busy with batches prepared ahead');
    await l.close();
    await l.close();
    assert.equal(ports(), before);
    await assert.rejects(collect(l, 1), /used after close\(\)/);
  });

  test('the decode limiter never runs more than its slots, in request order', async () => {
    const lim = new Limiter(2);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    await Promise.all(Array.from({ length: 9 }, (_, i) => lim.run(async () => {
      started.push(i);
      peak = Math.max(peak, ++active);
      await new Promise((r) => setTimeout(r, 2));
      active--;
    })));
    assert.equal(peak, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('the process exits without close() after an early break, and with close() mid-epoch', () => {
    const here = fileURLToPath(new URL('.', import.meta.url));
    const script = join(tmp.dir, 'exit.mts');
    writeFileSync(script, `
      import { DataLoader, randomHorizontalFlip } from ${JSON.stringify(join(here, '..', 'src', 'data', 'index.ts'))};
      const n = 4000;
      const ds = { images: new Uint8Array(n * 64), labels: new Uint8Array(n), n, channels: 1, height: 8, width: 8, classes: ['a'] };
      const l = new DataLoader(ds, { batchSize: 32, workers: 2, prefetch: 4, transforms: [randomHorizontalFlip()] });
      let k = 0;
      for await (const b of l.epoch(0)) { if (++k === 3) break; }
      if (process.argv[2] === 'close') {
        const it = l.epoch(1)[Symbol.asyncIterator]();
        await it.next();
        await l.close();
      }
      console.log('done', k);
    `);
    for (const mode of ['keep', 'close']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', script, mode], { encoding: 'utf8', timeout: 20000, cwd: join(here, '..') });
      assert.equal(r.error, undefined, `${mode}: ${r.error}`);
      assert.equal(r.status, 0, `${mode}: exit ${r.status} ${r.signal}\n${r.stderr}`);
      assert.match(r.stdout, /done 3/);
    }
  });
});
