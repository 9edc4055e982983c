// Fine-tuning (issue 14): a run starts from weights (a run directory, a weights file,
// "pretrained" weights from a local HTTP server), the classifier re-created for new classes,
// --freeze / --bn frozen keep weights and running statistics bit for bit, --lr-backbone's
// parameter groups step as PyTorch's SGD with two groups (committed fixture), the load
// report and the weights' sha256 land in config.json, and bad input gets one-line errors.
// Small nets (resnet20 at 16x16, grey) on generated PNG folders: fast on 2 cores.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import {
  applyFreeze, createModel, crossEntropy, fineTuneGroups, tidy, loadCheckpoint, registerPretrained, saveWeights, SGD, tensor, Trainer, unregisterPretrained,
  type ArrayDataset, type NamedArray, type ProgressEvent, type TrainConfig,
} from '../src/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'dist/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-finetune-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A grey image whose class shows as a bright quadrant (class k: quadrant k), with noise. */
function pattern(k: number, seed: number, size = 16): Uint8Array {
  const px = new Uint8Array(size * size);
  let s = (seed * 2654435761) >>> 0;
  const h = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const q = (y < h ? 0 : 2) + (x < h ? 0 : 1);
      px[y * size + x] = (q === k % 4 ? 180 : 40) + ((s >>> 16) % 40);
    }
  }
  return px;
}

function arrayDataset(classes: string[], perClass: number, seed: number): ArrayDataset {
  const n = classes.length * perClass;
  const images = new Uint8Array(n * 256);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes.length;
    images.set(pattern(labels[i], seed + i), i * 256);
  }
  return { images, labels, n, channels: 1, height: 16, width: 16, classes };
}

