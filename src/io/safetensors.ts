// safetensors read and write, with the reference implementation's checks: header length
// <= 100,000,000, JSON object header, no duplicate keys, known dtypes, offsets sorted and
// contiguous from 0, sizes equal to prod(shape) * dtype size (overflow-checked), nothing
// after the data. Reads F32, F16, BF16, I64 (and I32, U8) to float32 / int32; writes F32 and
// I64 (integer buffers such as num_batches_tracked), header padded with spaces to 8 bytes.
// Format: github.com/huggingface/safetensors (README "Format").

import { readFileSync } from 'node:fs';
import { CheckpointError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { narrowF64 } from './narrowing.js';

export const MAX_HEADER = 100_000_000;

/** @example const a: NamedArray = { data: new Float32Array(6), shape: [2, 3] }; */
export interface NamedArray {
  data: Float32Array | Int32Array | BigInt64Array;
  shape: number[];
}

// A Map, not an object literal: a file's dtype such as "toString" or "__proto__" must not
// find an Object.prototype member.
const DTYPE_SIZE = new Map<string, number>([['F32', 4], ['F16', 2], ['BF16', 2], ['I64', 8], ['I32', 4], ['U8', 1], ['F64', 8]]);

/** The top-level keys of a JSON object text, in order, so duplicates can be found
 *  (JSON.parse silently keeps the last). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      expectKey = false;
      i = j + 1;
      continue;
    }
    if (ch === '{' || ch === '[') { depth++; expectKey = ch === '{' && depth === 1; }
    else if (ch === '}' || ch === ']') depth--;
    else if (ch === ',' && depth === 1) expectKey = true;
    i++;
  }
  return keys;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Parses a safetensors file's bytes. `file` names it in errors.
 * @example const { tensors, metadata } = parseSafetensors(bytes, 'upload.safetensors');
 */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): { tensors: Map<string, NamedArray>; metadata: Record<string, string> } {
  const bad = (msg: string) => new CheckpointError(`${file}: not a valid safetensors file: ${msg}`);
  if (buf.length < 8) throw bad(`${buf.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) throw bad(`header length ${n} exceeds the limit ${MAX_HEADER}`);
  const hlen = Number(n);
  if (8 + hlen > buf.length) throw bad(`header length ${hlen} runs past the end of the file (${buf.length} bytes)`);
  let text: string;
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + hlen)); } catch { throw bad('header is not UTF-8'); }
  if (!text.startsWith('{')) throw bad('header does not start with "{"');
  let header: Record<string, unknown>;
  try { header = JSON.parse(text) as Record<string, unknown>; } catch (e) { throw bad(`header is not JSON (${(e as Error).message})`); }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) { if (seen.has(k)) throw bad(`duplicate key '${k}'`); seen.add(k); }

  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const k of keys) {
    // Own keys only (topLevelKeys reads the text; JSON.parse made them own properties).
    const v = (Object.hasOwn(header, k) ? header[k] : undefined) as Record<string, unknown>;
    if (k === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('__metadata__ must be an object of strings');
      for (const [mk, mv] of Object.entries(v)) {
        if (typeof mv !== 'string') throw bad(`__metadata__ value of '${mk}' is not a string`);
        metadata[mk] = mv;
      }
      continue;
    }
    if (typeof v !== 'object' || v === null) throw bad(`entry '${k}' is not an object`);
    const { dtype, shape, data_offsets: off } = v as { dtype: unknown; shape: unknown; data_offsets: unknown };
    const size = typeof dtype === 'string' ? DTYPE_SIZE.get(dtype) : undefined;
    if (size === undefined) throw bad(`tensor '${k}' has dtype ${String(dtype)}; supported: ${[...DTYPE_SIZE.keys()].join(', ')}`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`tensor '${k}' has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`tensor '${k}' has invalid data_offsets ${JSON.stringify(off)}`);
    let count = 1n;
    for (const d of shape as number[]) count *= BigInt(d);
    const bytes = count * BigInt(size);
    const [begin, end] = off as number[];
    if (end < begin || BigInt(end - begin) !== bytes) throw bad(`tensor '${k}': data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape ${JSON.stringify(shape)} of ${dtype} needs ${bytes}`);
    entries.push({ name: k, dtype: dtype as string, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) throw bad(`tensor '${e.name}' starts at ${e.begin}, expected ${pos} (offsets must be contiguous, without gaps or overlaps)`);
    pos = e.end;
  }
  const dataLen = buf.length - 8 - hlen;
  if (pos !== dataLen) throw bad(`the tensors cover ${pos} bytes but the data section has ${dataLen}`);

  const base = 8 + hlen;
  const tensors = new Map<string, NamedArray>();
  for (const e of entries) {
    const count = (e.end - e.begin) / DTYPE_SIZE.get(e.dtype)!;
    const src = new DataView(buf.buffer, buf.byteOffset + base + e.begin, e.end - e.begin);
    let data: Float32Array | Int32Array | BigInt64Array;
    switch (e.dtype) {
      case 'F32': data = new Float32Array(count); for (let i = 0; i < count; i++) data[i] = src.getFloat32(4 * i, true); break;
      case 'F64': data = narrowF64(count, (i) => src.getFloat64(8 * i, true)); break; // what it lost: narrowingOf(data)
      case 'F16': data = new Float32Array(count); for (let i = 0; i < count; i++) data[i] = f16ToF32(src.getUint16(2 * i, true)); break;
      case 'BF16': {
        const u = new Uint32Array(count);
        for (let i = 0; i < count; i++) u[i] = src.getUint16(2 * i, true) << 16;
        data = new Float32Array(u.buffer);
        break;
      }
      case 'I64': data = new BigInt64Array(count); for (let i = 0; i < count; i++) data[i] = src.getBigInt64(8 * i, true); break;
      case 'I32': data = new Int32Array(count); for (let i = 0; i < count; i++) data[i] = src.getInt32(4 * i, true); break;
      default: data = new Int32Array(count); for (let i = 0; i < count; i++) data[i] = src.getUint8(i); break;
    }
    tensors.set(e.name, { data, shape: e.shape });
  }
  return { tensors, metadata };
}

