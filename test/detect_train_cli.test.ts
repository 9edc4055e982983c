// `resnet detect train` end to end on tiny synthetic scenes: the run directory (config,
// metrics.jsonl with the four loss terms and the COCO numbers per epoch, checkpoints, plots),
// `detect eval` and `detect predict` on the run (its classes matched by name), an interrupted
// run resumed to the same metrics as an uninterrupted one, and bad input as one-line errors
// with nothing written.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeSynthDataset } from '../src/detect/data/synth.js';
import { openDetector } from '../src/detect/load.js';
import { trainDetector, type DetectTrainConfig } from '../src/detect/train/trainer.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/registry.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { readMetrics } from '../src/train/metrics.js';
import { lrAt } from '../src/optim/schedule.js';
import { idxBytes, tempDir } from './helpers/data_files.js';
import { backendByName } from '../src/backend/index.js';

const native = backendByName('native');

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const tmp = tempDir('resnet-detect-train-');
after(() => tmp.remove());
let train: string, val: string;

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
}

const RECIPE: Partial<DetectTrainConfig> = { epochs: 2, batchSize: 2, lr: 0.01, minSize: 96, maxSize: 96, rpnPostNmsTopNTrain: 100, boxBatchSizePerImage: 32, seed: 5 };
const FLAGS = ['--epochs', '2', '--batch', '2', '--lr', '0.01', '--min-size', '96', '--max-size', '96', '--rpn-post-nms', '100', '--box-batch', '32', '--seed', '5'];

before(async () => {
  // Fashion-MNIST-like items: a bright block per item, its shape by class.
  const items = join(tmp.dir, 'fmnist');
  mkdirSync(items, { recursive: true });
  const img = new Uint8Array(20 * 784);
  for (let k = 0; k < 20; k++) for (let r = 4; r < 24 - (k % 3) * 4; r++) for (let c = 6 + (k % 4); c < 22; c++) img[k * 784 + r * 28 + c] = 200;
  for (const p of ['train', 't10k']) {
    writeFileSync(join(items, `${p}-images-idx3-ubyte`), idxBytes([20, 28, 28], img));
    writeFileSync(join(items, `${p}-labels-idx1-ubyte`), idxBytes([20], Uint8Array.from({ length: 20 }, (_, k) => k % 10)));
  }
  train = join(tmp.dir, 'train');
  val = join(tmp.dir, 'val');
  await writeSynthDataset({ out: train, images: 6, size: 96, seed: 1, maxObjects: 2, data: items, split: 'train' });
  await writeSynthDataset({ out: val, images: 3, size: 96, seed: 2, maxObjects: 2, data: items, split: 'test' });
});

test('detect train writes a run: config, metrics with the four losses and COCO AP per epoch, checkpoints, plots', () => {
  const out = join(tmp.dir, 'run');
  const r = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', out, ...FLAGS]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^done: 2 epochs, held-out COCO AP \d\.\d{3} AP50 \d\.\d{3}/);
  const rows = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(rows.length, 2);
  for (const row of rows) {
    for (const k of ['train_loss', 'train_loss_objectness', 'train_loss_rpn_box_reg', 'train_loss_classifier', 'train_loss_box_reg', 'AP', 'AP50', 'AR100']) {
      assert.equal(typeof row[k], 'number', k);
      assert.ok(Number.isFinite(row[k] as number), k);
    }
    assert.ok(Math.abs((row.train_loss_objectness as number) + (row.train_loss_rpn_box_reg as number) + (row.train_loss_classifier as number) + (row.train_loss_box_reg as number) - row.train_loss) < 1e-5, 'the terms sum to the loss');
  }
  for (const f of ['config.json', 'last.safetensors', 'best.safetensors', 'losses.png', 'ap.png']) assert.ok(existsSync(join(out, f)), f);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.classes.length, 11);
  assert.equal(config.classes[0], '__background__');
  const ck = loadCheckpoint(join(out, 'last.safetensors'));
  assert.equal(ck.meta.arch, 'fasterrcnn_resnet18_fpn');
  assert.equal(ck.meta.epoch, 2);
  const best = loadCheckpoint(join(out, 'best.safetensors'));
  assert.equal(best.meta.best?.metric, 'AP50');
});

