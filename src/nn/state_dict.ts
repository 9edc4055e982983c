// The state dict: a module's parameters and persistent buffers as plain arrays keyed by
// dotted names (torchvision's names and order), what loadStateDict accepts, the report it
// returns, and the in-place copy it uses. Module (module.ts) walks the tree; this file
// holds the data shapes and the helpers.

import { fmt } from '../tensor/geometry.js';
import { Tensor, tensor } from '../tensor/tensor.js';

/**
 * One state-dict entry: plain row-major values and their shape (PyTorch's tensor shape).
 * @example const { data, shape }: StateTensor = model.stateDict()['conv1.weight'];
 */
export interface StateTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

/** A module's state: parameters and persistent buffers keyed by dotted name, in definition
 *  order (object keys keep insertion order: no key is an array index).
 * @example
 * const sd: StateDict = model.stateDict();
 * Object.keys(sd)  // ['conv1.weight', 'bn1.weight', ...]
 */
export type StateDict = Record<string, StateTensor>;

/**
 * What loadStateDict accepts for one entry: a StateTensor-like value or a Tensor.
 * @example const v: StateValue = { data: new Float32Array(10), shape: [10] };
 */
export type StateValue = { data: ArrayLike<number> | BigInt64Array; shape: readonly number[] } | Tensor;
/**
 * @example
 * const input: StateDictInput = new Map([['fc.bias', { data: new Float32Array(10), shape: [10] }]]);
 * model.loadStateDict(input, { strict: false });
 */
export type StateDictInput = Record<string, StateValue> | ReadonlyMap<string, StateValue>;

/** @example const report = model.loadStateDict(sd, { strict: false } satisfies LoadStateDictOptions); */
export interface LoadStateDictOptions {
  /** Default true: any missing, unexpected or mis-shaped key throws a CheckpointError and
   *  nothing is loaded. With false, what fits is loaded and the report says the rest. */
  strict?: boolean;
}

/** @example const { missing, unexpected, mismatched }: LoadReport = model.loadStateDict(sd, { strict: false }); */
export interface LoadReport {
  /** Keys of the model that the state dict lacks (a missing num_batches_tracked, as in
   *  checkpoints from PyTorch < 0.4.1, is not counted: the counter keeps its value). */
  missing: string[];
  /** Keys of the state dict the model does not have. */
  unexpected: string[];
  /** Keys present on both sides with different shapes (not loaded). */
  mismatched: { key: string; expected: number[]; got: number[] }[];
  /** Keys loaded. */
  loaded: string[];
}

export function readValues(v: StateValue): ArrayLike<number> {
  if (v instanceof Tensor) return v.toArray();
  if (v.data instanceof BigInt64Array) return Array.from(v.data, (x) => Number(x));
  return v.data;
}

/** Writes `values` into `t` in place (y = 0*y + 1*x) and returns true; returns false,
 *  writing nothing, when t holds a non-finite value (0*Inf is NaN): the caller replaces it. */
export function copyInto(t: Tensor, values: ArrayLike<number>): boolean {
  const cur = t.toArray();
  for (let i = 0; i < cur.length; i++) {
    if (!Number.isFinite(cur[i])) return false;
  }
  const src = tensor(values, t.shape, { backend: t.backend, dtype: t.dtype });
  t.backend.axpbyInPlace(t.storage, src.storage, t.shape, 0, 1);
  src.dispose();
  return true;
}

function list(keys: string[], max = 8): string {
  return keys.length <= max ? keys.join(', ') : `${keys.slice(0, max).join(', ')} ... and ${keys.length - max} more`;
}

/**
 * One readable line per problem of a load report.
 * @example console.log(describeReport(model.loadStateDict(sd, { strict: false })));  // 'everything fits' or what does not
 */
export function describeReport(r: LoadReport): string {
  const parts: string[] = [];
  if (r.missing.length) parts.push(`${r.missing.length} missing key(s): ${list(r.missing)}`);
  if (r.unexpected.length) {
    let s = `${r.unexpected.length} unexpected key(s): ${list(r.unexpected)}`;
    if (r.unexpected.every((k) => k.startsWith('module.'))) s += " (a DataParallel checkpoint: strip the 'module.' prefix)";
    parts.push(s);
  }
  if (r.mismatched.length) {
    parts.push(`${r.mismatched.length} mis-shaped key(s): ${list(r.mismatched.map((m) => `${m.key} (model ${fmt(m.expected)}, state dict ${fmt(m.got)})`), 5)}`);
  }
  return parts.join('; ') || 'everything fits';
}

