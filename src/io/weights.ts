// Weights in and out, whatever the checkpoint's shape: .pth/.pt/.bin (torch.save, zip or
// legacy) and .safetensors in; a dict holding 'state_dict', 'model' or 'model_state_dict'
// unwrapped; a 'module.' prefix on every key (DataParallel) stripped; user prefix renames
// (--key-map FROM=TO); timm and Hugging Face transformers ResNet names mapped to
// torchvision's. Every step it takes is said in `notes` (the CLI's load report).
// Files we write say what they hold: arch, classes, input channels and size, normalisation
// (WeightsInfo, as flat strings in safetensors `__metadata__`; .pth has no place for them).
// Not here: fitting the tensors to a model (Module.loadStateDict does, and reports).

import { extname } from 'node:path';
import { readFileSync } from 'node:fs';
import { CheckpointError, InvalidArgumentError } from '../errors.js';
import { TensorRef, type PickleKey, type PickleValue } from './pickle.js';
import { isPthBuffer, parsePth, writePth } from './pth.js';
import { parseSafetensors, writeSafetensors, type NamedArray } from './safetensors.js';
import type { StateValue } from '../nn/state_dict.js';

/** @example const m: KeyMapping = 'hf';  // Hugging Face transformers names */
export type KeyMapping = 'torchvision' | 'timm' | 'hf' | 'auto';
/** @example KEY_MAPPINGS.join(', ')  // 'auto, torchvision, timm, hf' */
export const KEY_MAPPINGS: readonly KeyMapping[] = ['auto', 'torchvision', 'timm', 'hf'];

/** @example const { tensors } = loadWeights('timm_resnet50.safetensors', { mapping: 'timm', keyMap: [['model.', '']] } satisfies LoadWeightsOptions); */
export interface LoadWeightsOptions {
  /** Prefix renames [FROM, TO], applied in order (the first matching FROM wins), after the
   *  unwrapping and the 'module.' strip, before the name mapping. */
  keyMap?: [string, string][];
  /** Whose names the file uses; 'auto' (default) recognises timm and transformers keys. */
  mapping?: KeyMapping;
}

/** @example const { tensors, notes, format, info }: LoadedWeights = loadWeights('resnet20.safetensors'); */
export interface LoadedWeights {
  tensors: Map<string, NamedArray>;
  /** What was done to get there, one sentence each. */
  notes: string[];
  /** The file's format. */
  format: 'pth-zip' | 'pth-legacy' | 'safetensors';
  /** What the file says about its net (safetensors metadata; empty for .pth). */
  info: WeightsInfo;
}

/**
 * What a weights file says about the net it holds, beyond the tensors. Every field is
 * optional: a loader uses what is there and derives the rest (classes from the classifier's
 * rows, input channels from `conv1.weight`).
 * @example
 * const info: WeightsInfo = { arch: 'resnet20', labels: ['cat', 'dog'], inChannels: 1, inputSize: [28, 28], mean: [0.286], std: [0.353] };
 */
export interface WeightsInfo {
  /** A registered arch (`resnet list`). */
  arch?: string;
  /** Classes of the classifier. */
  numClasses?: number;
  /** Class names, one per logit. */
  labels?: string[];
  /** Input channels: 1 (grey) or 3 (RGB). */
  inChannels?: number;
  /** The input [H, W] the net was trained on (the crop predict and features use). */
  inputSize?: [number, number];
  /** Per-channel normalisation of inputs in [0, 1] units: (x - mean) / std. */
  mean?: number[];
  std?: number[];
  /** Further registry options the net was built with (e.g. { shortcut: 'B', width: 2 }). */
  modelOptions?: Record<string, unknown>;
}

/** The `__metadata__` keys WeightsInfo is stored under (strings: JSON for arrays). */
const INFO_KEYS = {
  arch: 'arch', numClasses: 'num_classes', labels: 'labels', inChannels: 'in_channels', inputSize: 'input_size',
  mean: 'mean', std: 'std', modelOptions: 'model_options',
} as const satisfies Record<keyof WeightsInfo, string>;