test("detect eval and predict take the run: eval's numbers are the trainer's last evaluation", () => {
  const out = join(tmp.dir, 'run');
  const last = readMetrics(join(out, 'metrics.jsonl')).at(-1)!;
  const r = cli(['detect', 'eval', '--weights', join(out, 'last.safetensors'), '--data', val, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const stats = JSON.parse(r.stdout);
  for (const k of ['AP', 'AP50', 'AP75', 'AR100']) assert.equal(stats[k], last[k], k);
  const p = cli(['detect', 'predict', '--weights', out, '--json', join(val, 'images', '000000.png')]);
  assert.equal(p.status, 0, p.stderr);
  const [img] = JSON.parse(p.stdout);
  const names = readFileSync(join(val, 'instances.json'), 'utf8');
  for (const d of img.detections) assert.ok(names.includes(`"${d.name}"`), `class name ${d.name}`);
  const { model, source } = openDetector(out);
  assert.equal(source, 'run');
  assert.equal(model.numClasses, 11);
  model.dispose();
  const bad = cli(['detect', 'eval', '--weights', out, '--arch', 'fasterrcnn_resnet50_fpn', '--data', val]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /holds a fasterrcnn_resnet18_fpn run, but --arch says fasterrcnn_resnet50_fpn/);
});

test('detect train --precision bf16: recorded in the run, losses near fp32, eval in bf16 gives the trainer\'s numbers; a one-line error where the CPU has no bf16', () => {
  const out = join(tmp.dir, 'run-bf16');
  const r = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', out, '--precision', 'bf16', ...FLAGS]);
  if (!native.info().isa.startsWith('avx512')) {
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), /^resnet: .*bf16.*ISA/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(join(out, 'config.json')), 'nothing written');
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /precision: bf16/);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.precision, 'bf16');
  assert.equal(config.resolvedPrecision, 'bf16');
  // The fp32 run (first test) has the same recipe and seed: its first epoch's losses are close.
  const fp32 = readMetrics(join(tmp.dir, 'run', 'metrics.jsonl'));
  const bf16 = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(bf16.length, 2);
  if (JSON.parse(readFileSync(join(tmp.dir, 'run', 'config.json'), 'utf8')).resolvedPrecision === 'fp32') {
    const [a, b] = [bf16[0].train_loss, fp32[0].train_loss];
    assert.ok(Math.abs(a - b) <= 0.1 * b, `epoch 1 loss bf16 ${a} vs fp32 ${b}`);
  }
  const e = cli(['detect', 'eval', '--weights', out, '--data', val, '--json', '--precision', 'bf16']);
  assert.equal(e.status, 0, e.stderr);
  const stats = JSON.parse(e.stdout);
  for (const k of ['AP', 'AP50', 'AR100']) assert.equal(stats[k], bf16[1][k], k);
});

test('an interrupted run resumed ends with the metrics of the uninterrupted one', async () => {
  const out = join(tmp.dir, 'resumed');
  const ac = new AbortController();
  let steps = 0;
  const first = await trainDetector({ ...RECIPE, data: train, valData: val, out }, {
    signal: ac.signal, onProgress: (e) => { if (e.type === 'step' && ++steps === 4) ac.abort(); },
  });
  assert.equal(first.interrupted, true);
  const second = await trainDetector({ data: train, valData: val, out }, { resume: true });
  assert.equal(second.interrupted, false);
  const want = readMetrics(join(tmp.dir, 'run', 'metrics.jsonl'));
  const got = readMetrics(join(out, 'metrics.jsonl'));
  assert.equal(got.length, want.length);
  got.forEach((row, i) => {
    for (const k of ['train_loss', 'train_loss_classifier', 'AP50', 'AP']) assert.ok(Math.abs((row[k] as number) - (want[i][k] as number)) <= 1e-6, `epoch ${i + 1} ${k}: ${row[k]} vs ${want[i][k]}`);
  });
});

