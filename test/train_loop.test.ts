// The task-independent training loop (src/train/loop.ts) driven by a toy task made here: a
// Linear classifier on 23 fixed random points in batches of 5, with a hand-written step that
// also reports named loss terms. Checked: parts averaged (image-weighted) into train_<name>,
// no train_err without `wrong`, `best` saved only when the given metric improves, an abort
// mid-epoch saves the position and partial sums and a run continued from there ends with the
// same rows as one never stopped, a non-finite loss throws naming the epoch and batch without
// writing a checkpoint. Reference backend: bit-for-bit repeatable.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setBackend } from '../src/backend/index.js';
import { Linear } from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import { crossEntropy } from '../src/tensor/ops/loss.js';
import { noGrad } from '../src/tensor/autograd.js';
import { Rng } from '../src/tensor/random.js';
import { tidy } from '../src/tensor/scope.js';
import { tensor } from '../src/tensor/tensor.js';
import {
  BEST, CHECKPOINT_FORMAT, LAST, loadCheckpoint, readMetrics, runTrainLoop, TrainingError,
  type CheckpointMeta, type EpochMetrics, type ProgressEvent, type TrainEvaluation, type TrainLoopSpec, type TrainPosition, type TrainStep,
} from '../src/train/index.js';

setBackend('reference');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-loop-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const N = 23;
const D = 3;
const BS = 5;
const NB = Math.ceil(N / BS);
const data = (() => {
  const rng = new Rng(11);
  const x = Float32Array.from({ length: N * D }, () => rng.next() * 2 - 1);
  const y = Int32Array.from({ length: N }, (_, i) => (x[i * D] + 0.5 * x[i * D + 1] > 0 ? 1 : 0));
  return { x, y };
})();
interface Toy { x: Float32Array; y: Int32Array; batch: number }

/** Epoch `e`'s order: a seeded shuffle, so any batch of any epoch can be replayed alone. */
function order(e: number): number[] {
  const rng = new Rng(100 + e);
  const idx = Array.from({ length: N }, (_, i) => i);
  for (let i = N - 1; i > 0; i--) { const j = Math.floor(rng.next() * (i + 1)); [idx[i], idx[j]] = [idx[j], idx[i]]; }
  return idx;
}

async function* batches(e: number, start: number): AsyncGenerator<Toy> {
  const idx = order(e);
  for (let b = start; b < NB; b++) {
    const part = idx.slice(b * BS, (b + 1) * BS);
    yield { x: Float32Array.from(part.flatMap((i) => [...data.x.subarray(i * D, (i + 1) * D)])), y: Int32Array.from(part, (i) => data.y[i]), batch: b };
  }
}

interface Options {
  epochs?: number;
  withWrong?: boolean;
  scores?: number[];
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  from?: TrainPosition;
  poison?: { epoch: number; batch: number };
  checkpointEvery?: number;
}

