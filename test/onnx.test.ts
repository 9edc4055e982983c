// ONNX export: the exported bytes run in onnxruntime-node at batch 1 and 3 (dynamic batch)
// and give our eval-mode logits (max abs difference <= 1e-4 of the logit scale) for a
// resnet18, resnet20 with option A, a grouped-conv bottleneck net, pre-activation nets, a
// plain net and every shortcut option; the decoded model says IR 8 and opset 17; bad
// options are refused by name; `resnet export` writes the same from a safetensors state dict
// and from a `resnet train` checkpoint, and names what is wrong without a stack trace.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { InvalidArgumentError, ShapeError } from '../src/errors.js';
import { decodeOnnx, exportOnnx } from '../src/io/onnx.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { saveWeights } from '../src/io/weights.js';
import { cifarResNet, createModel, ResNet } from '../src/models/index.js';
import { BatchNorm2d } from '../src/nn/batch_norm.js';
import { noGrad } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/scope.js';
import { tensor } from '../src/tensor/tensor.js';
import { saveCheckpoint, CHECKPOINT_FORMAT, type CheckpointMeta } from '../src/train/checkpoint.js';
import { Rng } from './helpers/random.js';

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'resnet-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Decoded = {
  ir_version: number; opset_import: { domain?: string; version: number }[]; producer_name: string;
  graph: {
    node: { op_type: string; name: string; input: string[]; output: string[]; attribute?: { name: string; i?: number; ints?: number[] }[] }[];
    initializer: { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }[];
    input: { name: string; type: { tensor_type: { elem_type: number; shape: { dim: { dim_param?: string; dim_value?: number }[] } } } }[];
    output: { name: string; type: { tensor_type: { elem_type: number; shape: { dim: { dim_param?: string; dim_value?: number }[] } } } }[];
  };
};

/** Non-trivial BN: gamma around 1, beta, running mean and variance all away from the defaults. */
function perturbBatchNorms(model: ResNet, seed: number): void {
  const rng = new Rng(seed);
  const sd = model.stateDict();
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    const fill = (key: string, lo: number, hi: number) => {
      const e = sd[`${name}.${key}`];
      for (let i = 0; i < e.data.length; i++) e.data[i] = rng.uniform(lo, hi);
    };
    fill('weight', 0.5, 1.5);
    fill('bias', -0.2, 0.2);
    fill('running_mean', -0.3, 0.3);
    fill('running_var', 0.5, 2);
  }
  model.loadStateDict(sd);
}

function ours(model: ResNet, x: Float32Array, shape: number[]): Float32Array {
  return tidy(() => noGrad(() => model.forward(tensor(x, shape)).toArray() as Float32Array));
}

function randomInput(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-2, 2));
}

/** Exports, runs in onnxruntime at batch 1 and 3, compares with our eval forward. */
async function checkAgainstOrt(model: ResNet, chw: [number, number, number], seed = 1): Promise<{ bytes: Uint8Array; decoded: Decoded; maxDiff: number }> {
  model.eval();
  const bytes = exportOnnx(model, { inputShape: chw });
  const session = await ort.InferenceSession.create(bytes);
  assert.deepEqual(session.inputNames, ['input']);
  assert.deepEqual(session.outputNames, ['logits']);
  let maxDiff = 0;
  for (const n of [1, 3]) {
    const shape = [n, ...chw];
    const x = randomInput(shape.reduce((a, b) => a * b), seed + n);
    const res = await session.run({ input: new ort.Tensor('float32', x, shape) });
    const got = res.logits.data as Float32Array;
    assert.deepEqual(res.logits.dims, [n, model.numClasses]);
    const want = ours(model, x, shape);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < want.length; i++) {
      scale = Math.max(scale, Math.abs(want[i]));
      diff = Math.max(diff, Math.abs(got[i] - want[i]));
    }
    assert.ok(scale > 1e-3, `${model.name}: logits vanish (scale ${scale}); the comparison would be vacuous`);
    assert.ok(diff <= 1e-4 * Math.max(1, scale), `${model.name} batch ${n}: max |onnxruntime - ours| = ${diff} (logit scale ${scale})`);
    maxDiff = Math.max(maxDiff, diff);
  }
  await session.release();
  return { bytes, decoded: decodeOnnx(bytes) as unknown as Decoded, maxDiff };
}

const ops = (d: Decoded) => d.graph.node.map((n) => n.op_type);
const count = (d: Decoded, op: string) => ops(d).filter((o) => o === op).length;

