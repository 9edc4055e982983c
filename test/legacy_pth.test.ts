// PyTorch's pre-1.6 legacy checkpoints (issue 14): files made by
// scripts/make_legacy_fixtures.py in the forms PyTorch's early years wrote (PyTorch 0.3's
// four-argument torch._utils._rebuild_tensor, Python 2.7 pickles, sys_info from Windows and
// from a big-endian machine) load to what PyTorch's own unrestricted torch.load gives, bit
// for bit, with their plain values; an akamaster resnet20 checkpoint loads into resnet20;
// anything else a pickle names, and any sys_info we cannot honour, is refused by name.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CheckpointError } from '../src/errors.js';
import { createModel } from '../src/models/index.js';
import { isOrderedDict, isTuple, TensorRef, unpickle, type PickleValue } from '../src/io/pickle.js';
import { parsePth, readPth, type PthContents } from '../src/io/pth.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadWeights } from '../src/io/weights.js';
import { readValues } from '../src/nn/state_dict.js';

const FIX = new URL('./fixtures/pth/legacy/', import.meta.url).pathname;
const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'resnet-legacy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What the fixture script records: torch.load's result, tensors as dtype, shape, sha256. */
function encode(v: PickleValue, c: PthContents): unknown {
  if (v instanceof TensorRef) {
    const a = c.arrays.get(v)!;
    const d = a.data;
    return {
      tensor: v.storage.dtype, shape: [...a.shape],
      sha256: createHash('sha256').update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)).digest('hex'),
    };
  }
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [encode(k, c), encode(x, c)]), ordered: isOrderedDict(v) };
  if (Array.isArray(v)) return v.map((x) => encode(x, c));
  if (typeof v === 'bigint') return { int: String(v) };
  if (typeof v === 'number' && !Number.isFinite(v)) return { float: String(v) };
  return v;
}

const expected = (name: string) => JSON.parse(readFileSync(`${FIX}${name}.expected.json`, 'utf8'));
const FIXTURES = ['resnet20_akamaster', 'windows_long4', 'big_endian', 'py2_cuda', 'storage_view', 'protocol4'];

test('each legacy fixture loads to what torch.load gives: tensors bit-exact, plain values (floats, big ints, strings, nested dicts, tuples) equal', () => {
  for (const name of FIXTURES) {
    const c = readPth(`${FIX}${name}.th`);
    assert.equal(c.format, 'legacy', name);
    assert.deepEqual(encode(c.root, c), expected(name).value, name);
  }
});

test('what the fixtures hold, spelled out: best_prec1 as a float, epoch, arch, optimizer ids beyond 2^32, a Python 2 long, a 4-tuple', () => {
  const aka = readPth(`${FIX}resnet20_akamaster.th`).root as Map<string, PickleValue>;
  assert.equal(aka.get('best_prec1'), 91.73);
  assert.equal(aka.get('epoch'), 200);
  assert.equal(aka.get('arch'), 'resnet20');
  const groups = (aka.get('optimizer') as Map<string, PickleValue>).get('param_groups') as Map<string, PickleValue>[];
  assert.deepEqual(groups[0].get('params'), [140234567890, 140234567898, 140234567906]);
  assert.equal(groups[0].get('nesterov'), false);
  const hist = aka.get('history') as PickleValue[];
  assert.ok(isTuple(hist));
  assert.equal(hist[1], -(2n ** 70n));
  const py2 = readPth(`${FIX}py2_cuda.th`);
  const root = py2.root as Map<string, PickleValue>;
  assert.equal(root.get('epoch'), 90);
  assert.equal(root.get('best_prec1'), 0.9);
  assert.equal(root.get('neg'), -(2 ** 40));
  assert.ok((root.get('args') as string).length >= 256, 'a BINSTRING');
  assert.deepEqual([...(root.get('flags') as PickleValue[])], [true, null, 1.5, 'x']);
  const sd = root.get('state_dict') as Map<string, PickleValue>;
  assert.ok(isOrderedDict(sd));
  assert.deepEqual([...sd.keys()], ['module.fc.weight', 'module.fc.bias', 'module.fc_t', 'module.idx']);
  const w = py2.tensors.get('state_dict.module.fc.weight')!;
  const wt = py2.tensors.get('state_dict.module.fc_t')!;
  assert.deepEqual(wt.shape, [2, 3]);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) assert.equal(wt.data[j * 3 + i], w.data[i * 2 + j]);
  assert.deepEqual([...py2.tensors.get('state_dict.module.idx')!.data], [5n, -6n, 2n ** 50n]);
  assert.equal((sd.get('module.fc.weight') as TensorRef).storage.location, 'cuda:0');
});

