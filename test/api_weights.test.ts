// The public API as a library user meets it (issue 19): Trainer and friends importable from
// the package root, saveWeights(path, model.stateDict()), weights files that say what they
// hold (safetensors __metadata__) and loaders that use it, a grey 28x28 net loaded with only
// `arch` given (channels from conv1.weight, grey normalisation, its own input size) whose
// features work, a DataLoader over float32 images, softmax/argmax on tensors.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import * as api from '../src/index.js';
import {
  argmax, createModel, DataLoader, extractFeatures, loadModel, predictFiles, readSafetensors, saveWeights, softmax, tensor, Trainer,
  loadWeights, InvalidArgumentError, CheckpointError, type ArrayDataset, type ProgressEvent,
} from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'resnet-api-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function greyPng(file: string, size = 28, value = 128): Promise<string> {
  await sharp(Buffer.alloc(size * size, value), { raw: { width: size, height: size, channels: 1 } }).png().toFile(file);
  return file;
}

function floatDataset(n: number, seed: number): ArrayDataset<Float32Array> {
  const C = 1, H = 28, W = 28;
  const images = new Float32Array(n * C * H * W);
  const labels = new Int32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    // class 0: dark images, class 1: bright ones, with a little noise
    for (let p = 0; p < C * H * W; p++) {
      s = (s * 1103515245 + 12345) >>> 0;
      images[i * C * H * W + p] = (labels[i] ? 0.8 : 0.2) + ((s >>> 16) / 65536 - 0.5) * 0.1;
    }
  }
  return { images, labels, n, channels: C, height: H, width: W, classes: ['dark', 'bright'] };
}

describe('package root exports', () => {
  test('the training layer is reachable from the root', () => {
    for (const name of ['Trainer', 'evaluate', 'saveCheckpoint', 'loadCheckpoint', 'evaluateCheckpoint', 'DEFAULT_CONFIG', 'softmax', 'argmax', 'saveWeights', 'loadModel', 'DataLoader']) {
      assert.ok(name in api, `${name} is exported`);
    }
  });
});