/**
 * WeightsInfo as safetensors metadata (string -> string).
 * @example
 * writeSafetensors('net.safetensors', tensors, infoToMetadata({ arch: 'resnet20', inChannels: 1 }));
 */
export function infoToMetadata(info: WeightsInfo): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (k: keyof WeightsInfo, v: string): void => { out[INFO_KEYS[k]] = v; };
  if (info.arch !== undefined) put('arch', info.arch);
  const n = info.numClasses ?? info.labels?.length;
  if (n !== undefined) put('numClasses', String(n));
  if (info.labels !== undefined) put('labels', JSON.stringify(info.labels));
  if (info.inChannels !== undefined) put('inChannels', String(info.inChannels));
  if (info.inputSize !== undefined) put('inputSize', `${info.inputSize[0]}x${info.inputSize[1]}`);
  if (info.mean !== undefined) put('mean', JSON.stringify(info.mean));
  if (info.std !== undefined) put('std', JSON.stringify(info.std));
  if (info.modelOptions !== undefined && Object.keys(info.modelOptions).length) put('modelOptions', JSON.stringify(info.modelOptions));
  return out;
}

/**
 * Reads WeightsInfo back from safetensors metadata; a value that does not parse is a
 * CheckpointError naming the file and the key.
 * @example
 * const info = metadataToInfo(readSafetensors('net.safetensors').metadata);  // { arch: 'resnet20', ... }
 */
export function metadataToInfo(meta: Record<string, string>, file = '<metadata>'): WeightsInfo {
  const info: WeightsInfo = {};
  const bad = (k: string, want: string): never => { throw new CheckpointError(`${file}: metadata '${k}' must be ${want}, got ${JSON.stringify(meta[k]).slice(0, 80)}`); };
  const int = (k: string): number | undefined => {
    if (meta[k] === undefined) return undefined;
    const v = Number(meta[k]);
    return Number.isInteger(v) && v >= 1 ? v : bad(k, 'an integer >= 1');
  };
  const json = (k: string): unknown => {
    if (meta[k] === undefined) return undefined;
    try { return JSON.parse(meta[k]); } catch { return bad(k, 'JSON'); }
  };
  const numbers = (k: string): number[] | undefined => {
    const v = json(k);
    if (v === undefined) return undefined;
    return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? v as number[] : bad(k, 'a JSON array of numbers');
  };
  if (meta[INFO_KEYS.arch] !== undefined) info.arch = meta[INFO_KEYS.arch];
  const n = int(INFO_KEYS.numClasses);
  if (n !== undefined) info.numClasses = n;
  const labels = json(INFO_KEYS.labels);
  if (labels !== undefined) {
    if (!Array.isArray(labels) || !labels.every((x) => typeof x === 'string')) bad(INFO_KEYS.labels, 'a JSON array of strings');
    info.labels = labels as string[];
  }
  const c = int(INFO_KEYS.inChannels);
  if (c !== undefined) info.inChannels = c;
  const size = meta[INFO_KEYS.inputSize];
  if (size !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(size);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) bad(INFO_KEYS.inputSize, "'HxW' (e.g. 28x28)");
    info.inputSize = [Number(m![1]), Number(m![2])];
  }
  const mean = numbers(INFO_KEYS.mean);
  if (mean !== undefined) info.mean = mean;
  const std = numbers(INFO_KEYS.std);
  if (std !== undefined) info.std = std;
  const mo = json(INFO_KEYS.modelOptions);
  if (mo !== undefined) {
    if (typeof mo !== 'object' || mo === null || Array.isArray(mo)) bad(INFO_KEYS.modelOptions, 'a JSON object');
    info.modelOptions = mo as Record<string, unknown>;
  }
  return info;
}

/** The dict keys that hold the state dict in training checkpoints, in the order tried. */
const WRAPPERS = ['state_dict', 'model_state_dict', 'model'];

/**
 * Reads a checkpoint and returns torchvision-named tensors plus notes on what was changed.
 * @example
 * const { tensors, notes } = loadWeights('model_best.pth.tar');
 * const report = createModel('resnet18').loadStateDict(tensors);
 */
