// A model ready for inference from a weights file, a resnet-ts training checkpoint (or run
// directory) or pretrained torchvision weights: the arch built with init 'none', the state
// dict loaded strictly (a missing, unexpected or mis-shaped key is a CheckpointError naming
// it), eval mode, plus what inference needs besides weights: class names, normalisation and
// the preprocessing sizes the weights expect. Weight files are read by src/io/weights.ts
// (.pth/.pt zip or legacy, .safetensors; unwrapping, 'module.' strip, --key-map).
// What a plain weights file does not say is read off its tensors (input channels from
// conv1.weight, classes from the classifier's rows) or derived (defaultInput below).

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { CheckpointError, InvalidArgumentError, ResnetError } from '../errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/presets.js';
import type { Size } from '../data/transforms.js';
import type { NamedArray } from '../io/safetensors.js';
import { loadWeights, type WeightsInfo } from '../io/weights.js';
import type { PreprocessOptions } from './preprocess.js';
import { archInfo, createModel, type ModelOptions } from '../models/registry.js';
import type { ResNet } from '../models/resnet.js';
import { describeReport, type LoadReport } from '../nn/state_dict.js';
import { loadCheckpoint, loadRunCheckpoint, META_KEY, type LoadedCheckpoint } from '../train/checkpoint.js';
import { IMAGENET_CLASSES } from './imagenet_classes.js';
import { fetchPretrained, pretrainedEntry, type FetchOptions } from './pretrained.js';

/**
 * Reads the tensors of a weights file (.pth/.pt/.bin from torch.save, zip or legacy, or
 * .safetensors), unwrapped and with key prefixes renamed, plus notes on what was changed and
 * what the file says about its net (`info`: arch, classes, input size, normalisation).
 * @example
 * const { tensors, info } = readWeights('resnet20.safetensors');  // info.arch === 'resnet20'
 */