describe('saveWeights and the metadata loaders read', () => {
  test('saveWeights(path, model.stateDict()) writes a file loadModel reads without --arch', async () => {
    const model = createModel('resnet20', { inChannels: 1, numClasses: 4, seed: 1 });
    const file = join(tmp, 'grey.safetensors');
    saveWeights(file, model.stateDict(), { arch: 'resnet20', labels: ['a', 'b', 'c', 'd'], inChannels: 1, inputSize: [28, 28], mean: [0.3], std: [0.35] });
    const { metadata } = readSafetensors(file);
    assert.equal(metadata.arch, 'resnet20');
    assert.equal(metadata.in_channels, '1');
    assert.equal(metadata.num_classes, '4');
    assert.equal(metadata.input_size, '28x28');
    const loaded = await loadModel({ weights: file });
    assert.equal(loaded.arch, 'resnet20');
    assert.deepEqual(loaded.labels, ['a', 'b', 'c', 'd']);
    assert.equal(loaded.channels, 1);
    assert.deepEqual(loaded.mean, [0.3]);
    assert.deepEqual(loaded.std, [0.35]);
    assert.deepEqual(loaded.crop, [28, 28]);
    assert.deepEqual(loaded.preprocess, { channels: 1, resize: 28, crop: [28, 28], mean: [0.3], std: [0.35] });
    const x = tensor(new Float32Array(2 * 28 * 28).fill(0.1), [2, 1, 28, 28]);
    const a = api.noGrad(() => model.eval().forward(x).toFloat32Array());
    const b = api.noGrad(() => loaded.model.forward(x).toFloat32Array());
    assert.deepEqual(b, a);
    loaded.model.dispose();
    model.dispose();
    // A Map (what loadWeights returns) and a list of pairs work too; .pth carries no metadata.
    const { tensors, info } = loadWeights(file);
    assert.equal(info.arch, 'resnet20');
    saveWeights(join(tmp, 'again.pth'), tensors);
    saveWeights(join(tmp, 'pairs.safetensors'), [...tensors]);
    assert.deepEqual(loadWeights(join(tmp, 'again.pth')).info, {});
    // Tensors as values, from JavaScript too (no TypeError from inside the library).
    saveWeights(join(tmp, 'tensors.safetensors'), { w: tensor([1, 2, 3, 4], [2, 2]), n: tensor([7], [1], { dtype: 'int32' }) });
    const back = loadWeights(join(tmp, 'tensors.safetensors')).tensors;
    assert.deepEqual([...back.get('w')!.data], [1, 2, 3, 4]);
    assert.deepEqual(back.get('n')!.shape, [1]);
  });

  test('a 1-channel file with only arch: channels from conv1.weight, grey defaults, features work', async () => {
    const model = createModel('resnet20', { inChannels: 1, numClasses: 10, seed: 2 });
    const file = join(tmp, 'bare.pth');  // .pth: no metadata, as a file from elsewhere
    saveWeights(file, model.stateDict());
    model.dispose();
    await assert.rejects(loadModel({ weights: file }), (e: Error) => e instanceof InvalidArgumentError && /names no arch; give --arch/.test(e.message));
    const loaded = await loadModel({ arch: 'resnet20', weights: file });
    assert.equal(loaded.model.inChannels, 1);
    assert.equal(loaded.model.numClasses, 10);
    assert.equal(loaded.channels, 1);
    assert.equal(loaded.mean.length, 1);
    assert.equal(loaded.std.length, 1);
    assert.equal(loaded.crop, 28);
    assert.match(loaded.preprocessNote, /28x28/);
    assert.ok(loaded.notes.some((n) => /1 input channel\(s\) \(conv1.weight\)/.test(n)), loaded.notes.join('; '));
    const png = await greyPng(join(tmp, 'grey.png'), 40);
    const rows = await extractFeatures(loaded, [png]);
    assert.ok('data' in rows[0], JSON.stringify(rows[0]));
    if ('data' in rows[0]) assert.deepEqual(rows[0].shape, [64]);
    const preds = await predictFiles(loaded, [png], { topK: 2 });
    assert.ok('top' in preds[0] && preds[0].top.length === 2 && preds[0].top[0].label.startsWith('class '));
    loaded.model.dispose();
    await assert.rejects(loadModel({ arch: 'resnet32', weights: join(tmp, 'grey.safetensors') }),
      (e: Error) => e instanceof InvalidArgumentError && /holds resnet20 weights, but --arch says resnet32/.test(e.message));
  });

  test('bad metadata is a CheckpointError naming the key; a non-state-dict a clear error', () => {
    const file = join(tmp, 'badmeta.safetensors');
    api.writeSafetensors(file, [['fc.weight', { data: new Float32Array(4), shape: [2, 2] }]], { in_channels: 'three' });
    assert.throws(() => loadWeights(file), (e: Error) => e instanceof CheckpointError && /metadata 'in_channels' must be an integer/.test(e.message));
    assert.throws(() => saveWeights(join(tmp, 'x.safetensors'), 42 as never), (e: Error) => e instanceof InvalidArgumentError && /state dict/.test(e.message));
  });
});

