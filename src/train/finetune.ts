// Fine-tuning: where a run's first weights come from (a weights file, a resnet-ts run or
// checkpoint, torchvision's pretrained weights), how they are fitted to the new net (every
// tensor whose name and shape match is loaded; the classifier is re-created when the class
// count differs; any other mismatch is an error), and what trains (--freeze UPTO,
// --freeze-backbone, --bn frozen, --lr-backbone as parameter groups). Frozen parts keep their
// weights and their BN running statistics: their BN modules stay in eval mode while the net
// trains (torchvision's FrozenBatchNorm2d). Not here: reading files (src/io/weights.ts),
// downloading (src/infer/pretrained.ts).

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { CheckpointError, InvalidArgumentError } from '../errors.js';
import { loadWeights, parseKeyMap, type KeyMapping } from '../io/weights.js';
import type { NamedArray } from '../io/safetensors.js';
import { fetchPretrained, pretrainedEntry, type FetchOptions } from '../infer/pretrained.js';
import { safetensorsMetadata } from '../infer/load.js';
import { modelNames } from '../models/registry.js';
import type { ResNet } from '../models/resnet.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { fmt } from '../tensor/geometry.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/presets.js';
import { loadCheckpoint, loadRunCheckpoint, META_KEY } from './checkpoint.js';

/** Where --freeze may stop (CIFAR nets end at layer3; naming the classifier, fc or linear,
 *  freezes everything, which is refused: nothing would train).
 * @example FREEZE_POINTS.join(', ')  // 'stem, layer1, layer2, layer3, layer4, fc, linear' */
export const FREEZE_POINTS = ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'fc', 'linear'] as const;
/** @example BN_MODES.join(', ')  // 'train, frozen' */
export const BN_MODES = ['train', 'frozen'] as const;
/** @example const mode: BnMode = 'frozen'; */
export type BnMode = (typeof BN_MODES)[number];

/**
 * Where a run's first weights come from, as TrainConfig says it.
 * @example const spec: WeightsSpec = { weights: 'runs/default', keyMap: ['model.='] };
 */
export interface WeightsSpec {
  /** A weights file (.pth/.pt/.safetensors), a resnet-ts checkpoint or run directory (its best). */
  weights?: string;
  /** Prefix renames FROM=TO (as predict's --key-map). */
  keyMap?: string[];
  /** Whose names the file uses (default auto). */
  mapping?: KeyMapping;
  /** torchvision's ImageNet weights for the arch. */
  pretrained?: boolean;
  /** Which of them (DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2). */
  pretrainedTag?: string;
}

/**
 * The weights a fine-tuning run starts from and what they say about their net's inputs.
 * @example const src: WeightsSource = await readWeightsSource({ weights: 'runs/default' }, 'resnet20');
 */
