// PyTorch checkpoints in and out: torch-made .pth files (zip and legacy, wrapped,
// every dtype, strided views) read bit-exact against the values PyTorch wrote beside them;
// TorchScript, payloads, CRC damage, truncation and out-of-bounds views refused cleanly;
// our .pth re-read bit-exact; loadWeights' unwrapping and name maps; `resnet convert`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CheckpointError, InvalidArgumentError, ResnetError } from '../src/errors.js';
import { createModel } from '../src/models/index.js';
import { parsePth, readPth, writePth } from '../src/io/pth.js';
import { readSafetensors, type NamedArray } from '../src/io/safetensors.js';
import { loadWeights, parseKeyMap, saveWeights } from '../src/io/weights.js';
import { buildStoredZip, readZipEntries } from '../src/io/zip.js';

const FIX = new URL('./fixtures/pth/', import.meta.url).pathname;
const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'resnet-pth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Same keys in the same order, same shapes, same bits (float32 compared as uint32). */
function assertSameTensors(got: Map<string, NamedArray>, want: Map<string, NamedArray>, what: string): void {
  assert.deepEqual([...got.keys()], [...want.keys()], `${what}: keys`);
  for (const [k, w] of want) {
    const g = got.get(k)!;
    assert.deepEqual(g.shape, w.shape, `${what}: ${k} shape`);
    if (w.data instanceof Float32Array) {
      assert.ok(g.data instanceof Float32Array, `${what}: ${k} is float32`);
      assert.deepEqual(new Uint32Array(g.data.buffer, g.data.byteOffset, g.data.length), new Uint32Array(w.data.buffer, w.data.byteOffset, w.data.length), `${what}: ${k} bits`);
    } else {
      assert.deepEqual(Array.from(g.data as ArrayLike<number | bigint>, BigInt), Array.from(w.data as ArrayLike<number | bigint>, BigInt), `${what}: ${k} values`);
    }
  }
}

const small = readSafetensors(`${FIX}small.expected.safetensors`).tensors;

test('a state dict saved by torch.save, zip and legacy, reads bit-exact (num_batches_tracked as int64)', () => {
  for (const f of ['small.pth', 'small_legacy.pth']) {
    const c = readPth(FIX + f);
    assert.equal(c.format, f.includes('legacy') ? 'legacy' : 'zip');
    assertSameTensors(c.tensors, small, f);
    assert.ok(c.tensors.get('bn1.num_batches_tracked')!.data instanceof BigInt64Array);
    assert.equal((c.tensors.get('bn1.num_batches_tracked')!.data as BigInt64Array)[0], 123456789012n);
  }
});

test('pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL) and a module state_dict with _metadata (BUILD) read bit-exact', () => {
  assertSameTensors(readPth(`${FIX}small_p4.pth`).tensors, small, 'small_p4.pth');
  const want = readSafetensors(`${FIX}module_state_dict.expected.safetensors`).tensors;
  const { tensors, notes } = loadWeights(`${FIX}module_state_dict.pth`);
  assertSameTensors(tensors, want, 'module_state_dict.pth');
  assert.deepEqual(notes, []);
});

test('every dtype and strided view (transposed, offset, step 2, shared storage, scalar, empty) reads as PyTorch converts it', () => {
  const want = readSafetensors(`${FIX}dtypes.expected.safetensors`).tensors;
  for (const f of ['dtypes.pth', 'dtypes_legacy.pth']) {
    const c = readPth(FIX + f);
    assertSameTensors(c.tensors, want, f);
    assert.ok(c.tensors.get('i32')!.data instanceof Int32Array);
    assert.ok(c.tensors.get('i64')!.data instanceof BigInt64Array);
    assert.deepEqual(c.tensors.get('transposed')!.shape, [5, 3]);
    assert.deepEqual(c.tensors.get('scalar')!.shape, []);
  }
});

test('a wrapped DataParallel checkpoint (state_dict + best_prec1, module. keys) loads and says what it did, both formats', () => {
  for (const f of ['wrapped.pth', 'wrapped_legacy.pth']) {
    const { tensors, notes, format } = loadWeights(FIX + f);
    assert.equal(format, f.includes('legacy') ? 'pth-legacy' : 'pth-zip');
    assertSameTensors(tensors, small, f);
    assert.equal(notes.length, 2, notes.join('\n'));
    assert.match(notes[0], /unwrapped 'state_dict' from the checkpoint dict \(also there, ignored: epoch, arch, best_prec1\)/);
    assert.match(notes[1], /stripped the 'module\.' prefix \(a DataParallel checkpoint\) from all 20 keys/);
  }
  const plain = loadWeights(`${FIX}small.pth`);
  assert.deepEqual(plain.notes, []);
});