describe('the CLI reads the metadata too', () => {
  const bin = new URL('../dist/cli/main.js', import.meta.url).pathname;
  test('resnet export --weights FILE needs no --arch when the file names it; resnet convert keeps it', { skip: !existsSync(bin) && 'needs `npm run build`' }, () => {
    const model = createModel('resnet20', { inChannels: 1, numClasses: 3, seed: 4 });
    const file = join(tmp, 'named.safetensors');
    saveWeights(file, model.stateDict(), { arch: 'resnet20', inputSize: [28, 28] });
    model.dispose();
    const out = join(tmp, 'named.onnx');
    const text = execFileSync(process.execPath, [bin, 'export', out, '--weights', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.ok(statSync(out).size > 10_000, text);
    const onnx = api.decodeOnnx(readFileSync(out)) as { graph: { input: { type: { tensor_type: { shape: { dim: { dim_value?: number }[] } } } }[] } };
    const dims = onnx.graph.input[0].type.tensor_type.shape.dim.slice(1).map((d) => d.dim_value);
    assert.deepEqual(dims, [1, 28, 28]);  // channels and input size from the metadata
    const converted = join(tmp, 'converted.safetensors');
    execFileSync(process.execPath, [bin, 'convert', file, converted], { stdio: 'ignore' });
    assert.deepEqual(loadWeights(converted).info, loadWeights(file).info);
  });
});

describe('DataLoader over float32 images, Trainer on arrays', () => {
  test('float32 images pass through as ToTensor units; the size message names the count', async () => {
    const ds = floatDataset(6, 1);
    const loader = new DataLoader(ds, { batchSize: 4, shuffle: false, workers: 0 });
    const batches = [];
    for await (const b of loader.epoch(0)) batches.push(b);
    await loader.close();
    assert.deepEqual(batches.map((b) => b.shape), [[4, 1, 28, 28], [2, 1, 28, 28]]);
    assert.deepEqual(batches[0].x.subarray(0, 784), ds.images.subarray(0, 784));
    const worker = new DataLoader(ds, { batchSize: 6, shuffle: false, workers: 1, transforms: [api.normalize([0.5], [0.25])] });
    for await (const b of worker.epoch(0)) assert.ok(Math.abs(b.x[0] - (ds.images[0] - 0.5) / 0.25) < 1e-5);
    await worker.close();
    assert.throws(() => new DataLoader({ ...ds, images: new Float32Array(5) }, { batchSize: 2 }),
      (e: Error) => /'images' must hold n\*C\*H\*W = 6\*1\*28\*28 = 4704 values, got a Float32Array of 5/.test(e.message));
    assert.throws(() => new DataLoader({ ...ds, images: [1, 2] as never }, { batchSize: 2 }),
      (e: Error) => /'images' must be a Uint8Array \(0\.\.255\) or a Float32Array/.test(e.message));
  });

  test('Trainer trains on in-memory arrays with a progress callback; its checkpoint loads by itself', async () => {
    const events: ProgressEvent['type'][] = [];
    const out = join(tmp, 'run');
    const r = await new Trainer({ arch: 'resnet20', epochs: 1, batchSize: 16, lr: 0.05, out, workers: 0 },
      { train: floatDataset(48, 3), test: floatDataset(16, 4), onProgress: (e) => events.push(e.type) }).run();
    assert.equal(r.epochs, 1);
    assert.ok(events.filter((t) => t === 'step').length === 3 && events.includes('epoch'));
    const loaded = await loadModel({ weights: join(out, 'best.safetensors') });
    assert.deepEqual(loaded.labels, ['dark', 'bright']);
    assert.equal(loaded.channels, 1);
    assert.match(loaded.notes[0], /after epoch 1/);
    loaded.model.dispose();
    // The checkpoint's flat metadata says the same to any weights loader.
    assert.equal(loadWeights(join(out, 'best.safetensors')).info.arch, 'resnet20');
    assert.throws(() => new Trainer({ out }, { train: floatDataset(4, 1) }), /give both 'train' and 'test'/);
    await assert.rejects(api.evaluateCheckpoint(out), /trained on in-memory data .*give 'test'/);
    const again = await api.evaluateCheckpoint(out, { test: floatDataset(16, 4), workers: 0 });
    assert.equal(again.n, 16);
    assert.ok(Math.abs(again.top1 - r.top1) < 1e-9, `${again.top1} vs ${r.top1}`);
  });
});

describe('softmax and argmax on tensors', () => {
  test('rows of a [N, K] tensor', () => {
    const x = tensor([1, 2, 3, 3, 0, -1], [2, 3]);
    const p = softmax(x);
    assert.deepEqual(p.shape, [2, 3]);
    const v = p.toFloat32Array();
    const ref = softmax([1, 2, 3]);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(v[k] - ref[k]) < 1e-6);
    assert.ok(Math.abs(v[3] + v[4] + v[5] - 1) < 1e-6);
    const a = argmax(x);
    assert.equal(a.dtype, 'int32');
    assert.deepEqual([...a.toArray()], [2, 0]);
    assert.deepEqual([...argmax(tensor([5, 5, 1], [3])).toArray()], [0]);
    assert.throws(() => argmax(tensor(new Float32Array(8), [2, 2, 2])), /must be \[K\] or \[N, K\]/);
  });
});