export interface WeightsSource {
  /** What the user named: a path, or `pretrained resnet18 IMAGENET1K_V1`. */
  source: string;
  /** The file read. */
  file: string;
  sha256: string;
  tensors: Map<string, NamedArray>;
  notes: string[];
  /** The arch the weights say they are for (checkpoints, saveWeights files, pretrained). */
  arch?: string;
  /** Registry options of the net they were made for (shortcut, width...), without the class count. */
  modelOptions: Record<string, unknown>;
  inChannels?: number;
  /** The input [H, W] the weights were trained on (a pretrained entry's crop). */
  inputSize?: [number, number];
  mean?: number[];
  std?: number[];
  /** How image folders should be prepared for these weights (a resnet-ts run on whole
   *  small images: 'whole'; ImageNet weights: 'imagenet'). */
  preset?: 'imagenet' | 'whole';
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function cleanOptions(o: Record<string, unknown> | undefined): Record<string, unknown> {
  const { numClasses: _n, seed: _s, init: _i, backend: _b, inChannels: _c, ...rest } = o ?? {};
  return rest;
}

/**
 * Reads the weights a run starts from (`arch` picks the pretrained file).
 * @example const src = await readWeightsSource({ pretrained: true }, 'resnet18');  // downloaded once, sha256-checked
 */
export async function readWeightsSource(spec: WeightsSpec, arch: string | undefined, fetch: FetchOptions = {}, onMessage: (t: string) => void = () => {}): Promise<WeightsSource> {
  if (spec.weights !== undefined && spec.pretrained) throw new InvalidArgumentError('train: give one of --weights FILE and --pretrained, not both');
  if (spec.pretrained) {
    if (arch === undefined) throw new InvalidArgumentError('train: --pretrained needs --arch (archs with weights: see `resnet list`)');
    if (spec.keyMap?.length || spec.mapping) throw new InvalidArgumentError('train: --key-map and --mapping apply to --weights FILE, not to --pretrained');
    const entry = pretrainedEntry(arch, spec.pretrainedTag);
    const file = await fetchPretrained(entry, { onMessage, ...fetch });
    const w = loadWeights(file);
    return {
      source: `pretrained ${entry.arch} ${entry.tag}`, file, sha256: sha256(file), tensors: w.tensors, notes: w.notes, arch: entry.arch,
      modelOptions: cleanOptions(entry.modelOptions as Record<string, unknown> | undefined), inChannels: 3,
      inputSize: [entry.crop, entry.crop], mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], preset: 'imagenet',
    };
  }
  const path = spec.weights;
  if (path === undefined) throw new InvalidArgumentError('train: no --weights FILE or --pretrained to start from');
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such weights file or run directory`);
  const dir = statSync(path).isDirectory();
  if (dir || (extname(path).toLowerCase() === '.safetensors' && safetensorsMetadata(path)?.[META_KEY] !== undefined)) {
    if (spec.keyMap?.length || spec.mapping) throw new InvalidArgumentError(`${path}: a resnet-ts checkpoint already has this library's key names; leave out --key-map and --mapping`);
    const ck = dir ? loadRunCheckpoint(path, onMessage, 'best') : loadCheckpoint(path);
    const m = ck.meta;
    return {
      source: path, file: ck.file, sha256: sha256(ck.file), tensors: ck.model, arch: m.arch,
      notes: [`resnet-ts checkpoint after epoch ${m.epoch} (${m.arch}, ${m.input.classes.length} classes)`],
      modelOptions: cleanOptions(m.modelOptions), inChannels: m.input.channels, inputSize: [m.input.height, m.input.width],
      mean: [...m.norm.mean], std: [...m.norm.std],
      preset: m.config.dataset === 'folder' ? (m.config.folderPreset === 'whole' ? 'whole' : 'imagenet') : 'whole',
    };
  }
  const w = loadWeights(path, { keyMap: parseKeyMap(spec.keyMap ?? []), mapping: spec.mapping });
  const stem = w.tensors.get('conv1.weight');
  return {
    source: path, file: path, sha256: sha256(path), tensors: w.tensors, notes: w.notes, arch: w.info.arch,
    modelOptions: cleanOptions(w.info.modelOptions), inChannels: w.info.inChannels ?? (stem?.shape.length === 4 ? stem.shape[1] : undefined),
    inputSize: w.info.inputSize, mean: w.info.mean, std: w.info.std,
  };
}

/**
 * What fitting weights to a net did, by state-dict name (written to config.json).
 * @example const { loaded, reinitialised, unexpected }: FitReport = fitWeights(model, 'resnet20', await readWeightsSource({ weights: 'runs/default' }, 'resnet20'));
 */
export interface FitReport {
  loaded: string[];
  /** The classifier's tensors, kept as initialised because the class count differs. */
  reinitialised: string[];
  /** Tensors of the weights the net does not have (ignored). */
  unexpected: string[];
}

function some(keys: string[], max = 4): string {
  return keys.length <= max ? keys.join(', ') : `${keys.slice(0, max).join(', ')} ... (${keys.length} in all)`;
}

/** The classifier's module name: `fc` (ImageNet family) or `linear` (CIFAR family). */
export function headName(model: ResNet): string {
  return model.family === 'imagenet' ? 'fc' : 'linear';
}

