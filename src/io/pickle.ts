// A restricted unpickler for PyTorch checkpoints (REFERENCE.md section 3). It rebuilds
// plain containers, storages and tensors and nothing else: GLOBAL resolves only through an
// exact-name allowlist to inert tags, REDUCE runs only those tags as pure TypeScript, BUILD
// only on an OrderedDict, persistent ids only ('storage', type, key, location, numel).
// Python 2's pickles (pre-1.6 legacy checkpoints) are read too: str as (SHORT_)BINSTRING,
// big ints as decimal INT/LONG text, OrderedDict reduced to a list of pairs.
// It never executes anything, never falls back to a broader loader, checks every length
// before slicing and caps bytes, opcodes, stack, memo, nesting, container size and rank.
// Not here: reading storages' bytes (pth.ts does, against the StorageRefs made here).
// Dicts are Maps, so a '__proto__' key stays a key. Object graphs may be cyclic (memo):
// walk them iteratively with a visited set.

import { CheckpointError } from '../errors.js';

/** @example const { dtype }: { dtype: TorchDType } = new StorageRef('0', 'float32', 'cpu', 4); */
export type TorchDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** Bytes per element of each storage dtype. */
export const DTYPE_BYTES: Record<TorchDType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

const STORAGE_TYPES: Record<string, TorchDType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/**
 * An allowed global, as an inert tag: nothing is imported or called.
 * @example const allowed = ALLOWED_GLOBALS.includes('collections.OrderedDict');  // the only globals unpickle builds
 */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string, readonly kind: 'ordered_dict' | 'rebuild_tensor' | 'rebuild_tensor_v2' | 'rebuild_parameter' | 'storage', readonly dtype?: TorchDType) {}
  get fullName(): string { return `${this.module}.${this.name}`; }
}

const ALLOWED = new Map<string, PickleGlobal>([
  ['collections.OrderedDict', new PickleGlobal('collections', 'OrderedDict', 'ordered_dict')],
  ['torch._utils._rebuild_tensor_v2', new PickleGlobal('torch._utils', '_rebuild_tensor_v2', 'rebuild_tensor_v2')],
  // NOTE: the four-argument form (storage, offset, size, stride) that PyTorch 0.3 wrote (and
  // the legacy checkpoints of that era still carry): the same tensor, never requiring grad.
  ['torch._utils._rebuild_tensor', new PickleGlobal('torch._utils', '_rebuild_tensor', 'rebuild_tensor')],
  ['torch._utils._rebuild_parameter', new PickleGlobal('torch._utils', '_rebuild_parameter', 'rebuild_parameter')],
]);
for (const [name, dtype] of Object.entries(STORAGE_TYPES)) {
  ALLOWED.set(`torch.${name}`, new PickleGlobal('torch', name, 'storage', dtype));
  // NOTE: legacy (pre-1.6) files saved from a GPU name torch.cuda.FloatStorage etc.: the same inert tag.
  ALLOWED.set(`torch.cuda.${name}`, new PickleGlobal('torch.cuda', name, 'storage', dtype));
}

/**
 * The globals a checkpoint may name (everything else is refused by name).
 * @example console.log(ALLOWED_GLOBALS.join('\n'));
 */
export const ALLOWED_GLOBALS: readonly string[] = [...ALLOWED.keys()];

/**
 * A storage named by a persistent id; its bytes live outside the pickle. A view (legacy
 * files before PyTorch 0.4 could name one) is `numel` elements of `view.root` from `view.offset`.
 * @example const s = new StorageRef('0', 'float32', 'cpu', 10);
 */
export class StorageRef {
  constructor(readonly key: string, readonly dtype: TorchDType, readonly location: string, readonly numel: number,
    readonly view?: { readonly root: StorageRef; readonly offset: number }) {}
}

/**
 * A tensor view over a storage, checked against it: every index it reaches is in bounds.
 * @example
 * const { value } = unpickle(bytes);
 * if (value instanceof TensorRef) console.log(value.size, value.storage.dtype);
 */
