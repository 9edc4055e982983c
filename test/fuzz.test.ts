// Malformed weight files, all formats: a seeded mutation loop (truncations, flipped bytes,
// huge length fields, spliced ranges) over a real .pth (PyTorch-made fixture), a
// safetensors file and an ONNX model made here. Every input must either parse (a correct
// result: the format's own checks passed) or fail with a ResnetError (a clear error naming
// the file); never another exception, never a hang (each input gets a time limit), and
// never a change to Object.prototype (a `__proto__` key must stay data).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { createModel, exportOnnx, parseSafetensors, ResnetError, serializeSafetensors } from '../src/index.js';
import { decodeOnnx } from '../src/io/onnx.js';
import { parsePth } from '../src/io/pth.js';

/** Generous: a parse of these small files takes milliseconds; a hang takes forever. */
const LIMIT_MS = 5000;

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

function fuzz(name: string, original: Uint8Array, parse: (b: Uint8Array) => unknown, count: number, seed: number): void {
  const before = protoKeys();
  const r = rng(seed);
  let parsed = 0;
  let refused = 0;
  for (let k = 0; k < count; k++) {
    const input = mutate(original, r);
    const t0 = performance.now();
    try {
      parse(input);
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
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};

test('fuzz: 2,000 mutations of a PyTorch-made .pth (zip) and 1,000 of a legacy one', () => {
  const zip = new Uint8Array(readFileSync(new URL('./fixtures/pth/small.pth', import.meta.url)));
  fuzz('small.pth', zip, (b) => parsePth(b, 'fuzz.pth'), 2000, 11);
  const legacy = new Uint8Array(readFileSync(new URL('./fixtures/pth/small_legacy.pth', import.meta.url)));
  fuzz('small_legacy.pth', legacy, (b) => parsePth(b, 'fuzz.pth'), 1000, 12);
});

test('fuzz: 3,000 mutations of a safetensors file (with a __proto__ key in its metadata)', () => {
  const file = concat(serializeSafetensors([
    ['conv.weight', { data: Float32Array.from({ length: 54 }, (_, i) => i / 7), shape: [2, 3, 3, 3] }],
    ['bn.num_batches_tracked', { data: new BigInt64Array([7n]), shape: [] }],
    ['__proto__', { data: new Float32Array([1, 2]), shape: [2] }],
  ], { polluted: 'no', format: 'pt' }));
  const clean = parseSafetensors(file, 'fuzz.safetensors');
  assert.deepEqual([...clean.tensors.keys()].sort(), ['__proto__', 'bn.num_batches_tracked', 'conv.weight']);
  fuzz('fuzz.safetensors', file, (b) => parseSafetensors(b, 'fuzz.safetensors'), 3000, 13);
});

test('fuzz: 1,500 mutations of an exported ONNX model', () => {
  const m = createModel('resnet20', { width: 0.25, shortcut: 'B', numClasses: 3, inChannels: 1, seed: 1 });
  const bytes = exportOnnx(m.eval(), { inputShape: [1, 8, 8] });
  m.dispose();
  assert.equal((decodeOnnx(bytes, 'fuzz.onnx') as { ir_version: number }).ir_version, 8);
  fuzz('fuzz.onnx', bytes, (b) => decodeOnnx(b, 'fuzz.onnx'), 1500, 14);
});