test('--representation-size, --roi-canonical-scale, --roi-output-size and --box-positive-fraction shape the box head, its pooling and its sampler, and the run reopens with them', () => {
  const out = join(tmp.dir, 'head');
  const r = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', out, ...FLAGS, '--epochs', '1', '--representation-size', '24', '--roi-canonical-scale', '56', '--roi-output-size', '5', '--box-positive-fraction', '0.5']);
  assert.equal(r.status, 0, r.stderr);
  const { model } = openDetector(out);
  assert.equal(model.roiHeads.sampler.positiveFraction, 0.5);
  assert.equal(model.roiHeads.sampler.batchSizePerImage, 32, '--box-batch kept beside it');
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).boxPositiveFraction, 0.5);
  const head = model.roiHeads.boxHead as unknown as { fc6: { weight: { shape: number[] } }; fc7: { weight: { shape: number[] } } };
  assert.deepEqual(head.fc6.weight.shape, [24, 256 * 25]);
  assert.equal(model.roiHeads.boxRoiPool.outputSize, 5);
  assert.deepEqual(head.fc7.weight.shape, [24, 24]);
  assert.equal(model.roiHeads.boxRoiPool.canonicalScale, 56);
  model.dispose();
  const c4 = join(tmp.dir, 'head-c4');
  const rc4 = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', c4, ...FLAGS, '--epochs', '1', '--arch', 'fasterrcnn_resnet18_c4', '--roi-output-size', '4']);
  assert.equal(rc4.status, 0, rc4.stderr);
  const reopened = openDetector(c4).model;
  assert.equal(reopened.name, 'fasterrcnn_resnet18_c4');
  assert.equal(reopened.roiHeads.boxRoiPool.outputSize, 4);
  assert.ok(Number.isFinite(JSON.parse(readFileSync(join(c4, 'metrics.jsonl'), 'utf8').trim().split('\n')[0]).train_loss_classifier));
  reopened.dispose();
  const bad = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', join(tmp.dir, 'head-bad'), ...FLAGS, '--roi-canonical-scale', '0']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--roi-canonical-scale must be an integer >= 1/);
  assert.ok(!existsSync(join(tmp.dir, 'head-bad')), 'nothing written');
  const badFraction = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', join(tmp.dir, 'head-bad'), ...FLAGS, '--box-positive-fraction', '0']);
  assert.equal(badFraction.status, 1);
  assert.match(badFraction.stderr, /boxPositiveFraction must be a fraction in \(0, 1\], got 0/);
  assert.ok(!existsSync(join(tmp.dir, 'head-bad')), 'nothing written');
});

test('--schedule cosine: the lr of every step follows the cosine after the warm-up, recorded in the run; with --milestones it is a one-line error', async () => {
  const out = join(tmp.dir, 'cosine');
  const lrs: number[] = [];
  const r = await trainDetector({ ...RECIPE, data: train, valData: val, out, schedule: 'cosine', warmup: 0.5 }, {
    onProgress: (e) => { if (e.type === 'step') lrs.push(e.lr); },
  });
  assert.equal(r.interrupted, false);
  assert.equal(lrs.length, 6, '2 epochs of 3 steps');
  lrs.forEach((lr, i) => {
    const want = lrAt({ kind: 'cosine', epochs: 2 }, 0.01, i / 3, 0.5);
    assert.ok(Math.abs(lr - want) <= 1e-9, `step ${i + 1}: lr ${lr}, want ${want}`);
  });
  assert.ok(lrs[5] < 0.01 * 0.1, 'the last step is near 0, below what multistep would give');
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.schedule, 'cosine');
  assert.equal(config.milestones, undefined);
  const bad = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', join(tmp.dir, 'cosine-bad'), ...FLAGS, '--schedule', 'cosine', '--milestones', '1']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--milestones go with --schedule multistep/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  const unknown = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', join(tmp.dir, 'cosine-bad'), ...FLAGS, '--schedule', 'poly']);
  assert.match(unknown.stderr, /--schedule must be one of multistep, cosine, got 'poly'/);
  assert.ok(!existsSync(join(tmp.dir, 'cosine-bad')), 'nothing written');
});