describe('exportOnnx runs in onnxruntime-node with our logits', () => {
  test('resnet18 at 64x64 with non-trivial BN statistics; IR 8, opset 17, dynamic batch, state-dict initializer names', async () => {
    const model = createModel('resnet18', { numClasses: 17, seed: 3 });
    perturbBatchNorms(model, 4);
    const { decoded: d } = await checkAgainstOrt(model, [3, 64, 64]);
    assert.equal(d.ir_version, 8);
    assert.deepEqual(d.opset_import.map((o) => [o.domain ?? '', o.version]), [['', 17]]);
    assert.equal(d.producer_name, 'resnet-ts');
    const inDims = d.graph.input[0].type.tensor_type.shape.dim;
    assert.equal(d.graph.input[0].name, 'input');
    assert.equal(d.graph.input[0].type.tensor_type.elem_type, 1);
    assert.deepEqual(inDims.map((x) => x.dim_param ?? x.dim_value), ['batch', 3, 64, 64]);
    assert.deepEqual(d.graph.output[0].type.tensor_type.shape.dim.map((x) => x.dim_param ?? x.dim_value), ['batch', 17]);
    // Every parameter and running statistic is an initializer under its state-dict key, raw little-endian float32.
    const sd = model.stateDict();
    const floatKeys = Object.keys(sd).filter((k) => !k.endsWith('num_batches_tracked'));
    assert.deepEqual(d.graph.initializer.map((t) => t.name).sort(), floatKeys.sort());
    const w = d.graph.initializer.find((t) => t.name === 'layer3.1.bn2.running_var')!;
    assert.deepEqual(w.dims, sd['layer3.1.bn2.running_var'].shape);
    assert.deepEqual([...new Float32Array(new Uint8Array(w.raw_data).buffer)], [...sd['layer3.1.bn2.running_var'].data]);
    assert.equal(count(d, 'Conv'), 20);
    assert.equal(count(d, 'BatchNormalization'), 20);
    assert.equal(count(d, 'Add'), 8);
    for (const op of ['MaxPool', 'GlobalAveragePool', 'Flatten', 'Gemm']) assert.equal(count(d, op), 1, op);
    model.dispose();
  });

  test('resnet20, option A: the shortcut is Slice (steps 2) + Pad of zero channels, no weights', async () => {
    const model = createModel('resnet20', { seed: 5 });
    perturbBatchNorms(model, 6);
    const { decoded: d } = await checkAgainstOrt(model, [3, 32, 32]);
    assert.equal(count(d, 'Slice'), 2);
    assert.equal(count(d, 'Pad'), 2);
    assert.equal(count(d, 'Conv'), 19); // the paper's 6n+1 convs: no projection
    const slice = d.graph.node.find((n) => n.op_type === 'Slice')!;
    const steps = d.graph.initializer.find((t) => t.name === slice.input[4])!;
    assert.deepEqual([...new BigInt64Array(new Uint8Array(steps.raw_data).buffer)], [2n, 2n]);
    const pad = d.graph.node.find((n) => n.op_type === 'Pad')!;
    const pads = d.graph.initializer.find((t) => t.name === pad.input[1])!;
    assert.deepEqual([...new BigInt64Array(new Uint8Array(pads.raw_data).buffer)], [0n, 8n, 0n, 0n, 0n, 8n, 0n, 0n]); // 16 -> 32: 8 before, 8 after
    model.dispose();
  });

  test('grouped convolutions (a small ResNeXt: bottleneck, 4 groups of 4)', async () => {
    const model = new ResNet({ name: 'resnext_small', family: 'cifar', block: 'bottleneck', layers: [1, 1, 1], groups: 4, widthPerGroup: 4, shortcut: 'B', numClasses: 6, seed: 7 });
    perturbBatchNorms(model, 8);
    const { decoded: d } = await checkAgainstOrt(model, [3, 16, 16]);
    const grouped = d.graph.node.filter((n) => n.op_type === 'Conv' && n.attribute!.find((a) => a.name === 'group')!.i === 4);
    assert.equal(grouped.length, 3);
    model.dispose();
  });

  test('pre-activation nets: preact_resnet20 (option A on the pre-activated input) and a bottleneck one with projections', async () => {
    for (const model of [createModel('preact_resnet20', { seed: 9 }), cifarResNet(11, { block: 'bottleneck', preact: true, seed: 10 })]) {
      perturbBatchNorms(model, 11);
      const { decoded: d } = await checkAgainstOrt(model, [3, 32, 32]);
      assert.equal(count(d, 'Relu'), count(d, 'BatchNormalization'), 'every BN of a pre-activation net is followed by a ReLU');
      model.dispose();
    }
  });

  test('plain net (plain20): no Add anywhere; option B/C on a basic CIFAR net; option A that only pads (bottleneck, stride 1)', async () => {
    const plain = createModel('plain20', { seed: 12 });
    perturbBatchNorms(plain, 13);
    const { decoded: d } = await checkAgainstOrt(plain, [3, 32, 32]);
    assert.equal(count(d, 'Add'), 0);
    plain.dispose();
    for (const shortcut of ['B', 'C'] as const) {
      const m = createModel('resnet20', { shortcut, seed: 14 });
      perturbBatchNorms(m, 15);
      const { decoded } = await checkAgainstOrt(m, [3, 24, 24]);
      assert.equal(count(decoded, 'Conv'), 19 + (shortcut === 'B' ? 2 : 9));
      m.dispose();
    }
    const a = cifarResNet(11, { block: 'bottleneck', shortcut: 'A', seed: 16 });
    perturbBatchNorms(a, 17);
    const { decoded } = await checkAgainstOrt(a, [3, 32, 32]);
    assert.equal(count(decoded, 'Pad'), 3);
    assert.equal(count(decoded, 'Slice'), 2);
    a.dispose();
  });

  test('other input channels and a non-square input', async () => {
    const model = createModel('resnet18', { inChannels: 1, numClasses: 4, seed: 18 });
    perturbBatchNorms(model, 19);
    await checkAgainstOrt(model, [1, 48, 40]);
    model.dispose();
  });
});