/** @example const { tensors, metadata } = readSafetensors('resnet20.safetensors');  // metadata.arch === 'resnet20' */
export function readSafetensors(path: string): { tensors: Map<string, NamedArray>; metadata: Record<string, string> } {
  let buf: Buffer;
  try { buf = readFileSync(path); } catch (e) { throw new CheckpointError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  return parseSafetensors(buf, path);
}

/**
 * Serialises tensors in the given order (F32 for float32, I64 for integer arrays).
 * @example const chunks = serializeSafetensors(tensors, { format: 'pt' });
 */
export function serializeSafetensors(tensors: Iterable<[string, NamedArray]>, metadata: Record<string, string> = {}): Uint8Array[] {
  // No prototype: a tensor named `__proto__` must stay a key (on a plain object the
  // assignment would set the prototype and the tensor would vanish from the header).
  const header = Object.create(null) as Record<string, unknown>;
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__' || Object.hasOwn(header, name)) {
      throw new CheckpointError(`safetensors: cannot write tensor '${name}': ${name === '__metadata__' ? 'the name is reserved for the metadata' : 'the name is used twice'}`);
    }
    let bytes: Uint8Array;
    let dtype: string;
    if (t.data instanceof Float32Array) {
      dtype = 'F32';
      bytes = new Uint8Array(t.data.length * 4);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < t.data.length; i++) dv.setFloat32(4 * i, t.data[i], true);
    } else {
      dtype = 'I64';
      bytes = new Uint8Array(t.data.length * 8);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < t.data.length; i++) dv.setBigInt64(8 * i, BigInt(t.data[i]), true);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [off, off + bytes.length] };
    off += bytes.length;
    parts.push(bytes);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hbytes = Buffer.from(json, 'utf8');
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  return [len, hbytes, ...parts];
}

/**
 * Writes atomically (temp file, fsync, rename, fsync of the directory).
 * @example writeSafetensors('raw.safetensors', tensors, { note: 'anything, as strings' });
 */
export function writeSafetensors(path: string, tensors: Iterable<[string, NamedArray]>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