export function loadWeights(path: string, opts: LoadWeightsOptions = {}): LoadedWeights {
  let buf: Buffer;
  try { buf = readFileSync(path); } catch (e) { throw new CheckpointError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  const notes: string[] = [];
  let tensors: Map<string, NamedArray>;
  let format: LoadedWeights['format'];
  let info: WeightsInfo = {};
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') {
    const st = parseSafetensors(buf, path);
    tensors = st.tensors;
    info = metadataToInfo(st.metadata, path);
    format = 'safetensors';
  } else if (isPthBuffer(buf) || ['.pth', '.pt', '.bin', '.tar', '.ckpt'].includes(ext)) {
    const c = parsePth(buf, path);
    format = c.format === 'zip' ? 'pth-zip' : 'pth-legacy';
    tensors = pickStateDict(c.root, c.arrays, path, notes);
  } else {
    throw new CheckpointError(`${path}: unknown weights format '${ext || '(no extension)'}'; supported: .pth, .pt, .bin (torch.save) and .safetensors`);
  }
  if (tensors.size === 0) throw new CheckpointError(`${path}: holds no tensors`);
  tensors = stripModulePrefix(tensors, notes);
  if (opts.keyMap?.length) tensors = applyKeyMap(tensors, opts.keyMap, path, notes);
  tensors = mapNames(tensors, opts.mapping ?? 'auto', path, notes);
  return { tensors, notes, format, info };
}

/**
 * What saveWeights takes: a state dict as `model.stateDict()` returns it (a record), a Map of
 * named arrays (what loadWeights returns), or [name, array] pairs. Tensors are read back.
 * @example
 * const w: WeightsInput = model.stateDict();
 * saveWeights('w.safetensors', w);
 */
export type WeightsInput = Record<string, StateValue> | ReadonlyMap<string, StateValue> | Iterable<[string, StateValue]>;

/**
 * Options of saveWeights: what the file says about its net, plus any other metadata.
 * @example saveWeights('grey.safetensors', model.stateDict(), { arch: 'resnet20', labels: ['no', 'yes'], metadata: { author: 'me' } } satisfies SaveWeightsOptions);
 */
export interface SaveWeightsOptions extends WeightsInfo {
  /** Extra safetensors metadata (string -> string), written as is. */
  metadata?: Record<string, string>;
}

function toNamedArray(name: string, v: StateValue): NamedArray {
  if (v === null || typeof v !== 'object' || !('shape' in v)) throw new InvalidArgumentError(`saveWeights: '${name}' is not a tensor or { data, shape } (got ${v === null ? 'null' : typeof v})`);
  if ('toArray' in v && typeof v.toArray === 'function') return { data: v.toArray(), shape: [...v.shape] };
  const d = (v as { data: ArrayLike<number> | BigInt64Array }).data;
  const data = d instanceof Float32Array || d instanceof Int32Array || d instanceof BigInt64Array ? d : Float32Array.from(d as ArrayLike<number>);
  return { data, shape: [...v.shape] };
}

function entriesOf(weights: WeightsInput): [string, NamedArray][] {
  if (weights === null || typeof weights !== 'object') {
    throw new InvalidArgumentError(`saveWeights: 'weights' must be a state dict (model.stateDict()), a Map or [name, tensor] pairs, got ${weights === null ? 'null' : typeof weights}`);
  }
  const pairs: Iterable<[string, StateValue]> = weights instanceof Map || Symbol.iterator in weights
    ? (weights as Iterable<[string, StateValue]>)
    : Object.entries(weights as Record<string, StateValue>);
  return [...pairs].map(([k, v]) => [k, toNamedArray(k, v)]);
}

/**
 * Writes weights as .safetensors or .pth (zip, loadable by torch.load(weights_only=True)), by
 * extension. A .safetensors file also records `options` (arch, classes, input size,
 * normalisation) in its `__metadata__`, with the input channels and classes read off
 * conv1.weight and the classifier when not given; loadModel reads them back.
 * @example
 * const model = createModel('resnet20', { inChannels: 1 });
 * saveWeights('resnet20.safetensors', model.stateDict(), { arch: 'resnet20', inChannels: 1, inputSize: [28, 28], mean: [0.286], std: [0.353] });
 */
