// A model ready for inference from a weights file, a resnet-ts training checkpoint (or run
// directory) or pretrained torchvision weights: the arch built with init 'none', the state
// dict loaded strictly (a missing, unexpected or mis-shaped key is a CheckpointError naming
// it), eval mode, plus what inference needs besides weights: class names, normalisation and
// the preprocessing sizes the weights expect. Weight files are read by src/io/weights.ts
// (.pth/.pt zip or legacy, .safetensors; unwrapping, 'module.' strip, --key-map).

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { CheckpointError, InvalidArgumentError, ResnetError } from '../errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/presets.js';
import type { Size } from '../data/transforms.js';
import type { NamedArray } from '../io/safetensors.js';
import { loadWeights } from '../io/weights.js';
import { archInfo, createModel, type ModelOptions } from '../models/registry.js';
import type { ResNet } from '../models/resnet.js';
import { describeReport, type LoadReport } from '../nn/state_dict.js';
import { loadCheckpoint, loadRunCheckpoint, META_KEY, type LoadedCheckpoint } from '../train/checkpoint.js';
import { IMAGENET_CLASSES } from './imagenet_classes.js';
import { fetchPretrained, pretrainedEntry, type FetchOptions } from './pretrained.js';

/**
 * Reads the tensors of a weights file (.pth/.pt/.bin from torch.save, zip or legacy, or
 * .safetensors), unwrapped and with key prefixes renamed (src/io/weights.ts), plus notes on
 * what was changed.
 */
export function readWeights(path: string, options: { keyMap?: [string, string][] } = {}): { tensors: Map<string, NamedArray>; notes: string[] } {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such weights file`);
  return loadWeights(path, { keyMap: options.keyMap });
}

/** Reads only the metadata of a safetensors file's header (null when it is not one). */
export function safetensorsMetadata(path: string): Record<string, string> | null {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return null;
    const n = len.readBigUInt64LE(0);
    if (n > 100_000_000n || Number(n) + 8 > statSync(path).size) return null;
    const text = Buffer.alloc(Number(n));
    readSync(fd, text, 0, text.length, 8);
    const header = JSON.parse(text.toString('utf8')) as { __metadata__?: Record<string, string> };
    return header.__metadata__ ?? {};
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

export interface LoadModelOptions {
  /** A registered arch; optional for a resnet-ts checkpoint (its own arch is used). */
  arch?: string;
  /** A weights file (.pth/.pt/.safetensors), a resnet-ts checkpoint or a run directory (its best). */
  weights?: string;
  /** torchvision's ImageNet weights for `arch`: true for DEFAULT, or a tag (IMAGENET1K_V1). */
  pretrained?: boolean | string;
  /** Classes of the classifier; default: the weights' fc rows (1000 for pretrained). */
  classes?: number;
  /** Key prefix renames FROM -> TO, applied before loading. */
  keyMap?: [string, string][];
  /** Further registry options of the net the weights are for (e.g. `width` of a reduced net). */
  modelOptions?: Omit<ModelOptions, 'numClasses' | 'init' | 'backend'>;
  fetch?: FetchOptions;
}

export interface LoadedModel {
  model: ResNet;
  arch: string;
  /** Where the weights came from (a file path). */
  source: string;
  /** Class names, one per logit. */
  labels: string[];
  mean: number[];
  std: number[];
  channels: 1 | 3;
  /** Preprocessing the weights expect (torchvision's preset, or the training input). */
  resize: Size | 0;
  crop: Size | 0;
  /** Why resize and crop are what they are. */
  preprocessNote: string;
  report: LoadReport;
  /** What loading did besides copying tensors (renames, unwrapping), for the user. */
  notes: string[];
}

function headRows(tensors: Map<string, NamedArray>): number | null {
  for (const k of ['fc.weight', 'linear.weight']) {
    const t = tensors.get(k);
    if (t && t.shape.length === 2) return t.shape[0];
  }
  return null;
}

function build(arch: string, opts: ModelOptions, tensors: Map<string, NamedArray>, source: string): { model: ResNet; report: LoadReport } {
  const model = createModel(arch, { ...opts, init: 'none' });
  let report: LoadReport;
  try {
    report = model.loadStateDict(tensors, { strict: false });
  } catch (e) {
    model.dispose();
    if (e instanceof ResnetError) throw new CheckpointError(`${source}: ${e.message}`);
    throw e;
  }
  if (report.missing.length || report.unexpected.length || report.mismatched.length) {
    model.dispose();
    throw new CheckpointError(`${source}: does not fit ${arch}${opts.numClasses ? ` with ${opts.numClasses} classes` : ''}: ${describeReport(report)}` +
      (report.unexpected.length ? ' (--key-map FROM=TO renames key prefixes)' : ''));
  }
  model.eval();
  return { model, report };
}

function fromCheckpoint(ck: LoadedCheckpoint, options: LoadModelOptions): LoadedModel {
  const meta = ck.meta;
  if (options.modelOptions && Object.keys(options.modelOptions).length) {
    throw new InvalidArgumentError(`${ck.file}: a resnet-ts checkpoint brings its own model options; leave out ${Object.keys(options.modelOptions).join(', ')}`);
  }
  if (options.arch !== undefined && options.arch !== meta.arch) {
    throw new InvalidArgumentError(`${ck.file}: a ${meta.arch} checkpoint, but --arch says ${options.arch} (leave --arch out for checkpoints)`);
  }
  if (options.classes !== undefined && options.classes !== meta.input.classes.length) {
    throw new InvalidArgumentError(`${ck.file}: trained with ${meta.input.classes.length} classes, --classes says ${options.classes}`);
  }
  if (options.keyMap?.length) throw new InvalidArgumentError(`${ck.file}: a resnet-ts checkpoint already has this library's key names; leave out --key-map`);
  const { model, report } = build(meta.arch, meta.modelOptions as ModelOptions, ck.model, ck.file);
  const { height: H, width: W, channels } = meta.input;
  const folder = (meta.config as { dataset?: string }).dataset === 'folder';
  // Folder runs evaluate as ImageNet does (resize H*256/224, crop H); array datasets (MNIST,
  // CIFAR) were trained on whole HxW images: resize the short side to fit, crop HxW.
  const resize = folder ? Math.floor((H * 256) / 224) : Math.max(H, W);
  return {
    model, arch: meta.arch, source: ck.file, labels: [...meta.input.classes], mean: [...meta.norm.mean], std: [...meta.norm.std],
    channels: channels === 1 ? 1 : 3, resize, crop: [H, W], report, notes: [`resnet-ts checkpoint after epoch ${meta.epoch} (${meta.arch}, ${meta.input.classes.length} classes)`],
    preprocessNote: folder ? `resize ${resize}, crop ${H}x${W} (the run's evaluation)` : `resize ${resize}, crop ${H}x${W} (the run's ${H}x${W} input)`,
  };
}