/** The toy task; `model`/`optimizer` fresh from seed 1 unless a checkpoint is loaded into them. */
function toyTask(dir: string, o: Options = {}): { spec: TrainLoopSpec<Toy>; model: Linear; optimizer: SGD } {
  const model = new Linear(D, 2, { rng: new Rng(1) });
  const optimizer = new SGD(model.parameters(), { lr: 0.2, momentum: 0.9 });
  const baseLrs = optimizer.groups.map((g) => g.lr);
  let epochNow = 0;
  const step = (b: Toy): TrainStep => tidy(() => {
    const logits = model.forward(tensor(b.x, [b.y.length, D]));
    const loss = crossEntropy(logits, tensor(b.y, [b.y.length], { dtype: 'int32' }));
    let value = loss.item();
    if (o.poison && o.poison.epoch === epochNow && o.poison.batch === b.batch) value = NaN;
    if (!Number.isFinite(value)) return { loss: value, images: b.y.length };
    loss.backward();
    const l = logits.toFloat32Array();
    let wrong = 0;
    for (let n = 0; n < b.y.length; n++) if ((l[2 * n + 1] > l[2 * n] ? 1 : 0) !== b.y[n]) wrong++;
    // Two named terms: one the loss itself, one the batch index (its weighted mean is known).
    return { loss: value, images: b.y.length, parts: { ce: value, idx: b.batch }, ...(o.withWrong ? { wrong } : {}) };
  });
  const evaluate = async (epoch: number): Promise<TrainEvaluation> => {
    const loss = tidy(() => noGrad(() => crossEntropy(model.forward(tensor(data.x, [N, D])), tensor(data.y, [N], { dtype: 'int32' })).item()));
    const score = o.scores ? o.scores[epoch - 1] : -loss;
    return { metrics: { test_loss: loss, AP: score }, score, metric: 'AP', loss };
  };
  const meta = (p: TrainPosition): CheckpointMeta => ({
    format: CHECKPOINT_FORMAT, arch: 'toy', modelOptions: {}, epoch: p.epoch, step: p.step,
    loader: { seed: 0, epoch: p.epoch, batch: p.batch }, rng: { seed: 0 }, partial: p.partial, best: p.best, plateau: p.plateau ?? null,
    norm: { mean: [0], std: [1] }, input: { channels: 1, height: 1, width: D, classes: ['a', 'b'] }, lrs: [], config: {}, savedAt: new Date().toISOString(),
  });
  const spec: TrainLoopSpec<Toy> = {
    dir, model, optimizer, epochs: o.epochs ?? 3, batchesPerEpoch: NB,
    batches: (e, start) => { epochNow = e; return batches(e, start); },
    step, evaluate, meta,
    schedule: { spec: { kind: 'cosine', epochs: o.epochs ?? 3 }, baseLrs, warmup: 1 },
    from: o.from, signal: o.signal, onProgress: o.onProgress, checkpointEvery: o.checkpointEvery,
    info: { trainSize: N, testSize: N },
  };
  return { spec, model, optimizer };
}

function runDir(name: string): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** A row without its clock readings. */
const untimed = (m: EpochMetrics): Record<string, unknown> => {
  const { seconds: _s, images_per_sec: _i, time: _t, ...rest } = m;
  return rest;
};

test('named loss terms are averaged (image-weighted) into train_<name>; no train_err without wrong; evaluation metrics join the row', async () => {
  const dir = runDir('parts');
  const { spec, model, optimizer } = toyTask(dir, { epochs: 2 });
  const events: ProgressEvent[] = [];
  spec.onProgress = (e) => events.push(e);
  const r = await runTrainLoop(spec);
  model.dispose();
  optimizer.dispose();
  assert.equal(r.epochs, 2);
  assert.equal(r.step, 2 * NB);
  assert.equal(r.interrupted, false);
  const rows = readMetrics(join(dir, 'metrics.jsonl'));
  assert.equal(rows.length, 2);
  // Batches of 5, 5, 5, 5, 3: the mean batch index weighted by images.
  const idxMean = (5 * (0 + 1 + 2 + 3) + 3 * 4) / N;
  for (const m of rows) {
    assert.ok(!('train_err' in m), 'no train_err when the task gives no wrong');
    assert.ok(Math.abs((m.train_idx as number) - idxMean) < 1e-12, `train_idx ${m.train_idx} vs ${idxMean}`);
    assert.ok(Math.abs((m.train_ce as number) - m.train_loss) < 1e-9, 'train_ce averages as the loss does');
    assert.equal(typeof m.test_loss, 'number');
    assert.equal(typeof m.AP, 'number');
    assert.deepEqual(Object.keys(m).slice(0, 4), ['epoch', 'step', 'lr', 'train_loss']);
  }
  assert.deepEqual(events.map((e) => e.type).filter((t) => t !== 'step'), ['start', 'eval', 'epoch', 'eval', 'epoch']);
  assert.equal(events.filter((e) => e.type === 'step').length, 2 * NB);
  // The 'epoch' event carries the row as written.
  const epochRows = events.flatMap((e) => (e.type === 'epoch' ? [e.metrics] : []));
  assert.deepEqual(epochRows.map(untimed), rows.map(untimed));
  // Checkpoints at an epoch end keep which sums the task keeps, zeroed.
  const last = loadCheckpoint(join(dir, LAST)).meta;
  assert.deepEqual(last.partial, { lossSum: 0, seen: 0, seconds: 0, parts: { ce: 0, idx: 0 } });
  assert.deepEqual([last.epoch, last.loader.batch, last.step], [2, 0, 2 * NB]);

  const dir2 = runDir('wrong');
  const t2 = toyTask(dir2, { epochs: 1, withWrong: true });
  await runTrainLoop(t2.spec);
  t2.model.dispose();
  t2.optimizer.dispose();
  const [m2] = readMetrics(join(dir2, 'metrics.jsonl'));
  assert.ok(typeof m2.train_err === 'number' && m2.train_err >= 0 && m2.train_err <= 1);
});