export function saveWeights(path: string, weights: WeightsInput, options: SaveWeightsOptions = {}): void {
  const entries = entriesOf(weights);
  const ext = extname(path).toLowerCase();
  const { metadata = {}, ...given } = options;
  // What the tensors say themselves, unless the options say it: input channels (conv1.weight)
  // and classes (the classifier's rows).
  const shapes = new Map(entries.map(([k, v]) => [k, v.shape]));
  const stem = shapes.get('conv1.weight');
  const head = shapes.get('fc.weight') ?? shapes.get('linear.weight');
  const info: WeightsInfo = {
    ...(stem?.length === 4 ? { inChannels: stem[1] } : {}),
    ...(head?.length === 2 && !given.labels ? { numClasses: head[0] } : {}),
    ...given,
  };
  if (ext === '.safetensors') writeSafetensors(path, entries, { format: 'pt', ...infoToMetadata(info), ...metadata });
  else if (ext === '.pth' || ext === '.pt' || ext === '.bin') writePth(path, entries);
  else throw new InvalidArgumentError(`saveWeights: cannot tell the format of '${path}' from '${ext || '(no extension)'}'; use .safetensors, .pth, .pt or .bin`);
}

/**
 * Parses repeated `FROM=TO` flags; TO may be empty (strip FROM).
 * @example parseKeyMap(['backbone.=', 'head.fc.=fc.'])  // [['backbone.', ''], ['head.fc.', 'fc.']]
 */
export function parseKeyMap(specs: readonly string[] = []): [string, string][] {
  return specs.map((s) => {
    const i = s.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`--key-map '${s}': expected FROM=TO (a key prefix and its replacement, e.g. backbone.= or head.fc.=fc.)`);
    return [s.slice(0, i), s.slice(i + 1)];
  });
}

function isTensorDict(v: PickleValue): v is Map<PickleKey, PickleValue> {
  if (!(v instanceof Map)) return false;
  for (const x of v.values()) if (x instanceof TensorRef) return true;
  return false;
}

function pickStateDict(root: PickleValue, arrays: Map<TensorRef, NamedArray>, file: string, notes: string[]): Map<string, NamedArray> {
  let dict: Map<PickleKey, PickleValue> | null = null;
  if (root instanceof Map) {
    for (const w of WRAPPERS) {
      const v = root.get(w);
      if (isTensorDict(v ?? null)) {
        dict = v as Map<PickleKey, PickleValue>;
        const others = [...root.keys()].filter((k) => k !== w).map(String);
        notes.push(`unwrapped '${w}' from the checkpoint dict${others.length ? ` (also there, ignored: ${list(others)})` : ''}`);
        break;
      }
    }
    if (!dict && isTensorDict(root)) dict = root;
  }
  if (!dict) {
    const what = root instanceof Map ? `a dict with keys ${list([...root.keys()].map(String))}` : `a ${root === null ? 'None' : Array.isArray(root) ? 'list' : root instanceof TensorRef ? 'single tensor' : typeof root}`;
    throw new CheckpointError(`${file}: no state dict found: the file holds ${what}; expected a dict of tensors, or a dict holding one under ${WRAPPERS.map((w) => `'${w}'`).join(', ')}`);
  }
  const out = new Map<string, NamedArray>();
  const skipped: string[] = [];
  for (const [k, v] of dict) {
    if (v instanceof TensorRef && typeof k === 'string') out.set(k, arrays.get(v)!);
    else skipped.push(String(k));
  }
  if (skipped.length) notes.push(`skipped ${skipped.length} entr${skipped.length === 1 ? 'y' : 'ies'} that are not tensors: ${list(skipped)}`);
  return out;
}

function stripModulePrefix(t: Map<string, NamedArray>, notes: string[]): Map<string, NamedArray> {
  for (const k of t.keys()) if (!k.startsWith('module.')) return t;
  notes.push(`stripped the 'module.' prefix (a DataParallel checkpoint) from all ${t.size} keys`);
  return new Map([...t].map(([k, v]) => [k.slice('module.'.length), v]));
}