test('storage views of PyTorch < 0.4 (view_metadata (key, offset, size)) read as ranges of their root', () => {
  const c = readPth(`${FIX}storage_view.th`);
  const root = [...c.tensors.get('root')!.data];
  assert.deepEqual([...c.tensors.get('a')!.data], root.slice(3, 7));
  assert.deepEqual([...c.tensors.get('c')!.data], root.slice(2, 7));
  const a = (c.root as Map<string, PickleValue>).get('a') as TensorRef;
  assert.equal(a.storage.view?.offset, 2);
  assert.equal(a.storage.view?.root, ((c.root as Map<string, PickleValue>).get('root') as TensorRef).storage);
  assert.equal((c.root as Map<string, PickleValue>).get('c') instanceof TensorRef && ((c.root as Map<string, PickleValue>).get('c') as TensorRef).storage, a.storage);
});

test('a Windows save (sys_info long = 4) reads 8-byte LongStorage elements, as torch.load does', () => {
  const c = readPth(`${FIX}windows_long4.th`);
  assert.deepEqual([...c.tensors.get('counts')!.data], [-1n, 0n, 2n ** 40n, -(2n ** 62n)]);
  assert.deepEqual([...c.tensors.get('bn1.num_batches_tracked')!.data], [2n ** 33n + 5n]);
  // A file whose LongStorage held 4-byte ints would not line up: refused, saying why it may be.
  const b = readFileSync(`${FIX}windows_long4.th`);
  assert.throws(() => parsePth(b.subarray(0, b.length - 16), 'win.th'), (e: unknown) => e instanceof CheckpointError && /^win\.th: .*its sys_info says long is 4 bytes/.test((e as Error).message));
});

test('big-endian sys_info: elements are little-endian (as torch wrote them); element counts read in either order, the same tensors', () => {
  const le = readPth(`${FIX}big_endian.th`);
  const be = readPth(`${FIX}big_endian_sizes.th`);
  assert.deepEqual(encode(be.root, be), expected('big_endian').value);
  assert.deepEqual(encode(le.root, le), expected('big_endian').value);
  assert.deepEqual([...le.tensors.get('w')!.data], [1, -2, Math.fround(3.5e-3), Infinity]);
  // A little-endian file's counts are read little-endian only.
  const b = Buffer.from(readFileSync(`${FIX}big_endian_sizes.th`));
  const sys = unpickle(b, { start: unpickle(b, { start: unpickle(b).end }).end });
  let j = b.indexOf('little_endian', 0, 'latin1') + 'little_endian'.length;
  if (b[j] === 0x71) j += 2; // BINPUT
  assert.ok(j < sys.end && b[j] === 0x89, 'False in sys_info');
  b[j] = 0x88; // True
  assert.throws(() => parsePth(b, 'le.th'), /^CheckpointError: le\.th: storage '\d+' says \d+ elements in the data, [24] in the pickle$/);
});

test("an akamaster resnet20 checkpoint: 'state_dict' unwrapped, 'module.' stripped, the 'linear' head loads into resnet20 (strict)", () => {
  const { tensors, notes, format } = loadWeights(`${FIX}resnet20_akamaster.th`);
  assert.equal(format, 'pth-legacy');
  assert.match(notes.join('\n'), /unwrapped 'state_dict' from the checkpoint dict \(also there, ignored: epoch, arch, best_prec1, optimizer, history, note\)/);
  assert.match(notes.join('\n'), /stripped the 'module\.' prefix/);
  const model = createModel('resnet20');
  const report = model.loadStateDict(tensors);
  assert.deepEqual(report.missing, []); // PyTorch 0.3 had no num_batches_tracked: not counted
  assert.equal(report.loaded.length, tensors.size);
  const sd = model.stateDict();
  for (const k of ['linear.weight', 'conv1.weight', 'layer3.2.bn2.running_var']) {
    assert.deepEqual(Float32Array.from(readValues(sd[k])), tensors.get(k)!.data, k);
  }
});

