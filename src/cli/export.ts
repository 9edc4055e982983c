// `resnet export`: build an arch, fill it with weights (a .safetensors or .pth state dict,
// a `resnet train` checkpoint, or a seeded random init) and write it as ONNX (IR 8, opset
// 17, dynamic batch) atomically. Parsing, weight matching and printing only: the graph is
// io/onnx.ts, weights files are read by io/weights.ts (wrappers and 'module.' prefixes
// undone, --key-map renames). A state dict's classes and input channels are read off its
// head and stem when no flag gives them; a checkpoint brings its arch, options and input size.
import { existsSync, statSync } from 'node:fs';
import { CheckpointError, InvalidArgumentError, ResnetError } from '../errors.js';
import { checkOutputPath, writeFileAtomic } from '../io/atomic.js';
import { exportOnnx, ONNX_IR_VERSION } from '../io/onnx.js';
import { readSafetensors, type NamedArray } from '../io/safetensors.js';
import { loadWeights, parseKeyMap, type WeightsInfo } from '../io/weights.js';
import { archInfo, createModel, type ModelOptions, type ShortcutOption } from '../models/index.js';
import { loadCheckpoint, loadRunCheckpoint, META_KEY, type LoadedCheckpoint } from '../train/checkpoint.js';

export interface ExportFlags {
  arch?: string; weights?: string; randomInit?: boolean; seed?: string; classes?: string; inChannels?: string;
  input?: string; shortcut?: string; format?: string; keyMap?: string[]; json?: boolean;
}

export const EXPORT_FORMATS: readonly string[] = ['onnx'];

function int(flag: string, v: string, min = 1): number {
  if (!/^-?\d+$/.test(v.trim()) || Number(v) < min) throw new InvalidArgumentError(`export: ${flag} must be an integer >= ${min}, got '${v}'`);
  return Number(v);
}

function parseSize(v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`export: --input must be HxW (e.g. 224x224) or one size, got '${v}'`);
  return [int('--input', m[1]), int('--input', m[2] ?? m[1])];
}

/** A weights file's tensors (.safetensors or .pth/.pt, unwrapped, torchvision names) and
 *  what was done to them. */
function readWeights(path: string, keyMap: [string, string][]): { tensors: Map<string, NamedArray>; notes: string[]; meta: WeightsInfo } {
  const { tensors, notes, info } = loadWeights(path, { keyMap });
  return { tensors, notes: notes.map((n) => `${path}: ${n}`), meta: info };
}

interface Plan {
  arch: string;
  options: ModelOptions;
  input?: [number, number];
  weights: Map<string, NamedArray> | null;
  source: string;
  notes: string[];
}

/** Arch, options and weights from a `resnet train` checkpoint; flags may only agree with it. */
function fromCheckpoint(ck: LoadedCheckpoint, flags: ExportFlags, opts: ModelOptions, notes: string[] = []): Plan {
  const file = ck.file;
  const m = ck.meta;
  if (flags.arch !== undefined && flags.arch !== m.arch) {
    throw new InvalidArgumentError(`export: --arch ${flags.arch}, but ${file} is a checkpoint of ${m.arch} (leave --arch out, or give ${m.arch})`);
  }
  const saved = m.modelOptions as ModelOptions;
  for (const [k, flag] of [['numClasses', '--classes'], ['inChannels', '--in-channels'], ['shortcut', '--shortcut']] as const) {
    if (opts[k] !== undefined && saved[k] !== undefined && opts[k] !== saved[k]) {
      throw new InvalidArgumentError(`export: ${flag} ${String(opts[k])}, but ${file} was trained with ${String(saved[k])}`);
    }
  }
  return {
    arch: m.arch, options: { ...saved, ...opts }, input: m.input ? [m.input.height, m.input.width] : undefined,
    weights: ck.model, source: file, notes: [...notes, `${file}: a resnet train checkpoint of ${m.arch} (after epoch ${m.epoch}, step ${m.step})`],
  };
}

/** Arch from --arch or the file's metadata (saveWeights writes it); classes and input
 *  channels from the flags, else the metadata, else the head and stem weights. */
function fromStateDict(file: string, flags: ExportFlags, opts: ModelOptions): Plan {
  const { tensors, notes, meta } = readWeights(file, parseKeyMap(flags.keyMap));
  if (flags.arch !== undefined && meta.arch !== undefined && flags.arch !== meta.arch) {
    throw new InvalidArgumentError(`export: --arch ${flags.arch}, but ${file} holds ${meta.arch} weights (leave --arch out: the file names its arch)`);
  }
  const arch = flags.arch ?? meta.arch;
  if (arch === undefined) throw new InvalidArgumentError(`export: --arch is required with a state dict (${file} names no arch); see \`resnet list\``);
  if (flags.arch === undefined) notes.push(`${file}: ${arch} (the file's metadata)`);
  const info = archInfo(arch);
  const { seed: _s, init: _i, backend: _b, ...saved } = (meta.modelOptions ?? {}) as ModelOptions;
  opts = { ...saved, ...opts };
  if (opts.numClasses === undefined && meta.numClasses !== undefined) opts = { ...opts, numClasses: meta.numClasses };
  if (opts.inChannels === undefined && meta.inChannels !== undefined) opts = { ...opts, inChannels: meta.inChannels };
  const head = info.family === 'imagenet' ? 'fc.weight' : 'linear.weight';
  const fc = tensors.get(head);
  if (opts.numClasses === undefined && fc && fc.shape.length === 2) {
    opts = { ...opts, numClasses: fc.shape[0] };
    notes.push(`${fc.shape[0]} classes (from ${head})`);
  }
  const stem = tensors.get('conv1.weight');
  if (opts.inChannels === undefined && stem && stem.shape.length === 4) {
    opts = { ...opts, inChannels: stem.shape[1] };
    if (stem.shape[1] !== 3) notes.push(`${stem.shape[1]} input channel(s) (from conv1.weight)`);
  }
  return { arch: info.name, options: opts, input: meta.inputSize, weights: tensors, source: file, notes };
}