/**
 * Builds `arch` and loads weights into it, in eval mode.
 * @example
 *   const { model, labels } = await loadModel({ arch: 'resnet18', pretrained: true });
 *   const ck = await loadModel({ weights: 'runs/default' });   // a training run's best checkpoint
 */
export async function loadModel(options: LoadModelOptions): Promise<LoadedModel> {
  const { weights, pretrained } = options;
  if ((weights === undefined) === (pretrained === undefined || pretrained === false)) {
    throw new InvalidArgumentError('give exactly one of --weights FILE and --pretrained');
  }
  if (options.classes !== undefined && (!Number.isInteger(options.classes) || options.classes < 1)) {
    throw new InvalidArgumentError(`--classes must be an integer >= 1, got ${options.classes}`);
  }
  if (weights !== undefined) {
    if (!existsSync(weights)) throw new CheckpointError(`${weights}: no such weights file or run directory`);
    if (statSync(weights).isDirectory()) return fromCheckpoint(loadRunCheckpoint(weights, () => {}, 'best'), options);
    if (extname(weights).toLowerCase() === '.safetensors' && safetensorsMetadata(weights)?.[META_KEY] !== undefined) {
      return fromCheckpoint(loadCheckpoint(weights), options);
    }
  }
  if (options.arch === undefined) throw new InvalidArgumentError('--arch is required (except for a resnet-ts checkpoint); see `resnet list`');
  archInfo(options.arch); // an unknown arch fails here, listing the valid ones
  let file: string;
  let resize: number = 256;
  let crop: number = 224;
  let preprocessNote = 'resize 256, crop 224 (torchvision ImageNet evaluation)';
  let modelOptions: ModelOptions = { ...options.modelOptions };
  if (weights === undefined) {
    const entry = pretrainedEntry(options.arch, typeof pretrained === 'string' ? pretrained : undefined);
    file = await fetchPretrained(entry, options.fetch);
    ({ resize, crop } = entry);
    modelOptions = { ...entry.modelOptions, ...options.modelOptions, numClasses: entry.numClasses };
    preprocessNote = `resize ${resize}, crop ${crop} (torchvision's preset for ${entry.arch} ${entry.tag})`;
    if (options.classes !== undefined && options.classes !== entry.numClasses) {
      throw new InvalidArgumentError(`--pretrained ${entry.arch} weights have ${entry.numClasses} classes, --classes says ${options.classes}`);
    }
  } else {
    file = weights;
  }
  const { tensors, notes } = readWeights(file, { keyMap: options.keyMap });
  const rows = headRows(tensors);
  const numClasses = options.classes ?? modelOptions.numClasses ?? rows ?? undefined;
  if (options.classes === undefined && modelOptions.numClasses === undefined && rows !== null) notes.push(`${rows} classes (the classifier's rows)`);
  const { model, report } = build(options.arch, { ...modelOptions, numClasses }, tensors, file);
  const labels = model.numClasses === IMAGENET_CLASSES.length ? [...IMAGENET_CLASSES] : Array.from({ length: model.numClasses }, (_, i) => `class ${i}`);
  return {
    model, arch: options.arch, source: file, labels, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD],
    channels: model.inChannels === 1 ? 1 : 3, resize, crop, preprocessNote, report, notes,
  };
}
