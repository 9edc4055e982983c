// The training layer on tiny IDX files made here (12x12 grey, 4 classes): metrics.jsonl,
// checkpoint round trip, resume after a real SIGKILL mid-epoch equals an uninterrupted run,
// SIGKILL during a checkpoint write, corrupt checkpoints, bad dataset paths, the NaN guard.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createModel } from '../src/models/index.js';
import { makeBandsIdx } from './helpers/data_files.js';
import {
  nonFiniteEntry,
  evaluateCheckpoint, loadCheckpoint, loadRunCheckpoint, readMetrics, saveCheckpoint, Trainer, type CheckpointMeta, type TrainConfig,
} from '../src/train/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli/main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-train-'));


const DATA = makeBandsIdx(join(tmp, 'data'), 256, 128);
const base = (out: string, extra: Partial<TrainConfig> = {}): Partial<TrainConfig> => ({
  arch: 'resnet20', dataset: 'mnist', data: DATA, epochs: 2, batchSize: 32, lr: 0.05, seed: 7, workers: 1, out, ...extra,
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a run writes well-formed metrics.jsonl, config.json, last and best; checkpoints round-trip', async () => {
  const out = join(tmp, 'run-a');
  const events: string[] = [];
  const r = await new Trainer(base(out), { onProgress: (e) => events.push(e.type) }).run();
  assert.equal(r.epochs, 2);
  assert.ok(events.includes('start') && events.includes('step') && events.filter((e) => e === 'epoch').length === 2);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 2);
  lines.forEach((l, i) => {
    const m = JSON.parse(l) as Record<string, number>;
    assert.equal(m.epoch, i + 1);
    for (const k of ['train_loss', 'train_err', 'test_loss', 'test_top1', 'test_top5', 'lr', 'seconds', 'images_per_sec']) {
      assert.ok(Number.isFinite(m[k]), `${k} = ${m[k]}`);
    }
    assert.ok(m.test_top1 >= 0 && m.test_top1 <= 1 && m.test_top5 >= m.test_top1);
  });
  assert.equal(r.top1, readMetrics(join(out, 'metrics.jsonl'))[1].test_top1);
  assert.match(readFileSync(join(out, 'errors.svg'), 'utf8'), /^<svg[\s\S]*stroke-width="3"[\s\S]*<\/svg>\n$/);
  assert.deepEqual([...readFileSync(join(out, 'errors.png')).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'errors.png is a PNG');
  const ck = loadCheckpoint(join(out, 'last.safetensors'));
  assert.equal(ck.meta.epoch, 2);
  assert.deepEqual(ck.meta.loader, { seed: 7, epoch: 2, batch: 0 });
  assert.equal(ck.meta.step, 16);
  assert.ok(ck.optim && ck.optim.state[0].every((ps) => ps?.buffers.momentum_buffer !== undefined), 'momentum buffers saved');
  const model = createModel('resnet20', ck.meta.modelOptions);
  const report = model.loadStateDict(ck.model);
  assert.equal(report.missing.length + report.unexpected.length + report.mismatched.length, 0);
  model.dispose();
  // Eval of the run dir = its best checkpoint, with the run's normalisation.
  const best = loadCheckpoint(join(out, 'best.safetensors'));
  const ev = await evaluateCheckpoint(out);
  assert.equal(ev.n, 128);
  assert.equal(ev.top1, best.meta.best!.value);
  // A second run into the same dir refuses; --force overwrites.
  await assert.rejects(new Trainer(base(out)).run(), /holds an earlier run.*--resume.*--force/);
  const forced = await new Trainer(base(out, { epochs: 1 }), { force: true }).run();
  assert.equal(forced.epochs, 1);
  assert.equal(readMetrics(join(out, 'metrics.jsonl')).length, 1);
});

