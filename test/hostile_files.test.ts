// Hostile weights and dataset files (issue 18): tiny files that used to make us allocate
// gigabytes. Each is generated here, small on disk, and run through the compiled CLI as a
// child process under an address-space cap (prlimit) and a time limit, with its peak RSS
// measured (/usr/bin/time): a refusal exits 1 with one `resnet: ` line naming the file and
// the key, no stack trace, nothing written; what must still load loads. In-process checks
// cover the library paths the CLI does not reach (npy, IDX without gzip, safetensors keys).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { crc32, deflateRawSync } from 'node:zlib';
import { CheckpointError, DataError } from '../src/errors.js';
import { loadIdx } from '../src/data/idx.js';
import { GUNZIP_LIMIT } from '../src/data/files.js';
import { readNpy } from '../src/io/npy.js';
import { MAX_TENSOR_PATHS, parsePth, VIEW_BUDGET } from '../src/io/pth.js';
import { parseSafetensors, readSafetensors } from '../src/io/safetensors.js';
import { INFLATE_LIMITS } from '../src/io/zip.js';
import { buildZip, deflatedZeros, gzipBomb, idxHeader, legacyPthOf, pthOf, stateDictPickle, zerosCrc, type TensorSpec } from './helpers/hostile.js';

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'resnet-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** Node and the addon start reliably at 1.5 GiB of address space; every bomb here asks for more. */
const AS_CAP = String(2 * GiB);
/** A refusal (or a small legit load) peaks near Node's own ~70-180 MB. */
const RSS_CAP_KB = 400 * 1024;
const HAVE_PRLIMIT = existsSync('/usr/bin/prlimit');
const HAVE_TIME = existsSync('/usr/bin/time');

interface Run { status: number | null; stdout: string; stderr: string; peakKb: number | null }

/** Runs `resnet ARGS` capped (address space, 60 s) and measured (peak RSS). */
function cli(args: string[]): Run {
  const rss = join(dir, `rss-${Math.random().toString(36).slice(2)}`);
  let cmd = [process.execPath, BIN, ...args];
  if (HAVE_PRLIMIT) cmd = ['/usr/bin/prlimit', `--as=${AS_CAP}`, ...cmd];
  if (HAVE_TIME) cmd = ['/usr/bin/time', '-f', '%M', '-o', rss, ...cmd];
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 60_000 });
  let peakKb: number | null = null;
  if (HAVE_TIME && existsSync(rss)) peakKb = Number(readFileSync(rss, 'utf8').trim().split('\n').pop());
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, peakKb };
}

