// PyTorch checkpoints (torch.save): read the zip format of PyTorch >= 1.6 and the legacy
// pre-1.6 stream (torch/serialization.py `_legacy_load`, back to PyTorch 0.3 and Python 2;
// its sys_info as torch.load treats it: legacySysInfo), and write a zip .pth that
// `torch.load(f, weights_only=True)` accepts. Pickles go through the restricted unpickler
// (pickle.ts); every storage's bytes are length-checked against its persistent id and every
// zip entry CRC-checked; only the entries the pickle names are inflated, under zip.ts's
// caps, and what the views materialise is budgeted against their storages (VIEW_BUDGET)
// before anything is allocated. Tensors come out contiguous: float32 (float64, float16 and
// bfloat16 converted), int64 as BigInt64Array, int32/int16/int8/uint8/bool as Int32Array.
// TorchScript archives are refused (never handed to a more powerful loader). Not here:
// choosing the state dict inside a checkpoint or renaming keys (weights.ts).

import { readFileSync } from 'node:fs';
import { CheckpointError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { narrowF64 } from './narrowing.js';
import { DTYPE_BYTES, StorageRef, TensorRef, unpickle, type PickleLimits, type PickleValue } from './pickle.js';
import type { NamedArray } from './safetensors.js';
import { buildStoredZip, inflateBudget, readZipEntries, zipEntryData } from './zip.js';

/** @example const { format, tensors }: PthContents = readPth('resnet18.pth'); */
export interface PthContents {
  format: 'zip' | 'legacy';
  /** The unpickled object; tensors appear in it as TensorRef (their values are in `arrays`). */
  root: PickleValue;
  /** Each tensor's values, contiguous. */
  arrays: Map<TensorRef, NamedArray>;
  /** Every tensor reachable from the root, keyed by its dotted path ('state_dict.fc.weight'). */
  tensors: Map<string, NamedArray>;
}

/** torch/serialization.py MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

export function isPthBuffer(buf: Uint8Array): boolean {
  return isZip(buf) || isLegacy(buf);
}
const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6));
// PROTO 2 (or 3, 4 with torch.save(pickle_protocol=...), then a FRAME), LONG1 of 10 bytes:
// the pickled magic number.
const isLegacy = (b: Uint8Array) => {
  if (b.length < 4 || b[0] !== 0x80 || b[1] < 2 || b[1] > 4) return false;
  const at = b[2] === 0x95 ? 11 : 2;
  return b.length >= at + 2 && b[at] === 0x8a && b[at + 1] === 0x0a;
};

/**
 * Parses a torch.save file's bytes. `file` names it in errors.
 * @example const contents = parsePth(bytes, 'upload.pth');
 */
export function parsePth(buf: Uint8Array, file = '<buffer>', limits?: Partial<PickleLimits>): PthContents {
  let parsed: { root: PickleValue; found: [string, TensorRef][]; bytes: Map<StorageRef, Uint8Array>; little: boolean };
  let format: 'zip' | 'legacy';
  if (isZip(buf)) { parsed = parseZip(buf, file, limits); format = 'zip'; }
  else if (isLegacy(buf)) { parsed = parseLegacy(buf, file, limits); format = 'legacy'; }
  else if (buf.length > 262 && new TextDecoder().decode(buf.subarray(257, 262)) === 'ustar') {
    throw new CheckpointError(`${file}: a tar-format checkpoint (PyTorch before 0.1.10) is not supported; re-save it with a newer PyTorch`);
  } else {
    const head = Array.from(buf.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');
    throw new CheckpointError(`${file}: not a PyTorch checkpoint: neither a zip archive (PyTorch >= 1.6) nor a legacy torch.save stream (first bytes: ${head || 'none, the file is empty'})`);
  }
  const { found } = parsed;
  const arrays = new Map<TensorRef, NamedArray>();
  const tensors = new Map<string, NamedArray>();
  for (const [path, ref] of found) {
    let arr = arrays.get(ref);
    if (!arr) {
      try {
        arr = materialize(ref, storageBytes(ref.storage, parsed.bytes), parsed.little, `${file}: tensor '${path}'`);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        throw new CheckpointError(`${file}: tensor '${path}' of shape [${ref.size.join(', ')}]: cannot allocate its ${outBytes(ref)} bytes (${e.message})`);
      }
      arrays.set(ref, arr);
    }
    if (!tensors.has(path)) tensors.set(path, arr);
  }
  return { format, root: parsed.root, arrays, tensors };
}

/** A storage's bytes; a view's are a range of its root's (bounds checked when it was named). */
function storageBytes(s: StorageRef, bytes: Map<StorageRef, Uint8Array>): Uint8Array {
  if (!s.view) return bytes.get(s)!;
  const es = DTYPE_BYTES[s.dtype];
  return bytes.get(s.view.root)!.subarray(s.view.offset * es, (s.view.offset + s.numel) * es);
}

/** @example const { tensors } = readPth('model_best.pth.tar');  // keys like 'state_dict.fc.weight' */
export function readPth(path: string, limits?: Partial<PickleLimits>): PthContents {
  let buf: Buffer;
  try { buf = readFileSync(path); } catch (e) { throw new CheckpointError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  return parsePth(buf, path, limits);
}

function parseZip(buf: Uint8Array, file: string, limits?: Partial<PickleLimits>) {
  const entries = readZipEntries(buf, file);
  const names = [...entries.keys()];
  if (names.some((n) => /^[^/]+\/(constants\.pkl$|code\/)/.test(n))) {
    throw new CheckpointError(`${file}: a TorchScript archive (torch.jit.save), not a torch.save checkpoint; it is refused because loading it means running its code. In PyTorch, save model.state_dict() with torch.save instead`);
  }
  const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) throw new CheckpointError(`${file}: a zip checkpoint holds one '<name>/data.pkl'; this archive has ${pkls.length ? pkls.join(', ') : 'none'}`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  // Only the entries the checkpoint needs are inflated, each once, all against one budget.
  const budget = inflateBudget(buf.length);
  const entry = (name: string): Uint8Array | undefined => {
    const e = entries.get(name);
    return e && zipEntryData(buf, e, file, budget);
  };
  let little = true;
  const bo = entry(`${prefix}byteorder`);
  if (bo) {
    const s = new TextDecoder().decode(bo).trim();
    if (s !== 'little' && s !== 'big') throw new CheckpointError(`${file}: '${prefix}byteorder' says '${s.slice(0, 20)}'; expected little or big`);
    little = s === 'little';
  }
  const { value: root, storages } = unpickle(entry(pkls[0])!, { file: `${file}: ${pkls[0]}`, limits });
  const found = budgetedTensors(root, buf.length, file); // before any storage is inflated
  const bytes = new Map<StorageRef, Uint8Array>();
  for (const s of storages.values()) {
    const name = `${prefix}data/${s.key}`;
    const e = entries.get(name);
    if (!e) throw new CheckpointError(`${file}: storage '${s.key}' has no entry '${name}' in the archive`);
    const want = s.numel * DTYPE_BYTES[s.dtype];
    // The declared size is checked before anything is inflated.
    if (e.size !== want) throw new CheckpointError(`${file}: entry '${name}' holds ${e.size} bytes; ${s.numel} ${s.dtype} elements need ${want}`);
    bytes.set(s, entry(name)!);
  }
  return { root, found, bytes, little };
}

function parseLegacy(buf: Uint8Array, file: string, limits?: Partial<PickleLimits>) {
  const small = { ...limits, maxBytes: 1 << 16 };
  const magic = unpickle(buf, { file, limits: small });
  if (magic.value !== LEGACY_MAGIC) throw new CheckpointError(`${file}: legacy checkpoint with a wrong magic number (corrupt file?)`);
  const proto = unpickle(buf, { file, start: magic.end, limits: small });
  if (proto.value !== LEGACY_PROTOCOL) throw new CheckpointError(`${file}: legacy checkpoint protocol ${String(proto.value)}; only ${LEGACY_PROTOCOL} is read`);
  const sysInfo = unpickle(buf, { file, start: proto.end, limits: small });
  const sys = legacySysInfo(sysInfo.value, file);
  const main = unpickle(buf, { file, start: sysInfo.end, limits });
  const keys = unpickle(buf, { file, start: main.end, limits });
  if (!Array.isArray(keys.value) || keys.value.some((k) => typeof k !== 'string')) throw new CheckpointError(`${file}: legacy checkpoint: the storage key list is not a list of strings`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bytes = new Map<StorageRef, Uint8Array>();
  // A file whose LongStorages held 4-byte ints (an early Windows build) would not line up
  // below; it is then refused (never misread), and the message says why it may be.
  const why = sys.long === 4 ? ` (its sys_info says long is 4 bytes, as files saved on Windows do; LongStorage elements are read as 8 bytes, as torch.load reads them)` : '';
  let pos = keys.end;
  for (const key of keys.value as string[]) {
    const s = main.storages.get(key);
    if (!s) throw new CheckpointError(`${file}: legacy checkpoint lists storage '${key}', which no tensor uses`);
    if (bytes.has(s)) throw new CheckpointError(`${file}: legacy checkpoint lists storage '${key}' twice`);
    if (pos + 8 > buf.length) throw new CheckpointError(`${file}: truncated: storage '${key}' has no size at byte ${pos} (file has ${buf.length})${why}`);
    // Older writers put the element count in the saving machine's byte order
    // (torch/csrc/generic/serialization.cpp: doWrite(fd, &size, 8)); torch.load reads it
    // little-endian. The elements were always written little-endian (converted if need be).
    const numel = dv.getBigInt64(pos, true);
    if (numel !== BigInt(s.numel) && !(sys.big && dv.getBigInt64(pos, false) === BigInt(s.numel))) {
      throw new CheckpointError(`${file}: storage '${key}' says ${numel} elements in the data, ${s.numel} in the pickle${why}`);
    }
    const n = s.numel * DTYPE_BYTES[s.dtype];
    pos += 8;
    if (n > buf.length - pos) throw new CheckpointError(`${file}: truncated: storage '${key}' needs ${n} bytes at ${pos}, ${buf.length - pos} remain${why}`);
    bytes.set(s, buf.subarray(pos, pos + n));
    pos += n;
  }
  for (const s of main.storages.values()) if (!bytes.has(s)) throw new CheckpointError(`${file}: storage '${s.key}' has no data (missing from the key list)`);
  if (pos !== buf.length) throw new CheckpointError(`${file}: ${buf.length - pos} unexpected bytes after the last storage${why}`);
  return { root: main.value, found: budgetedTensors(main.value, buf.length, file), bytes, little: true };
}

/**
 * The legacy format's sys_info dict ({protocol_version, little_endian, type_sizes: {short,
 * int, long}}), checked. NOTE: torch.load reads it and ignores it (serialization.py
 * `_legacy_load`: `_sys_info = pickle_module.load(f)`): storages' elements are little-endian
 * on every machine (the writer converted them) and a LongStorage element is 8 bytes whatever
 * `long` was. We do the same, except that the one thing a big-endian writer did put in its
 * own byte order (each storage's element count) is accepted in that order too.
 */
function legacySysInfo(v: PickleValue, file: string): { big: boolean; long: number } {
  const bad = (what: string): never => { throw new CheckpointError(`${file}: legacy checkpoint's sys_info ${what}; expected a dict {protocol_version: ${LEGACY_PROTOCOL}, little_endian: True|False, type_sizes: {short: 2, int: 4, long: 4|8}}`); };
  if (!(v instanceof Map)) return bad(`is a ${v === null ? 'None' : Array.isArray(v) ? 'list' : typeof v}, not a dict`);
  const le = v.get('little_endian');
  if (typeof le !== 'boolean') bad('lacks little_endian');
  const sizes = v.get('type_sizes');
  let long = 8;
  if (sizes !== undefined) {
    if (!(sizes instanceof Map)) return bad('has a type_sizes that is not a dict');
    const l = sizes.get('long');
    if (l !== undefined && l !== 4 && l !== 8) bad(`says long is ${String(l)} bytes`);
    if (typeof l === 'number') long = l;
  }
  return { big: le === false, long };
}

/** Tensor references (paths) one checkpoint may hold: a state dict has hundreds or
 *  thousands; a 2-byte BINGET per reference must not become a path string each, without end. */
export const MAX_TENSOR_PATHS = 1_000_000;

/** Every TensorRef reachable from `root` with its dotted path, depth first in order; each
 *  container is visited once (the graph may be cyclic), iteratively (it may be deep). */
export function walkTensors(root: PickleValue, file = '<buffer>'): [string, TensorRef][] {
  const out: [string, TensorRef][] = [];
  const seen = new Set<object>();
  const todo: [string, PickleValue][] = [['', root]];
  while (todo.length) {
    const [path, v] = todo.pop()!;
    if (v instanceof TensorRef) {
      if (out.length >= MAX_TENSOR_PATHS) throw new CheckpointError(`${file}: more than ${MAX_TENSOR_PATHS} tensor references (at '${path}'); a checkpoint holds far fewer`);
      out.push([path, v]);
      continue;
    }
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    const kids: [string, PickleValue][] = [];
    const join = (k: unknown) => (path ? `${path}.${String(k)}` : String(k));
    if (v instanceof Map) for (const [k, x] of v) kids.push([join(k), x]);
    else if (Array.isArray(v)) v.forEach((x, i) => kids.push([join(i), x]));
    for (let i = kids.length - 1; i >= 0; i--) todo.push(kids[i]);
  }
  return out;
}

/** IEEE half -> single, bit-exact (NaN payloads and subnormals kept). */
function halfBits(h: number): number {
  const s = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  let m = h & 0x3ff;
  if (e === 31) return (s | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (s | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return s >>> 0;
  let ex = 113;
  while (!(m & 0x400)) { m <<= 1; ex--; }
  return (s | (ex << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/**
 * What a tensor view may make us allocate. A view that repeats no element (contiguous,
 * transposed, sliced) materialises at most its storage's element count, so at most 4x the
 * storage's bytes (bool/uint8 come out as int32); only a broadcast (stride 0, as
 * `expand` saves) or overlapping (`as_strided`, `unfold`) view can ask for more. Such a view
 * is allowed 16x its storage's bytes plus 1 MiB (a small expanded buffer, an unfold of a
 * few overlapping windows still load), and all of a file's tensors together 16x the bytes
 * of its storages plus 64 MiB (so ten thousand full views of one storage cannot add up).
 * Storages' bytes are bounded by the file (STORED entries, legacy) or by the zip caps.
 */
export const VIEW_BUDGET = { factor: 16, slack: 2 ** 20, totalSlack: 64 * 2 ** 20 } as const;

/** Bytes of the array a tensor materialises as (float32, int64, or int32 for the rest). */
const outBytes = (t: TensorRef) => t.numel * (t.storage.dtype === 'int64' ? 8 : 4);

/** The tensors reachable from `root` (walkTensors), once their views pass VIEW_BUDGET. */
function budgetedTensors(root: PickleValue, fileBytes: number, file: string): [string, TensorRef][] {
  const found = walkTensors(root, file);
  const refs = new Set<TensorRef>();
  const storages = new Set<StorageRef>();
  let total = 0;
  for (const [path, t] of found) {
    if (refs.has(t)) continue;
    refs.add(t);
    storages.add(t.storage.view?.root ?? t.storage);
    const sb = t.storage.numel * DTYPE_BYTES[t.storage.dtype];
    const want = outBytes(t);
    const limit = VIEW_BUDGET.factor * sb + VIEW_BUDGET.slack;
    if (want > limit) {
      throw new CheckpointError(`${file}: tensor '${path}' of shape [${t.size.join(', ')}], stride [${t.stride.join(', ')}] would materialise ${want} bytes from the ${sb}-byte storage '${t.storage.key}' `
        + `(a broadcast or overlapping view repeats its elements); refused above ${VIEW_BUDGET.factor} x its storage + 1 MiB (${limit} bytes)`);
    }
    total += want;
  }
  let sbytes = 0;
  for (const s of storages) sbytes += s.numel * DTYPE_BYTES[s.dtype];
  const limit = VIEW_BUDGET.factor * sbytes + VIEW_BUDGET.totalSlack;
  if (total > limit) {
    throw new CheckpointError(`${file}: its ${refs.size} tensors would materialise ${total} bytes from ${sbytes} bytes of storage in a ${fileBytes}-byte file; `
      + `refused above ${VIEW_BUDGET.factor} x the storages' bytes + 64 MiB (${limit} bytes)`);
  }
  return found;
}

/** A tensor's values, contiguous, from its storage's bytes (budget already checked). */
function materialize(t: TensorRef, bytes: Uint8Array, little: boolean, where: string): NamedArray {
  const es = DTYPE_BYTES[t.storage.dtype];
  if (bytes.length !== t.storage.numel * es) throw new CheckpointError(`${where}: storage holds ${bytes.length} bytes, expected ${t.storage.numel * es}`);
  const n = t.numel;
  const shape = [...t.size];
  let contiguous = true;
  for (let d = shape.length - 1, want = 1; d >= 0; d--) {
    if (shape[d] !== 1 && t.stride[d] !== want) contiguous = false;
    want *= shape[d];
  }
  // The storage element of each output element, row-major over size stepping by stride:
  // an odometer, so no index array as large as the output is allocated.
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let s = t.offset;
  const next = contiguous ? () => s++ : () => {
    const at = s;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      s += t.stride[d];
      if (idx[d] < shape[d]) break;
      s -= t.stride[d] * shape[d];
      idx[d] = 0;
    }
    return at;
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (t.storage.dtype) {
    case 'float32': case 'float16': case 'bfloat16': case 'float64': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      const dt = t.storage.dtype;
      if (dt === 'float32' && little && contiguous && (bytes.byteOffset + t.offset * 4) % 4 === 0) {
        bits.set(new Uint32Array(bytes.buffer, bytes.byteOffset + t.offset * 4, n)); // raw copy: bit-exact, NaN payloads too
      } else if (dt === 'float32') for (let i = 0; i < n; i++) bits[i] = dv.getUint32(next() * es, little);
      else if (dt === 'float16') for (let i = 0; i < n; i++) bits[i] = halfBits(dv.getUint16(next() * es, little));
      else if (dt === 'bfloat16') for (let i = 0; i < n; i++) bits[i] = dv.getUint16(next() * es, little) << 16 >>> 0;
      else return { data: narrowF64(n, () => dv.getFloat64(next() * es, little)), shape }; // in order; what it lost: narrowingOf(data)
      return { data: out, shape };
    }
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getBigInt64(next() * es, little);
      return { data: out, shape };
    }
    default: {
      const out = new Int32Array(n);
      const dt = t.storage.dtype;
      for (let i = 0; i < n; i++) {
        const p = next() * es;
        out[i] = dt === 'int32' ? dv.getInt32(p, little) : dt === 'int16' ? dv.getInt16(p, little) : dt === 'int8' ? dv.getInt8(p)
          : dt === 'bool' ? (dv.getUint8(p) ? 1 : 0) : dv.getUint8(p);
      }
      return { data: out, shape };
    }
  }
}

// ---- writing ----------------------------------------------------------------------------

/** Protocol-2 pickle opcodes, written the way Python's pickle writes them. */
class PickleWriter {
  private parts: number[] = [];
  private chunks: Uint8Array[] = [];
  op(...bytes: number[]) { for (const b of bytes) this.parts.push(b); }
  raw(b: Uint8Array) { this.flush(); this.chunks.push(b); }
  global(module: string, name: string) { this.op(0x63); this.raw(Buffer.from(`${module}\n${name}\n`, 'utf8')); }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, (b.length >>> 24) & 0xff);
    this.raw(b);
  }
  int(v: number) {
    if (!Number.isSafeInteger(v)) throw new CheckpointError(`writePth: ${v} is not an integer`);
    if (v >= 0 && v < 256) this.op(0x4b, v);
    else if (v >= 0 && v < 65536) this.op(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) this.op(0x4a, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
    else {
      // LONG1: little-endian two's complement, 8 bytes suffice below 2^53.
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(v));
      this.op(0x8a, 8, ...b);
    }
  }
  tuple(items: number[]) {
    if (items.length === 0) { this.op(0x29); return; }
    if (items.length > 3) this.op(0x28);
    for (const v of items) this.int(v);
    this.op(items.length > 3 ? 0x74 : [0, 0x85, 0x86, 0x87][items.length]);
  }
  private flush() { if (this.parts.length) { this.chunks.push(Uint8Array.from(this.parts)); this.parts = []; } }
  bytes(): Uint8Array { this.flush(); return Buffer.concat(this.chunks); }
}

/**
 * A .pth zip of an OrderedDict of tensors, as torch.save writes a state dict: float32 as
 * torch.FloatStorage, integer arrays as torch.LongStorage (int64); protocol 2; entries STORED
 * and 64-byte aligned. Returns the file's chunks.
 * @example const chunks = serializePth(tensors);  // a zip, in chunks
 */
export function serializePth(tensors: Iterable<[string, NamedArray]>, stem = 'archive'): Uint8Array[] {
  const w = new PickleWriter();
  const files: { name: string; data: Uint8Array }[] = [];
  w.op(0x80, 2);
  w.global('collections', 'OrderedDict');
  w.op(0x29, 0x52, 0x28); // EMPTY_TUPLE REDUCE MARK
  let i = 0;
  for (const [name, t] of tensors) {
    const shape = [...t.shape];
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new CheckpointError(`writePth: tensor '${name}' has an invalid shape [${shape}]`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new CheckpointError(`writePth: tensor '${name}' has ${t.data.length} values but its shape [${shape}] needs ${n}`);
    const isFloat = t.data instanceof Float32Array;
    const data = new Uint8Array(n * (isFloat ? 4 : 8));
    const dv = new DataView(data.buffer);
    if (isFloat) { const u = new Uint32Array(t.data.buffer, t.data.byteOffset, n); for (let k = 0; k < n; k++) dv.setUint32(4 * k, u[k], true); }
    else if (t.data instanceof BigInt64Array) for (let k = 0; k < n; k++) dv.setBigInt64(8 * k, t.data[k], true);
    else for (let k = 0; k < n; k++) dv.setBigInt64(8 * k, BigInt(t.data[k]), true);
    const key = String(i++);
    files.push({ name: `${stem}/data/${key}`, data });
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    w.str(name);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.op(0x28, 0x28); // MARK MARK: the args tuple, then the persistent id
    w.str('storage');
    w.global('torch', isFloat ? 'FloatStorage' : 'LongStorage');
    w.str(key);
    w.str('cpu');
    w.int(n);
    w.op(0x74, 0x51); // TUPLE BINPERSID
    w.int(0);
    w.tuple(shape);
    w.tuple(stride);
    w.op(0x89); // requires_grad False
    w.global('collections', 'OrderedDict');
    w.op(0x29, 0x52, 0x74, 0x52); // EMPTY_TUPLE REDUCE (backward_hooks), TUPLE, REDUCE
  }
  w.op(0x75, 0x2e); // SETITEMS STOP
  const enc = (s: string) => Buffer.from(s, 'utf8');
  return buildStoredZip([
    { name: `${stem}/data.pkl`, data: w.bytes() },
    { name: `${stem}/byteorder`, data: enc('little') },
    ...files,
    { name: `${stem}/version`, data: enc('3\n') },
  ]);
}

/**
 * Writes a .pth atomically (temp file, fsync, rename).
 * @example writePth('weights.pth', Object.entries(model.stateDict()));  // torch.load(weights_only=True) reads it
 */
export function writePth(path: string, tensors: Iterable<[string, NamedArray]>): void {
  writeFileAtomic(path, serializePth(tensors));
}