test('TorchScript archives, whole pickled modules and payload pickles are refused, naming why', () => {
  assert.throws(() => readPth(`${FIX}torchscript.pt`), /torchscript\.pt: a TorchScript archive \(torch\.jit\.save\).*refused.*save model\.state_dict\(\)/);
  assert.throws(() => readPth(`${FIX}whole_model.pth`), /whole_model\.pth: whole_model\/data\.pkl: refused global __main__\.Tiny/);
  assert.throws(() => loadWeights(`${FIX}os_system.pth`), /refused global os\.system/);
  assert.throws(() => loadWeights(`${FIX}os_system.pkl`), /unknown weights format '\.pkl'/);
});

test('a flipped byte in a tensor entry fails the CRC-32 check, naming the entry', () => {
  const buf = Buffer.from(readFileSync(`${FIX}small.pth`));
  const e = readZipEntries(buf, 'x').get('small/data/3')!;
  buf[e.dataStart + 2] ^= 0x10;
  assert.throws(() => parsePth(buf, 'flipped.pth'), /flipped\.pth: zip entry 'small\/data\/3' fails its CRC-32 check \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/);
});

test('truncation at every byte of a .pth (zip and legacy) gives a clean error', () => {
  for (const f of ['small.pth', 'small_legacy.pth']) {
    const buf = readFileSync(FIX + f);
    for (let n = 0; n < buf.length; n++) {
      assert.throws(() => parsePth(buf.subarray(0, n), `cut-${n}`), (e: unknown) => e instanceof ResnetError && (e as Error).message.startsWith(`cut-${n}`), `${f} cut at ${n}`);
    }
  }
});

test('a seeded mutation loop over a .pth: each input parses or fails with a ResnetError, never a crash', () => {
  const orig = readFileSync(`${FIX}dtypes_legacy.pth`);
  let seed = 99;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32; };
  for (let k = 0; k < 1500; k++) {
    const b = Uint8Array.from(orig);
    for (let f = 0; f < 2; f++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    try { parsePth(b, 'm'); } catch (e) { assert.ok(e instanceof ResnetError, `mutation ${k}: ${(e as Error).stack}`); }
  }
});