test('resume after a real SIGKILL mid-epoch ends exactly where an uninterrupted run does', async () => {
  const args = (out: string): string[] => ['train', '--dataset', 'mnist', '--data', DATA, '--epochs', '3', '--batch-size', '32', '--lr', '0.05',
    '--seed', '11', '--workers', '1', '--checkpoint-every', '3', '--out', out, '--json'];
  const full = cli(args(join(tmp, 'full')));
  assert.equal(full.status, 0, full.stderr);
  const want = JSON.parse(full.stdout.trim().split('\n').at(-1)!) as { top1: number; epochs: number };

  const out = join(tmp, 'killed');
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args(out)], { cwd: ROOT, stdio: 'ignore' });
  // Kill once a mid-epoch checkpoint of epoch 2 exists.
  const deadline = Date.now() + 60_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(Date.now() < deadline, 'the child never reached epoch 2');
    const f = join(out, 'last.safetensors');
    if (!existsSync(f)) continue;
    try {
      const m = loadCheckpoint(f).meta;
      if (m.loader.epoch === 1 && m.loader.batch > 0) break;
    } catch { /* being replaced */ }
  }
  await new Promise((r) => setTimeout(r, 150));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const at = loadCheckpoint(join(out, 'last.safetensors')).meta;
  assert.ok(at.epoch < 3, 'killed before the end');
  const resumed = cli([...args(out), '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from/);
  const got = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as { top1: number; epochs: number };
  assert.equal(got.epochs, 3);
  assert.ok(Math.abs(got.top1 - want.top1) <= 0.002, `resumed ${got.top1} vs uninterrupted ${want.top1}`);
  const a = readMetrics(join(tmp, 'full', 'metrics.jsonl')).map((m) => [m.epoch, m.test_top1, m.test_loss, m.train_loss]);
  const b = readMetrics(join(out, 'metrics.jsonl')).map((m) => [m.epoch, m.test_top1, m.test_loss, m.train_loss]);
  assert.equal(b.length, 3, 'one metrics line per epoch, none twice');
  assert.deepEqual(b, a);
});

test('Ctrl-C finishes the step, saves last and exits; --resume then completes the run', async () => {
  const out = join(tmp, 'sigint');
  const args = ['train', '--dataset', 'mnist', '--data', DATA, '--epochs', '2', '--batch-size', '16', '--seed', '3', '--workers', '1', '--out', out];
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += String(d); });
  const started = new Promise<void>((r) => child.stderr.on('data', (d: Buffer) => { stderr += String(d); if (/epoch 1\/2 \d+\/16/.test(stderr)) r(); }));
  await started; // the first step's progress line
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  assert.match(stdout, /^interrupted/);
  assert.match(stderr, /stopped at epoch \d, batch \d+\/16; saved .*last\.safetensors/);
  const at = loadCheckpoint(join(out, 'last.safetensors')).meta;
  assert.ok(at.step > 0 && at.step < 32);
  const done = cli([...args, '--resume', '--json']);
  assert.equal(done.status, 0, done.stderr);
  assert.equal((JSON.parse(done.stdout.trim().split('\n').at(-1)!) as { epochs: number }).epochs, 2);
});

test('SIGKILL during a checkpoint write leaves the previous checkpoint loadable', async () => {
  const dir = join(tmp, 'kill-save');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'last.safetensors');
  const model = createModel('resnet50', { numClasses: 1000, init: 'none' });
  const meta = { format: 1, arch: 'resnet50', modelOptions: {}, epoch: 1, step: 1, loader: { seed: 0, epoch: 1, batch: 0 }, rng: { seed: 0 },
    partial: { lossSum: 0, wrong: 0, seen: 0, seconds: 0 }, best: null, plateau: null, norm: { mean: [0], std: [1] },
    input: { channels: 3, height: 224, width: 224, classes: [] }, lrs: [], config: {}, savedAt: '' } as CheckpointMeta;
  saveCheckpoint(file, model, null, meta);
  model.dispose();
  const good = statSync(file).size;
  const script = join(dir, 'saver.mts');
  writeFileSync(script, `import { createModel } from ${JSON.stringify(join(ROOT, 'src/models/index.ts'))};
import { saveCheckpoint } from ${JSON.stringify(join(ROOT, 'src/train/checkpoint.ts'))};
const m = createModel('resnet50', { numClasses: 1000, seed: 1 });
const meta = JSON.parse(process.argv[2]);
process.stdout.write('ready\\n');
for (;;) saveCheckpoint(${JSON.stringify(file)}, m, null, { ...meta, step: meta.step + 1 });
`);
  for (const delay of [150, 400]) {
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(meta)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const ck = loadCheckpoint(file);
    assert.ok(ck.meta.step >= 1);
    assert.equal(statSync(file).size, good);
  }
});