test("a grey classifier's run starts the backbone: conv1 made RGB (weights / 3), its normalisation kept, BN as --bn says", async () => {
  const grey = createModel('resnet18', { inChannels: 1, numClasses: 10, seed: 3 });
  const file = join(tmp.dir, 'grey18.safetensors');
  saveWeights(file, grey.stateDict(), { arch: 'resnet18', inChannels: 1, mean: [0.25], std: [0.5] });
  const w1 = grey.stateDict()['conv1.weight'].data as Float32Array;
  grey.dispose();
  const out = join(tmp.dir, 'from-grey');
  const r = await trainDetector({ ...RECIPE, epochs: 1, data: train, valData: val, out, weights: file, bn: 'train' });
  assert.equal(r.interrupted, false);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(config.model.transform.imageMean, [0.25, 0.25, 0.25]);
  assert.deepEqual(config.model.transform.imageStd, [0.5, 0.5, 0.5]);
  // conv1 is not among the 3 trained layers: it is the adapted grey kernel still.
  const ck = loadCheckpoint(join(out, 'last.safetensors'));
  const c1 = ck.model.get('backbone.body.conv1.weight')!;
  assert.deepEqual(c1.shape, [64, 3, 7, 7]);
  for (let o = 0; o < 64; o++) for (let c = 0; c < 3; c++) for (let p = 0; p < 49; p++) assert.equal(c1.data[(o * 3 + c) * 49 + p], Math.fround(w1[o * 49 + p] / 3));
  // --bn train: layer4's BatchNorm learnt from batch statistics (its running mean moved).
  const rm = ck.model.get('backbone.body.layer4.0.bn1.running_mean')!.data as Float32Array;
  assert.ok(rm.some((v) => v !== 0), 'running statistics updated');
  const { model } = openDetector(out);
  assert.deepEqual(model.transform.imageMean, [0.25, 0.25, 0.25]);
  model.dispose();
});

test('bad input is a one-line error and writes nothing', () => {
  const other = join(tmp.dir, 'other-cats');
  mkdirSync(join(other, 'images'), { recursive: true });
  const coco = JSON.parse(readFileSync(join(val, 'instances.json'), 'utf8'));
  coco.categories = coco.categories.slice(0, 3);
  coco.annotations = coco.annotations.filter((a: { category_id: number }) => coco.categories.some((c: { id: number }) => c.id === a.category_id));
  writeFileSync(join(other, 'instances.json'), JSON.stringify(coco));
  for (const im of coco.images) writeFileSync(join(other, 'images', im.file_name), readFileSync(join(val, 'images', im.file_name)));
  const cases: [string[], RegExp][] = [
    [['--data', train, '--val-data', other], /categories \(.*\) are not the training set's/],
    [['--data', train, '--val-data', val, '--trainable-layers', '6'], /trainableLayers must be an integer in 0\.\.5, got 6/],
    [['--data', train, '--val-data', val, '--bn', 'batch'], /--bn must be one of train, frozen, got 'batch'/],
    [['--data', train, '--val-data', val, '--weights', join(tmp.dir, 'no-such-run')], /no-such-run: no such weights file or run directory/],
    [['--data', join(tmp.dir, 'nope'), '--val-data', val], /nope/],
    [['--data', train, '--val-data', val, '--arch', 'fasterrcnn_resnet9_fpn'], /unknown detection arch 'fasterrcnn_resnet9_fpn'; valid: fasterrcnn_resnet18_fpn/],
    [['--data', train, '--val-data', val, '--arch', 'fasterrcnn_resnet50_c4', '--fpn-channels', '64', '--roi-canonical-scale', '56'], /fpnChannels, roiCanonicalScale: these shape an FPN detector's FPN and box head; fasterrcnn_resnet50_c4 has no FPN/],
  ];
  for (const [args, re] of cases) {
    const out = join(tmp.dir, 'never');
    const r = cli(['detect', 'train', ...args, '--out', out, '--epochs', '1']);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(out), 'nothing written');
  }
  const again = cli(['detect', 'train', '--data', train, '--val-data', val, '--out', join(tmp.dir, 'run'), '--epochs', '1']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /holds an earlier run .*--resume.*--force/);
});