/** A zip .pth holding one float tensor of the given geometry over a storage of `numel`. */
function geometryPth(numel: number, size: number[], stride: number[], offset: number, bytes = numel * 4): Uint8Array {
  const X = (s: string) => { const b = Buffer.from(s); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return Buffer.concat([h, b]); };
  const J = (v: number) => { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(v, 1); return b; };
  const tup = (xs: number[]) => Buffer.concat([Buffer.from('('), ...xs.map(J), Buffer.from('t')]);
  const data = Buffer.concat([Buffer.from('\x80\x02ccollections\nOrderedDict\n)R(', 'latin1'), X('w'), Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n((', 'latin1'),
    X('storage'), Buffer.from('ctorch\nFloatStorage\n'), X('0'), X('cpu'), J(numel), Buffer.from('tQ'), J(offset), tup(size), tup(stride),
    Buffer.from('\x89ccollections\nOrderedDict\n)RtRu.', 'latin1')]);
  return Buffer.concat(buildStoredZip([{ name: 'g/data.pkl', data }, { name: 'g/data/0', data: new Uint8Array(bytes) }]));
}

test("a big-endian archive ('byteorder' = big) reads the same values", () => {
  const le = readFileSync(`${FIX}small.pth`);
  const entries = readZipEntries(le, 'small.pth');
  const files = [...entries.values()].map((e) => {
    const data = Uint8Array.from(le.subarray(e.dataStart, e.dataStart + e.size));
    const m = /data\/(\d+)$/.exec(e.name);
    if (m) {
      const w = data.length === 8 ? 8 : 4; // int64 counters, float32 tensors
      for (let i = 0; i < data.length; i += w) data.subarray(i, i + w).reverse();
    }
    return { name: e.name, data };
  });
  files.push({ name: 'small/byteorder', data: Buffer.from('big') });
  assertSameTensors(parsePth(Buffer.concat(buildStoredZip(files)), 'be.pth').tensors, small, 'be.pth');
});

test('a tensor whose stride or offset runs past its storage, or a storage of the wrong size, is refused', () => {
  assert.deepEqual(parsePth(geometryPth(6, [3, 2], [1, 3], 0), 'ok.pth').tensors.get('w')!.shape, [3, 2]);
  assert.throws(() => parsePth(geometryPth(6, [2, 3], [3, 1], 2), 'off.pth'), /off\.pth: g\/data\.pkl: unsafe or corrupt pickle: a tensor of size \[2,3\], stride \[3,1\], offset 2 reaches element 7 of storage '0', which holds 6/);
  assert.throws(() => parsePth(geometryPth(6, [2, 3], [5, 1], 0), 'stride.pth'), /reaches element 7/);
  assert.throws(() => parsePth(geometryPth(2 ** 31 - 1, [2 ** 30, 2 ** 30], [2 ** 30, 1], 0, 4), 'big.pth'), /elements \(limit/);
  assert.throws(() => parsePth(geometryPth(6, [6], [1], 0, 20), 'short.pth'), /short\.pth: entry 'g\/data\/0' holds 20 bytes; 6 float32 elements need 24/);
  assert.throws(() => parsePth(new Uint8Array(0), 'empty.pth'), /empty\.pth: not a PyTorch checkpoint.*the file is empty/);
});

test("our .pth re-reads bit-exact (NaN payloads, -0, subnormals, int64 extremes, scalars, empty, a '__proto__' key)", () => {
  const f = new Float32Array([NaN, -0, 1e-45, -Infinity, 3.4028234663852886e38, 0.1]);
  new Uint32Array(f.buffer)[0] = 0x7fa00001; // a signalling NaN with a payload
  const tensors = new Map<string, NamedArray>([
    ['f', { data: f, shape: [2, 3] }],
    ['i64', { data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]), shape: [3] }],
    ['scalar', { data: new Float32Array([7]), shape: [] }],
    ['empty', { data: new Float32Array(0), shape: [0, 4] }],
    ['__proto__', { data: new Float32Array([1, 2]), shape: [2] }],
    ['big', { data: new Float32Array(70_000).map((_, i) => i / 7), shape: [70_000] }],
  ]);
  const path = join(dir, 'ours.pth');
  writePth(path, tensors);
  const back = readPth(path);
  assertSameTensors(back.tensors, tensors, 'ours.pth');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // 64-byte aligned, STORED, with version and byteorder records, as PyTorch writes them.
  const buf = readFileSync(path);
  const entries = readZipEntries(buf, path);
  assert.deepEqual([...entries.keys()].slice(0, 3), ['archive/data.pkl', 'archive/byteorder', 'archive/data/0']);
  for (const e of entries.values()) { assert.equal(e.method, 0); assert.equal(e.dataStart % 64, 0, e.name); }
  assert.equal(Buffer.from(buf.subarray(entries.get('archive/version')!.dataStart, entries.get('archive/version')!.dataStart + 2)).toString(), '3\n');
  // Int32 tensors go out as int64.
  writePth(path, [['n', { data: new Int32Array([5, -1]), shape: [2] }]]);
  assert.deepEqual(readPth(path).tensors.get('n')!.data, new BigInt64Array([5n, -1n]));
  assert.throws(() => writePth(path, [['bad', { data: new Float32Array(3), shape: [2, 2] }]]), /tensor 'bad' has 3 values but its shape \[2,2\] needs 4/);
});

test('a model state dict goes out as .pth and .safetensors and loads back with an empty report', () => {
  const net = createModel('resnet20', { seed: 3 });
  const sd = new Map(Object.entries(net.stateDict()));
  for (const ext of ['.pth', '.safetensors']) {
    const path = join(dir, `resnet20${ext}`);
    saveWeights(path, sd);
    const { tensors, notes } = loadWeights(path);
    assert.deepEqual(notes, []);
    const fresh = createModel('resnet20', { init: 'none' });
    const report = fresh.loadStateDict(tensors);
    assert.deepEqual([report.missing, report.unexpected, report.mismatched], [[], [], []], ext);
    assertSameTensors(new Map(Object.entries(fresh.stateDict())), tensors, ext);
  }
  assert.throws(() => saveWeights(join(dir, 'x.onnx'), sd), InvalidArgumentError);
});

test('name maps: transformers and timm keys become torchvision names; --key-map renames prefixes; collisions are errors', () => {
  const t = (shape: number[]) => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape });
  const hf = new Map<string, NamedArray>([
    ['resnet.embedder.embedder.convolution.weight', t([4, 3, 7, 7])],
    ['resnet.embedder.embedder.normalization.running_var', t([4])],
    ['resnet.encoder.stages.0.layers.0.shortcut.convolution.weight', t([8, 4, 1, 1])],
    ['resnet.encoder.stages.0.layers.0.shortcut.normalization.bias', t([8])],
    ['resnet.encoder.stages.1.layers.2.layer.1.convolution.weight', t([8, 8, 3, 3])],
    ['resnet.encoder.stages.3.layers.0.layer.2.normalization.num_batches_tracked', { data: new BigInt64Array(1), shape: [] }],
    ['classifier.1.weight', t([10, 8])],
    ['classifier.1.bias', t([10])],
  ]);
  const p = join(dir, 'hf.safetensors');
  saveWeights(p, hf);
  const r = loadWeights(p);
  assert.deepEqual([...r.tensors.keys()], ['conv1.weight', 'bn1.running_var', 'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.bias',
    'layer2.2.conv2.weight', 'layer4.0.bn3.num_batches_tracked', 'fc.weight', 'fc.bias']);
  assert.deepEqual(r.notes, ['mapped 8 Hugging Face transformers key(s) to torchvision names (recognised from the keys)']);
  assert.deepEqual([...loadWeights(p, { mapping: 'torchvision' }).tensors.keys()], [...hf.keys()]);

  const timm = join(dir, 'timm.pth');
  writePth(timm, [['conv1.weight', t([2, 3, 1, 1])], ['head.fc.weight', t([5, 2])], ['head.fc.bias', t([5])]]);
  assert.deepEqual([...loadWeights(timm).tensors.keys()], ['conv1.weight', 'fc.weight', 'fc.bias']);

  const bb = join(dir, 'backbone.pth');
  writePth(bb, [['backbone.conv1.weight', t([2])], ['backbone.fc.weight', t([2])], ['head.proj', t([1])]]);
  const km = loadWeights(bb, { keyMap: parseKeyMap(['backbone.=', 'nothing.=x']) });
  assert.deepEqual([...km.tensors.keys()], ['conv1.weight', 'fc.weight', 'head.proj']);
  assert.deepEqual(km.notes, ['renamed 2 key(s) with --key-map backbone.=', '--key-map nothing.=x matched no key']);
  assert.throws(() => loadWeights(bb, { keyMap: [['backbone.conv1.', 'x.'], ['backbone.fc.', 'x.']] }), /gives two tensors the name 'x\.weight'/);
  assert.throws(() => parseKeyMap(['nokey']), /--key-map 'nokey': expected FROM=TO/);
  assert.throws(() => loadWeights(bb, { mapping: 'keras' as never }), /unknown mapping 'keras'; valid: auto, torchvision, timm, hf/);
});

