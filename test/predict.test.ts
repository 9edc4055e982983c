// `resnet predict` / `resnet features` against PyTorch (fixtures by
// scripts/make_predict_fixtures.py): preprocessing equal to torchvision's on non-square
// JPEGs and PNGs, logits and pooled features of small random-weight resnet18/resnet50-shaped
// nets, the .npy format, broken images, load errors, resnet-ts checkpoints, and --pretrained
// against a download server on 127.0.0.1 (good file, corrupt file, 404, corrupt cache).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { CheckpointError, InvalidArgumentError } from '../src/errors.js';
import {
  fetchPretrained, hashPrefix, listImages, loadModel, predictFiles, preprocessImage, pretrainedEntry, registerPretrained, unregisterPretrained,
  type Prediction,
} from '../src/infer/index.js';
import { npyHeader, readNpy, serializeNpy } from '../src/io/npy.js';
import { parseSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { createModel } from '../src/models/index.js';
import { tensor } from '../src/tensor/tensor.js';
import { CHECKPOINT_FORMAT, saveCheckpoint, type CheckpointMeta } from '../src/train/checkpoint.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'dist/cli/main.js');
const FIX = join(ROOT, 'test/fixtures/predict');
const IMAGES = join(FIX, 'images');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-predict-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface NetFixture {
  arch: string; width: number; classes: number; file: string;
  square: { logits: number[]; top5: number[]; pool: number[] };
  preprocessed: Record<string, number[]>;
}
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as {
  versions: Record<string, string>; square: string; images: string[]; nets: Record<string, NetFixture>;
  grey: { size: number; mean: number[]; std: number[]; images: string[] };
};
const NETS = Object.entries(expected.nets);
const SQUARE = join(IMAGES, expected.square);
const PREPROCESSED = parseSafetensors(gunzipSync(readFileSync(join(FIX, 'preprocessed.safetensors.gz'))), 'preprocessed.safetensors.gz').tensors;

/** Runs the compiled CLI without blocking this process (the download server lives here). */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, RESNET_NUM_THREADS: '1', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function top5(v: readonly number[]): number[] {
  return v.map((x, i) => [x, i]).sort((p, q) => q[0] - p[0]).slice(0, 5).map((p) => p[1]);
}

function netArgs(net: NetFixture): string[] {
  return ['--arch', net.arch, '--width', String(net.width), '--weights', join(FIX, net.file)];
}

test('preprocessing equals torchvision Resize(256)+CenterCrop(224)+ToTensor+Normalize on non-square JPEGs and PNGs (max diff <= 1e-6)', async () => {
  for (const name of expected.images) {
    const want = PREPROCESSED.get(name);
    assert.ok(want, `fixture lacks ${name}`);
    const got = await preprocessImage(join(IMAGES, name));
    assert.deepEqual([got.channels, got.height, got.width], want.shape, name);
    const d = maxDiff(got.data, want.data as Float32Array);
    assert.ok(d <= 1e-6, `${name}: max diff ${d}`);
  }
});

test("one-channel preprocessing equals PIL's convert('L') + Resize(28) + CenterCrop(28) + ToTensor + Normalize (max diff <= 1e-6)", async () => {
  const { size, mean, std, images } = expected.grey;
  for (const name of images) {
    const want = PREPROCESSED.get(`L${size}:${name}`)!;
    const got = await preprocessImage(join(IMAGES, name), { resize: size, crop: size, mean, std, channels: 1 });
    assert.deepEqual([got.channels, got.height, got.width], want.shape, name);
    const d = maxDiff(got.data, want.data as Float32Array);
    assert.ok(d <= 1e-6, `${name}: max diff ${d}`);
  }
});

test('preprocessing options: resize 0 and crop 0 keep the image; a crop larger than the image pads; bad sizes are refused', async () => {
  const full = await preprocessImage(join(IMAGES, 'a_300x200.jpg'), { resize: 0, crop: 0 });
  assert.deepEqual([full.channels, full.height, full.width], [3, 200, 300]);
  const resized = await preprocessImage(join(IMAGES, 'c_1024x683.jpg'), { crop: 0 });
  assert.deepEqual([resized.height, resized.width], [256, 383]); // long side truncated, not rounded (383.8)
  const grey = await preprocessImage(join(IMAGES, 'f_150x100.jpg'), { resize: 28, crop: 28, channels: 1, mean: [0.5], std: [0.5] });
  assert.deepEqual([grey.channels, grey.height, grey.width], [1, 28, 28]);
  await assert.rejects(preprocessImage(SQUARE, { resize: -1 }), InvalidArgumentError);
  await assert.rejects(preprocessImage(join(FIX, 'expected.json')), /expected.json: cannot decode image/);
});

for (const [name, net] of NETS) {
  test(`predict ${name} (${net.arch}, width ${net.width}) --resize 0 --crop 0 --logits --json: PyTorch's logits within 1e-3, same top-5`, async () => {
    const r = await cli(['predict', ...netArgs(net), '--resize', '0', '--crop', '0', '--logits', '--json', SQUARE]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /loaded \d+ tensors .* everything fits/);
    const out = JSON.parse(r.stdout) as Prediction[];
    assert.equal(out.length, 1);
    assert.equal(out[0].file, SQUARE);
    const logits = out[0].logits!;
    const d = maxDiff(logits, net.square.logits);
    assert.ok(d <= 1e-3, `max logit diff ${d}`);
    assert.deepEqual(out[0].top.map((t) => t.index), net.square.top5);
    assert.deepEqual(top5(logits), net.square.top5);
    // Softmax of the logits, ImageNet labels.
    const z = net.square.logits;
    const m = Math.max(...z);
    const s = z.reduce((a, v) => a + Math.exp(v - m), 0);
    for (const t of out[0].top) {
      assert.ok(Math.abs(t.prob - Math.exp(z[t.index] - m) / s) < 1e-5, `prob of ${t.index}`);
      assert.equal(typeof t.label, 'string');
    }
    assert.ok(out[0].top.every((t, i) => i === 0 || t.prob <= out[0].top[i - 1].prob));
  });

  test(`features ${name} --layer pool to .npy: PyTorch's pooled features within 1e-3; loadable header; file list beside it`, async () => {
    const outFile = join(tmp, `${name}.npy`);
    const r = await cli(['features', ...netArgs(net), '--resize', '0', '--crop', '0', '--layer', 'pool', '--out', outFile, SQUARE, SQUARE]);
    assert.equal(r.code, 0, r.stderr);
    const { data, shape } = readNpy(outFile);
    const C = net.square.pool.length;
    assert.deepEqual(shape, [2, C]);
    assert.ok(maxDiff(data.subarray(0, C), net.square.pool) <= 1e-3);
    assert.ok(maxDiff(data.subarray(C), net.square.pool) <= 1e-3);
    assert.match(readFileSync(`${outFile}.files.txt`, 'utf8'), new RegExp(`^${SQUARE}\n${SQUARE}\n# resnet-ts: rows of ${name}\\.npy, sha256 [0-9a-f]{64}, 2 rows\n$`));
    const raw = readFileSync(outFile);
    assert.equal(raw.subarray(0, 8).toString('latin1'), '\x93NUMPY\x01\x00');
    const hlen = raw.readUInt16LE(8);
    assert.equal((10 + hlen) % 64, 0, 'data must start at a multiple of 64');
    assert.equal(raw.subarray(10, 10 + hlen).toString('latin1').trimEnd(), `{'descr': '<f4', 'fortran_order': False, 'shape': (2, ${C}), }`);
  });
}

test('the same weights saved by torch.save (.pth, zip) give PyTorch\'s logits within 1e-3; --key-map renames prefixes', async () => {
  const net = expected.nets.resnet50_w16;
  const pth = join(FIX, 'resnet50_w16.pth');
  const r = await cli(['predict', '--arch', net.arch, '--width', String(net.width), '--weights', pth, '--resize', '0', '--crop', '0', '--logits', '--json', SQUARE]);
  assert.equal(r.code, 0, r.stderr);
  const [p] = JSON.parse(r.stdout) as Prediction[];
  assert.ok(maxDiff(p.logits!, net.square.logits) <= 1e-3);
  assert.deepEqual(p.top.map((t) => t.index), net.square.top5);
  // Keys under another prefix come back with --key-map (here: a copy whose keys all start with 'backbone.').
  const { tensors } = parseSafetensors(readFileSync(join(FIX, net.file)));
  const prefixed = join(tmp, 'prefixed.safetensors');
  writeSafetensors(prefixed, [...tensors].map(([k, v]) => [`backbone.${k}`, v] as [string, typeof v]));
  const m = await cli(['predict', '--arch', net.arch, '--width', String(net.width), '--weights', prefixed, '--key-map', 'backbone.=', '--resize', '0', '--crop', '0', '--logits', '--json', SQUARE]);
  assert.equal(m.code, 0, m.stderr);
  assert.ok(maxDiff((JSON.parse(m.stdout) as Prediction[])[0].logits!, net.square.logits) <= 1e-3);
  assert.match(m.stderr, /renamed \d+ key\(s\) with --key-map backbone\.=/);
});

test('predict with the default Resize(256)+CenterCrop(224) on non-square images, 3 per batch: logits within 1e-3 of PyTorch, in file order', async () => {
  const [, net] = NETS[0];
  const r = await cli(['predict', ...netArgs(net), '--batch', '3', '--top', '2', '--logits', '--json', IMAGES]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Prediction[];
  const files = [...expected.images, expected.square].sort();
  assert.deepEqual(out.map((o) => o.file), files.map((f) => join(IMAGES, f)));
  for (const o of out) {
    assert.equal(o.top.length, 2);
    const name = o.file.slice(IMAGES.length + 1);
    if (name === expected.square) continue; // 224x224: Resize(256) upscales; covered above without resize
    const d = maxDiff(o.logits!, net.preprocessed[name]);
    assert.ok(d <= 1e-3, `${name}: max logit diff ${d}`);
    assert.deepEqual(o.top.map((t) => t.index), top5(net.preprocessed[name]).slice(0, 2));
  }
});

test('features --layer stage4 to .jsonl: one {"file","shape","data"} per image; an unknown layer lists the valid ones', async () => {
  const [, net] = NETS[0];
  const outFile = join(tmp, 'stage4.jsonl');
  const r = await cli(['features', ...netArgs(net), '--layer', 'stage4', '--out', outFile, join(IMAGES, 'a_300x200.jpg'), SQUARE]);
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(outFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; shape: number[]; data: number[] });
  assert.deepEqual(lines.map((l) => l.file), [join(IMAGES, 'a_300x200.jpg'), SQUARE]);
  const C = 512 * net.width;
  for (const l of lines) {
    assert.deepEqual(l.shape, [C, 7, 7]);
    assert.equal(l.data.length, C * 49);
  }
  // Without a crop, images of different sizes cannot share one .npy array (.jsonl is fine).
  const mixed = await cli(['features', ...netArgs(net), '--resize', '0', '--crop', '0', '--out', join(tmp, 'mixed.npy'), join(IMAGES, 'a_300x200.jpg'), join(IMAGES, 'f_150x100.jpg'), '--layer', 'stage1']);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /f_150x100\.jpg gives features of shape \[8, 25, 38\], .*a_300x200\.jpg \[8, 50, 75\]; one \.npy array needs equal shapes: crop to one size \(--crop\) or write \.jsonl/);
  assert.ok(!existsSync(join(tmp, 'mixed.npy')));
  const bad = await cli(['features', ...netArgs(net), '--layer', 'stage5', '--out', join(tmp, 'x.npy'), SQUARE]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no layer 'stage5'; valid: pool, stem, stage1, stage2, stage3, stage4/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!existsSync(join(tmp, 'x.npy')));
});

