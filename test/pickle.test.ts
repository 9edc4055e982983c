// The restricted unpickler: what it rebuilds, what it refuses (by name), and that hostile
// input (truncations, boundary lengths, memo cycles, deep nesting, '__proto__' keys, tensors
// past their storage) ends in a clean CheckpointError, never a hang, crash or prototype change.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CheckpointError, ResnetError } from '../src/errors.js';
import { ALLOWED_GLOBALS, isOrderedDict, isTuple, StorageRef, TensorRef, unpickle, type PickleValue } from '../src/io/pickle.js';
import { walkTensors } from '../src/io/pth.js';
import { readZipEntries, zipEntryData } from '../src/io/zip.js';

const FIX = new URL('./fixtures/pth/', import.meta.url).pathname;

/** Bytes from a mix of opcode strings ('latin1') and numbers. */
function pk(...parts: (string | number[] | Uint8Array)[]): Uint8Array {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}
const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
const uni = (s: string) => pk('X', u32(Buffer.byteLength(s)), Buffer.from(s, 'utf8'));
const load = (b: Uint8Array, limits = {}) => unpickle(b, { file: 'test.pkl', limits }).value;
const rejects = (b: Uint8Array, re: RegExp, limits = {}) => assert.throws(() => load(b, limits), (e: unknown) => e instanceof CheckpointError && re.test((e as Error).message), `expected ${re}`);

/** A tensor over a fresh storage: the pickle torch.save writes for one state-dict entry. */
function tensorPickle(numel: number, size: number[], stride: number[], offset: number): Uint8Array {
  const tup = (xs: number[]) => pk('(', ...xs.map((x) => pk('J', [x & 0xff, (x >> 8) & 0xff, (x >> 16) & 0xff, (x >>> 24) & 0xff])), 't');
  return pk('\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((', uni('storage'), 'ctorch\nFloatStorage\n', uni('0'), uni('cpu'),
    'J', u32(numel), 'tQJ', u32(offset), tup(size), tup(stride), '\x89ccollections\nOrderedDict\n)RtR.');
}

test('rebuilds containers and scalars: None, bools, ints (BININT, LONG1), floats, strings, tuples, lists, OrderedDict', () => {
  const v = load(pk('\x80\x02ccollections\nOrderedDict\n)R(', uni('a'), '](K\x01M\xff\xffJ', [0xff, 0xff, 0xff, 0xff],
    '\x8a\x09', [0, 0, 0, 0, 0, 0, 0, 0, 1], '\x8a\x00G', [0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], 'e', uni('b'), 'N\x88\x89\x87',
    '\x8c\x03c\xc3\xa9', 'U\x02hi', 'u.'));
  assert.ok(isOrderedDict(v));
  const m = v as Map<string, PickleValue>;
  assert.deepEqual(m.get('a'), [1, 65535, -1, 2n ** 64n, 0, Math.PI]);
  assert.ok(isTuple(m.get('b')));
  assert.deepEqual([...(m.get('b') as PickleValue[])], [null, true, false]);
  assert.equal(m.get('cé'), 'hi');
});

test('a torch-made state dict pickle rebuilds tensors over storages with their sizes and strides', () => {
  const buf = readFileSync(`${FIX}small.pth`);
  const entries = readZipEntries(buf, 'small.pth');
  const r = unpickle(zipEntryData(buf, entries.get('small/data.pkl')!, 'small.pth'), { file: 'small.pth' });
  const ts = walkTensors(r.value);
  assert.equal(ts.length, 20);
  assert.equal(ts[0][0], 'conv1.weight');
  assert.deepEqual(ts[0][1].size, [4, 3, 3, 3]);
  assert.deepEqual(ts[0][1].stride, [27, 9, 3, 1]);
  assert.equal(ts[0][1].storage.dtype, 'float32');
  assert.equal(r.storages.size, 20);
  assert.equal(ts.find(([k]) => k === 'bn1.num_batches_tracked')![1].storage.dtype, 'int64');
});

test('refuses os.system, builtins.eval and torch.storage._load_from_bytes by name, before anything is built', () => {
  for (const [f, name] of [['os_system.pkl', 'os.system'], ['builtins_eval.pkl', 'builtins.eval'], ['load_from_bytes.pkl', 'torch.storage._load_from_bytes']]) {
    assert.throws(() => unpickle(readFileSync(FIX + f), { file: f }), (e: Error) => e instanceof CheckpointError && e.message.includes(`refused global ${name}:`) && e.message.includes(f), f);
  }
  rejects(pk('\x80\x02cposix\nsystem\n.'), /refused global posix\.system: a checkpoint may only name collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2/);
  rejects(pk('\x80\x04', '\x8c\x05torch\x8c\x06Tensor\x93.'), /refused global torch\.Tensor/);
  rejects(pk('\x80\x02ctorch\nFloatStorage\n)R.'), /REDUCE calls torch\.FloatStorage, which is a type tag/);
});

