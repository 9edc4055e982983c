// Detection checkpoints in: torchvision's Faster R-CNN state dicts (.pth zip or legacy,
// .safetensors; through io/weights.ts loadWeights), under today's key names or those before
// torchvision 0.13 renamed them (`backbone.fpn.inner_blocks.0.weight` ->
// `backbone.fpn.inner_blocks.0.0.weight`, same for layer_blocks; `rpn.head.conv.weight` ->
// `rpn.head.conv.0.0.weight`, as RPNHead._load_from_state_dict and FPN's do). A
// classification checkpoint (torchvision ImageNet ResNet, a `resnet train` run) initialises
// the backbone only. A file under the old names is torchvision's v1 COCO checkpoint, whose
// FrozenBatchNorm2d eps torchvision overwrites to 0: the model's bnEps follows unless given.

import { CheckpointError } from '../errors.js';
import { loadWeights, type LoadWeightsOptions } from '../io/weights.js';
import type { NamedArray } from '../io/safetensors.js';
import type { LoadReport } from '../nn/state_dict.js';
import type { FasterRCNN } from './faster_rcnn.js';

/** [old name pattern, what goes between its prefix and weight/bias today]. */
const LEGACY: [RegExp, string][] = [
  [/^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$/, '.0.'],
  [/^(rpn\.head\.conv)\.(weight|bias)$/, '.0.0.'],
];

/**
 * Keys under the names before torchvision 0.13 renamed to today's; the count renamed.
 * @example const { tensors, renamed } = renameLegacyDetectionKeys(new Map([['rpn.head.conv.weight', w]]));  // 'rpn.head.conv.0.0.weight'
 */
export function renameLegacyDetectionKeys<T>(tensors: ReadonlyMap<string, T>): { tensors: Map<string, T>; renamed: number } {
  const out = new Map<string, T>();
  let renamed = 0;
  for (const [k, v] of tensors) {
    let key = k;
    for (const [re, mid] of LEGACY) {
      const m = re.exec(k);
      if (m) { key = `${m[1]}${mid}${m[2]}`; renamed++; break; }
    }
    out.set(key, v);
  }
  return { tensors: out, renamed };
}

/** @example const o: DetectionWeightsOptions = { bnEps: 0 }; */
export interface DetectionWeightsOptions extends LoadWeightsOptions {
  /** The backbone's BatchNorm eps after loading; default: 0 for a file under torchvision's
   *  pre-0.13 names (its v1 COCO weights), else unchanged. */
  bnEps?: number;
  /** The file's tensors already read (e.g. by readWeightsSource): `path` only names it. */
  tensors?: ReadonlyMap<string, NamedArray>;
}

/** True for a classification state dict (a ResNet's `conv1.weight`, no `backbone.` key).
 * @example isClassificationWeights(loadWeights('resnet18-f37072fd.pth').tensors)  // true */
export function isClassificationWeights(tensors: ReadonlyMap<string, unknown>): boolean {
  const keys = [...tensors.keys()];
  return !keys.some((k) => k.startsWith('backbone.')) && keys.includes('conv1.weight');
}

/**
 * The detector's input normalisation that goes with a classification backbone: the mean and
 * std it was trained with (a grey net's one value repeated for R, G and B), or undefined when
 * unknown or not 1 or 3 channels (the transform's defaults, ImageNet's, stay).
 * @example const norm = backboneNormalization({ mean: [0.286], std: [0.353] });  // { imageMean: [0.286, 0.286, 0.286], imageStd: [0.353, 0.353, 0.353] }
 */
export function backboneNormalization({ mean, std }: { mean?: readonly number[]; std?: readonly number[] }): { imageMean: number[]; imageStd: number[] } | undefined {
  if (!mean || !std || mean.length !== std.length || (mean.length !== 1 && mean.length !== 3)) return undefined;
  return mean.length === 1 ? { imageMean: [mean[0], mean[0], mean[0]], imageStd: [std[0], std[0], std[0]] } : { imageMean: [...mean], imageStd: [...std] };
}

/** A grey (1-channel) conv1 [O, 1, kh, kw] made RGB as timm's adapt_input_conv does: each
 *  channel gets the weights / 3, so an image with R = G = B gives the grey net's response. */
function greyToRgb(w: NamedArray): NamedArray {
  const [o, , kh, kw] = w.shape;
  const plane = kh * kw;
  const src = w.data as Float32Array;
  const out = new Float32Array(o * 3 * plane);
  for (let i = 0; i < o; i++) for (let c = 0; c < 3; c++) for (let p = 0; p < plane; p++) out[(i * 3 + c) * plane + p] = src[i * plane + p] / 3;
  return { data: out, shape: [o, 3, kh, kw] };
}

