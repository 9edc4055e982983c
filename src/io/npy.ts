// NumPy .npy files, format version 1.0 (numpy/lib/format.py, "NPY format"): the magic
// "\x93NUMPY", version 1 0, a little-endian uint16 header length, then an ASCII Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (...), } padded with spaces and
// a final newline so that the data starts at a multiple of 64 bytes, then the values in C
// order. Writes float32 only ('<f4'), loadable with numpy.load(allow_pickle=False). The
// reader takes exactly what the writer makes (for tests and round trips), nothing else.

import { readFileSync } from 'node:fs';
import { DataError, ShapeError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

function checkShape(shape: readonly number[], length: number, what: string): void {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`${what}: shape must hold non-negative integers, got [${shape.join(', ')}]`);
    n *= d;
  }
  if (n !== length) throw new ShapeError(`${what}: ${length} values do not fill shape [${shape.join(', ')}] (${n} elements)`);
}

/**
 * The header bytes (magic to newline) of a float32 C-order array of `shape`.
 * @example const header = npyHeader([2, 3]);  // NPY 1.0 magic and header
 */
export function npyHeader(shape: readonly number[]): Uint8Array {
  // Python's repr of a tuple: (), (3,), (2, 3).
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  const pre = MAGIC.length + 2 + 2;
  const total = Math.ceil((pre + dict.length + 1) / ALIGN) * ALIGN;
  const text = dict + ' '.repeat(total - pre - dict.length - 1) + '\n';
  if (text.length > 0xffff) throw new ShapeError(`npy: the header of shape [${shape.join(', ')}] is too long for format 1.0`);
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1; // major version
  out[7] = 0; // minor version
  new DataView(out.buffer).setUint16(8, text.length, true);
  for (let i = 0; i < text.length; i++) out[pre + i] = text.charCodeAt(i);
  return out;
}

/**
 * The bytes of a .npy file holding `data` (float32, C order) with `shape`.
 * @example const chunks = serializeNpy(new Float32Array(6), [2, 3]);  // header + data, for a stream
 */
export function serializeNpy(data: Float32Array, shape: readonly number[]): Uint8Array[] {
  checkShape(shape, data.length, 'npy');
  const body = new Uint8Array(data.length * 4);
  const dv = new DataView(body.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
  return [npyHeader(shape), body];
}

/**
 * Writes a float32 array as .npy atomically (temp file, fsync, rename).
 * @example writeNpy('emb.npy', embeddings, [n, 512]);  // np.load('emb.npy').shape == (n, 512)
 */
export function writeNpy(path: string, data: Float32Array, shape: readonly number[]): void {
  writeFileAtomic(path, serializeNpy(data, shape));
}

/**
 * Reads a .npy written by writeNpy (version 1.0, '<f4', C order); anything else is a DataError.
 * @example const { data, shape } = readNpy('emb.npy');
 */
export function readNpy(path: string): { data: Float32Array; shape: number[] } {
  let buf: Buffer;
  try { buf = readFileSync(path); } catch (e) { throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  const bad = (msg: string) => new DataError(`${path}: not a float32 .npy file as writeNpy makes: ${msg}`);
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) throw bad('no \\x93NUMPY magic');
  if (buf[6] !== 1 || buf[7] !== 0) throw bad(`format version ${buf[6]}.${buf[7]}, expected 1.0`);
  const hlen = buf.readUInt16LE(8);
  if (10 + hlen > buf.length) throw bad(`header length ${hlen} runs past the end (${buf.length} bytes)`);
  const text = buf.subarray(10, 10 + hlen).toString('latin1');
  const m = /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(([\d, ]*)\), \} *\n$/.exec(text);
  if (!m) throw bad(`unsupported header ${JSON.stringify(text.trim())}`);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  // The shape's product is checked against the file's length before anything is allocated
  // (a huge shape gives an unsafe or mismatching product and is refused here).
  const n = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n) || buf.length - 10 - hlen !== n * 4) throw bad(`${buf.length - 10 - hlen} data bytes, shape (${shape.join(', ')}) needs ${n * 4}`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(10 + hlen + 4 * i);
  return { data, shape };
}