test('the allowlist is exactly the state-dict globals (plus PyTorch 0.3\'s _rebuild_tensor and torch.cuda.*Storage tags of legacy files)', () => {
  const storages = ['Float', 'Double', 'Half', 'BFloat16', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].map((t) => `${t}Storage`);
  assert.deepEqual([...ALLOWED_GLOBALS].sort(), ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_parameter',
    ...storages.map((s) => `torch.${s}`), ...storages.map((s) => `torch.cuda.${s}`)].sort());
});

test('refuses every opcode a state dict does not use, naming it', () => {
  const cases: [string, string][] = [['i', 'INST'], ['o', 'OBJ'], ['\x81', 'NEWOBJ'], ['\x92', 'NEWOBJ_EX'], ['\x82', 'EXT1'], ['B', 'BINBYTES'],
    ['C', 'SHORT_BINBYTES'], ['P', 'PERSID'], ['F', 'FLOAT'], ['\x8b', 'LONG4'], ['\x8f', 'EMPTY_SET'], ['2', 'DUP'], ['\x97', 'NEXT_BUFFER'], ['\xff', 'unknown']];
  for (const [op, name] of cases) rejects(pk('\x80\x02', op, 'N.'), new RegExp(`\\(${name}\\) is not allowed`));
  rejects(pk('\x80\x05N.'), /protocol 5; only 2 to 4/);
  rejects(pk('\x80\x01N.'), /protocol 1/);
});

test('SETITEM only on dicts, APPEND only on lists, BUILD only on an OrderedDict, REDUCE only on allowed tags', () => {
  rejects(pk(']K\x01K\x02s.'), /SETITEM on a list/);
  rejects(pk(')K\x01a.'), /APPEND on a tuple/);
  rejects(pk('}K\x01a.'), /APPEND on a dict/);
  rejects(pk('}}b.'), /BUILD on a dict; only an OrderedDict/);
  rejects(pk(']])R.'), /REDUCE on a list/);
  rejects(pk('}]K\x01s.'), /a dict key of kind list/);
  assert.ok(isOrderedDict(load(pk('ccollections\nOrderedDict\n)R}b.'))));
  rejects(pk('ccollections\nOrderedDict\nK\x01\x85R.'), /OrderedDict of a number, expected a list of \[key, value\] pairs/);
});

test('persistent ids: only storage tuples with an allowed storage type; views and other kinds refused', () => {
  rejects(pk('(', uni('module'), 'NNtQ.'), /persistent id \("module", None, None\)/);
  rejects(pk('K\x01Q.'), /persistent id 1/);
  rejects(pk('(', uni('storage'), 'ccollections\nOrderedDict\n', uni('0'), uni('cpu'), 'K\x01tQ.'), /storage of type collections\.OrderedDict/);
  // Storage views (legacy, PyTorch < 0.4): (view_key, offset, size) within the root, named consistently.
  const pid = (view: string) => pk('(', uni('storage'), 'ctorch\nFloatStorage\n', uni('0'), uni('cpu'), 'K\x04', view, 'tQ');
  const v = load(pk(pid(pk('(', uni('1'), 'K\x01K\x03t')), '.'));
  assert.ok(v instanceof StorageRef && v.key === '1' && v.numel === 3 && v.view?.offset === 1 && v.view.root.key === '0' && v.view.root.numel === 4);
  rejects(pk(pid(pk('(', uni('1'), 'K\x02K\x03t')), '.'), /storage view '1' of 3 elements from 2 runs past storage '0', which holds 4/);
  rejects(pk('(', pid(pk('(', uni('1'), 'K\x00K\x02t')), pid(pk('(', uni('1'), 'K\x01K\x02t')), 't.'), /storage view '1' named twice with different roots, offsets or sizes/);
  rejects(pk(pid(pk('(', uni('0'), 'K\x00K\x02t')), '.'), /storage '0' named as a view and as a storage/);
  rejects(pk(pid(pk('(', uni('1'), 'K\x00t')), '.'), /storage view metadata \("1", 0\), expected \(view_key, offset, size\)/);
  rejects(pk(pid('K\x01'), '.'), /storage view metadata 1, expected/);
  const s = load(pk('(', uni('storage'), 'ctorch.cuda\nHalfStorage\n', uni('7'), uni('cuda:0'), 'K\x05NtQ.'));
  assert.ok(s instanceof StorageRef && s.dtype === 'float16' && s.numel === 5 && s.key === '7');
  rejects(pk('((', uni('storage'), 'ctorch\nFloatStorage\n', uni('0'), uni('cpu'), 'K\x01tQ(', uni('storage'), 'ctorch\nLongStorage\n', uni('0'), uni('cpu'), 'K\x01tQt.'),
    /storage '0' named twice, as float32\[1\] and int64\[1\]/);
});

