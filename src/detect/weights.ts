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
  const loaded = loadWeights(path, { mapping: 'torchvision', ...opts });
  const notes = [...loaded.notes];
  const keys = [...loaded.tensors.keys()];
  const isClassifier = !keys.some((k) => k.startsWith('backbone.')) && keys.includes('conv1.weight');
  if (isClassifier) {
    const body = new Map<string, NamedArray>();
    for (const [k, v] of loaded.tensors) {
      const to = model.classifierKey(k);
      if (to !== null) body.set(to, v);
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