test('checkpoints without a state dict, missing files and junk say so', () => {
  const p = join(dir, 'junk.pth');
  writeFileSync(p, 'hello world, not a checkpoint');
  assert.throws(() => loadWeights(p), /junk\.pth: not a PyTorch checkpoint.*first bytes: 68 65 6c/);
  assert.throws(() => loadWeights(join(dir, 'nope.pth')), (e: unknown) => e instanceof CheckpointError && /nope\.pth: cannot read \(ENOENT\)/.test((e as Error).message));
  const l = join(dir, 'list.pth');
  writeFileSync(l, Buffer.concat(buildStoredZip([{ name: 'l/data.pkl', data: Buffer.from(']K\x01a.', 'latin1') }])));
  assert.throws(() => loadWeights(l), /list\.pth: no state dict found: the file holds a list; expected a dict of tensors/);
});

test('resnet convert: legacy wrapped .pth -> .safetensors -> .pth, bit-exact, with a report and --json', { skip: !existsSync(BIN) && 'run npm run build first' }, () => {
  const st = join(dir, 'conv.safetensors');
  const out = execFileSync(process.execPath, [BIN, 'convert', `${FIX}wrapped_legacy.pth`, st], { encoding: 'utf8' });
  assert.match(out, /unwrapped 'state_dict'/);
  assert.match(out, /stripped the 'module\.' prefix/);
  assert.match(out, /wrote .*conv\.safetensors \(safetensors, 20 tensors/);
  assertSameTensors(readSafetensors(st).tensors, small, 'converted safetensors');
  const pth = join(dir, 'conv.pth');
  const j = JSON.parse(execFileSync(process.execPath, [BIN, 'convert', st, pth, '--json', '--key-map', 'fc.=head.'], { encoding: 'utf8' }));
  assert.equal(j.tensors, 20);
  assert.equal(j.format_in, 'safetensors');
  assert.equal(j.format_out, 'pth');
  assert.deepEqual(j.notes, ['renamed 2 key(s) with --key-map fc.=head.']);
  assert.ok(readPth(pth).tensors.has('head.weight'));
  assert.throws(() => execFileSync(process.execPath, [BIN, 'convert', `${FIX}torchscript.pt`, pth], { encoding: 'utf8', stdio: 'pipe' }),
    (e: { stderr?: string; status?: number }) => e.status === 1 && /^resnet: .*TorchScript/.test(String(e.stderr)) && !/\n\s+at /.test(String(e.stderr)));
});