test("tensors whose size, stride or offset run past their storage are refused (overflow-safe)", () => {
  const t = load(tensorPickle(6, [2, 3], [3, 1], 0));
  assert.ok(t instanceof TensorRef && t.numel === 6);
  assert.ok(load(tensorPickle(6, [3, 2], [1, 3], 0)) instanceof TensorRef); // transposed view
  assert.ok(load(tensorPickle(6, [0, 5], [5, 1], 6)) instanceof TensorRef); // empty at the end
  rejects(tensorPickle(6, [2, 3], [3, 1], 1), /size \[2,3\], stride \[3,1\], offset 1 reaches element 6 of storage '0', which holds 6/);
  rejects(tensorPickle(6, [2, 3], [4, 1], 0), /reaches element 6/);
  rejects(tensorPickle(6, [1], [1], 6), /offset 6 reaches element 6/);
  rejects(tensorPickle(6, [0], [1], 7), /offset 7/);
  rejects(tensorPickle(6, [2, 3], [3, -1], 0), /tensor stride is -1/);
  rejects(tensorPickle(6, [65536, 65536, 65536], [0, 0, 0], 0), /elements \(limit/);
  rejects(tensorPickle(6, [2, 3], [3, 1], -5), /tensor offset is -5/);
  rejects(tensorPickle(2 ** 31 - 1, [2, 2 ** 29], [2 ** 31 - 2, 1], 0), /reaches element 2684354557 of storage/);
  rejects(tensorPickle(6, [2, 3, 1], [3, 1], 0), /ranks differ/);
  rejects(tensorPickle(6, new Array(33).fill(1), new Array(33).fill(1), 0), /rank 33/);
});

test('boundary lengths: 0, -1, 2^31-1, 2^32-1 and 2^64-1 in BINUNICODE, SHORT_BINUNICODE, LONG_BINGET, LONG1, FRAME', () => {
  assert.equal(load(pk('X', u32(0), '.')), '');
  assert.equal(load(pk('\x8c\x00.')), '');
  rejects(pk('X', u32(0xffffffff), 'abc.'), /a string of 4294967295 bytes \(limit/);
  rejects(pk('X', u32(2 ** 31 - 1), 'abc.'), /a string of 2147483647 bytes/);
  rejects(pk('X', u32(100), 'abc.'), /needs 100 more bytes but 4 remain/);
  rejects(pk('X', u32(0xffffffff), 'abc.'), /needs 4294967295 more bytes but 4 remain/, { maxString: 2 ** 33 });
  rejects(pk('\x8c\xffabc.'), /needs 255 more bytes/);
  rejects(pk('X\x05\x00'), /needs 4 more bytes but 2 remain/);
  rejects(pk(']j', u32(0xffffffff), '.'), /memo 4294967295 was never stored/);
  const big = load(pk(']r', u32(0xffffffff), 'j', u32(0xffffffff), 'a.')) as PickleValue[];
  assert.equal(big[0], big);
  rejects(pk('\x80\x04\x95', u64(2n ** 64n - 1n), 'N.'), /a frame of 18446744073709551615 bytes/);
  assert.equal(load(pk('\x80\x04\x95', u64(2n), 'N.')), null);
  assert.equal(load(pk('\x8a\xff', new Array(255).fill(0xff), '.')), -1);
  assert.equal(load(pk('\x8a\x08', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], '.')), 2n ** 63n - 1n);
  assert.equal(load(pk('J', u32(0x80000000), '.')), -(2 ** 31));
  rejects(pk('\x8a\x08\x01'), /needs 8 more bytes/);
  rejects(pk('X', [0x02, 0, 0, 0, 0xc3, 0x28], '.'), /not UTF-8/);
});

test('memo cycles make cyclic values, and walking them terminates', () => {
  const l = load(pk(']q\x00h\x00a.')) as PickleValue[];
  assert.equal(l[0], l);
  const d = load(pk('}q\x01', uni('self'), 'h\x01s.')) as Map<string, PickleValue>;
  assert.equal(d.get('self'), d);
  assert.deepEqual(walkTensors(l), []);
  assert.deepEqual(walkTensors(d), []);
  // A list holding a tuple holding the list.
  const t = load(pk(']q\x00h\x00\x85a.')) as PickleValue[];
  assert.ok(isTuple(t[0]) && (t[0] as PickleValue[])[0] === t);
});

test('deep MARK nesting and deep containers are capped; a wide stack too', () => {
  rejects(pk('\x80\x02', '('.repeat(100_000), '.'), /MARKs nested deeper than 1000/);
  rejects(pk(']'.repeat(5000), 'a'.repeat(4999), '.'), /containers nested deeper than 1000/);
  rejects(pk(')'.repeat(2000), '\x85'.repeat(1999), '.'), /containers nested deeper than 1000/);
  rejects(pk('N'.repeat(5000), '.'), /stack deeper than 1000/, { maxStack: 1000 });
  rejects(pk(']('.concat('N'.repeat(20)), 'e.'), /a list of more than 10 items/, { maxContainer: 10 });
  rejects(pk(']', 'Na'.repeat(200), '.'), /more than 100 opcodes/, { maxOps: 100 });
  rejects(pk('N', 'q\x00q\x01q\x02', '.'), /more than 2 memo entries/, { maxMemo: 2 });
  rejects(pk(uni('x'.repeat(100)), '.'), /limit of 50 bytes per pickle/, { maxBytes: 50 });
});

test("stack discipline: underflow, pops across a MARK, STOP with leftovers or an open MARK", () => {
  rejects(pk('a.'), /pops an empty stack/);
  rejects(pk(']((K\x01a.'), /needs a value on the stack/);
  rejects(pk('NN.'), /STOP with 2 values on the stack/);
  rejects(pk('(N.'), /STOP with an open MARK/);
  rejects(pk('.'), /STOP with 0 values/);
  rejects(pk('t.'), /no MARK to pop to/);
  rejects(pk('}(K\x01u.'), /SETITEMS with an odd number/);
  rejects(pk('q\x00.'), /needs a value on the stack/);
  rejects(pk(''), /ends before STOP/);
});

test("a '__proto__' key stays a key: no prototype changes", () => {
  const d = load(pk('}(', uni('__proto__'), '}(', uni('polluted'), 'K\x01u', uni('constructor'), 'K\x02u.')) as Map<string, PickleValue>;
  assert.ok(d instanceof Map);
  assert.ok(d.get('__proto__') instanceof Map);
  assert.equal(d.get('constructor'), 2);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(d), Map.prototype);
});