function assertRefused(r: Run, what: string, ...res: RegExp[]): void {
  assert.equal(r.status, 1, `${what}: exit ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: stderr is not one line:\n${r.stderr}`);
  assert.match(lines[0], /^resnet: /, what);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: a stack trace`);
  for (const re of res) assert.match(lines[0], re, what);
  assertSmall(r, what);
}

function assertSmall(r: Run, what: string): void {
  if (r.peakKb !== null && Number.isFinite(r.peakKb)) assert.ok(r.peakKb < RSS_CAP_KB, `${what}: peak RSS ${Math.round(r.peakKb / 1024)} MB`);
}

const w = (name: string, bytes: Uint8Array) => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
const expand = (name: string, key: string, n: number): TensorSpec => ({ name, key, numel: 1, size: [n], stride: [0] });

test('convert: a stride-0 view (torch.ones(1).expand(2**28), 2**31-1; eight of them) is refused naming file, key, shape, stride, storage', () => {
  for (const [label, tensors] of [
    ['expand28', [expand('w', '0', 2 ** 28)]],
    ['expand31', [expand('w', '0', 2 ** 31 - 1)]],
    ['eight', Array.from({ length: 8 }, (_, i) => expand(`t${i}`, String(i), 2 ** 28))],
  ] as [string, TensorSpec[]][]) {
    const inp = w(`${label}.pth`, pthOf(tensors));
    assert.ok(readFileSync(inp).length < 4096, 'small on disk');
    const out = join(dir, `${label}.safetensors`);
    const r = cli(['convert', inp, out]);
    assertRefused(r, label, new RegExp(`${label}\\.pth: tensor '(w|t0)' of shape \\[${tensors[0].size[0]}\\], stride \\[0\\] would materialise \\d+ bytes from the 4-byte storage '0'`), /16 x its storage/);
    assert.ok(!existsSync(out), `${label}: nothing written`);
  }
});

test('convert: an overlapping view and many small broadcasts that add up are refused; a small broadcast and a slice of a big storage load', () => {
  // as_strided(x, (3073, 1024), (1, 1)) over 4096 floats: 12.6 MB from 16 KB.
  const overlap = w('overlap.pth', pthOf([{ name: 'win', key: '0', numel: 4096, size: [3073, 1024], stride: [1, 1] }]));
  assertRefused(cli(['convert', overlap, join(dir, 'overlap.safetensors')]), 'overlap', /overlap\.pth: tensor 'win' of shape \[3073, 1024\], stride \[1, 1\]/);
  // 100 broadcasts of 1 MiB each: each within its own budget, 100 MiB together is not.
  const many = w('many.pth', pthOf(Array.from({ length: 100 }, (_, i) => expand(`b${i}`, '0', 2 ** 18))));
  assertRefused(cli(['convert', many, join(dir, 'many.safetensors')]), 'many', /many\.pth: its 100 tensors would materialise 104857600 bytes from 4 bytes of storage/);
  // Neighbours that must load: a 1000-element broadcast, a 10-element slice at offset 5 of 1 Mi floats.
  const ok = w('ok.pth', pthOf([expand('bias', '0', 1000), { name: 'slice', key: '1', numel: MiB, size: [10], stride: [1], offset: 5 }]));
  const out = join(dir, 'ok.safetensors');
  const r = cli(['convert', ok, out]);
  assert.equal(r.status, 0, r.stderr);
  assertSmall(r, 'ok');
  const t = readSafetensors(out).tensors;
  assert.deepEqual(t.get('bias')!.shape, [1000]);
  assert.deepEqual(t.get('slice')!.shape, [10]);
  // The budget in numbers: what a broadcast of one float may reach, and one element more.
  const edge = (VIEW_BUDGET.factor * 4 + VIEW_BUDGET.slack) / 4;
  assert.equal(parsePth(pthOf([expand('e', '0', edge)]), 'edge.pth').tensors.get('e')!.data.length, edge);
  assert.throws(() => parsePth(pthOf([expand('e', '0', edge + 1)]), 'edge.pth'), CheckpointError);
});

test('convert: an unused deflated entry of 2 GiB of zeros is never inflated; the checkpoint converts', () => {
  const size = 2 * GiB;
  const raw = deflatedZeros(size);
  const inp = w('unused_bomb.pth', pthOf([{ name: 'fc.weight', key: '0', numel: 6, size: [2, 3], stride: [3, 1] }],
    { extra: [{ name: 'h/extra/zeros.bin', raw, size, crc: zerosCrc(size) }] }));
  assert.ok(readFileSync(inp).length < 3 * MiB);
  const out = join(dir, 'unused_bomb.safetensors');
  const r = cli(['convert', inp, out]);
  assert.equal(r.status, 0, r.stderr);
  assertSmall(r, 'unused bomb');
  assert.deepEqual(readSafetensors(out).tensors.get('fc.weight')!.shape, [2, 3]);
});

test('convert: deflated storages: a bomb behind a small declared size, a declared size past the ratio, and a total past the budget are refused; an honest one loads', () => {
  // Declares 1 KiB (what the storage needs) but inflates to 1 GiB: stopped at the first excess.
  const lie = w('lie.pth', pthOf([{ name: 'w', key: '0', numel: 256, size: [256], stride: [1] }],
    { storage: (key) => ({ name: `h/data/${key}`, raw: deflatedZeros(GiB), size: 1024, crc: 0 }) }));
  assertRefused(cli(['convert', lie, join(dir, 'lie.safetensors')]), 'lie', /lie\.pth: zip entry 'h\/data\/0' inflates past the 1024 bytes its header declares/);
  // Declares 1 GiB (a 2^28-float storage) from 1 MB compressed: refused before inflating.
  const big = w('big.pth', pthOf([{ name: 'w', key: '0', numel: 2 ** 28, size: [2 ** 28], stride: [1] }],
    { storage: (key) => ({ name: `h/data/${key}`, raw: deflatedZeros(GiB), size: GiB, crc: 0 }) }));
  assertRefused(cli(['convert', big, join(dir, 'big.safetensors')]), 'big', /big\.pth: zip entry 'h\/data\/0' declares 1073741824 bytes inflated from \d+ compressed; refused above 100 x compressed/);
  // 100 storages of 1 MiB of zeros (~1 KB each compressed): each within its ratio, together past the archive's budget.
  const tensors = Array.from({ length: 100 }, (_, i): TensorSpec => ({ name: `w${i}`, key: String(i), numel: 2 ** 18, size: [2 ** 18], stride: [1] }));
  const total = w('total.pth', pthOf(tensors, { storage: (key, bytes) => ({ name: `h/data/${key}`, data: new Uint8Array(bytes), deflate: true }) }));
  assertRefused(cli(['convert', total, join(dir, 'total.safetensors')]), 'total', /total\.pth: zip entry 'h\/data\/\d+' declares 1048576 bytes inflated, past what is left of the archive's budget/);
  // An honest deflated checkpoint (random floats, ~1:1) loads bit-exact.
  const vals = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 1e3);
  const honest = pthOf([{ name: 'w', key: '0', numel: 64, size: [8, 8], stride: [8, 1] }],
    { storage: (key) => ({ name: `h/data/${key}`, data: new Uint8Array(vals.buffer), deflate: true }) });
  assert.deepEqual(parsePth(honest, 'honest.pth').tensors.get('w')!.data, vals);
  assert.ok(INFLATE_LIMITS.ratio === 100);
});

test('convert: a safetensors dtype named like an Object.prototype member is a one-line refusal', () => {
  for (const dtype of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
    const header = Buffer.from(JSON.stringify({ w: { dtype, shape: [1], data_offsets: [0, 4] } }));
    const b = Buffer.alloc(8 + header.length + 4);
    b.writeBigUInt64LE(BigInt(header.length), 0);
    header.copy(b, 8);
    const inp = w(`proto_${dtype}.safetensors`, b);
    const r = cli(['convert', inp, join(dir, 'proto.pth')]);
    assertRefused(r, dtype, new RegExp(`proto_${dtype}\\.safetensors: not a valid safetensors file: tensor 'w' has dtype ${dtype}; supported: F32`));
    assert.throws(() => parseSafetensors(b, 'p.safetensors'), CheckpointError);
  }
  assert.ok(!existsSync(join(dir, 'proto.pth')));
  // Shapes whose product passes 2^53 or disagrees with the offsets never allocate.
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }));
  const b = Buffer.alloc(8 + header.length + 4);
  b.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(b, 8);
  assert.throws(() => parseSafetensors(b, 'huge.safetensors'), /huge\.safetensors: .*tensor 'w': data_offsets \[0, 4\] hold 4 bytes, shape \[1099511627776,1099511627776\] of F32 needs/);
});

/** An MNIST dir whose train images are `images` (gz) and labels a valid raw file of n. */
function mnistDir(name: string, images: Buffer, n: number): string {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, 'train-images-idx3-ubyte.gz'), images);
  writeFileSync(join(d, 'train-labels-idx1-ubyte'), Buffer.concat([idxHeader([n]), Buffer.alloc(n)]));
  return d;
}

test('train --data: a gzip IDX that inflates past its header, or whose header is past the limit, is refused at once', () => {
  // A 1 MB .gz whose header says 60000x28x28 (47 MB) and which holds 1 GiB.
  const past = mnistDir('past', gzipBomb(idxHeader([60000, 28, 28]), GiB), 60000);
  assert.ok(readFileSync(join(past, 'train-images-idx3-ubyte.gz')).length < 2 * MiB);
  let r = cli(['train', '--dataset', 'mnist', '--data', past, '--epochs', '1', '--out', join(past, 'run')]);
  assertRefused(r, 'past', /train-images-idx3-ubyte\.gz: inflates past the 47040016 bytes its header says it holds/);
  assert.ok(!existsSync(join(past, 'run')), 'no run directory');
  // A header saying 4,000,000 images (3.1 GB): refused before any of it is inflated.
  const huge = mnistDir('huge', gzipBomb(idxHeader([4_000_000, 28, 28]), 4 * MiB), 4_000_000);
  r = cli(['train', '--dataset', 'mnist', '--data', huge, '--epochs', '1', '--out', join(huge, 'run')]);
  assertRefused(r, 'huge', new RegExp(`train-images-idx3-ubyte\\.gz: its header says 3136000016 bytes, over the limit of ${GUNZIP_LIMIT}`));
  // Not gzip at all.
  const notgz = mnistDir('notgz', Buffer.from('not gzip data at all'), 1);
  r = cli(['train', '--dataset', 'mnist', '--data', notgz, '--epochs', '1', '--out', join(notgz, 'run')]);
  assertRefused(r, 'notgz', /train-images-idx3-ubyte\.gz: not valid gzip data/);
});

test('loadIdx: a gzip IDX of exactly its header size loads; one byte short or a wrong magic is named', async () => {
  const px = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const d = join(dir, 'idx_ok');
  mkdirSync(d);
  writeFileSync(join(d, 'i.gz'), gzipBomb(Buffer.concat([idxHeader([2, 3, 4]), px]), 0));
  writeFileSync(join(d, 'l'), Buffer.concat([idxHeader([2]), Buffer.from([1, 0])]));
  const ds = await loadIdx(join(d, 'i.gz'), join(d, 'l'));
  assert.deepEqual([ds.n, ds.height, ds.width], [2, 3, 4]);
  assert.deepEqual(Array.from(ds.images), Array.from(px));
  writeFileSync(join(d, 'short.gz'), gzipBomb(Buffer.concat([idxHeader([2, 3, 4]), px.subarray(1)]), 0));
  await assert.rejects(loadIdx(join(d, 'short.gz'), join(d, 'l')), /short\.gz: truncated: its header says \[2, 3, 4\], so 40 bytes, found 39/);
  const bad = idxHeader([2, 3, 4]); bad[2] = 0x0d;
  writeFileSync(join(d, 'magic.gz'), gzipBomb(Buffer.concat([bad, px]), 0));
  await assert.rejects(loadIdx(join(d, 'magic.gz'), join(d, 'l')), (e: Error) => e instanceof DataError && /magic\.gz: wrong IDX magic number 0x00000d03/.test(e.message));
});

test('readNpy: a shape whose product does not fit the file, or a missing file, is a DataError before any allocation', () => {
  const hdr = (shape: string) => {
    const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
    const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
    const text = dict + ' '.repeat(total - 10 - dict.length - 1) + '\n';
    const b = Buffer.alloc(total);
    b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    b.writeUInt16LE(text.length, 8);
    b.write(text, 10, 'latin1');
    return b;
  };
  const p = w('huge.npy', Buffer.concat([hdr('(4294967296, 4294967296)'), Buffer.alloc(8)]));
  assert.throws(() => readNpy(p), (e: Error) => e instanceof DataError && /huge\.npy: .*8 data bytes, shape \(4294967296, 4294967296\)/.test(e.message));
  assert.throws(() => readNpy(join(dir, 'absent.npy')), (e: Error) => e instanceof DataError && /absent\.npy: cannot read \(ENOENT\)/.test(e.message));
});

test('a zip entry whose deflate stream is shorter than declared, or not deflate at all, is a CheckpointError', () => {
  const data = new Uint8Array(1024).fill(7);
  const good = deflateRawSync(data);
  const tensors: TensorSpec[] = [{ name: 'w', key: '0', numel: 256, size: [256], stride: [1] }];
  const mk = (raw: Uint8Array) => pthOf(tensors, { storage: (key) => ({ name: `h/data/${key}`, raw, size: 1024, crc: crc32(data) >>> 0 }) });
  assert.equal(parsePth(mk(good), 'good.pth').tensors.get('w')!.data.length, 256);
  assert.throws(() => parsePth(mk(good.subarray(0, good.length - 2)), 'cut.pth'), /cut\.pth: zip entry 'h\/data\/0'/);
  assert.throws(() => parsePth(mk(Buffer.from('garbage!')), 'junk.pth'), /junk\.pth: zip entry 'h\/data\/0' does not inflate/);
  // A lone zip without data.pkl is refused by name, never inflated.
  assert.throws(() => parsePth(buildZip([{ name: 'x/zeros', raw: deflatedZeros(MiB), size: MiB, crc: 0 }]), 'nopkl.pth'), /nopkl\.pth: a zip checkpoint holds one '<name>\/data\.pkl'/);
});

test('a pickle that names one tensor a million times (2 bytes each) is refused, not walked into a million paths', () => {
  // [t, t, t, ...]: the tensor memoised once (BINPUT 1), then BINGET 1 per item.
  const one = stateDictPickle([{ name: 'w', key: '0', numel: 1, size: [1], stride: [1] }]);
  const tensor = one.subarray(one.indexOf('ctorch._utils'), one.lastIndexOf('u.'));
  // APPENDS of 1000 BINGETs at a time (the stack holds at most 10^6 values).
  const batch = Buffer.concat([Buffer.from('('), Buffer.alloc(2000).fill(Buffer.from('h\x01', 'latin1')), Buffer.from('e')]);
  const body = Buffer.alloc(batch.length * (MAX_TENSOR_PATHS / 1000)).fill(batch);
  const pkl = Buffer.concat([Buffer.from('\x80\x02](', 'latin1'), tensor, Buffer.from('q\x01e', 'latin1'), body, Buffer.from('.')]);
  const zip = buildZip([{ name: 'h/data.pkl', data: pkl }, { name: 'h/data/0', data: new Uint8Array(4) }]);
  assert.throws(() => parsePth(zip, 'refs.pth'), /refs\.pth: more than 1000000 tensor references \(at '1000000'\)/);
});

test('a legacy (pre-1.6) .pth holds the same view budget', () => {
  const ok = parsePth(legacyPthOf([expand('b', '0', 1000), { name: 'w', key: '1', numel: 6, size: [3, 2], stride: [1, 3] }]), 'legacy_ok.pth');
  assert.equal(ok.format, 'legacy');
  assert.deepEqual(ok.tensors.get('w')!.shape, [3, 2]);
  assert.equal(ok.tensors.get('b')!.data.length, 1000);
  assert.throws(() => parsePth(legacyPthOf([expand('w', '0', 2 ** 28)]), 'legacy.pth'),
    /legacy\.pth: tensor 'w' of shape \[268435456\], stride \[0\] would materialise 1073741824 bytes from the 4-byte storage '0'/);
});