test('best is saved only when the evaluation score improves, under the metric the task names', async () => {
  const dir = runDir('best');
  const { spec, model, optimizer } = toyTask(dir, { epochs: 4, scores: [0.5, 0.3, 0.7, 0.7] });
  const seen: { best: boolean; bestEpoch: number }[] = [];
  spec.onProgress = (e) => {
    if (e.type === 'epoch') seen.push({ best: e.best, bestEpoch: loadCheckpoint(join(dir, BEST)).meta.epoch });
  };
  const r = await runTrainLoop(spec);
  model.dispose();
  optimizer.dispose();
  assert.deepEqual(seen, [{ best: true, bestEpoch: 1 }, { best: false, bestEpoch: 1 }, { best: true, bestEpoch: 3 }, { best: false, bestEpoch: 3 }]);
  assert.deepEqual(r.best, { metric: 'AP', value: 0.7, epoch: 3 });
  assert.deepEqual(loadCheckpoint(join(dir, BEST)).meta.best, { metric: 'AP', value: 0.7, epoch: 3 });
  assert.deepEqual(loadCheckpoint(join(dir, LAST)).meta.best, { metric: 'AP', value: 0.7, epoch: 3 });
});

test('an abort mid-epoch saves the position and partial sums; continuing from them ends with the rows of an uninterrupted run', async () => {
  const full = runDir('full');
  const a = toyTask(full, { withWrong: true });
  const ra = await runTrainLoop(a.spec);
  const fullState = a.model.stateDict();
  a.model.dispose();
  a.optimizer.dispose();

  // Stop at epoch 2, batch 3 (the 8th step), with a checkpoint every 4 steps on the way.
  const dir = runDir('stopped');
  const ac = new AbortController();
  const b = toyTask(dir, { withWrong: true, signal: ac.signal, checkpointEvery: 4 });
  b.spec.onProgress = (e) => { if (e.type === 'step' && e.step === NB + 3) ac.abort(); };
  const rb = await runTrainLoop(b.spec);
  b.model.dispose();
  b.optimizer.dispose();
  assert.equal(rb.interrupted, true);
  const done = readMetrics(join(dir, 'metrics.jsonl'));
  assert.equal(done.length, 1);
  assert.equal(rb.last?.metrics.test_loss, done[0].test_loss, 'the last evaluation is epoch 1\'s');
  const ck = loadCheckpoint(join(dir, LAST));
  assert.deepEqual([ck.meta.loader.epoch, ck.meta.loader.batch, ck.meta.step], [1, 3, NB + 3]);
  assert.equal(ck.meta.partial.seen, 3 * BS);
  assert.ok(ck.meta.partial.lossSum > 0 && ck.meta.partial.wrong !== undefined);
  assert.deepEqual(Object.keys(ck.meta.partial.parts ?? {}).sort(), ['ce', 'idx']);
  assert.equal(ck.meta.partial.parts!.idx, BS * (0 + 1 + 2));

  // Continue: load the checkpoint into a fresh task, start from its position.
  const m = ck.meta;
  const c = toyTask(dir, { withWrong: true, from: { epoch: m.loader.epoch, batch: m.loader.batch, step: m.step, partial: m.partial, best: m.best } });
  c.model.loadStateDict(ck.model);
  c.optimizer.loadStateDict(ck.optim!);
  const starts: ProgressEvent[] = [];
  c.spec.onProgress = (e) => { if (e.type === 'start') starts.push(e); };
  const rc = await runTrainLoop(c.spec);
  const resumedState = c.model.stateDict();
  c.model.dispose();
  c.optimizer.dispose();
  assert.deepEqual(starts.map((e) => e.type === 'start' && [e.epoch, e.batch]), [[1, 3]]);
  assert.equal(rc.epochs, 3);
  assert.equal(rc.step, ra.step);
  assert.deepEqual(rc.best, ra.best);
  const rows = (d: string): Record<string, unknown>[] => readMetrics(join(d, 'metrics.jsonl')).map(untimed);
  assert.equal(rows(dir).length, 3, 'one row per epoch, none twice');
  assert.deepEqual(rows(dir), rows(full));
  assert.deepEqual(resumedState, fullState);
});