test('resnet convert old.th -> .safetensors (the same bits) and resnet predict --arch resnet20 --weights old.th', { skip: !existsSync(BIN) && 'run npm run build first' }, () => {
  const st = join(dir, 'r20.safetensors');
  const out = execFileSync(process.execPath, [BIN, 'convert', `${FIX}resnet20_akamaster.th`, st], { encoding: 'utf8' });
  assert.match(out, /stripped the 'module\.' prefix/);
  const got = readSafetensors(st).tensors;
  const want = loadWeights(`${FIX}resnet20_akamaster.th`).tensors;
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [k, w] of want) assert.deepEqual(got.get(k)!.data, w.data, k);
  const img = new URL('./fixtures/predict/images/a_300x200.jpg', import.meta.url).pathname;
  const p = spawnSync(process.execPath, [BIN, 'predict', '--arch', 'resnet20', '--weights', `${FIX}resnet20_akamaster.th`, '--top', '1', img], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stderr, /loaded 97 tensors from .*resnet20_akamaster\.th into resnet20 \(10 classes; everything fits\)/);
  assert.match(p.stdout, /a_300x200\.jpg\n\s+[01]\.\d+\s+class \d/);
});

// ---- refusals -------------------------------------------------------------------------

/** A legacy stream: the fixture's magic, protocol and sys_info pickles, then `main`, an empty key list. */
function legacyWith(main: string | Buffer, sysInfo?: Buffer): Buffer {
  const b = readFileSync(`${FIX}windows_long4.th`);
  const magic = unpickle(b);
  const proto = unpickle(b, { start: magic.end });
  const sys = unpickle(b, { start: proto.end });
  return Buffer.concat([b.subarray(0, proto.end), sysInfo ?? b.subarray(proto.end, sys.end), Buffer.from(main as string, 'latin1'), Buffer.from('\x80\x02].', 'latin1')]);
}
const refuses = (bytes: Buffer, re: RegExp) => assert.throws(() => parsePth(bytes, 'bad.th'), (e: unknown) => e instanceof CheckpointError && re.test((e as Error).message) && !(e as Error).message.includes('\n'), String(re));

test('a legacy file naming any other global is refused by name; nothing runs', () => {
  for (const g of ['os\nsystem', 'posix\nsystem', 'builtins\neval', '__builtin__\neval', 'argparse\nNamespace', '_codecs\nencode', 'numpy.core.multiarray\nscalar', 'torch._utils\n_rebuild_qtensor', 'torch\nTensor']) {
    const name = g.replace('\n', '.');
    refuses(legacyWith(`\x80\x02c${g}\n)R.`), new RegExp(`^bad\\.th: refused global ${name.replace(/\./g, '\\.')}: a checkpoint may only name collections\\.OrderedDict, torch\\._utils\\._rebuild_tensor_v2, torch\\._utils\\._rebuild_tensor, `));
  }
});