describe('exportOnnx refuses what it cannot export, naming it', () => {
  const model = createModel('resnet20', { init: 'none' });
  test('wrong channels, a zero or malformed shape, an unsupported opset', () => {
    assert.throws(() => exportOnnx(model, { inputShape: [1, 32, 32] }), (e: Error) => e instanceof ShapeError && /1 channel\(s\), resnet20 takes 3/.test(e.message));
    assert.throws(() => exportOnnx(model, { inputShape: [3, 0, 32] }), (e: Error) => e instanceof InvalidArgumentError && /3 integers >= 1/.test(e.message));
    assert.throws(() => exportOnnx(model, { inputShape: [3, 32] as unknown as [number, number, number] }), (e: Error) => e instanceof InvalidArgumentError && /\[C, H, W\]/.test(e.message));
    assert.throws(() => exportOnnx(model, { inputShape: [3, 32, 32], opset: 13 as 17 }), (e: Error) => e instanceof InvalidArgumentError && /opset 13 .*valid: 17/.test(e.message));
  });
  test('decodeOnnx names the file when the bytes are not a model', () => {
    assert.throws(() => decodeOnnx(Uint8Array.of(0x0a, 0xff, 0xff, 0xff), 'bad.onnx'), /bad\.onnx: not a valid ONNX model/);
  });
});