test('the .npy header follows NPY 1.0 for 0-d, 1-d and 2-d shapes and pads to 64 bytes', () => {
  for (const [shape, text] of [[[], '()'], [[3], '(3,)'], [[2, 512], '(2, 512)']] as [number[], string][]) {
    const h = npyHeader(shape);
    assert.equal(h.length % 64, 0);
    assert.equal(Buffer.from(h).subarray(10).toString('latin1'), `{'descr': '<f4', 'fortran_order': False, 'shape': ${text}, }`.padEnd(h.length - 11) + '\n');
  }
  const parts = serializeNpy(Float32Array.of(1.5, -2), [2]);
  assert.deepEqual(Array.from(new Float32Array(parts[1].buffer)), [1.5, -2]);
  assert.throws(() => serializeNpy(new Float32Array(5), [2, 3]), /5 values do not fill shape \[2, 3\]/);
});

test('a directory with one broken image predicts the others, reports the broken one and exits 1', async () => {
  const dir = join(tmp, 'mixed');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(IMAGES, 'a_300x200.jpg'), join(dir, 'a.jpg'));
  writeFileSync(join(dir, 'b.jpg'), Buffer.from('this is not a jpeg'));
  copyFileSync(join(IMAGES, 'e_341x256.png'), join(dir, 'c.png'));
  writeFileSync(join(dir, 'notes.txt'), 'not an image: skipped by the walk');
  const [, net] = NETS[0];
  const r = await cli(['predict', ...netArgs(net), '--json', dir]);
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as ({ file: string; top?: unknown[]; error?: string })[];
  assert.deepEqual(out.map((o) => o.file), ['a.jpg', 'b.jpg', 'c.png'].map((f) => join(dir, f)));
  assert.equal(out[0].top?.length, 5);
  assert.match(String(out[1].error), /b\.jpg: cannot decode image/);
  assert.equal(out[2].top?.length, 5);
  assert.match(r.stderr, /b\.jpg: cannot decode image/);
  assert.match(r.stderr, /1 of 3 image\(s\) could not be read/);
  assert.deepEqual(await listImages([dir]), ['a.jpg', 'b.jpg', 'c.png'].map((f) => join(dir, f)));
});

