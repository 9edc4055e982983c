// Malformed weight files, all formats: a seeded mutation loop (truncations, flipped bytes,
// huge length fields, spliced ranges) over a real .pth (PyTorch-made fixture; legacy ones of
// PyTorch's early years too), the same
// .pth with every entry DEFLATEd, a safetensors file, an ONNX model made here and a gzip'd
// IDX file; and random tensor geometries (stride 0, overlapping, huge sizes) over small
// storages. Every input must either parse (a correct result: the format's own checks
// passed) or fail with a ResnetError (a clear error naming the file); never another
// exception, never a hang (each input gets a time limit), never a change to
// Object.prototype (a `__proto__` key must stay data), and never more than MAX_GROWTH_MB
// of peak RSS over the loop (process.resourceUsage().maxRSS): the budgets hold.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createModel, exportOnnx, parseSafetensors, ResnetError, serializeSafetensors } from '../src/index.js';
import { decodeOnnx } from '../src/io/onnx.js';
import { parsePth, VIEW_BUDGET } from '../src/io/pth.js';
import { readZipEntries } from '../src/io/zip.js';
import { loadIdx } from '../src/data/idx.js';
import { buildZip, idxHeader, pthOf, type TensorSpec } from './helpers/hostile.js';

/** Generous: a parse of these small files takes milliseconds; a hang takes forever. */
const LIMIT_MS = 5000;
/** Peak RSS one loop may add: every budget lets a small file claim tens of MiB, not GiB. */
const MAX_GROWTH_MB = 512;

const peakMb = () => process.resourceUsage().maxRSS / 1024;
function assertBounded(name: string, before: number): void {
  const grew = peakMb() - before;
  assert.ok(grew < MAX_GROWTH_MB, `${name}: peak RSS grew ${grew.toFixed(0)} MB over the loop`);
}