test('truncation at every byte of a real state-dict pickle gives a clean CheckpointError', () => {
  const buf = readFileSync(`${FIX}small.pth`);
  const pkl = zipEntryData(buf, readZipEntries(buf, 'small.pth').get('small/data.pkl')!, 'small.pth');
  for (let n = 0; n < pkl.length; n++) {
    assert.throws(() => unpickle(pkl.subarray(0, n), { file: 'cut.pkl' }), (e: unknown) => e instanceof ResnetError, `cut at ${n}`);
  }
});

test('a seeded mutation loop over a real pickle: every input parses or fails with a ResnetError', () => {
  const buf = readFileSync(`${FIX}small.pth`);
  const pkl = zipEntryData(buf, readZipEntries(buf, 'small.pth').get('small/data.pkl')!, 'small.pth');
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32; };
  let errors = 0;
  for (let k = 0; k < 3000; k++) {
    const b = Uint8Array.from(pkl);
    const flips = 1 + Math.floor(rnd() * 3);
    for (let f = 0; f < flips; f++) b[Math.floor(rnd() * b.length)] = rnd() < 0.5 ? Math.floor(rnd() * 256) : [0xff, 0x00, 0x7f, 0x80][Math.floor(rnd() * 4)];
    try { unpickle(b, { file: 'm.pkl' }); } catch (e) { assert.ok(e instanceof ResnetError, `mutation ${k}: ${(e as Error).stack}`); errors++; }
  }
  assert.ok(errors > 1000, `${errors} of 3000 mutations were refused`);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