export class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly size: readonly number[], readonly stride: readonly number[], readonly requiresGrad: boolean) {}
  get numel(): number { return this.size.reduce((a, b) => a * b, 1); }
}

/** @example const key: PickleKey = 'state_dict'; */
export type PickleKey = string | number | bigint | boolean | null;
/** @example const { value }: { value: PickleValue } = unpickle(bytes); */
export type PickleValue = null | boolean | number | bigint | string | PickleValue[] | Map<PickleKey, PickleValue> | TensorRef | StorageRef | PickleGlobal;

const tuples = new WeakSet<object>();
const orderedDicts = new WeakSet<object>();
/**
 * Tuples come back as frozen arrays; lists as ordinary ones.
 * @example
 * const { value } = unpickle(bytes);
 * if (isTuple(value)) console.log(value.length);
 */
export function isTuple(v: unknown): v is readonly PickleValue[] { return typeof v === 'object' && v !== null && tuples.has(v); }
/**
 * True for a dict that was a collections.OrderedDict.
 * @example
 * const { value } = unpickle(bytes);
 * if (isOrderedDict(value)) console.log([...value.keys()]);
 */
export function isOrderedDict(v: unknown): v is Map<PickleKey, PickleValue> { return v instanceof Map && orderedDicts.has(v); }

/**
 * @example
 * const limits: Partial<PickleLimits> = { maxBytes: 2 ** 30 };
 * const { value } = unpickle(bytes, { limits });
 */
export interface PickleLimits {
  /** Bytes one pickle may span. */
  maxBytes: number;
  maxOps: number;
  maxStack: number;
  maxMemo: number;
  /** Open MARKs and container nesting. */
  maxDepth: number;
  /** Items in one list, tuple or dict. */
  maxContainer: number;
  maxString: number;
  maxRank: number;
  /** Elements of one tensor. */
  maxElements: number;
}

/** @example PICKLE_LIMITS.maxBytes  // 256 MiB */
export const DEFAULT_LIMITS: PickleLimits = {
  maxBytes: 256 * 2 ** 20, maxOps: 20_000_000, maxStack: 1_000_000, maxMemo: 1_000_000, maxDepth: 1000,
  maxContainer: 10_000_000, maxString: 16 * 2 ** 20, maxRank: 32, maxElements: 2 ** 31 - 1,
};

/** @example const { value } = unpickle(bytes, { file: 'data.pkl' } satisfies UnpickleOptions); */
export interface UnpickleOptions {
  /** Names the file in errors. */
  file?: string;
  /** Where the pickle starts in the buffer (legacy files hold several in a row). */
  start?: number;
  limits?: Partial<PickleLimits>;
  /** Storages already named by earlier pickles of the same file (legacy). */
  storages?: Map<string, StorageRef>;
}

export interface Unpickled {
  value: PickleValue;
  /** Byte position just past STOP. */
  end: number;
  /** Every storage the pickle named, by key (roots only: a view's bytes are its root's). */
  storages: Map<string, StorageRef>;
}

// Opcode names for messages (pickletools), allowed or not.
const NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};
const opName = (op: number) => NAMES[op] ?? 'unknown';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Unpickles one pickle from `buf` (protocol 2-4, the opcodes a state dict uses).
 * @example const { value } = unpickle(bytes, { file: 'archive/data.pkl' });  // only the globals torch.save writes for tensors
 */
