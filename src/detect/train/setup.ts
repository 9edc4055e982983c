// A detector made ready to train: torchvision's initialisation of every part it does not
// load, and which parameters train (trainable_backbone_layers; FrozenBatchNorm2d, i.e. the
// backbone's BatchNorm in eval mode with fixed affine parameters, when the backbone comes
// from trained weights — torchvision's rule: frozen when trained, batch statistics when not).

import { numel } from '../../backend/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import type { NamedArray } from '../../io/safetensors.js';
import { createModel } from '../../models/registry.js';
import { BatchNorm2d } from '../../nn/batch_norm.js';
import { Conv2d } from '../../nn/conv.js';
import { fanIn, normalValues, uniformValues } from '../../nn/init.js';
import { Linear } from '../../nn/linear.js';
import { Rng } from '../../tensor/random.js';
import type { FasterRCNN } from '../faster_rcnn.js';

/** The backbone parts trainable_backbone_layers counts, last first (torchvision's list).
 * @example BACKBONE_LAYERS.slice(0, 3)  // ['layer4', 'layer3', 'layer2']
 */
export const BACKBONE_LAYERS = ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'] as const;

/**
 * Sets every weight of `model` as torchvision initialises a new detector: the ResNet as
 * torchvision's (Kaiming normal, fan out; BatchNorm 1 and 0), FPN convs kaiming_uniform(a=1)
 * with bias 0, RPN head convs normal(0, 0.01) with bias 0, box head and predictor as
 * nn.Linear's default. Seeded, so a run is reproducible.
 * @example initDetector(createDetector('fasterrcnn_resnet18_fpn', { numClasses: 11 }), 0);
 */
export function initDetector(model: FasterRCNN, seed: number): void {
  const rng = new Rng(seed);
  const sd = new Map<string, NamedArray>();
  const trunk = createModel(model.resnet.name, { ...model.backboneOptions, numClasses: 1, seed });
  try {
    for (const [k, v] of Object.entries(trunk.stateDict())) {
      const to = model.classifierKey(k);
      if (to !== null) sd.set(to, { data: v.data, shape: v.shape });
    }
  } finally {
    trunk.dispose();
  }
  const set = (key: string, shape: readonly number[], data: Float32Array): void => { sd.set(key, { data, shape: [...shape] }); };
  for (const [path, m] of model.namedModules()) {
    if (path.startsWith('backbone.body.') || path.startsWith('backbone.layer') || path.startsWith('backbone.conv1') || path.startsWith('roi_heads.box_head.layer')) continue;
    if (m instanceof Conv2d) {
      const w = m.weight.shape;
      const rpn = path.startsWith('rpn.');
      set(`${path}.weight`, w, rpn ? normalValues(numel(w), 0.01, rng) : uniformValues(numel(w), Math.sqrt(3 / fanIn(w)), rng));
      if (m.bias) set(`${path}.bias`, m.bias.shape, new Float32Array(m.bias.numel));
    } else if (m instanceof Linear) {
      const bound = 1 / Math.sqrt(m.inFeatures);
      set(`${path}.weight`, m.weight.shape, uniformValues(m.weight.numel, bound, rng));
      if (m.bias) set(`${path}.bias`, m.bias.shape, uniformValues(m.bias.numel, bound, rng));
    } else if (m instanceof BatchNorm2d && !sd.has(`${path}.weight`)) {
      set(`${path}.weight`, m.weight.shape, new Float32Array(m.numFeatures).fill(1));
      set(`${path}.bias`, m.bias.shape, new Float32Array(m.numFeatures));
    }
  }
  model.loadStateDict(sd, { strict: false });
}

/** @example const o: TrainableOptions = { trainableLayers: 3, frozenBn: true }; */
export interface TrainableOptions {
  /** How many of layer4, layer3, layer2, layer1, conv1 train (0..5). */
  trainableLayers: number;
  /** The backbone's BatchNorm in eval mode with fixed weights (FrozenBatchNorm2d). */
  frozenBn: boolean;
}

/**
 * Marks which parameters train and returns the function that sets the modes after each
 * model.train(): frozen BatchNorm in eval mode. Everything past the backbone always trains.
 * @example
 * const detector = createDetector('fasterrcnn_resnet50_fpn');
 * const setModes = setTrainable(detector, { trainableLayers: 3, frozenBn: true });
 * detector.train(); setModes();
 */
export function setTrainable(model: FasterRCNN, opts: TrainableOptions): () => void {
  const n = opts.trainableLayers;
  if (!Number.isInteger(n) || n < 0 || n > BACKBONE_LAYERS.length) throw new InvalidArgumentError(`trainable backbone layers must be an integer 0..${BACKBONE_LAYERS.length}, got ${String(n)}`);
  const train = new Set<string>(BACKBONE_LAYERS.slice(0, n));
  if (train.has('conv1')) train.add('bn1');
  const frozen: BatchNorm2d[] = [];
  for (const [path, m] of model.resnet.namedModules()) {
    if (m instanceof BatchNorm2d && opts.frozenBn) frozen.push(m);
  }
  for (const [key, p] of model.resnet.namedParameters()) {
    const top = key.split('.')[0];
    const isBn = frozen.some((bn) => bn.weight === p || bn.bias === p);
    p.requiresGrad = train.has(top) && !isBn;
  }
  return () => { for (const bn of frozen) bn.eval(); };
}
