// ResNet: a stem, stages of blocks, global average pooling and a linear classifier, for
// both families of He et al. 2015:
//   'imagenet' (section 3.4, Table 1): conv1 7x7/2 (64), bn1, relu, maxpool 3x3/2, four
//     stages (64, 128, 256, 512 planes; strides 1, 2, 2, 2), avgpool, fc. torchvision's
//     structure and key names (`downsample.0/.1`, `fc`).
//   'cifar' (section 4.2): conv1 3x3 (16), bn1, relu, three stages (16, 32, 64; strides 1,
//     2, 2), avgpool, linear. The widely used CIFAR code's key names (`shortcut.0/.1`,
//     `linear`: akamaster/pytorch_resnet_cifar10), so its checkpoints load.
// Pre-activation nets (He et al. 2016) drop the stem's BN-ReLU in the CIFAR family (conv1
// alone) and add a final `bn` + ReLU before the pooling. Any input size: the head pools
// globally. Feature maps, the pooled embedding and the lesion (blocks removed at test time,
// Veit et al. 2016) come from the same forward.

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import { constant, kaimingNormal } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module, ShapeTrace } from '../nn/module.js';
import { AdaptiveAvgPool2d, MaxPool2d } from '../nn/pooling.js';
import { ReLU } from '../nn/activation.js';
import { Sequential } from '../nn/sequential.js';
import { flatten } from '../tensor/ops/reshape.js';
import { fmt } from '../tensor/geometry.js';
import { Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { relu } from '../tensor/ops/relu.js';
import { blockClass, type Block, type BlockForwardOptions, type BlockKind } from './blocks.js';
import { SHORTCUT_OPTIONS, type ShortcutOption } from './shortcut.js';

/** @example const f: Family = model.family;  // 'imagenet' or 'cifar' */
export type Family = 'imagenet' | 'cifar';

/**
 * Everything that defines a ResNet. The registry (registry.ts) fills it per arch.
 * @example
 * const config: ResNetConfig = archConfig('resnet20');
 * const net = new ResNet({ ...config, numClasses: 2 });
 */
export interface ResNetConfig {
  /** The arch's name, used in messages and summaries (default "resnet"). */
  name?: string;
  family: Family;
  block: BlockKind;
  /** Blocks per stage, e.g. [2, 2, 2, 2] (resnet18) or [3, 3, 3] (resnet20). */
  layers: readonly number[];
  /** Planes per stage before the width multiplier (default 64, 128, 256, 512 / 16, 32, 64,
   *  doubling per stage). */
  planes?: readonly number[];
  /** Pre-activation blocks (He et al. 2016). */
  preact?: boolean;
  /** Shortcut option, or 'none' for the plain twin (default B for 'imagenet', A for 'cifar'). */
  shortcut?: ShortcutOption | 'none';
  inChannels?: number;
  numClasses?: number;
  /** Bottleneck 3x3 groups (ResNeXt cardinality). */
  groups?: number;
  /** torchvision's width_per_group (bottleneck only; 64 default, 128 for wide_resnet50_2). */
  widthPerGroup?: number;
  /** Multiplies every stage's planes (the stem keeps its width), as Wide ResNets' k. */
  width?: number;
  /** Zero the last BN gamma of every block (torchvision's zero_init_residual). */
  zeroInitResidual?: boolean;
  /** Seed of the He initialisation (default 0). */
  seed?: number;
  /** 'he' (default): He normal (fan_out) convs, PyTorch's default for the classifier, BN
   *  gamma 1 and beta 0, as torchvision. 'none': conv and classifier weights start at zero,
   *  a fast build for summaries or for weights about to be loaded. */
  init?: 'he' | 'none';
  backend?: Backend;
}

/** A block reference for the lesion: its index in forward order (0-based over every stage)
 *  or its name ("layer2.1").
 * @example const logits = model.forward(x, { dropBlocks: ['layer3.1', 5] satisfies BlockRef[] });
 */
export type BlockRef = number | string;

/**
 * @example
 * const o: ForwardOptions = { dropBlocks: ['layer3.0'] };
 * const logits = model.forward(x, o);
 */
export interface ForwardOptions {
  /** Blocks whose residual branch is removed (Veit et al. 2016's lesion study). */
  dropBlocks?: readonly BlockRef[];
  /** Blocks whose residual branch is a constant for autograd: their gradient flows through
   *  the shortcut only (forward values unchanged). With `detachShortcut` on the other
   *  blocks, the gradient reaching the input runs along paths through exactly the blocks
   *  not listed here (Veit et al. 2016, section 6). Residual blocks only. */
  detachBranch?: readonly BlockRef[];
  /** Blocks whose shortcut is a constant for autograd: their gradient flows through the
   *  residual branch only. Residual blocks only; not together with `detachBranch`. */
  detachShortcut?: readonly BlockRef[];
  /** Called with every BatchNorm's output before the ReLU or addition that follows it, in
   *  forward order, named by its module path ("bn1", "layer1.0.bn2"): the layer responses
   *  of He et al. 2015, Fig. 7. Read the tensor inside the callback; do not keep it. */
  onResponse?: (name: string, response: Tensor) => void;
}

/** @example for (const m of model.features(x).maps) console.log(m.name, m.stride, m.tensor.shape); */
export interface FeatureMap {
  /** "stem", "layer1", "layer2", ... */
  name: string;
  /** Nominal stride with respect to the input (2, 4, 8, 16, 32 for the ImageNet family). */
  stride: number;
  tensor: Tensor;
}

/** @example const { maps, embedding }: Features = model.features(x);  // embedding: [N, C] */
export interface Features {
  /** The stem's map, then each stage's output, in order. */
  maps: FeatureMap[];
  /** The globally pooled features fed to the classifier: [N, C]. */
  embedding: Tensor;
}

/** @example const names = model.blocks().map((b: NamedBlock) => b.name);  // ['layer1.0', ...] */
export interface NamedBlock {
  name: string;
  index: number;
  stage: number;
  block: Block;
}

function positiveInt(arch: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${arch}: '${what}' must be an integer >= 1, got ${String(v)}`);
  return v;
}

/**
 * A residual (or plain) network. Build one through the registry (`resnet50()`,
 * `createModel('resnet20')`) or directly from a config.
 * @example
 * const net = new ResNet({ family: 'cifar', block: 'basic', layers: [3, 3, 3], numClasses: 10 });
 * const logits = net.forward(x);                                  // [N, 10]
 * const lesioned = net.eval().forward(x, { dropBlocks: ['layer2.1'] });
 * @example
 * const net = createModel('resnet20', { numClasses: 10 });
 * const logits = net.forward(x);  // [N, 10]
 */
export class ResNet extends Module {
  readonly name: string;
  readonly family: Family;
  readonly blockKind: BlockKind;
  readonly preact: boolean;
  readonly shortcut: ShortcutOption | 'none';
  readonly inChannels: number;
  readonly numClasses: number;
  readonly layers: readonly number[];
  /** Output channels of the embedding (512 for resnet18, 2048 for resnet50). */
  readonly numFeatures: number;
  readonly stemStride: number;
  readonly stages: Sequential<Block>[] = [];
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d | null = null;
  readonly maxpool: MaxPool2d | null = null;
  /** The final BN of pre-activation nets. */
  readonly bn: BatchNorm2d | null = null;
  readonly avgpool: AdaptiveAvgPool2d;
  /** `fc` (ImageNet family) or `linear` (CIFAR family). */
  readonly head: Linear;
  private readonly blockList: NamedBlock[] = [];

  constructor(config: ResNetConfig) {
    super();
    const arch = (this.name = config.name ?? 'resnet');
    if (config.family !== 'imagenet' && config.family !== 'cifar') {
      throw new InvalidArgumentError(`${arch}: unknown family '${String(config.family)}'; valid: imagenet, cifar`);
    }
    if (config.block !== 'basic' && config.block !== 'bottleneck') {
      throw new InvalidArgumentError(`${arch}: unknown block '${String(config.block)}'; valid: basic, bottleneck`);
    }
    this.family = config.family;
    this.blockKind = config.block;
    this.preact = config.preact ?? false;
    const shortcut = (this.shortcut = config.shortcut ?? (this.family === 'imagenet' ? 'B' : 'A'));
    if (shortcut !== 'none' && !SHORTCUT_OPTIONS.includes(shortcut)) {
      throw new InvalidArgumentError(`${arch}: unknown shortcut option '${String(shortcut)}'; valid: A, B, C (or 'none' for a plain net)`);
    }
    this.inChannels = positiveInt(arch, 'inChannels', config.inChannels ?? 3);
    this.numClasses = positiveInt(arch, 'numClasses', config.numClasses ?? (this.family === 'imagenet' ? 1000 : 10));
    const groups = positiveInt(arch, 'groups', config.groups ?? 1);
    const widthPerGroup = positiveInt(arch, 'widthPerGroup', config.widthPerGroup ?? 64);
    if (this.blockKind === 'basic' && (groups !== 1 || widthPerGroup !== 64)) {
      throw new InvalidArgumentError(`${arch}: BasicBlock only supports groups=1 and widthPerGroup=64, as torchvision (got groups=${groups}, widthPerGroup=${widthPerGroup}); grouped or wider blocks need a bottleneck arch (resnet50, resnext50_32x4d, wide_resnet50_2, ...)`);
    }
    if (!Array.isArray(config.layers) || config.layers.length < 1) {
      throw new InvalidArgumentError(`${arch}: 'layers' must list the blocks per stage, e.g. [2, 2, 2, 2]; got ${String(config.layers)}`);
    }
    config.layers.forEach((n, i) => positiveInt(arch, `layers[${i}]`, n));
    this.layers = [...config.layers];
    const base = this.family === 'imagenet' ? 64 : 16;
    const planes0 = config.planes ?? this.layers.map((_, i) => base * 2 ** i);
    if (planes0.length !== this.layers.length) {
      throw new InvalidArgumentError(`${arch}: 'planes' has ${planes0.length} entries but 'layers' ${this.layers.length}`);
    }
    const width = config.width ?? 1;
    if (typeof width !== 'number' || !(width > 0)) throw new InvalidArgumentError(`${arch}: 'width' must be a positive number, got ${String(width)}`);
    const planes = planes0.map((p, i) => {
      const v = p * width;
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${arch}: width ${width} gives stage ${i + 1} ${v} planes; it must be a whole number >= 1`);
      return v;
    });
    if (config.zeroInitResidual && shortcut === 'none') {
      throw new InvalidArgumentError(`${arch}: zeroInitResidual needs shortcuts; a plain net with zeroed gammas outputs a constant`);
    }
    const seed = config.seed ?? 0;
    if (!Number.isInteger(seed)) throw new InvalidArgumentError(`${arch}: 'seed' must be an integer, got ${String(seed)}`);
    const rng = new Rng(seed);
    const backend = config.backend;
    if (config.init !== undefined && config.init !== 'he' && config.init !== 'none') {
      throw new InvalidArgumentError(`${arch}: unknown init '${String(config.init)}'; valid: he, none`);
    }
    // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv.
    const init = config.init === 'none' ? constant(0) : kaimingNormal('fanOut');
    const imagenet = this.family === 'imagenet';

    // Stem.
    this.conv1 = this.registerModule('conv1', imagenet
      ? new Conv2d(this.inChannels, base, 7, { stride: 2, padding: 3, bias: false, init, rng, backend })
      : new Conv2d(this.inChannels, base, 3, { stride: 1, padding: 1, bias: false, init, rng, backend }));
    if (imagenet || !this.preact) {
      this.bn1 = this.registerModule('bn1', new BatchNorm2d(base, { backend }));
      this.registerModule('relu', new ReLU());
    }
    if (imagenet) this.maxpool = this.registerModule('maxpool', new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }));
    this.stemStride = imagenet ? 2 : 1;

    // Stages.
    const Cls = blockClass(this.blockKind, this.preact);
    let inC = base;
    let index = 0;
    this.layers.forEach((count, s) => {
      const stage = new Sequential<Block>();
      for (let i = 0; i < count; i++) {
        const stride = i === 0 && s > 0 ? 2 : 1;
        let block: Block;
        try {
          block = new Cls(inC, planes[s], {
            stride, shortcut, groups, baseWidth: widthPerGroup, shortcutName: imagenet ? 'downsample' : 'shortcut',
            zeroInitResidual: config.zeroInitResidual ?? false, init, rng, backend,
          });
        } catch (e) {
          if (e instanceof InvalidArgumentError) throw new InvalidArgumentError(`${arch}: layer${s + 1}.${i}: ${e.message}`);
          throw e;
        }
        stage.append(block);
        this.blockList.push({ name: `layer${s + 1}.${i}`, index: index++, stage: s, block });
        inC = block.outChannels;
      }
      this.stages.push(this.registerModule(`layer${s + 1}`, stage));
    });
    this.numFeatures = inC;

    // Head.
    if (this.preact) this.bn = this.registerModule('bn', new BatchNorm2d(inC, { backend }));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.head = this.registerModule(imagenet ? 'fc' : 'linear', new Linear(inC, this.numClasses, { rng, backend, init: config.init === 'none' ? constant(0) : undefined }));
  }

  /** Every block with its name ("layer2.1") and forward index. */
  blocks(): NamedBlock[] {
    return [...this.blockList];
  }

  blockNames(): string[] {
    return this.blockList.map((b) => b.name);
  }

  /** Nominal stride of each stage's output (and of the stem, first). */
  strides(): { name: string; stride: number }[] {
    const out = [{ name: 'stem', stride: this.stemStride }];
    let s = this.stemStride * (this.maxpool ? 2 : 1);
    this.stages.forEach((_, i) => {
      if (i > 0) s *= 2;
      out.push({ name: `layer${i + 1}`, stride: s });
    });
    return out;
  }

  private resolveBlocks(refs: readonly BlockRef[] | undefined, option: 'dropBlocks' | 'detachBranch' | 'detachShortcut'): Set<number> {
    const out = new Set<number>();
    if (!refs) return out;
    if (!Array.isArray(refs)) throw new InvalidArgumentError(`${this.name}: ${option} must be an array of block indices or names`);
    const n = this.blockList.length;
    const valid = () => `valid: indices 0..${n - 1} or names ${n <= 12 ? this.blockNames().join(', ') : `${this.blockNames().slice(0, 4).join(', ')}, ..., ${this.blockNames().slice(-2).join(', ')}`}`;
    for (const r of refs) {
      let b: NamedBlock | undefined;
      if (typeof r === 'number') b = Number.isInteger(r) ? this.blockList[r] : undefined;
      else if (typeof r === 'string') b = this.blockList.find((x) => x.name === r);
      if (!b) throw new InvalidArgumentError(`${this.name}: no block ${JSON.stringify(r)} to ${option === 'dropBlocks' ? 'drop' : 'detach'}; ${valid()}`);
      if (option === 'dropBlocks' && !b.block.removable) {
        throw new InvalidArgumentError(`${this.name}: block ${b.name} is plain and changes the shape (${b.block.inChannels} -> ${b.block.outChannels} channels, stride ${b.block.stride}): without a shortcut nothing would carry the signal, so it cannot be dropped`);
      }
      if (option !== 'dropBlocks' && b.block.plain) {
        throw new InvalidArgumentError(`${this.name}: ${option}: block ${b.name} is plain; it has one path only, so there is no branch or shortcut to detach`);
      }
      out.add(b.index);
    }
    return out;
  }

  private checkInput(x: Tensor): void {
    if (x.shape.length !== 4 || x.shape[1] !== this.inChannels) {
      throw new ShapeError(`${this.name}: input must be [N, ${this.inChannels}, H, W] (N images of ${this.inChannels} channel(s), any H and W), got ${fmt(x.shape)}`);
    }
  }

  private run(x: Tensor, opts: ForwardOptions, collect: boolean): Features {
    this.checkInput(x);
    const drop = this.resolveBlocks(opts.dropBlocks, 'dropBlocks');
    const detachBranch = this.resolveBlocks(opts.detachBranch, 'detachBranch');
    const detachShortcut = this.resolveBlocks(opts.detachShortcut, 'detachShortcut');
    for (const i of detachBranch) {
      if (detachShortcut.has(i)) throw new InvalidArgumentError(`${this.name}: block ${this.blockList[i].name} is in both detachBranch and detachShortcut; no gradient would pass it`);
    }
    const onResponse = opts.onResponse;
    if (onResponse !== undefined && typeof onResponse !== 'function') throw new InvalidArgumentError(`${this.name}: onResponse must be a function (name, tensor) => void`);
    const bnRelu = (name: string, bn: BatchNorm2d, t: Tensor): Tensor => {
      if (!onResponse) return bn.forward(t, { relu: true });
      const r = bn.forward(t);
      onResponse(name, r);
      return relu(r);
    };
    const strides = this.strides();
    const maps: FeatureMap[] = [];
    let h = this.conv1.forward(x);
    if (this.bn1) h = bnRelu('bn1', this.bn1, h);
    if (collect) maps.push({ name: 'stem', stride: strides[0].stride, tensor: h });
    if (this.maxpool) h = this.maxpool.forward(h);
    let index = 0;
    this.stages.forEach((stage, s) => {
      let i = 0;
      for (const block of stage) {
        const name = `layer${s + 1}.${i++}`;
        const bo: BlockForwardOptions = {};
        if (detachBranch.has(index)) bo.detach = 'branch';
        if (detachShortcut.has(index)) bo.detach = 'shortcut';
        if (onResponse) bo.onResponse = (bn, t) => onResponse(`${name}.${bn}`, t);
        h = drop.has(index++) ? block.forwardWithoutResidual(h) : block.forward(h, bo);
      }
      if (collect) maps.push({ name: `layer${s + 1}`, stride: strides[s + 1].stride, tensor: h });
    });
    if (this.bn) h = bnRelu('bn', this.bn, h);
    return { maps, embedding: flatten(this.avgpool.forward(h)) };
  }

  /**
   * Logits [N, numClasses] for images [N, inChannels, H, W] (any H, W the stem can take).
   * @example const logits = tidy(() => noGrad(() => model.eval().forward(x)));
   */
  override forward(x: Tensor, opts: ForwardOptions = {}): Tensor {
    return this.head.forward(this.run(x, opts, false).embedding);
  }

  /**
   * The stem's map and every stage's output with its stride, and the pooled embedding, in
   * one forward (no classifier).
   * @example const { maps, embedding } = model.features(x); // maps[4]: layer4, stride 32
   */
  features(x: Tensor, opts: ForwardOptions = {}): Features {
    return this.run(x, opts, true);
  }

  /** Shapes of the stem, each stage and the head for an input shape, with the multiply-adds
   *  of each part; no forward is run (summary.ts formats it). */
  traceStages(shape: Shape): { name: string; shape: number[]; macs: number; params: number; modules: Module[] }[] {
    if (shape.length !== 4 || shape[1] !== this.inChannels) {
      throw new ShapeError(`${this.name}: input must be [N, ${this.inChannels}, H, W], got ${fmt(shape)}`);
    }
    const out: { name: string; shape: number[]; macs: number; params: number; modules: Module[] }[] = [];
    let s = [...shape];
    const step = (name: string, modules: Module[], f: (t: ShapeTrace) => number[]) => {
      const t = new ShapeTrace();
      try {
        s = f(t);
      } catch (e) {
        if (e instanceof ShapeError || e instanceof InvalidArgumentError) {
          throw new ShapeError(`${this.name}: input ${fmt(shape)} is too small or malformed at ${name}: ${e.message}`);
        }
        throw e;
      }
      let params = 0;
      for (const m of modules) params += m.numParameters();
      out.push({ name, shape: s, macs: t.macs, params, modules });
    };
    const stem: Module[] = this.bn1 ? [this.conv1, this.bn1] : [this.conv1];
    step('conv1', stem, (t) => stem.reduce<number[]>((acc, m) => m.traceShape(acc, t), s));
    if (this.maxpool) { const mp = this.maxpool; step('maxpool', [mp], (t) => mp.traceShape(s, t)); }
    this.stages.forEach((stage, i) => step(`layer${i + 1}`, [stage], (t) => stage.traceShape(s, t)));
    if (this.bn) { const bn = this.bn; step('bn', [bn], (t) => bn.traceShape(s, t)); }
    step('avgpool', [this.avgpool], (t) => this.avgpool.traceShape(s, t));
    step(this.family === 'imagenet' ? 'fc' : 'linear', [this.head], (t) => this.head.traceShape([s[0], s[1]], t));
    return out;
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    const stages = this.traceStages(shape);
    for (const st of stages) trace.macs += st.macs;
    return stages[stages.length - 1].shape;
  }

  override extraRepr(): string {
    return `name=${this.name}`;
  }
}