/** xorshift32, so a failure names a reproducible mutation index. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const kind = Math.floor(r() * 5);
  const at = Math.floor(r() * src.length);
  if (kind === 0) return src.slice(0, at);                              // truncation
  const b = src.slice();
  if (kind === 1) {                                                     // flipped bytes
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
  } else if (kind === 2) {                                              // a huge little-endian length
    const v = [0xff, 0x7f, 0x80, 0x00][Math.floor(r() * 4)];
    for (let i = 0; i < 8 && at + i < b.length; i++) b[at + i] = i === 7 && v === 0x7f ? 0x7f : v;
  } else if (kind === 3) {                                              // a range copied elsewhere
    const len = Math.floor(r() * 64);
    const from = Math.floor(r() * b.length);
    b.copyWithin(at, from, from + len);
  } else {                                                              // zeroed range
    b.fill(0, at, at + Math.floor(r() * 32));
  }
  return b;
}

function protoKeys(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort();
}

async function fuzz(name: string, original: Uint8Array, parse: (b: Uint8Array) => unknown, count: number, seed: number): Promise<void> {
  const before = protoKeys();
  const rss = peakMb();
  const r = rng(seed);
  let parsed = 0;
  let refused = 0;
  for (let k = 0; k < count; k++) {
    const input = mutate(original, r);
    const t0 = performance.now();
    try {
      await parse(input);
      parsed++;
    } catch (e) {
      assert.ok(e instanceof ResnetError, `${name} mutation ${k}: not a ResnetError: ${(e as Error)?.stack ?? String(e)}`);
      assert.match((e as Error).message, new RegExp(`fuzz\\.${name.split('.').pop()}`), `${name} mutation ${k}: the error does not name the file: ${(e as Error).message}`);
      refused++;
    }
    const ms = performance.now() - t0;
    assert.ok(ms < LIMIT_MS, `${name} mutation ${k} took ${ms.toFixed(0)} ms`);
  }
  assert.deepEqual(protoKeys(), before, `${name}: Object.prototype changed`);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.ok(refused > count / 4, `${name}: only ${refused} of ${count} mutations were refused; the loop is not reaching the checks`);
  assert.equal(parsed + refused, count);
  assertBounded(name, rss);
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};

test('fuzz: 2,000 mutations of a PyTorch-made .pth (zip) and 1,000 of a legacy one', async () => {
  const zip = new Uint8Array(readFileSync(new URL('./fixtures/pth/small.pth', import.meta.url)));
  await fuzz('small.pth', zip, (b) => parsePth(b, 'fuzz.pth'), 2000, 11);
  const legacy = new Uint8Array(readFileSync(new URL('./fixtures/pth/small_legacy.pth', import.meta.url)));
  await fuzz('small_legacy.pth', legacy, (b) => parsePth(b, 'fuzz.pth'), 1000, 12);
});

test('fuzz: 1,000 mutations each of the early-years legacy files (Python 2 pickle, _rebuild_tensor, big-endian sys_info, storage views)', async () => {
  // The opcodes and paths only they reach: INT/LONG text, BINSTRING, OrderedDict of pairs,
  // _rebuild_tensor, BINGET of memoised globals, sys_info checks, big-endian element counts, views.
  for (const [f, seed] of [['py2_cuda.th', 21], ['big_endian_sizes.th', 22], ['storage_view.th', 23]] as const) {
    const b = new Uint8Array(readFileSync(new URL(`./fixtures/pth/legacy/${f}`, import.meta.url)));
    parsePth(b, f); // the original parses
    await fuzz(f, b, (m) => parsePth(m, 'fuzz.th'), 1000, seed);
  }
});

test('fuzz: 3,000 mutations of a safetensors file (with a __proto__ key in its metadata)', async () => {
  const file = concat(serializeSafetensors([
    ['conv.weight', { data: Float32Array.from({ length: 54 }, (_, i) => i / 7), shape: [2, 3, 3, 3] }],
    ['bn.num_batches_tracked', { data: new BigInt64Array([7n]), shape: [] }],
    ['__proto__', { data: new Float32Array([1, 2]), shape: [2] }],
  ], { polluted: 'no', format: 'pt' }));
  const clean = parseSafetensors(file, 'fuzz.safetensors');
  assert.deepEqual([...clean.tensors.keys()].sort(), ['__proto__', 'bn.num_batches_tracked', 'conv.weight']);
  await fuzz('fuzz.safetensors', file, (b) => parseSafetensors(b, 'fuzz.safetensors'), 3000, 13);
});

test('fuzz: 1,500 mutations of an exported ONNX model', async () => {
  const m = createModel('resnet20', { width: 0.25, shortcut: 'B', numClasses: 3, inChannels: 1, seed: 1 });
  const bytes = exportOnnx(m.eval(), { inputShape: [1, 8, 8] });
  m.dispose();
  assert.equal((decodeOnnx(bytes, 'fuzz.onnx') as { ir_version: number }).ir_version, 8);
  await fuzz('fuzz.onnx', bytes, (b) => decodeOnnx(b, 'fuzz.onnx'), 1500, 14);
});

test('fuzz: 1,500 mutations of the PyTorch-made .pth with every zip entry DEFLATEd (lazy, capped inflate)', async () => {
  const orig = readFileSync(new URL('./fixtures/pth/small.pth', import.meta.url));
  // A Uint8Array copy: mutate() copies with slice(), which on a Buffer is a view.
  const deflated = new Uint8Array(buildZip([...readZipEntries(orig, 'small.pth').values()].map((e) => (
    { name: e.name, data: orig.subarray(e.dataStart, e.dataStart + e.size), deflate: true }))));
  assert.equal(parsePth(deflated, 'fuzz.pth').tensors.size, 20);
  await fuzz('small_deflated.pth', deflated, (b) => parsePth(b, 'fuzz.pth'), 1500, 15);
});

test("fuzz: 600 mutations of a gzip'd IDX image file (streaming gunzip capped by its header)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-fuzz-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const n = 8;
  const images = new Uint8Array(gzipSync(Buffer.concat([idxHeader([n, 6, 6]), Buffer.from(Array.from({ length: n * 36 }, (_, i) => (i * 37) & 255))])));
  const labels = join(dir, 'labels');
  writeFileSync(labels, Buffer.concat([idxHeader([n]), Buffer.from([0, 1, 2, 3, 4, 5, 6, 7])]));
  const path = join(dir, 'fuzz.gz');
  const load = (b: Uint8Array) => { writeFileSync(path, b); return loadIdx(path, labels); };
  assert.equal((await load(images)).n, n);
  await fuzz('fuzz.gz', images, load, 600, 16);
});

test('fuzz: 600 random tensor geometries (stride 0, overlapping, huge sizes, offsets) over small storages', () => {
  const r = rng(17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const SIZES = [0, 1, 2, 3, 7, 64, 1000, 2 ** 16, 2 ** 18 + 1, 2 ** 28, 2 ** 31 - 1, 2 ** 40] as const;
  const rss = peakMb();
  let parsed = 0;
  for (let k = 0; k < 600; k++) {
    const tensors: TensorSpec[] = [];
    const count = 1 + Math.floor(r() * 3);
    for (let t = 0; t < count; t++) {
      const rank = Math.floor(r() * 4);
      const size = Array.from({ length: rank }, () => pick(SIZES));
      const stride = Array.from({ length: rank }, () => pick([0, 0, 1, 2, 3, 64, 1000, 2 ** 20]));
      tensors.push({ name: `t${t}`, key: String(Math.floor(r() * 2)), numel: pick([1, 4, 4096, 65536]), size, stride, offset: pick([0, 0, 1, 3]) });
    }
    // One storage key, one size: the first tensor naming a key decides its numel.
    const numel = new Map<string, number>();
    for (const t of tensors) { if (!numel.has(t.key)) numel.set(t.key, t.numel); t.numel = numel.get(t.key)!; }
    const t0 = performance.now();
    try {
      const c = parsePth(pthOf(tensors), 'fuzz.pth');
      parsed++;
      let bytes = 0;
      for (const a of c.arrays.values()) bytes += a.data.byteLength;
      let storage = 0;
      for (const n of numel.values()) storage += 4 * n;
      assert.ok(bytes <= VIEW_BUDGET.factor * storage + VIEW_BUDGET.totalSlack, `geometry ${k}: ${bytes} bytes materialised from ${storage}`);
    } catch (e) {
      assert.ok(e instanceof ResnetError, `geometry ${k} (${JSON.stringify(tensors)}): not a ResnetError: ${(e as Error)?.stack ?? String(e)}`);
      assert.match((e as Error).message, /fuzz\.pth/);
    }
    assert.ok(performance.now() - t0 < LIMIT_MS, `geometry ${k} took too long`);
  }
  assert.ok(parsed > 30, `only ${parsed} of 600 geometries parsed; the loop is not reaching the budget`);
  assertBounded('geometries', rss);
});