test('a non-finite loss throws TrainingError naming the epoch and batch, and writes no checkpoint', async () => {
  const dir = runDir('nan');
  const { spec, model, optimizer } = toyTask(dir, { poison: { epoch: 0, batch: 2 } });
  await assert.rejects(runTrainLoop(spec), (e: unknown) => {
    assert.ok(e instanceof TrainingError);
    assert.match(e.message, /the loss is NaN at epoch 1, batch 3 \(step 3, lr [0-9.e-]+\); stopped without saving: no checkpoint was written yet/);
    return true;
  });
  model.dispose();
  optimizer.dispose();
  assert.equal(existsSync(join(dir, LAST)), false);
  assert.equal(existsSync(join(dir, BEST)), false);
  assert.equal(existsSync(join(dir, 'metrics.jsonl')), false);

  // Later in a run: the message points at the last good checkpoint, which stays as it was.
  const dir2 = runDir('nan2');
  const t = toyTask(dir2, { poison: { epoch: 1, batch: 0 } });
  await assert.rejects(runTrainLoop(t.spec), /the loss is NaN at epoch 2, batch 1 \(step 6,.*last\.safetensors holds the last good state/);
  t.model.dispose();
  t.optimizer.dispose();
  assert.equal(loadCheckpoint(join(dir2, LAST)).meta.epoch, 1);
});

test("the CLI's progress renderer prints any task's epoch row: a classifier's errors, else every number it wrote", async () => {
  const { progressPrinter } = await import('../src/cli/train.js');
  const out: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => { out.push(s); return true; }) as typeof process.stderr.write;
  try {
    const print = progressPrinter();
    const base = { epoch: 1, step: 4, lr: 0.01, train_loss: 1.5, seconds: 2, images_per_sec: 8, time: '2026-01-01T00:00:00Z' };
    print({ type: 'epoch', best: true, metrics: { ...base, train_err: 0.25, test_loss: 0.5, test_top1: 0.75, test_top5: 1, test_err: 0.25 } });
    print({ type: 'epoch', best: false, metrics: { ...base, train_loss_classifier: 0.125, train_loss_box_reg: 0.5, AP: 0.3, AP50: 0.55 } });
  } finally {
    process.stderr.write = write;
  }
  assert.equal(out[0], 'epoch 1: train loss 1.5000 err 25.00% | test loss 0.5000 top-1 75.00% top-5 100.00% | 2s, 8 img/s (best)\n');
  assert.equal(out[1], 'epoch 1: train loss 1.5000 train_loss_classifier 0.1250 train_loss_box_reg 0.5000 | AP 0.3000 AP50 0.5500 | 2s, 8 img/s\n');
});