describe('resnet export (the compiled CLI)', () => {
  const run = (args: string[]) => execFileSync(process.execPath, [BIN, 'export', ...args], { encoding: 'utf8', stdio: 'pipe', env: { ...process.env, RESNET_NUM_THREADS: '1' } });
  const fails = (args: string[], re: RegExp) => assert.throws(() => run(args), (e: { status?: number; stderr?: string }) => {
    assert.equal(e.status, 1);
    assert.match(String(e.stderr), re);
    assert.doesNotMatch(String(e.stderr), /\n\s+at /, 'no stack trace');
    return true;
  });

  test('from a safetensors state dict: classes read off linear.weight, same logits in onnxruntime', async () => {
    const model = createModel('resnet20', { numClasses: 5, seed: 20 });
    perturbBatchNorms(model, 21);
    const weights = join(dir, 'r20.safetensors');
    writeSafetensors(weights, Object.entries(model.stateDict()).map(([k, v]) => [k, v]));
    const out = join(dir, 'r20.onnx');
    const info = JSON.parse(run(['--arch', 'resnet20', '--weights', weights, '--input', '24x28', '--format', 'onnx', '--json', out])) as Record<string, unknown>;
    assert.deepEqual(info.input, ['batch', 3, 24, 28]);
    assert.equal(info.classes, 5);
    assert.equal(info.opset, 17);
    const bytes = readFileSync(out);
    assert.equal(info.bytes, bytes.length);
    const session = await ort.InferenceSession.create(bytes);
    const shape = [2, 3, 24, 28];
    const x = randomInput(2 * 3 * 24 * 28, 22);
    const got = (await session.run({ input: new ort.Tensor('float32', x, shape) })).logits.data as Float32Array;
    const want = ours(model.eval(), x, shape);
    const scale = Math.max(...want.map(Math.abs));
    const diff = Math.max(...want.map((v, i) => Math.abs(v - got[i])));
    assert.ok(diff <= 1e-4 * Math.max(1, scale), `max diff ${diff}`);
    await session.release();
    model.dispose();
  });

  test('from a .pth with prefixed keys and --key-map: the same ONNX bytes as from the safetensors file', () => {
    const weights = join(dir, 'r20.safetensors');
    const sd = readSafetensors(weights).tensors;
    const pth = join(dir, 'r20.pth');
    saveWeights(pth, [...sd].map(([k, v]) => [`backbone.${k}`, v]));
    const a = join(dir, 'from_st.onnx');
    const b = join(dir, 'from_pth.onnx');
    run(['--arch', 'resnet20', '--weights', weights, a]);
    run(['--arch', 'resnet20', '--weights', pth, '--key-map', 'backbone.=', b]);
    assert.ok(readFileSync(a).equals(readFileSync(b)));
    fails(['--arch', 'resnet20', '--weights', pth, b], /does not fit resnet20: .*unexpected key\(s\): backbone\.conv1\.weight/);
  });

  test('from a resnet train checkpoint or its run directory: arch, classes and input size come from its metadata', () => {
    const model = createModel('resnet20', { inChannels: 1, numClasses: 3, seed: 23 });
    const meta: CheckpointMeta = {
      format: CHECKPOINT_FORMAT, arch: 'resnet20', modelOptions: { inChannels: 1, numClasses: 3, seed: 23 }, epoch: 1, step: 10,
      loader: { seed: 0, epoch: 1, batch: 0 }, rng: { seed: 0 }, partial: { lossSum: 0, wrong: 0, seen: 0, seconds: 0 }, best: null, plateau: null,
      norm: { mean: [0.5], std: [0.25] }, input: { channels: 1, height: 28, width: 28, classes: ['a', 'b', 'c'] }, lrs: [0.1], config: {}, savedAt: new Date(0).toISOString(),
    };
    const ck = join(dir, 'last.safetensors');
    saveCheckpoint(ck, model, null, meta);
    model.dispose();
    const out = join(dir, 'ck.onnx');
    const info = JSON.parse(run(['--weights', ck, '--json', out])) as Record<string, unknown>;
    assert.equal(info.arch, 'resnet20');
    assert.deepEqual(info.input, ['batch', 1, 28, 28]);
    assert.equal(info.classes, 3);
    const d = decodeOnnx(readFileSync(out)) as unknown as Decoded;
    assert.equal(d.ir_version, 8);
    fails(['--arch', 'resnet32', '--weights', ck, out], /--arch resnet32, but .*last\.safetensors is a checkpoint of resnet20/);
    // A run directory means its best checkpoint (here missing: the note says so and last is used).
    const viaDir = JSON.parse(run(['--weights', dir, '--json', join(dir, 'dir.onnx')])) as { notes: string[] };
    assert.ok(readFileSync(join(dir, 'dir.onnx')).equals(readFileSync(out)));
    assert.match(viaDir.notes[0], /best\.safetensors: missing; using .*last\.safetensors instead/);
  });

  test('--random-init --seed is deterministic', () => {
    const a = join(dir, 'a.onnx');
    const b = join(dir, 'b.onnx');
    run(['--arch', 'plain20', '--random-init', '--seed', '4', a]);
    run(['--arch', 'plain20', '--random-init', '--seed', '4', b]);
    assert.ok(readFileSync(a).equals(readFileSync(b)));
  });

  test('bad arch, format, weights and paths: one line naming what is wrong and what is valid, exit 1', () => {
    const weights = join(dir, 'r20.safetensors');
    const out = join(dir, 'x.onnx');
    fails(['--arch', 'resnet21', '--weights', weights, out], /unknown arch 'resnet21' \(did you mean 'resnet20'\?\); valid: resnet18, .*plain1202/);
    fails(['--arch', 'resnet20', '--weights', weights, '--format', 'tflite', out], /unknown --format 'tflite'; valid: onnx/);
    fails(['--arch', 'resnet32', '--weights', weights, out], /r20\.safetensors: does not fit resnet32: .*missing key\(s\): layer1\.3\.conv1\.weight/);
    fails(['--arch', 'resnet18', '--weights', weights, out], /does not fit resnet18/);
    fails(['--arch', 'resnet20', '--weights', join(dir, 'none.safetensors'), out], /none\.safetensors: no such weights file/);
    const junk = join(dir, 'junk.safetensors');
    writeFileSync(junk, 'not a weights file');
    fails(['--arch', 'resnet20', '--weights', junk, out], /junk\.safetensors: not a valid safetensors file/);
    fails(['--arch', 'resnet20', out], /no weights: give --weights FILE .* or --random-init/);
    fails(['--arch', 'resnet20', '--weights', weights, '--random-init', out], /either --weights FILE or --random-init, not both/);
    fails(['--arch', 'resnet20', '--random-init', join(dir, 'no', 'x.onnx')], /no directory/);
    fails(['--arch', 'resnet18', '--random-init', '--input', '0x4', out], /--input must be an integer >= 1, got '0'/);
  });
});