function isTrainCheckpoint(file: string): boolean {
  if (!file.endsWith('.safetensors')) return false;
  return readSafetensors(file).metadata[META_KEY] !== undefined;
}

function plan(flags: ExportFlags): Plan {
  const opts: ModelOptions = {};
  if (flags.classes !== undefined) opts.numClasses = int('--classes', flags.classes);
  if (flags.inChannels !== undefined) opts.inChannels = int('--in-channels', flags.inChannels);
  if (flags.shortcut !== undefined) {
    const s = flags.shortcut.toUpperCase();
    if (s !== 'A' && s !== 'B' && s !== 'C') throw new InvalidArgumentError(`export: --shortcut must be A, B or C, got '${flags.shortcut}'`);
    opts.shortcut = s as ShortcutOption;
  }
  if (flags.weights !== undefined && flags.randomInit) throw new InvalidArgumentError('export: give either --weights FILE or --random-init, not both');
  if (flags.seed !== undefined && !flags.randomInit) throw new InvalidArgumentError('export: --seed goes with --random-init (weights from a file have no seed)');
  if (flags.randomInit) {
    if (flags.arch === undefined) throw new InvalidArgumentError('export: --arch is required with --random-init; see `resnet list`');
    const info = archInfo(flags.arch);
    const seed = flags.seed === undefined ? 0 : int('--seed', flags.seed, 0);
    return { arch: info.name, options: { ...opts, seed }, weights: null, source: `random init, seed ${seed}`, notes: [] };
  }
  if (flags.weights === undefined) throw new InvalidArgumentError('export: no weights: give --weights FILE (.safetensors state dict or resnet train checkpoint) or --random-init [--seed S]');
  const file = flags.weights;
  if (!existsSync(file)) throw new CheckpointError(`${file}: no such weights file`);
  if (flags.arch !== undefined) archInfo(flags.arch); // an unknown arch is named before the file is read
  const run = statSync(file).isDirectory();
  if (run || isTrainCheckpoint(file)) {
    if (flags.keyMap?.length) throw new InvalidArgumentError(`export: --key-map does not apply to ${file}, a resnet train checkpoint (its keys are already ours)`);
    const notes: string[] = [];
    return fromCheckpoint(run ? loadRunCheckpoint(file, (t) => notes.push(t), 'best') : loadCheckpoint(file), flags, opts, notes);
  }
  return fromStateDict(file, flags, opts);
}

export function exportCommand(out: string, flags: ExportFlags): void {
  const format = (flags.format ?? 'onnx').toLowerCase();
  if (!EXPORT_FORMATS.includes(format)) throw new InvalidArgumentError(`export: unknown --format '${flags.format}'; valid: ${EXPORT_FORMATS.join(', ')}`);
  checkOutputPath(out, 'export'); // before the weights are read and the graph built
  const p = plan(flags);
  const model = createModel(p.arch, { ...p.options, init: p.weights ? 'none' : 'he' });
  try {
    if (p.weights) {
      try {
        model.loadStateDict(p.weights);
      } catch (e) {
        if (e instanceof ResnetError) throw new CheckpointError(`${p.source}: does not fit ${p.arch}: ${e.message}`);
        throw e;
      }
    }
    const [H, W] = flags.input !== undefined ? parseSize(flags.input) : p.input ?? archInfo(p.arch).input;
    const bytes = exportOnnx(model, { inputShape: [model.inChannels, H, W] });
    writeFileAtomic(out, [bytes], 'export');
    const input = ['batch', model.inChannels, H, W];
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ out, format, arch: p.arch, irVersion: ONNX_IR_VERSION, opset: 17, input, classes: model.numClasses, bytes: bytes.length, weights: p.source, notes: p.notes })}\n`);
      return;
    }
    for (const n of p.notes) process.stderr.write(`${n}\n`);
    process.stdout.write(`${out}: ${p.arch} as ONNX (IR ${ONNX_IR_VERSION}, opset 17), input "input" [${input.join(', ')}] float32, output "logits" [batch, ${model.numClasses}], ` +
      `${(bytes.length / 1e6).toFixed(1)} MB; weights: ${p.source}\n`);
  } finally {
    model.dispose();
  }
}