/**
 * Loads every tensor of `src` whose name and shape match into `model` (freshly initialised);
 * the classifier keeps its new initialisation when its shape differs (another class count).
 * Throws a CheckpointError when the weights are for another arch, or when a tensor other
 * than the classifier's has another shape.
 * @example const report = fitWeights(createModel('resnet20', { numClasses: 4, inChannels: 1 }), 'resnet20', await readWeightsSource({ weights: 'runs/default' }, 'resnet20'));
 */
export function fitWeights(model: ResNet, arch: string, src: WeightsSource): FitReport {
  const head = `${headName(model)}.`;
  const sd = model.stateDict();
  const names = Object.keys(sd);
  const missing = names.filter((k) => !src.tensors.has(k) && !k.startsWith(head) && !k.endsWith('num_batches_tracked'));
  const unexpected = [...src.tensors.keys()].filter((k) => !(k in sd));
  if (missing.length > 0 || unexpected.length > names.length / 4) {
    throw new CheckpointError(`${src.source}: does not hold ${arch} weights (${missing.length} of its tensors missing, e.g. ${some(missing) || '-'}; ` +
      `${unexpected.length} unexpected, e.g. ${some(unexpected) || '-'}); give the --arch they were made for (valid: ${modelNames().join(', ')})` +
      (unexpected.length ? '; --key-map FROM=TO renames key prefixes' : ''));
  }
  const use = new Map<string, NamedArray>();
  const reinitialised: string[] = [];
  for (const k of names) {
    const t = src.tensors.get(k);
    if (!t) continue;
    const want = sd[k].shape;
    if (t.shape.length === want.length && t.shape.every((v, i) => v === want[i])) use.set(k, t);
    else if (k.startsWith(head)) reinitialised.push(k);
    else {
      throw new CheckpointError(`${src.source}: '${k}' is ${fmt(t.shape)} in the weights and ${fmt(want)} in ${arch}; only the classifier (${head.slice(0, -1)}) may differ ` +
        `(it is re-created for the new class count)${k === 'conv1.weight' ? '; --in-channels sets the input channels' : ''}`);
    }
  }
  const r = model.loadStateDict(use, { strict: false });
  return { loaded: r.loaded, reinitialised, unexpected };
}

/** One line for the user: counts and names. */
export function describeFit(r: FitReport, src: WeightsSource): string {
  return `weights from ${src.source} (sha256 ${src.sha256.slice(0, 12)}): ${r.loaded.length} tensors loaded` +
    (r.reinitialised.length ? `, re-initialised ${r.reinitialised.join(', ')} (new class count)` : '') +
    (r.unexpected.length ? `, ${r.unexpected.length} unexpected ignored: ${some(r.unexpected)}` : '');
}

/**
 * What trains: `freeze` (everything up to and including a stage keeps its weights and BN
 * statistics), `freezeBackbone` (only the classifier trains), `bn` ('frozen': every BN uses
 * and keeps its running statistics, its affine fixed).
 * @example const plan: FreezeSpec = { freeze: 'layer2', bn: 'frozen' };
 */
export interface FreezeSpec {
  freeze?: string;
  freezeBackbone?: boolean;
  bn?: BnMode;
}

/** The model's stages in order, as freeze points: stem (conv1, bn1), layer1.. */
function stages(model: ResNet): [string, Module[]][] {
  const children = new Map(model.namedChildren());
  const stem = ['conv1', 'bn1'].flatMap((n) => (children.has(n) ? [children.get(n)!] : []));
  const out: [string, Module[]][] = [['stem', stem]];
  for (let i = 1; children.has(`layer${i}`); i++) out.push([`layer${i}`, [children.get(`layer${i}`)!]]);
  return out;
}

/**
 * The frozen modules of a plan (checked: an unknown point lists the valid ones).
 * @example frozenModules(model, { freeze: 'layer2' })  // [conv1, bn1, layer1, layer2]
 */