export function unpickle(buf: Uint8Array, opts: UnpickleOptions = {}): Unpickled {
  const file = opts.file ?? '<buffer>';
  const L: PickleLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const start = opts.start ?? 0;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = Math.min(buf.length, start + L.maxBytes);
  const storages = opts.storages ?? new Map<string, StorageRef>();
  const views = new Map<string, StorageRef>();
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  const depth = new WeakMap<object, number>();
  let pos = start;
  let op = 0;
  let opPos = start;

  const fail = (msg: string): never => {
    throw new CheckpointError(`${file}: unsafe or corrupt pickle: ${msg} (opcode ${opName(op)} at byte ${opPos})`);
  };
  const need = (n: number): number => {
    if (n > end - pos) {
      if (n > buf.length - pos) fail(`needs ${n} more bytes but ${buf.length - pos} remain (truncated?)`);
      fail(`runs past the limit of ${L.maxBytes} bytes per pickle`);
    }
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => buf[need(1)];
  const u16 = () => dv.getUint16(need(2), true);
  const u32 = () => dv.getUint32(need(4), true);
  const base = () => (marks.length ? marks[marks.length - 1] : 0);
  const pop = (): PickleValue => {
    if (stack.length <= base()) fail('pops an empty stack');
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length <= base()) fail('needs a value on the stack');
    return stack[stack.length - 1];
  };
  const push = (v: PickleValue) => {
    if (stack.length >= L.maxStack) fail(`stack deeper than ${L.maxStack}`);
    stack.push(v);
  };
  const popMark = (): PickleValue[] => {
    if (!marks.length) fail('no MARK to pop to');
    const m = marks.pop()!;
    return stack.splice(m);
  };
  const depthOf = (v: PickleValue): number => (typeof v === 'object' && v !== null ? depth.get(v) ?? 1 : 0);
  const grow = (c: object, items: Iterable<PickleValue>) => {
    let d = depth.get(c) ?? 1;
    for (const it of items) d = Math.max(d, depthOf(it) + 1);
    if (d > L.maxDepth) fail(`containers nested deeper than ${L.maxDepth}`);
    depth.set(c, d);
  };
  const tuple = (items: PickleValue[]): PickleValue[] => {
    if (items.length > L.maxContainer) fail(`a tuple of ${items.length} items (limit ${L.maxContainer})`);
    grow(items, items);
    tuples.add(items);
    return Object.freeze(items) as PickleValue[];
  };
  const str = (n: number): string => {
    if (n > L.maxString) fail(`a string of ${n} bytes (limit ${L.maxString})`);
    const at = need(n);
    try { return utf8.decode(buf.subarray(at, at + n)); } catch { return fail('a string that is not UTF-8'); }
  };
  const resolve = (module: string, name: string): PickleGlobal => {
    const g = ALLOWED.get(`${module}.${name}`);
    if (!g) {
      throw new CheckpointError(`${file}: refused global ${module}.${name}: a checkpoint may only name ${[...ALLOWED.keys()].filter((k) => !k.startsWith('torch.cuda.')).join(', ')} `
        + `(this loader never runs code from a file; if it holds a whole pickled model or other objects, re-save model.state_dict())`);
    }
    return g;
  };
  const setItem = (d: PickleValue, k: PickleValue, v: PickleValue) => {
    if (!(d instanceof Map)) fail(`SETITEM on a ${kindOf(d)}, only dicts allowed`);
    const m = d as Map<PickleKey, PickleValue>;
    if (!(k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean')) fail(`a dict key of kind ${kindOf(k)}; keys must be str, int, float, bool or None`);
    m.set(k as PickleKey, v);
    if (m.size > L.maxContainer) fail(`a dict of more than ${L.maxContainer} items`);
    grow(m, [v]);
  };
  const append = (l: PickleValue, items: PickleValue[]) => {
    if (!Array.isArray(l) || tuples.has(l)) fail(`APPEND on a ${kindOf(l)}, only lists allowed`);
    const arr = l as PickleValue[];
    if (arr.length + items.length > L.maxContainer) fail(`a list of more than ${L.maxContainer} items`);
    for (const it of items) arr.push(it);
    grow(arr, items);
  };

  let ops = 0;
  for (;;) {
    if (++ops > L.maxOps) fail(`more than ${L.maxOps} opcodes`);
    opPos = pos;
    op = 0;
    if (pos >= buf.length) fail('the pickle ends before STOP (truncated?)');
    op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 4) fail(`protocol ${v}; only 2 to 4 are read`);
        break;
      }
      case 0x95: { // FRAME: a length hint; check it stays in bounds, then read on
        const at = need(8);
        const n = dv.getBigUint64(at, true);
        if (n > BigInt(end - pos)) fail(`a frame of ${n} bytes but ${end - pos} remain`);
        break;
      }
      case 0x2e: { // STOP
        if (marks.length) fail('STOP with an open MARK');
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack, expected 1`);
        return { value: stack[0], end: pos, storages };
      }
      case 0x28: // MARK
        if (marks.length >= L.maxDepth) fail(`MARKs nested deeper than ${L.maxDepth}`);
        marks.push(stack.length);
        break;
      case 0x63: { // GLOBAL
        const line = () => {
          const nl = buf.indexOf(0x0a, pos);
          if (nl < 0 || nl >= end || nl - pos > 512) fail('a GLOBAL name without its newline within 512 bytes');
          const s = str(nl - pos);
          pos++;
          return s;
        };
        const module = line();
        push(resolve(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof name !== 'string' || typeof module !== 'string') fail('STACK_GLOBAL on values that are not strings');
        push(resolve(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        push(reduce(fn, args));
        break;
      }
      case 0x62: { // BUILD: only on an OrderedDict, whose state (e.g. _metadata) is validated and ignored
        const state = pop();
        const inst = top();
        if (!isOrderedDict(inst)) fail(`BUILD on a ${kindOf(inst)}; only an OrderedDict may be built`);
        if (!(state === null || state instanceof Map || isTuple(state))) fail(`BUILD state of kind ${kindOf(state)}`);
        break;
      }
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x85: { const a = pop(); push(tuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of values');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(dv.getInt32(need(4), true)); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: { // LONG1: n bytes of little-endian two's complement
        const n = u8();
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]);
        if (n > 0 && buf[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x49: case 0x4c: { // INT, LONG: decimal text to a newline. Python 2 pickles an int beyond
        // 32 bits as INT even at protocol 2 (an optimizer state's id()s); 'I00'/'I01' are False/True.
        const nl = buf.indexOf(0x0a, pos);
        if (nl < 0 || nl >= end || nl - pos > 80) fail('a decimal integer without its newline within 80 bytes');
        const text = String.fromCharCode(...buf.subarray(pos, nl));
        pos = nl + 1;
        if (op === 0x49 && (text === '00' || text === '01')) { push(text === '01'); break; }
        const m = (op === 0x49 ? /^[+-]?\d+$/ : /^[+-]?\d+L?$/).exec(text);
        if (!m) fail(`${JSON.stringify(text.slice(0, 40))} is not a decimal integer`);
        const v = BigInt(text.replace(/L$/, ''));
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: push(str(u32())); break; // BINUNICODE
      case 0x8c: push(str(u8())); break; // SHORT_BINUNICODE
      case 0x55: push(str(u8())); break; // SHORT_BINSTRING (torch.load decodes as UTF-8)
      case 0x54: { // BINSTRING: a Python 2 str of 256 bytes or more; the length is signed
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail(`a string of negative length ${n}`);
        push(str(n));
        break;
      }
      case 0x51: push(persistent(pop())); break; // BINPERSID
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo ${i} was never stored`);
        push(memo.get(i)!);
        break;
      }
      case 0x71: case 0x72: case 0x94: { // BINPUT, LONG_BINPUT, MEMOIZE
        const i = op === 0x71 ? u8() : op === 0x72 ? u32() : memo.size;
        if (!memo.has(i) && memo.size >= L.maxMemo) fail(`more than ${L.maxMemo} memo entries`);
        memo.set(i, top());
        break;
      }
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, '0')} (${opName(op)}) is not allowed in a checkpoint`);
    }
  }

  function reduce(fn: PickleValue, args: PickleValue): PickleValue {
    if (!(fn instanceof PickleGlobal)) return fail(`REDUCE on a ${kindOf(fn)}`);
    if (!isTuple(args)) return fail(`REDUCE of ${fn.fullName} with arguments that are not a tuple`);
    const a = args as readonly PickleValue[];
    switch (fn.kind) {
      case 'ordered_dict': {
        // Python 3 reduces an OrderedDict to () and SETITEMS; Python 2.7 to ([[k, v], ...],).
        if (a.length > 1) fail(`collections.OrderedDict with ${a.length} arguments, expected none or a list of pairs`);
        const d = new Map<PickleKey, PickleValue>();
        orderedDicts.add(d);
        if (a.length === 1) {
          const items = a[0];
          if (!Array.isArray(items)) return fail(`collections.OrderedDict of a ${kindOf(items)}, expected a list of [key, value] pairs`);
          for (const it of items as PickleValue[]) {
            if (!Array.isArray(it) || it.length !== 2) return fail(`collections.OrderedDict item ${describe(it)}, expected a [key, value] pair`);
            setItem(d, it[0], it[1]);
          }
        }
        return d;
      }
      case 'rebuild_tensor': {
        // (storage, storage_offset, size, stride): torch/_utils.py, PyTorch 0.3's Tensor.__reduce__
        if (a.length !== 4) fail(`_rebuild_tensor with ${a.length} arguments, expected 4 (storage, offset, size, stride)`);
        const [storage, offset, size, stride] = a;
        if (!(storage instanceof StorageRef)) return fail(`_rebuild_tensor on a ${kindOf(storage)}, expected a storage`);
        return checkedTensor(storage, offset, size, stride, false);
      }
      case 'rebuild_tensor_v2': {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]): torch/_utils.py
        if (a.length !== 6 && a.length !== 7) fail(`_rebuild_tensor_v2 with ${a.length} arguments, expected 6 or 7`);
        const [storage, offset, size, stride, requiresGrad, hooks] = a;
        if (!(storage instanceof StorageRef)) return fail(`_rebuild_tensor_v2 on a ${kindOf(storage)}, expected a storage`);
        if (typeof requiresGrad !== 'boolean') fail('_rebuild_tensor_v2: requires_grad is not a bool');
        if (!(hooks instanceof Map)) fail('_rebuild_tensor_v2: backward_hooks is not a dict');
        if (a.length === 7 && !(a[6] === null || a[6] instanceof Map)) fail('_rebuild_tensor_v2: metadata is not a dict');
        return checkedTensor(storage, offset, size, stride, requiresGrad as boolean);
      }
      case 'rebuild_parameter': {
        // (data, requires_grad, backward_hooks): torch/_utils.py
        if (a.length !== 3) fail(`_rebuild_parameter with ${a.length} arguments, expected 3`);
        const [data, requiresGrad, hooks] = a;
        if (!(data instanceof TensorRef)) return fail(`_rebuild_parameter on a ${kindOf(data)}, expected a tensor`);
        if (typeof requiresGrad !== 'boolean' || !(hooks instanceof Map)) fail('_rebuild_parameter: bad requires_grad or backward_hooks');
        return new TensorRef(data.storage, data.offset, data.size, data.stride, requiresGrad as boolean);
      }
      default:
        return fail(`REDUCE calls ${fn.fullName}, which is a type tag, not a function`);
    }
  }

  function index(v: PickleValue, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} is ${describe(v)}, expected a non-negative integer below 2^53`);
    return v as number;
  }

  function checkedTensor(storage: StorageRef, offset: PickleValue, size: PickleValue, stride: PickleValue, requiresGrad: boolean): TensorRef {
    const off = index(offset, 'a tensor offset');
    if (!isTuple(size) || !isTuple(stride)) return fail('a tensor size or stride that is not a tuple');
    const s = (size as PickleValue[]).map((d) => index(d, 'a tensor size'));
    const st = (stride as PickleValue[]).map((d) => index(d, 'a tensor stride'));
    if (s.length !== st.length) fail(`a tensor of size [${s}] with stride [${st}] (ranks differ)`);
    if (s.length > L.maxRank) fail(`a tensor of rank ${s.length} (limit ${L.maxRank})`);
    // Overflow-safe bounds: the last element reached is offset + sum((size-1)*stride).
    let n = 1n;
    for (const d of s) n *= BigInt(d);
    if (n > BigInt(L.maxElements)) fail(`a tensor of ${n} elements (limit ${L.maxElements})`);
    let last = BigInt(off);
    for (let i = 0; i < s.length; i++) if (s[i] > 0) last += BigInt(s[i] - 1) * BigInt(st[i]);
    const ok = n === 0n ? BigInt(off) <= BigInt(storage.numel) : last < BigInt(storage.numel);
    if (!ok) fail(`a tensor of size [${s}], stride [${st}], offset ${off} reaches element ${last} of storage '${storage.key}', which holds ${storage.numel}`);
    return new TensorRef(storage, off, s, st, requiresGrad);
  }

  function persistent(pid: PickleValue): StorageRef {
    // ('storage', storage_type, key, location, numel) as torch/serialization.py writes it;
    // the legacy format adds view_metadata: None, or (view_key, offset, view_size) before
    // PyTorch 0.4 (_legacy_load reads such a view as view_size elements of the root from offset).
    if (!isTuple(pid) || pid[0] !== 'storage') return fail(`persistent id ${describe(pid)}; only ('storage', type, key, location, numel) is allowed`);
    const p = pid as readonly PickleValue[];
    if (p.length !== 5 && p.length !== 6) return fail(`a storage persistent id of ${p.length} items, expected 5 (or 6 in a legacy file)`);
    const [, type, key, location, numel] = p;
    if (!(type instanceof PickleGlobal) || type.kind !== 'storage') return fail(`a storage of type ${kindOf(type)}`);
    if (typeof key !== 'string' || typeof location !== 'string') return fail('a storage key or location that is not a string');
    const n = index(numel, 'a storage size');
    if (n > L.maxElements) fail(`a storage of ${n} elements (limit ${L.maxElements})`);
    let root = storages.get(key);
    if (root) {
      if (root.dtype !== type.dtype || root.numel !== n) fail(`storage '${key}' named twice, as ${root.dtype}[${root.numel}] and ${type.dtype}[${n}]`);
    } else {
      if (views.has(key)) fail(`storage '${key}' named as a view and as a storage`);
      if (storages.size >= L.maxMemo) fail(`more than ${L.maxMemo} storages`);
      root = new StorageRef(key, type.dtype!, location, n);
      storages.set(key, root);
    }
    const meta = p.length === 6 ? p[5] : null;
    if (meta === null) return root;
    if (!isTuple(meta) || meta.length !== 3 || typeof meta[0] !== 'string') return fail(`storage view metadata ${describe(meta)}, expected (view_key, offset, size)`);
    const vkey = meta[0] as string;
    const off = index(meta[1], 'a storage view offset');
    const vn = index(meta[2], 'a storage view size');
    if (off + vn > root.numel) fail(`storage view '${vkey}' of ${vn} elements from ${off} runs past storage '${key}', which holds ${root.numel}`);
    const prev = views.get(vkey);
    if (prev) {
      if (prev.view!.root !== root || prev.view!.offset !== off || prev.numel !== vn) fail(`storage view '${vkey}' named twice with different roots, offsets or sizes`);
      return prev;
    }
    if (storages.has(vkey)) fail(`storage '${vkey}' named as a view and as a storage`);
    if (views.size >= L.maxMemo) fail(`more than ${L.maxMemo} storage views`);
    const view = new StorageRef(vkey, root.dtype, root.location, vn, { root, offset: off });
    views.set(vkey, view);
    return view;
  }
}

function kindOf(v: PickleValue): string {
  if (v === null) return 'None';
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return tuples.has(v) ? 'tuple' : 'list';
  if (v instanceof TensorRef) return 'tensor';
  if (v instanceof StorageRef) return 'storage';
  if (v instanceof PickleGlobal) return v.fullName;
  return typeof v;
}

function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.length <= 6) return `${tuples.has(v) ? '(' : '['}${v.map((x) => (typeof x === 'object' && x !== null ? kindOf(x) : describe(x))).join(', ')}${tuples.has(v) ? ')' : ']'}`;
  return `a ${kindOf(v)}`;
}