test('a checkpoint that cannot be written is a clear error and the old file stays intact', async () => {
  const dir = join(tmp, 'ro');
  mkdirSync(dir, { recursive: true });
  const model = createModel('resnet20', { inChannels: 1, numClasses: 4 });
  const meta = { format: 1, arch: 'resnet20', modelOptions: {}, epoch: 1, step: 1, loader: { seed: 0, epoch: 1, batch: 0 }, rng: { seed: 0 },
    partial: { lossSum: 0, wrong: 0, seen: 0, seconds: 0 }, best: null, plateau: null, norm: { mean: [0], std: [1] },
    input: { channels: 1, height: 12, width: 12, classes: [] }, lrs: [], config: {}, savedAt: '' } as CheckpointMeta;
  const file = join(dir, 'last.safetensors');
  saveCheckpoint(file, model, null, meta);
  const nowhere = join(tmp, 'no-such-dir', 'last.safetensors');
  assert.throws(() => saveCheckpoint(nowhere, model, null, meta), (e: Error) => e.message.startsWith(`${nowhere}: cannot write the checkpoint (ENOENT)`));
  if (process.getuid?.() === 0) { model.dispose(); return; } // root ignores directory permissions
  chmodSync(dir, 0o555);
  try {
    assert.throws(() => saveCheckpoint(file, model, null, { ...meta, step: 2 }), (e: Error) => e.message.startsWith(`${file}: cannot write the checkpoint (EACCES); the previous one is intact`));
    assert.equal(loadCheckpoint(file).meta.step, 1);
  } finally {
    chmodSync(dir, 0o755);
    model.dispose();
  }
});

test('a corrupt checkpoint is named, and the run falls back to the other one', async () => {
  const out = join(tmp, 'run-a');
  const last = join(out, 'last.safetensors');
  const bytes = readFileSync(last);
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(last, bytes);
  assert.throws(() => loadCheckpoint(last), (e: Error) => e.message.includes(last) && /corrupt/.test(e.message));
  const messages: string[] = [];
  const ck = loadRunCheckpoint(out, (t) => messages.push(t));
  assert.ok(ck.file.endsWith('best.safetensors'));
  const ev = cli(['eval', '--checkpoint', out, '--json']);
  assert.equal(ev.status, 0, ev.stderr);
  const j = JSON.parse(ev.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
  assert.deepEqual(Object.keys(j), ['top1', 'top5', 'loss', 'n']);
  assert.ok(j.top1 >= 0 && j.top1 <= 1 && j.n === 128);
  assert.match(messages.join('\n'), /last\.safetensors.*corrupt.*using .*best\.safetensors/);
  const bad = join(tmp, 'bad.safetensors');
  writeFileSync(bad, bytes.subarray(0, 100));
  const r = cli(['eval', '--checkpoint', bad, '--json']);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(bad), r.stderr);
});

test('a checkpoint of another shape is a clear error naming the file', async () => {
  const out = join(tmp, 'other');
  const data = makeBandsIdx(join(tmp, 'data16'), 64, 32, 16);
  await new Trainer(base(out, { epochs: 1, data })).run();
  const r = cli(['eval', '--checkpoint', join(out, 'best.safetensors'), '--data', DATA, '--json']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /best\.safetensors: trained on 1x16x16 images, the test set holds 1x12x12/);
});

test('a bad dataset path names the path and leaves no run directory', async () => {
  const out = join(tmp, 'nodata');
  await assert.rejects(new Trainer(base(out, { data: join(tmp, 'missing-dir') })).run(), (e: Error) => e.message.includes('missing-dir'));
  assert.equal(existsSync(out), false);
  const r = cli(['train', '--dataset', 'mnist', '--data', join(tmp, 'missing-dir'), '--out', out]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing-dir/);
  assert.equal(existsSync(out), false);
});

