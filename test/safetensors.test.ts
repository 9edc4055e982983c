// safetensors: round trip, and every check of the reference implementation refuses a
// malformed file with a CheckpointError naming it (never a crash, never a wrong tensor).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CheckpointError } from '../src/errors.js';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from '../src/io/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'resnet-st-'));

function build(header: object, data: Uint8Array): Uint8Array {
  const h = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('round trip of F32 and I64 tensors with metadata, header padded to 8 bytes', () => {
  const path = join(dir, 'a.safetensors');
  const w = Float32Array.from([1.5, -2, 3.25, 0, 1e-30, -7]);
  writeSafetensors(path, [['conv.weight', { data: w, shape: [2, 3] }], ['bn.num_batches_tracked', { data: Int32Array.from([42]), shape: [] }]], { format: 'pt' });
  const buf = readFileSync(path);
  assert.equal(Number(buf.readBigUInt64LE(0)) % 8, 0);
  const { tensors, metadata } = readSafetensors(path);
  assert.deepEqual([...(tensors.get('conv.weight')!.data as Float32Array)], [...w]);
  assert.deepEqual(tensors.get('conv.weight')!.shape, [2, 3]);
  assert.deepEqual([...(tensors.get('bn.num_batches_tracked')!.data as BigInt64Array)], [42n]);
  assert.equal(metadata.format, 'pt');
});

test('F16 and BF16 are widened exactly', () => {
  const data = new Uint8Array(8);
  const dv = new DataView(data.buffer);
  dv.setUint16(0, 0x3c00, true); dv.setUint16(2, 0xc000, true); // f16 1, -2
  dv.setUint16(4, 0x3f80, true); dv.setUint16(6, 0x4049, true); // bf16 1, 3.140625
  const f = build({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] } }, data);
  const t = parseSafetensors(f).tensors;
  assert.deepEqual([...(t.get('a')!.data as Float32Array)], [1, -2]);
  assert.deepEqual([...(t.get('b')!.data as Float32Array)], [1, 3.140625]);
});

test('malformed files are refused with the reason', () => {
  const d8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp][] = [
    ['duplicate key', Buffer.from(new Uint8Array([...new Uint8Array(8)])), /./],
    ['gap', build({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), /starts at 4, expected 0/],
    ['size mismatch', build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8), /needs 12/],
    ['trailing bytes', build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8), /cover 4 bytes but the data section has 8/],
    ['unknown dtype', build({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, d8), /dtype C64; supported/],
    ['not an object', build([1, 2] as unknown as object, d8), /does not start with/],
  ];
  const dupHeader = Buffer.from('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}');
  const dup = new Uint8Array(8 + dupHeader.length + 8);
  new DataView(dup.buffer).setBigUint64(0, BigInt(dupHeader.length), true);
  dup.set(dupHeader, 8);
  cases[0] = ['duplicate key', dup, /duplicate key 'a'/];
  for (const [name, buf, re] of cases) {
    assert.throws(() => parseSafetensors(buf, 'x.safetensors'), (e: Error) => e instanceof CheckpointError && /x\.safetensors/.test(e.message) && re.test(e.message), name);
  }
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  assert.throws(() => parseSafetensors(huge), /exceeds the limit/);
});

test('truncation at every byte is refused, never a crash', () => {
  const full = Buffer.concat(serializeSafetensors([['w', { data: Float32Array.from([1, 2, 3]), shape: [3] }]], { k: 'v' }));
  for (let n = 0; n < full.length; n++) {
    assert.throws(() => parseSafetensors(full.subarray(0, n)), CheckpointError, `truncated at ${n}`);
  }
  writeFileSync(join(dir, 'ok.safetensors'), full);
  assert.equal(readSafetensors(join(dir, 'ok.safetensors')).tensors.size, 1);
  assert.throws(() => readSafetensors(join(dir, 'missing.safetensors')), /missing\.safetensors: cannot read \(ENOENT\)/);
});