export function readWeights(path: string, options: { keyMap?: [string, string][] } = {}): { tensors: Map<string, NamedArray>; notes: string[]; info: WeightsInfo } {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such weights file`);
  return loadWeights(path, { keyMap: options.keyMap });
}

/**
 * Reads only the metadata of a safetensors file's header (null when it is not one).
 * @example
 * const meta = safetensorsMetadata('resnet20.safetensors');  // { arch: 'resnet20', in_channels: '1', ... }
 */
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

/**
 * Options of loadModel: exactly one of `weights` and `pretrained`.
 * @example
 * const options: LoadModelOptions = { weights: 'resnet20.safetensors', numClasses: 10 };
 */
export interface LoadModelOptions {
  /** A registered arch; optional when the file names it (a resnet-ts checkpoint, or weights
   *  saved by saveWeights with an arch). */
  arch?: string;
  /** A weights file (.pth/.pt/.safetensors), a resnet-ts checkpoint or a run directory (its best). */
  weights?: string;
  /** torchvision's ImageNet weights for `arch`: true for DEFAULT, or a tag (IMAGENET1K_V1). */
  pretrained?: boolean | string;
  /** Classes of the classifier (ModelOptions' name); default: what the file says, else the
   *  classifier's rows (1000 for pretrained). */
  numClasses?: number;
  /** The same as numClasses (the CLI's --classes). */
  classes?: number;
  /** Key prefix renames FROM -> TO, applied before loading. */
  keyMap?: [string, string][];
  /** Further registry options of the net the weights are for (e.g. `width` of a reduced net). */
  modelOptions?: Omit<ModelOptions, 'numClasses' | 'init' | 'backend'>;
  fetch?: FetchOptions;
}

/**
 * A model ready for inference and what its inputs must look like.
 * @example
 * const loaded: LoadedModel = await loadModel({ weights: 'resnet20.safetensors' });
 * const results = await predictFiles(loaded, ['cat.png']);  // preprocessing and labels from `loaded`
 */
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
  /** The preprocessing options of all the above (channels, resize, crop, mean, std), for
   *  preprocessImage, predictFiles and extractFeatures. */
  preprocess: PreprocessOptions;
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
  // A fine-tuned folder run on weights of whole small images records folderPreset 'whole'.
  const folder = (meta.config as { dataset?: string }).dataset === 'folder' && (meta.config as { folderPreset?: string }).folderPreset !== 'whole';
  // Folder runs evaluate as ImageNet does (resize H*256/224, crop H); array datasets (MNIST,
  // CIFAR) were trained on whole HxW images: resize the short side to fit, crop HxW.
  const resize = folder ? Math.floor((H * 256) / 224) : Math.max(H, W);
  return withPreprocess({
    model, arch: meta.arch, source: ck.file, labels: [...meta.input.classes], mean: [...meta.norm.mean], std: [...meta.norm.std],
    channels: channels === 1 ? 1 : 3, resize, crop: [H, W], report, notes: [`resnet-ts checkpoint after epoch ${meta.epoch} (${meta.arch}, ${meta.input.classes.length} classes)`],
    preprocessNote: folder ? `resize ${resize}, crop ${H}x${W} (the run's evaluation)` : `resize ${resize}, crop ${H}x${W} (the run's ${H}x${W} input)`,
  });
}

function withPreprocess(m: Omit<LoadedModel, 'preprocess'>): LoadedModel {
  return { ...m, preprocess: { channels: m.channels, resize: m.resize, crop: m.crop, mean: [...m.mean], std: [...m.std] } };
}

/**
 * Input size and normalisation for weights that do not say them, by arch family and input
 * channels: ImageNet nets as torchvision evaluates them (resize 256, crop 224, ImageNet's
 * mean/std); CIFAR-family nets at their own input, 32x32 for RGB (CIFAR) and 28x28 for grey
 * (MNIST, Fashion-MNIST), whole images (resize to the input, no margin cropped). A grey net
 * gets the mean of ImageNet's three means and stds (timm's adaptation to in_chans=1).
 */
function defaultInput(family: string, channels: number): { size: number; resize: number; mean: number[]; std: number[]; why: string } {
  const grey = channels === 1;
  const mean = grey ? [IMAGENET_MEAN.reduce((a, b) => a + b, 0) / 3] : [...IMAGENET_MEAN];
  const std = grey ? [IMAGENET_STD.reduce((a, b) => a + b, 0) / 3] : [...IMAGENET_STD];
  if (family === 'imagenet') return { size: 224, resize: 256, mean, std, why: 'torchvision ImageNet evaluation' };
  const size = grey ? 28 : 32;
  return { size, resize: size, mean, std, why: `a ${grey ? 'grey' : 'RGB'} ${family} net's usual ${size}x${size} input; the file does not say its input` };
}

/**
 * Builds `arch` and loads weights into it, in eval mode.
 * @example
 *   const { model, labels } = await loadModel({ arch: 'resnet18', pretrained: true });
 *   const ck = await loadModel({ weights: 'runs/default' });   // a training run's best checkpoint
 */