/** @example const { report, notes, backboneOnly }: DetectionWeightsReport = loadDetectionWeights(createDetector('fasterrcnn_resnet50_fpn'), 'coco.pth'); */
export interface DetectionWeightsReport {
  report: LoadReport;
  notes: string[];
  /** True when the file was a classification checkpoint that set the backbone only. */
  backboneOnly: boolean;
}

function few(keys: string[]): string {
  return keys.length <= 4 ? keys.join(', ') : `${keys.slice(0, 4).join(', ')} ... and ${keys.length - 4} more`;
}

/** What does not fit, from the model's parameter and buffer shapes (nothing is copied);
 *  `only` limits the model's side to the keys it accepts. Empty when everything fits. */
function misfit(model: FasterRCNN, tensors: ReadonlyMap<string, NamedArray>, only: (key: string) => boolean = () => true): string {
  const shapes = new Map<string, readonly number[]>();
  for (const [k, t] of [...model.namedParameters(), ...model.namedBuffers()]) if (only(k)) shapes.set(k, t.shape);
  const missing = [...shapes.keys()].filter((k) => !tensors.has(k));
  const unexpected: string[] = [], mismatched: string[] = [];
  for (const [k, v] of tensors) {
    if (k.endsWith('num_batches_tracked')) continue;
    const want = shapes.get(k);
    if (!want) unexpected.push(k);
    else if (want.join() !== v.shape.join()) mismatched.push(`${k} (model [${want.join(', ')}], file [${v.shape.join(', ')}])`);
  }
  return [
    missing.length ? `${missing.length} missing key(s): ${few(missing)}` : '',
    unexpected.length ? `${unexpected.length} unexpected key(s): ${few(unexpected)}` : '',
    mismatched.length ? `${mismatched.length} mis-shaped key(s): ${few(mismatched)}` : '',
  ].filter(Boolean).join('; ');
}

/**
 * Loads a detection checkpoint (or a classification one into the backbone) into `model`.
 * Missing or unexpected keys are a one-line CheckpointError naming the file.
 * @example
 * const model = createDetector('fasterrcnn_resnet50_fpn');
 * const { notes } = loadDetectionWeights(model, 'fasterrcnn_resnet50_fpn_coco-258fb6c6.pth');
 */
export function loadDetectionWeights(model: FasterRCNN, path: string, opts: DetectionWeightsOptions = {}): DetectionWeightsReport {
  const loaded = opts.tensors ? { tensors: opts.tensors, notes: [] } : loadWeights(path, { mapping: 'torchvision', ...opts });
  const notes = [...loaded.notes];
  if (isClassificationWeights(loaded.tensors)) {
    const body = new Map<string, NamedArray>();
    for (const [k, v] of loaded.tensors) {
      const to = model.classifierKey(k);
      if (to === null) continue;
      if (k === 'conv1.weight' && v.shape.length === 4 && v.shape[1] === 1 && v.data instanceof Float32Array) {
        body.set(to, greyToRgb(v));
        notes.push("conv1 of a grey (1-channel) classifier made RGB as timm's adapt_input_conv does (each channel gets its weights / 3)");
      } else body.set(to, v);
    }
    const trunk = new Set<string>();
    for (const [k] of [...model.resnet.namedParameters(), ...model.resnet.namedBuffers()]) {
      const to = model.classifierKey(k);
      if (to !== null) trunk.add(to);
    }
    const bad = misfit(model, body, (k) => trunk.has(k));
    if (bad) throw new CheckpointError(`${path}: a classification checkpoint that does not fit the backbone of ${model.name} (${model.resnet.name}): ${bad}`);
    const report = model.loadStateDict(body, { strict: false });
    notes.push(`initialised the backbone (${report.loaded.length} tensors) from a classification checkpoint; the FPN, RPN and box heads keep their weights`);
    if (opts.bnEps !== undefined) model.bnEps = opts.bnEps;
    return { report, notes, backboneOnly: true };
  }
  const { tensors, renamed } = renameLegacyDetectionKeys(loaded.tensors);
  if (renamed) notes.push(`renamed ${renamed} key(s) from torchvision's pre-0.13 names (backbone.fpn.*_blocks.N, rpn.head.conv)`);
  const bad = misfit(model, tensors);
  if (bad) throw new CheckpointError(`${path}: does not fit ${model.name}: ${bad}`);
  const report = model.loadStateDict(tensors);
  const eps = opts.bnEps ?? (renamed ? 0 : undefined);
  if (eps !== undefined) {
    model.bnEps = eps;
    if (opts.bnEps === undefined) notes.push("backbone BatchNorm eps set to 0, as torchvision does for its v1 COCO weights (overwrite_eps); pass bnEps to choose");
  }
  return { report, notes, backboneOnly: false };
}