function rename(t: Map<string, NamedArray>, fn: (k: string) => string, file: string, why: string): [Map<string, NamedArray>, number] {
  const out = new Map<string, NamedArray>();
  const from = new Map<string, string>();
  let changed = 0;
  for (const [k, v] of t) {
    const nk = fn(k);
    if (nk !== k) changed++;
    if (out.has(nk)) throw new CheckpointError(`${file}: ${why} gives two tensors the name '${nk}' ('${from.get(nk)}' and '${k}')`);
    out.set(nk, v);
    from.set(nk, k);
  }
  return [out, changed];
}

function applyKeyMap(t: Map<string, NamedArray>, keyMap: [string, string][], file: string, notes: string[]): Map<string, NamedArray> {
  const hits = keyMap.map(() => 0);
  const [out] = rename(t, (k) => {
    const i = keyMap.findIndex(([f]) => k.startsWith(f));
    if (i < 0) return k;
    hits[i]++;
    return keyMap[i][1] + k.slice(keyMap[i][0].length);
  }, file, '--key-map');
  keyMap.forEach(([f, to], i) => notes.push(hits[i] ? `renamed ${hits[i]} key(s) with --key-map ${f}=${to}` : `--key-map ${f}=${to} matched no key`));
  return out;
}

// transformers' modeling_resnet.py: ResNetEmbeddings(embedder: ResNetConvLayer), stages of
// layers whose `shortcut` is a ResNetShortCut and whose `layer` is a Sequential of
// ResNetConvLayer(convolution, normalization); the head is classifier = Sequential(Flatten, Linear).
const HF_RE = /^(?:resnet\.)?(?:embedder\.embedder\.|encoder\.stages\.)/;
function hfName(k: string): string {
  const m = /^(?:resnet\.)?(.*)$/.exec(k)![1];
  let r: RegExpExecArray | null;
  if ((r = /^embedder\.embedder\.(convolution|normalization)\.(.+)$/.exec(m))) return `${r[1] === 'convolution' ? 'conv1' : 'bn1'}.${r[2]}`;
  if ((r = /^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.(convolution|normalization)\.(.+)$/.exec(m))) {
    return `layer${Number(r[1]) + 1}.${r[2]}.downsample.${r[3] === 'convolution' ? 0 : 1}.${r[4]}`;
  }
  if ((r = /^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.(convolution|normalization)\.(.+)$/.exec(m))) {
    return `layer${Number(r[1]) + 1}.${r[2]}.${r[4] === 'convolution' ? 'conv' : 'bn'}${Number(r[3]) + 1}.${r[5]}`;
  }
  if ((r = /^classifier\.1\.(weight|bias)$/.exec(k))) return `fc.${r[1]}`;
  return k;
}

// timm's ResNet (timm/models/resnet.py) uses torchvision's names (conv1, bn1, layer1..4,
// downsample.0/1, fc); its newer heads (ClassifierHead, ResNetV2/ByobNet) put the classifier
// at head.fc.
const timmName = (k: string) => (k.startsWith('head.fc.') ? `fc.${k.slice('head.fc.'.length)}` : k);

function mapNames(t: Map<string, NamedArray>, mapping: KeyMapping, file: string, notes: string[]): Map<string, NamedArray> {
  if (!KEY_MAPPINGS.includes(mapping)) throw new InvalidArgumentError(`loadWeights: unknown mapping '${String(mapping)}'; valid: ${KEY_MAPPINGS.join(', ')}`);
  const keys = [...t.keys()];
  let m = mapping;
  if (m === 'auto') m = keys.some((k) => HF_RE.test(k)) ? 'hf' : keys.some((k) => k.startsWith('head.fc.')) ? 'timm' : 'torchvision';
  if (m === 'torchvision') return t;
  const [out, changed] = m === 'hf' ? rename(t, hfName, file, 'the transformers name map') : rename(t, timmName, file, 'the timm name map');
  if (changed) notes.push(`mapped ${changed} ${m === 'hf' ? 'Hugging Face transformers' : 'timm'} key(s) to torchvision names${mapping === 'auto' ? ' (recognised from the keys)' : ''}`);
  return out;
}

function list(keys: string[], max = 6): string {
  return keys.length <= max ? keys.join(', ') : `${keys.slice(0, max).join(', ')} ... and ${keys.length - max} more`;
}