export function frozenModules(model: ResNet, spec: FreezeSpec): Module[] {
  const st = stages(model);
  if (spec.freezeBackbone) {
    const head = headName(model);
    return model.namedChildren().filter(([n]) => n !== head).map(([, m]) => m);
  }
  if (spec.freeze === undefined) return [];
  // Naming the classifier freezes everything (and applyFreeze says nothing is left to train).
  if (spec.freeze === headName(model)) return model.children();
  const i = st.findIndex(([n]) => n === spec.freeze);
  if (i < 0) throw new InvalidArgumentError(`train: unknown --freeze '${spec.freeze}' for ${model.name}; valid: ${st.map(([n]) => n).join(', ')} (${headName(model)}: everything)`);
  return st.slice(0, i + 1).flatMap(([, m]) => m);
}

/**
 * Applies a plan: frozen parameters get requiresGrad false (no gradient is computed for
 * them: conv2d skips backward-weights). Returns setMode, to call after every model.train():
 * it puts the frozen parts' BN (all BN with bn 'frozen') back in eval mode.
 * Throws when nothing is left to train.
 * @example const setMode = applyFreeze(model, { freeze: 'layer2' }); model.train(); setMode();
 */
export function applyFreeze(model: ResNet, spec: FreezeSpec): () => void {
  if (spec.bn !== undefined && !(BN_MODES as readonly string[]).includes(spec.bn)) {
    throw new InvalidArgumentError(`train: unknown --bn '${String(spec.bn)}'; valid: ${BN_MODES.join(', ')}`);
  }
  const frozen = frozenModules(model, spec);
  const evalBn = new Set<Module>();
  for (const m of frozen) {
    for (const p of m.parameters()) p.requiresGrad = false;
    for (const s of m.modules()) if (s instanceof BatchNorm2d) evalBn.add(s);
  }
  if (spec.bn === 'frozen') {
    for (const s of model.modules()) {
      if (!(s instanceof BatchNorm2d)) continue;
      evalBn.add(s);
      s.weight.requiresGrad = false;
      s.bias.requiresGrad = false;
    }
  }
  if (!model.parameters().some((p) => p.requiresGrad)) {
    throw new InvalidArgumentError(`train: nothing left to train with ${spec.freezeBackbone ? '--freeze-backbone' : `--freeze ${spec.freeze}`}${spec.bn === 'frozen' ? ' and --bn frozen' : ''}; ` +
      `freeze less (valid --freeze: ${stages(model).map(([n]) => n).join(', ')})`);
  }
  return () => { for (const m of evalBn) m.training = false; };
}

/**
 * The optimiser's parameter groups: with `lrBackbone`, the classifier's trainable
 * parameters first (base lr), then the backbone's (lrBackbone); each split again by
 * `noDecayNormBias` (1-D parameters without weight decay). Empty groups are left out.
 * @example const groups = fineTuneGroups(model, 1e-3, true);  // [{ params: head }, { params: backbone, lr: 1e-3 }]
 */
export function fineTuneGroups(model: ResNet, lrBackbone: number | undefined, noDecayNormBias: boolean): { params: Tensor[]; lr?: number; weightDecay?: number }[] {
  const split = (params: Tensor[], extra: { lr?: number }): { params: Tensor[]; lr?: number; weightDecay?: number }[] => {
    const t = params.filter((p) => p.requiresGrad);
    return noDecayNormBias ? [{ ...extra, params: t.filter((p) => p.shape.length > 1) }, { ...extra, params: t.filter((p) => p.shape.length <= 1), weightDecay: 0 }] : [{ ...extra, params: t }];
  };
  const head = headName(model);
  const headParams = model.namedParameters().filter(([n]) => n.startsWith(`${head}.`)).map(([, p]) => p as Tensor);
  const rest = model.namedParameters().filter(([n]) => !n.startsWith(`${head}.`)).map(([, p]) => p as Tensor);
  const groups = lrBackbone === undefined ? split(model.parameters(), {}) : [...split(headParams, {}), ...split(rest, { lr: lrBackbone })];
  return groups.filter((g) => g.params.length > 0);
}