export async function loadModel(opts: LoadModelOptions): Promise<LoadedModel> {
  if (opts.numClasses !== undefined && opts.classes !== undefined && opts.numClasses !== opts.classes) {
    throw new InvalidArgumentError(`loadModel: 'numClasses' ${opts.numClasses} and 'classes' ${opts.classes} disagree; give one`);
  }
  const options: LoadModelOptions = { ...opts, classes: opts.numClasses ?? opts.classes };
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
  let file: string;
  let tensors: Map<string, NamedArray>;
  let notes: string[];
  let info: WeightsInfo = {};
  let pre: { resize: number; crop: number; note: string } | null = null;
  let modelOptions: ModelOptions = { ...options.modelOptions };
  let arch = options.arch;
  if (weights === undefined) {
    if (arch === undefined) throw new InvalidArgumentError('--pretrained needs --arch; see `resnet list`');
    archInfo(arch); // an unknown arch fails here, listing the valid ones
    const entry = pretrainedEntry(arch, typeof pretrained === 'string' ? pretrained : undefined);
    file = await fetchPretrained(entry, options.fetch);
    pre = { resize: entry.resize, crop: entry.crop, note: `resize ${entry.resize}, crop ${entry.crop} (torchvision's preset for ${entry.arch} ${entry.tag})` };
    modelOptions = { ...entry.modelOptions, ...options.modelOptions, numClasses: entry.numClasses };
    if (options.classes !== undefined && options.classes !== entry.numClasses) {
      throw new InvalidArgumentError(`--pretrained ${entry.arch} weights have ${entry.numClasses} classes, --classes says ${options.classes}`);
    }
    ({ tensors, notes } = readWeights(file, { keyMap: options.keyMap }));
  } else {
    file = weights;
    ({ tensors, notes, info } = readWeights(file, { keyMap: options.keyMap }));
    if (arch !== undefined && info.arch !== undefined && arch !== info.arch) {
      throw new InvalidArgumentError(`${file}: holds ${info.arch} weights, but --arch says ${arch} (leave --arch out: the file names its arch)`);
    }
    if (arch === undefined && info.arch !== undefined) {
      arch = info.arch;
      notes.push(`${arch} (the file's metadata)`);
    }
    if (arch === undefined) throw new InvalidArgumentError(`${file}: names no arch; give --arch (see \`resnet list\`)`);
    archInfo(arch);
    const { seed: _s, init: _i, backend: _b, ...saved } = (info.modelOptions ?? {}) as ModelOptions;
    modelOptions = { ...saved, ...options.modelOptions };
    if (modelOptions.inChannels === undefined) {
      const stem = tensors.get('conv1.weight');
      const c = info.inChannels ?? (stem?.shape.length === 4 ? stem.shape[1] : undefined);
      if (c !== undefined) {
        modelOptions.inChannels = c;
        if (info.inChannels === undefined && c !== 3) notes.push(`${c} input channel(s) (conv1.weight)`);
      }
    }
    if (options.classes === undefined && modelOptions.numClasses === undefined && info.numClasses !== undefined) modelOptions.numClasses = info.numClasses;
  }
  const rows = headRows(tensors);
  const numClasses = options.classes ?? modelOptions.numClasses ?? rows ?? undefined;
  if (options.classes === undefined && modelOptions.numClasses === undefined && rows !== null) notes.push(`${rows} classes (the classifier's rows)`);
  const { model, report } = build(arch, { ...modelOptions, numClasses }, tensors, file);
  const labels = info.labels?.length === model.numClasses ? [...info.labels]
    : model.numClasses === IMAGENET_CLASSES.length ? [...IMAGENET_CLASSES] : Array.from({ length: model.numClasses }, (_, i) => `class ${i}`);
  const channels = model.inChannels === 1 ? 1 : 3;
  const d = defaultInput(model.family, model.inChannels);
  let resize: Size | 0;
  let crop: Size | 0;
  let preprocessNote: string;
  if (pre) {
    ({ resize, crop } = pre);
    preprocessNote = pre.note;
  } else if (info.inputSize) {
    const [H, W] = info.inputSize;
    // As a resnet-ts run's array input: the short side to fit, then the HxW centre.
    resize = model.family === 'imagenet' ? Math.floor((H * 256) / 224) : Math.max(H, W);
    crop = [H, W];
    preprocessNote = `resize ${resize}, crop ${H}x${W} (the file's ${H}x${W} input)`;
  } else {
    resize = d.resize;
    crop = d.size;
    preprocessNote = `resize ${resize}, crop ${crop} (${d.why})`;
  }
  const normOk = (v: number[] | undefined): v is number[] => v !== undefined && (v.length === 1 || v.length === model.inChannels);
  const mean = normOk(info.mean) ? [...info.mean] : d.mean;
  const std = normOk(info.std) ? [...info.std] : d.std;
  return withPreprocess({ model, arch, source: file, labels, mean, std, channels, resize, crop, preprocessNote, report, notes });
}