test('new opcodes and forms are checked: INT/LONG text, BINSTRING, OrderedDict pairs, _rebuild_tensor arguments', () => {
  const load = (s: string) => unpickle(Buffer.from(s, 'latin1'), { file: 't.pkl' }).value;
  assert.equal(load('I140234567890\n.'), 140234567890);
  assert.equal(load('I-99999999999999999999\n.'), -99999999999999999999n);
  assert.equal(load('I01\n.'), true);
  assert.equal(load('I00\n.'), false);
  assert.equal(load('L123L\n.'), 123);
  assert.equal(load('L-5\n.'), -5);
  assert.equal(load('T\x03\x00\x00\x00abc.'), 'abc');
  const od = load('\x80\x02ccollections\nOrderedDict\n](](U\x01aK\x01e](U\x01bK\x02ee\x85R.') as Map<string, PickleValue>;
  assert.ok(isOrderedDict(od));
  assert.deepEqual([...od], [['a', 1], ['b', 2]]);
  const bad = (s: string, re: RegExp) => assert.throws(() => load(s), (e: unknown) => e instanceof CheckpointError && re.test((e as Error).message), String(re));
  bad('I12x\n.', /t\.pkl: unsafe or corrupt pickle: "12x" is not a decimal integer \(opcode INT at byte 0\)/);
  bad('I1e9\n.', /"1e9" is not a decimal integer/);
  bad('L12LL\n.', /"12LL" is not a decimal integer \(opcode LONG/);
  bad(`I${'9'.repeat(100)}\n.`, /a decimal integer without its newline within 80 bytes/);
  bad('I123', /a decimal integer without its newline/);
  bad('T\xff\xff\xff\xff.', /a string of negative length -1 \(opcode BINSTRING/);
  bad('T\x10\x00\x00\x00ab', /needs 16 more bytes/);
  bad('\x80\x02ccollections\nOrderedDict\nK\x01\x85R.', /collections\.OrderedDict of a number, expected a list of \[key, value\] pairs/);
  bad('\x80\x02ccollections\nOrderedDict\n](](K\x01K\x02K\x03ee\x85R.', /collections\.OrderedDict item \[1, 2, 3\], expected a \[key, value\] pair/);
  bad('\x80\x02ccollections\nOrderedDict\n]K\x01a\x85R.', /collections\.OrderedDict item 1, expected a \[key, value\] pair/);
  bad('\x80\x02ccollections\nOrderedDict\n]]\x85\x86R.', /collections\.OrderedDict with 2 arguments/);
  bad('\x80\x02ctorch._utils\n_rebuild_tensor\nK\x00K\x00\x86R.', /_rebuild_tensor with 2 arguments, expected 4 \(storage, offset, size, stride\)/);
  bad('\x80\x02ctorch._utils\n_rebuild_tensor\n(K\x00K\x00))tR.', /_rebuild_tensor on a number, expected a storage/);
});

test('a legacy sys_info we cannot honour is refused, naming what it says and what is valid', () => {
  const sys = (s: string) => Buffer.from(`\x80\x02${s}.`, 'latin1');
  const main = '\x80\x02}.';
  refuses(legacyWith(main, sys(']')), /^bad\.th: legacy checkpoint's sys_info is a list, not a dict; expected a dict \{protocol_version: 1001, little_endian: True\|False, type_sizes: \{short: 2, int: 4, long: 4\|8\}\}$/);
  refuses(legacyWith(main, sys('}')), /sys_info lacks little_endian/);
  refuses(legacyWith(main, sys('}(U\rlittle_endian\x88U\ntype_sizes}(U\x04longK\x03uu')), /sys_info says long is 3 bytes; expected/);
  refuses(legacyWith(main, sys('}(U\rlittle_endian\x88U\ntype_sizes]u')), /sys_info has a type_sizes that is not a dict/);
  // honoured: long 4 or 8, either byte order, an empty state dict
  for (const s of ['}(U\rlittle_endian\x89U\ntype_sizes}(U\x04longK\x04uu', '}(U\rlittle_endian\x88u']) {
    assert.deepEqual(parsePth(legacyWith(main, sys(s)), 'ok.th').root, new Map());
  }
});

test('torch.load(weights_only=True) refuses two of these files; we do not (recorded by the fixture script)', () => {
  assert.match(expected('resnet20_akamaster').weights_only_refuses, /WeightsUnpickler error/);
  assert.match(expected('py2_cuda').weights_only_refuses, /WeightsUnpickler error/);
  writeFileSync(join(dir, 'copy.th'), readFileSync(`${FIX}py2_cuda.th`));
  assert.equal(loadWeights(join(dir, 'copy.th')).tensors.size, 4);
});