test('the NaN guard stops with a clear message and keeps the last good checkpoint', async () => {
  const out = join(tmp, 'nan');
  // Whichever the guard sees first: a non-finite loss, or (ReLU maps NaN to 0) a non-finite weight.
  await assert.rejects(new Trainer(base(out, { lr: 1e30, epochs: 1, checkpointEvery: 1 })).run(),
    /diverged: (the loss is (NaN|Infinity|-Infinity)|[\w.]+\[\d+\] = (NaN|Infinity|-Infinity) after epoch 1, batch \d+).*last good state/);
  const ck = loadCheckpoint(join(out, 'last.safetensors'));
  for (const [k, v] of ck.model) if (v.data instanceof Float32Array) assert.ok(v.data.every(Number.isFinite), `${k} finite`);
  assert.ok(readdirSync(out).includes('last.safetensors'));
});

test('the NaN guard also looks at the weights: native ReLU maps NaN to 0, so the loss alone can stay finite', () => {
  const m = createModel('resnet20', { inChannels: 1 });
  assert.equal(nonFiniteEntry(m), null);
  const w = m.stateDict()['layer2.0.conv1.weight'];
  const bad = Float32Array.from(w.data as Float32Array);
  bad[5] = NaN;
  m.loadStateDict({ 'layer2.0.conv1.weight': { data: bad, shape: w.shape } }, { strict: false });
  assert.equal(nonFiniteEntry(m), 'layer2.0.conv1.weight[5] = NaN');
  m.dispose();
});

test('--no-wd-norm-bias: BN parameters and biases go to their own group, without weight decay', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'resnet-wd-')), 'run');
  await new Trainer(base(out, { epochs: 1, noWdNormBias: true, weightDecay: 0.01 })).run();
  const ck = loadCheckpoint(join(out, 'last.safetensors'));
  const buffers = ck.optim!.state;
  assert.equal(buffers.length, 2, 'two parameter groups');
  const m = createModel('resnet20', { inChannels: 1 });
  const params = m.parameters();
  assert.deepEqual(buffers.map((g) => g.length), [params.filter((p) => p.shape.length > 1).length, params.filter((p) => p.shape.length <= 1).length]);
  m.dispose();
});

test('--precision: the run records the choice and what it resolved to; a bf16 run learns as the fp32 one does', async (t) => {
  const fp32 = join(tmp, 'run-fp32');
  const a = await new Trainer(base(fp32, { precision: 'fp32' })).run();
  const cfgA = JSON.parse(readFileSync(join(fp32, 'config.json'), 'utf8')) as Record<string, string>;
  assert.equal(cfgA.precision, 'fp32');
  assert.equal(cfgA.resolvedPrecision, 'fp32');
  const auto = join(tmp, 'run-auto');
  await new Trainer(base(auto, { epochs: 1 })).run();
  const cfgAuto = JSON.parse(readFileSync(join(auto, 'config.json'), 'utf8')) as Record<string, string>;
  assert.equal(cfgAuto.precision, 'auto');
  assert.equal(cfgAuto.resolvedPrecision, cfgAuto.isa === 'avx512_core_amx' ? 'bf16' : 'fp32');
  if (!cfgAuto.isa.startsWith('avx512')) { t.skip(`no bf16 run: oneDNN ISA ${cfgAuto.isa} (oneDNN 2.6 needs AVX-512)`); return; }
  const bf16 = join(tmp, 'run-bf16');
  const b = await new Trainer(base(bf16, { precision: 'bf16' })).run();
  assert.equal((JSON.parse(readFileSync(join(bf16, 'config.json'), 'utf8')) as Record<string, string>).resolvedPrecision, 'bf16');
  // the bands are easy: both runs learn them, and bf16 ends within a few points of fp32
  assert.ok(a.top1 > 0.5 && b.top1 > 0.5, `top-1 fp32 ${a.top1}, bf16 ${b.top1}`);
  assert.ok(Math.abs(a.top1 - b.top1) <= 0.08, `top-1 fp32 ${a.top1}, bf16 ${b.top1}`);
  const ev = await evaluateCheckpoint(bf16, { precision: 'bf16' });
  assert.equal(ev.n, 128);
});