/** root/<class>/<i>.png, grey PNGs (the loader decodes them to RGB). */
async function pngFolder(root: string, classes: string[], perClass: number, seed: number): Promise<void> {
  for (const [k, c] of classes.entries()) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      await sharp(Buffer.from(pattern(k, seed + 31 * k + i)), { raw: { width: 16, height: 16, channels: 1 } }).png().toFile(join(root, c, `${i}.png`));
    }
  }
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const same = (a: NamedArray, b: NamedArray): boolean => a.data.length === b.data.length && a.data.every((v, i) => Object.is(v, b.data[i]));
const config = (dir: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;

const FOLDER = join(tmp, 'shapes');
const VAL = join(tmp, 'shapes_val');
const BASE = join(tmp, 'base');
const CLASSES = ['a_top_left', 'b_top_right', 'c_bottom_left'];
const quick: Partial<TrainConfig> = { epochs: 1, batchSize: 4, lr: 0.05, workers: 0, precision: 'fp32' };

before(async () => {
  await pngFolder(FOLDER, CLASSES, 6, 1);
  await pngFolder(VAL, CLASSES, 2, 100);
  // The "pretrained" run: resnet20 on 2 grey classes held in memory.
  await new Trainer({ ...quick, arch: 'resnet20', out: BASE }, { train: arrayDataset(['x', 'y'], 8, 0), test: arrayDataset(['x', 'y'], 2, 50) }).run();
});

describe('fine-tuning from a run directory', () => {
  test('--freeze layer2 --bn frozen: frozen parameters and every running statistic unchanged bit for bit, the rest changed; classifier re-created; report in config.json', async () => {
    const out = join(tmp, 'ft_frozen');
    const messages: string[] = [];
    // Stopped after its third step, then resumed: --resume continues from the checkpoint and
    // never reloads the weights over it.
    const ac = new AbortController();
    const first = await new Trainer({ ...quick, epochs: 2, dataset: 'folder', data: FOLDER, valData: VAL, weights: BASE, freeze: 'layer2', bn: 'frozen', lrBackbone: 0.005, schedule: 'constant', out },
      { signal: ac.signal, onProgress: (e: ProgressEvent) => { if (e.type === 'message') messages.push(e.text); if (e.type === 'step' && e.step === 3) ac.abort(); } }).run();
    assert.equal(first.interrupted, true);
    const resumed: string[] = [];
    await new Trainer({ ...quick, out }, { resume: true, onProgress: (e) => { if (e.type === 'message') resumed.push(e.text); } }).run();
    assert.ok(!resumed.some((m) => m.startsWith('weights from')), resumed.join('\n'));
    const before = loadCheckpoint(join(BASE, 'best.safetensors'));
    const after = loadCheckpoint(join(out, 'last.safetensors'));
    assert.equal(after.meta.arch, 'resnet20', 'the arch comes from the weights');
    assert.equal(after.meta.epoch, 2);
    assert.deepEqual(after.meta.input.classes, CLASSES);
    assert.equal(after.meta.input.channels, 1, "the weights' grey input: the PNGs are converted");
    assert.deepEqual([after.meta.input.height, after.meta.input.width], [16, 16], "the weights' input size");
    assert.deepEqual(after.meta.norm, before.meta.norm, "the weights' normalisation");
    assert.deepEqual(after.meta.lrs, [0.05, 0.005], 'classifier group at --lr, backbone group at --lr-backbone');
    const frozenPrefix = /^(conv1|bn1|layer1|layer2)\./;
    let checked = 0;
    for (const [k, v] of after.model) {
      if (k.startsWith('linear.')) continue;
      const old = before.model.get(k)!;
      const isBn = /bn\d?\.|downsample\.1\./.test(k) || k.startsWith('bn1.');
      if (frozenPrefix.test(k) || isBn) {
        assert.ok(same(v, old), `${k} must be unchanged`);
        checked++;
      } else if (k.endsWith('.weight')) {
        assert.ok(!same(v, old), `${k} must have trained`);
      }
    }
    assert.ok(checked > 40, `${checked} frozen tensors checked`);
    assert.deepEqual(after.model.get('linear.weight')!.shape, [64, 3].reverse(), 'a 3-class classifier');
    const cfg = config(out);
    assert.equal(cfg.folderPreset, 'whole', 'weights trained on whole small images: the folder images are fitted whole, not RandomResizedCrop-ed');
    const init = cfg.initialWeights as Record<string, unknown>;
    assert.equal(init.source, BASE);
    assert.equal(init.sha256, sha256(join(BASE, 'best.safetensors')));
    assert.deepEqual(init.reinitialised, ['linear.weight', 'linear.bias']);
    assert.equal((init.loaded as string[]).length, before.model.size - 2);
    assert.deepEqual(init.unexpected, []);
    assert.ok(messages.some((m) => /weights from .*base \(sha256 [0-9a-f]{12}\): \d+ tensors loaded, re-initialised linear\.weight, linear\.bias/.test(m)), messages.join('\n'));

  });

  test('--freeze stem with --bn train: the stem BN keeps its statistics, later BN update theirs', async () => {
    const out = join(tmp, 'ft_stem');
    await new Trainer({ ...quick, dataset: 'folder', data: FOLDER, weights: join(BASE, 'best.safetensors'), freeze: 'stem', out }).run();
    const before = loadCheckpoint(join(BASE, 'best.safetensors')).model;
    const after = loadCheckpoint(join(out, 'last.safetensors')).model;
    for (const k of ['conv1.weight', 'bn1.weight', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']) assert.ok(same(after.get(k)!, before.get(k)!), k);
    for (const k of ['layer1.0.bn1.running_mean', 'layer1.0.bn1.weight', 'layer1.0.conv1.weight']) assert.ok(!same(after.get(k)!, before.get(k)!), k);
  });
});

test('--lr-backbone: two parameter groups step as torch.optim.SGD with two groups (fixture)', () => {
  const fx = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/finetune/sgd_groups.json'), 'utf8')) as {
    lr: number; lr_backbone: number; momentum: number; weight_decay: number; factors: number[]; shapes: Record<string, number[]>;
    initial: Record<string, number[]>; grads: Record<string, number[]>[]; final: Record<string, number[]>; final_lrs: number[];
  };
  const p = Object.fromEntries(Object.entries(fx.shapes).map(([k, s]) => [k, tensor(fx.initial[k], s, { requiresGrad: true })]));
  const opt = new SGD([{ params: [p['head.weight'], p['head.bias']] }, { params: [p['backbone.weight']], lr: fx.lr_backbone }],
    { lr: fx.lr, momentum: fx.momentum, weightDecay: fx.weight_decay });
  const base = opt.groups.map((g) => g.lr);
  fx.factors.forEach((f, i) => {
    opt.setLr(base.map((b) => b * f));
    for (const [k, t] of Object.entries(p)) t.grad = tensor(fx.grads[i][k], fx.shapes[k]);
    opt.step();
    opt.zeroGrad();
  });
  assert.deepEqual(opt.groups.map((g) => g.lr), fx.final_lrs);
  for (const [k, t] of Object.entries(p)) {
    const got = t.toFloat32Array();
    const err = Math.max(...fx.final[k].map((v, i) => Math.abs(v - got[i])));
    assert.ok(err < 1e-6, `${k}: max error ${err}`);
  }
  // The Trainer's groups: the classifier first (base lr), then the backbone (lrBackbone).
  const model = createModel('resnet20', { numClasses: 3, inChannels: 1 });
  const groups = fineTuneGroups(model, 0.001, false);
  assert.equal(groups.length, 2);
  const named = new Map(model.namedParameters());
  assert.deepEqual(groups[0].params, [named.get('linear.weight'), named.get('linear.bias')]);
  assert.equal(groups[0].lr, undefined, 'the classifier takes the base lr');
  assert.equal(groups[1].lr, 0.001);
  assert.equal(groups[1].params.length, model.parameters().length - 2);
  model.dispose();
});

test('applyFreeze: frozen parameters get no gradient, their BN stays in eval mode through model.train()', () => {
  const model = createModel('resnet20', { numClasses: 3, inChannels: 1, seed: 1 });
  const setMode = applyFreeze(model, { freeze: 'layer2' });
  model.train();
  setMode();
  const named = new Map(model.namedModules());
  assert.equal(named.get('layer2.2.bn2')!.training, false);
  assert.equal(named.get('layer3.0.bn1')!.training, true);
  tidy(() => crossEntropy(model.forward(tensor(new Float32Array(2 * 16 * 16).map((_, i) => Math.sin(i)), [2, 1, 16, 16])), tensor([0, 2], [2], { dtype: 'int32' })).backward());
  for (const [k, p] of model.namedParameters()) {
    if (/^(conv1|bn1|layer1|layer2)\./.test(k)) assert.equal(p.grad, null, `${k} is frozen: no gradient`);
    else assert.ok(p.grad !== null, `${k} trains`);
  }
  model.dispose();
});

describe('pretrained weights from a local HTTP server', () => {
  let server: Server;
  let base = '';
  const cacheDir = join(tmp, 'cache');
  before(async () => {
    // Weights named as torch.hub names them: <arch>-<sha256 prefix>.<ext>, served locally.
    const src = join(tmp, 'w.safetensors');
    const model = createModel('resnet20', { numClasses: 10, inChannels: 3, seed: 3 });
    saveWeights(src, model.stateDict());
    model.dispose();
    const body = readFileSync(src);
    const name = `resnet20-${sha256(src).slice(0, 8)}.safetensors`;
    server = createServer((req, res) => {
      if (req.url === `/${name}`) { res.writeHead(200, { 'content-length': body.length }); res.end(body); } else { res.writeHead(404); res.end(); }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    registerPretrained({ arch: 'resnet20', tag: 'TEST', file: name, resize: 18, crop: 16, numClasses: 10 });
  });
  after(() => { unregisterPretrained('resnet20', 'TEST'); server.close(); });

  test('--pretrained: downloaded, sha256-checked, ImageNet normalisation and the preset crop, RGB input', async () => {
    const out = join(tmp, 'ft_pretrained');
    await new Trainer({ ...quick, arch: 'resnet20', dataset: 'folder', data: FOLDER, pretrained: true, pretrainedTag: 'TEST', freezeBackbone: true, out },
      { fetch: { cacheDir, baseUrl: base } }).run();
    const ck = loadCheckpoint(join(out, 'last.safetensors'));
    assert.equal(ck.meta.input.channels, 3);
    assert.deepEqual([ck.meta.input.height, ck.meta.input.width], [16, 16]);
    assert.deepEqual(ck.meta.norm.mean, [0.485, 0.456, 0.406]);
    const init = config(out).initialWeights as Record<string, unknown>;
    assert.equal(init.source, 'pretrained resnet20 TEST');
    assert.equal(config(out).folderPreset, 'imagenet');
    assert.match(init.sha256 as string, /^[0-9a-f]{64}$/);
    assert.deepEqual(init.reinitialised, ['linear.weight', 'linear.bias']);
  });

  test('grey images expanded to RGB for RGB weights; --in-channels 1 the other way (conv1 must then fit)', async () => {
    const out = join(tmp, 'ft_grey');
    await new Trainer({ ...quick, arch: 'resnet20', pretrained: true, pretrainedTag: 'TEST', out },
      { train: arrayDataset(['x', 'y', 'z'], 4, 7), test: arrayDataset(['x', 'y', 'z'], 2, 70), fetch: { cacheDir, baseUrl: base } }).run();
    const ck = loadCheckpoint(join(out, 'last.safetensors'));
    assert.equal(ck.meta.input.channels, 3);
    assert.deepEqual([ck.meta.input.height, ck.meta.input.width], [16, 16], 'an array dataset keeps its size');
    await assert.rejects(new Trainer({ ...quick, arch: 'resnet20', pretrained: true, pretrainedTag: 'TEST', inChannels: 1, out, dataset: 'folder', data: FOLDER },
      { force: true, fetch: { cacheDir, baseUrl: base } }).run(), /'conv1\.weight' is \[16, 3, 3, 3\] in the weights and \[16, 1, 3, 3\] in resnet20.*--in-channels/);
  });
});

describe('bad input: one-line errors that name what is valid', () => {
  const run = async (c: Partial<TrainConfig>): Promise<unknown> => new Trainer({ ...quick, dataset: 'folder', data: FOLDER, out: join(tmp, 'bad'), ...c }, { force: true }).run();
  const oneLine = (re: RegExp) => (e: unknown): boolean => { assert.ok(!(e as Error).message.includes('\n')); assert.match((e as Error).message, re); return true; };

  test('unknown --freeze; a stage the net lacks; freezing everything', async () => {
    await assert.rejects(run({ weights: BASE, freeze: 'layer9' }), oneLine(/unknown --freeze 'layer9'; valid: stem, layer1, layer2, layer3, layer4, fc, linear/));
    await assert.rejects(run({ weights: BASE, freeze: 'layer4' }), oneLine(/unknown --freeze 'layer4' for resnet20; valid: stem, layer1, layer2, layer3 \(linear: everything\)/));
    await assert.rejects(run({ weights: BASE, freeze: 'linear' }), oneLine(/nothing left to train with --freeze linear; freeze less \(valid --freeze: stem, layer1, layer2, layer3\)/));
    assert.throws(() => new Trainer({ ...quick, out: join(tmp, 'bad'), bn: 'sometimes' as never }), oneLine(/unknown --bn 'sometimes'; valid: train, frozen/));
    await assert.rejects(run({ pretrained: true }), oneLine(/--pretrained needs --arch/));
    await assert.rejects(run({ pretrained: true, weights: BASE }), oneLine(/give one of --weights FILE and --pretrained, not both/));
  });

  test('weights for another arch', async () => {
    await assert.rejects(run({ arch: 'resnet32', weights: BASE }), oneLine(/holds resnet20 weights, but --arch says resnet32; valid: --arch resnet20, or leave --arch out/));
    const plain = join(tmp, 'plain.safetensors');
    saveWeights(plain, loadCheckpoint(join(BASE, 'best.safetensors')).model);
    await assert.rejects(run({ arch: 'resnet32', weights: plain }), oneLine(/plain\.safetensors: does not hold resnet32 weights \(\d+ of its tensors missing, e\.g\. layer1\.3\..*; give the --arch they were made for \(valid: .*resnet20.*\)/));
  });

  test('a shape mismatch outside the classifier names the key and both shapes', async () => {
    const sd = new Map(loadCheckpoint(join(BASE, 'best.safetensors')).model);
    sd.set('layer2.0.conv1.weight', { data: new Float32Array(32 * 16 * 9 * 2), shape: [32, 32, 3, 3] } as NamedArray);
    const bad = join(tmp, 'misshaped.safetensors');
    saveWeights(bad, sd, { arch: 'resnet20' });
    await assert.rejects(run({ weights: bad }), oneLine(/'layer2\.0\.conv1\.weight' is \[32, 32, 3, 3\] in the weights and \[32, 16, 3, 3\] in resnet20; only the classifier \(linear\) may differ/));
  });
});

describe('the CLI', () => {
  function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, RESNET_NUM_THREADS: '1' } },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
    });
  }

  test('resnet train --weights RUN_DIR --dataset folder ... then predict --weights on the run gives the new class names', async () => {
    const out = join(tmp, 'cli_run');
    const r = await cli(['train', '--weights', BASE, '--dataset', 'folder', '--data', FOLDER, '--val-data', VAL, '--epochs', '1', '--batch-size', '4',
      '--lr', '0.05', '--freeze', 'layer1', '--workers', '0', '--precision', 'fp32', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resnet: weights from .* tensors loaded, re-initialised linear\.weight, linear\.bias/);
    const init = config(out).initialWeights as Record<string, unknown>;
    assert.equal(init.sha256, sha256(join(BASE, 'best.safetensors')));
    const p = await cli(['predict', '--weights', out, '--json', join(VAL, CLASSES[1], '0.png')]);
    assert.equal(p.code, 0, p.stderr);
    const labels = CLASSES.map((c) => p.stdout.includes(c));
    assert.ok(labels.some(Boolean), `predict names the new classes: ${p.stdout}`);
    const ev = await cli(['eval', '--checkpoint', out, '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    assert.equal((JSON.parse(ev.stdout) as { n: number }).n, 6, 'evaluated on the --val-data folder');
    const bad = await cli(['train', '--weights', BASE, '--dataset', 'folder', '--data', FOLDER, '--freeze', 'neck', '--out', join(tmp, 'cli_bad')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^resnet: train: unknown --freeze 'neck'; valid: stem, layer1/);
  });
});