test('load errors name the keys, the file or the flags, without a stack trace', async () => {
  const [, net] = NETS[0];
  const w = join(FIX, net.file);
  const truncated = join(tmp, 'truncated.pth');
  writeFileSync(truncated, readFileSync(join(FIX, 'resnet50_w16.pth')).subarray(0, 5000));
  const empty = join(tmp, 'empty.safetensors');
  writeFileSync(empty, '');
  const cases: [string[], RegExp][] = [
    [['predict', '--arch', 'resnet18', '--weights', w, SQUARE], /resnet18_w8\.safetensors: does not fit resnet18 .*unexpected key\(s\): layer1\.0\.downsample\.0\.weight.*mis-shaped key\(s\): layer1\.0\.conv1\.weight \(model \[64, 64, 3, 3\], state dict \[8, 64, 3, 3\]\)/],
    [['predict', ...netArgs(net), '--key-map', 'fc.=head.', SQUARE], /missing key\(s\): fc\.weight, fc\.bias.*unexpected key\(s\): head\.weight, head\.bias/],
    [['predict', '--arch', 'resnet18', SQUARE], /exactly one of --weights FILE and --pretrained/],
    [['predict', '--arch', 'resnet18', '--weights', w, '--pretrained', SQUARE], /exactly one of --weights FILE and --pretrained/],
    [['predict', '--arch', 'resnet20', '--pretrained', SQUARE], /no pretrained weights for arch 'resnet20'; archs with weights: resnet18, resnet34, resnet50, .*wide_resnet50_2/],
    [['predict', '--arch', 'resnet18', '--weights', join(tmp, 'nope.safetensors'), SQUARE], /nope\.safetensors: no such weights file/],
    [['predict', ...netArgs(net), '--top', 'x', SQUARE], /--top must be an integer >= 1, got 'x'/],
    [['predict', ...netArgs(net), join(tmp, 'missing.jpg')], /missing\.jpg: no such image file or directory/],
    [['features', ...netArgs(net), '--out', join(tmp, 'f.csv'), SQUARE], /--out '.*f\.csv' must end in \.npy or \.jsonl/],
    [['predict', ...netArgs(net), '--classes', '10', SQUARE], /mis-shaped key\(s\): fc\.weight \(model \[10, 64\], state dict \[1000, 64\]\), fc\.bias/],
    [['predict', '--arch', 'resnet50', '--width', '0.0625', '--weights', truncated, SQUARE], /truncated\.pth: /],
    [['predict', '--arch', 'resnet50', '--width', '0.0625', '--weights', empty, SQUARE], /empty\.safetensors: not a valid safetensors file/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('a resnet train checkpoint brings its arch, labels, normalisation and input size (1-channel 28x28)', async () => {
  const model = createModel('resnet20', { inChannels: 1, numClasses: 3, seed: 5 });
  const mean = [0.3];
  const std = [0.2];
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT, arch: 'resnet20', modelOptions: { inChannels: 1, numClasses: 3, seed: 5 }, epoch: 2, step: 30,
    loader: { seed: 0, epoch: 3, batch: 0 }, rng: { seed: 0 }, partial: { lossSum: 0, wrong: 0, seen: 0, seconds: 0 }, best: null, plateau: null,
    norm: { mean, std }, input: { channels: 1, height: 28, width: 28, classes: ['ankle boot', 'bag', 'coat'] }, lrs: [0.1],
    config: { dataset: 'fashion-mnist' }, savedAt: new Date(0).toISOString(),
  };
  const ck = join(tmp, 'run', 'best.safetensors');
  mkdirSync(join(tmp, 'run'), { recursive: true });
  saveCheckpoint(ck, model, null, meta);
  const x = await preprocessImage(join(IMAGES, 'b_517x389.jpg'), { resize: 28, crop: 28, channels: 1, mean, std });
  const want = Array.from(model.eval().forward(tensor(x.data, [1, 1, 28, 28])).toArray());
  model.dispose();
  for (const w of [ck, join(tmp, 'run')]) {
    const r = await cli(['predict', '--weights', w, '--logits', '--json', '--top', '3', join(IMAGES, 'b_517x389.jpg')]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Prediction[];
    assert.ok(maxDiff(out[0].logits!, want) <= 1e-5);
    assert.deepEqual(out[0].top.map((t) => t.label).sort(), ['ankle boot', 'bag', 'coat']);
    assert.match(r.stderr, /resnet-ts checkpoint after epoch 2 \(resnet20, 3 classes\)/);  // meta.epoch counts finished epochs
  }
  const r = await cli(['predict', '--arch', 'resnet18', '--weights', ck, SQUARE]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a resnet20 checkpoint, but --arch says resnet18/);
});

describe('--pretrained downloads from RESNET_WEIGHTS_URL into the cache, verified by sha256', () => {
  const [, net] = NETS[0];
  const good = readFileSync(join(FIX, net.file));
  const digest = createHash('sha256').update(good).digest('hex');
  const goodName = `tiny_resnet18-${digest.slice(0, 10)}.safetensors`;
  const corrupt = Buffer.from(good);
  corrupt[corrupt.length - 3] ^= 0x40; // one flipped bit in fc.bias
  const corruptName = `tiny_corrupt-${digest.slice(0, 8)}.safetensors`;
  const served: Record<string, Buffer> = { [goodName]: good, [corruptName]: corrupt, 'resnet18-f37072fd.pth': Buffer.from('not the weights') };
  const requests: string[] = [];
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer((req, res) => {
      const name = (req.url ?? '').replace(/^\/models\//, '');
      requests.push(name);
      const body = served[name];
      if (!body) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('no such file'); return; }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models`;
    registerPretrained({ arch: 'resnet18', tag: 'TEST', file: goodName, resize: 256, crop: 224, numClasses: 1000, modelOptions: { width: net.width } });
  });
  after(async () => {
    for (const tag of ['TEST', 'CORRUPT', 'GONE']) unregisterPretrained('resnet18', tag);
    assert.equal(pretrainedEntry('resnet18').file, 'resnet18-f37072fd.pth');
    await new Promise<void>((r) => server.close(() => r()));
  });
  const cacheFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

  test('a good file is downloaded once, renamed into the cache, reused, and predicts as --weights does', async () => {
    const cacheDir = join(tmp, 'cache-good');
    assert.equal(hashPrefix(goodName), digest.slice(0, 10));
    const path = await fetchPretrained(pretrainedEntry('resnet18', 'test'), { cacheDir, baseUrl: base });
    assert.equal(path, join(cacheDir, goodName));
    assert.deepEqual(cacheFiles(cacheDir), [goodName]);
    assert.ok(readFileSync(path).equals(good));
    const before = requests.length;
    const loaded = await loadModel({ arch: 'resnet18', pretrained: 'TEST', fetch: { cacheDir, baseUrl: base } });
    assert.equal(requests.length, before, 'the cached file is reused');
    assert.equal(loaded.resize, 256);
    const [p] = await predictFiles(loaded.model, [SQUARE], { preprocess: { resize: 0, crop: 0 }, labels: loaded.labels, logits: true }) as Prediction[];
    loaded.model.dispose();
    assert.ok(maxDiff(p.logits!, net.square.logits) <= 1e-3);
    // A cached file gone bad is verified, found wrong and downloaded again.
    writeFileSync(path, corrupt);
    const messages: string[] = [];
    await fetchPretrained(pretrainedEntry('resnet18', 'TEST'), { cacheDir, baseUrl: base, onMessage: (t) => messages.push(t) });
    assert.match(messages.join('\n'), /cached file is corrupt .*downloading it again/);
    assert.ok(readFileSync(path).equals(good));
    assert.equal(requests.length, before + 1);
  });

  test('a corrupt download is a clear error and leaves nothing in the cache', async () => {
    const cacheDir = join(tmp, 'cache-corrupt');
    registerPretrained({ arch: 'resnet18', tag: 'CORRUPT', file: corruptName, resize: 256, crop: 224, numClasses: 1000 });
    await assert.rejects(fetchPretrained(pretrainedEntry('resnet18', 'CORRUPT'), { cacheDir, baseUrl: base }),
      (e: Error) => e instanceof CheckpointError && new RegExp(`${corruptName}: corrupt download: its sha256 is [0-9a-f]{64}, which does not start with ${digest.slice(0, 8)}`).test(e.message));
    assert.deepEqual(cacheFiles(cacheDir), []);
  });

  test('a 404 is a clear error and leaves nothing in the cache', async () => {
    const cacheDir = join(tmp, 'cache-404');
    registerPretrained({ arch: 'resnet18', tag: 'GONE', file: 'gone-0123abcd.safetensors', resize: 256, crop: 224, numClasses: 1000 });
    await assert.rejects(fetchPretrained(pretrainedEntry('resnet18', 'GONE'), { cacheDir, baseUrl: base }), /gone-0123abcd\.safetensors: cannot download resnet18 weights: HTTP 404/);
    assert.deepEqual(cacheFiles(cacheDir), []);
    assert.throws(() => pretrainedEntry('resnet18', 'V9'), /resnet18 has no weights 'V9'; valid: DEFAULT, IMAGENET1K_V1, TEST/);
  });

  test('the CLI: torchvision file names and hashes, RESNET_WEIGHTS_URL and RESNET_CACHE_DIR; bad hash and 404 leave the cache empty', async () => {
    const cacheDir = join(tmp, 'cache-cli');
    const env = { RESNET_WEIGHTS_URL: base, RESNET_CACHE_DIR: cacheDir };
    const bad = await cli(['predict', '--arch', 'resnet18', '--pretrained', SQUARE], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /\/models\/resnet18-f37072fd\.pth: corrupt download: its sha256 is [0-9a-f]{64}, which does not start with f37072fd/);
    const gone = await cli(['predict', '--arch', 'resnet50', '--pretrained', '--pretrained-tag', 'IMAGENET1K_V1', SQUARE], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /\/models\/resnet50-0676ba61\.pth: cannot download resnet50 weights: HTTP 404/);
    assert.ok(requests.includes('resnet18-f37072fd.pth') && requests.includes('resnet50-0676ba61.pth'));
    assert.deepEqual(cacheFiles(cacheDir), []);
    for (const r of [bad, gone]) assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
