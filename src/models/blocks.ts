// The residual blocks. Post-activation (He et al. 2015, Fig. 2 and 5): BasicBlock (two 3x3
// convs) and Bottleneck (1x1 reduce, 3x3, 1x1 restore, expansion 4, the stride on the 3x3 as
// torchvision's "v1.5"; groups and width per group give ResNeXt and Wide ResNet), both
//   y = relu(F(x) + shortcut(x)).
// Pre-activation (He et al. 2016, "Identity Mappings in Deep Residual Networks", eq. 3 and
// Fig. 4e): PreActBasicBlock and PreActBottleneck, BN-ReLU-conv units with nothing after the
// addition:
//   y = F(relu(bn(x))) + shortcut(x)
// where a changing shortcut (projection or option A) takes the pre-activated input, as the
// paper's projections do. Plain twins (the paper's "plain" nets) are the same blocks with
// no shortcut and no addition. Names are torchvision's: conv1, bn1, conv2, bn2, conv3, bn3,
// then `downsample` (or `shortcut` in the CIFAR family, as the widely used CIFAR code).

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import { defaultRng, kaimingNormal, type Initializer } from '../nn/init.js';
import { Module, ShapeTrace } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { add, addRelu, affine } from '../tensor/ops/elementwise.js';
import { relu } from '../tensor/ops/relu.js';
import { fmt } from '../tensor/geometry.js';
import type { Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { makeShortcut, type ShortcutOption } from './shortcut.js';

/** @example const o: BlockOptions = { stride: 2, shortcut: 'B', zeroInitResidual: true }; */
export interface BlockOptions {
  stride?: number;
  /** Shortcut option (default 'B'); 'none' makes the plain, shortcut-free block. */
  shortcut?: ShortcutOption | 'none';
  /** Bottleneck only: grouped 3x3 (ResNeXt's cardinality). */
  groups?: number;
  /** Bottleneck only: torchvision's width_per_group (64; 128 for Wide ResNet-50-2). */
  baseWidth?: number;
  /** The shortcut's module name: torchvision's 'downsample' (default) or 'shortcut'. */
  shortcutName?: 'downsample' | 'shortcut';
  /** Start the last BN's gamma at 0, so the block starts as its shortcut (Goyal et al. 2017). */
  zeroInitResidual?: boolean;
  /** Conv weight initializer (default He normal, fan_out, as torchvision). */
  init?: Initializer;
  rng?: Rng;
  backend?: Backend;
}

/**
 * Per-call options of a block's forward (ResNet.forward fills them from its ForwardOptions).
 * @example const o: BlockForwardOptions = { detach: 'branch', onResponse: (name, r) => console.log(name, r.shape) };
 */
export interface BlockForwardOptions {
  /** Cut autograd on one side of the addition, forward values unchanged: 'branch' makes the
   *  residual branch's output a constant (the gradient flows through the shortcut only),
   *  'shortcut' the shortcut's (it flows through the branch only). How Veit et al. 2016,
   *  section 6, send the gradient along paths of a chosen length. Not for plain blocks. */
  detach?: 'branch' | 'shortcut';
  /** Called with each BatchNorm's output before the ReLU or the addition that follows it,
   *  named as in the block ("bn1", "bn2", ...): the layer responses of He et al. 2015,
   *  Fig. 7. The tensor lives only as long as the caller's scope: read it, do not keep it. */
  onResponse?: (name: string, response: Tensor) => void;
}

interface Resolved {
  stride: number; shortcut: ShortcutOption | 'none'; groups: number; baseWidth: number;
  shortcutName: 'downsample' | 'shortcut'; zeroInitResidual: boolean; init: Initializer; rng: Rng; backend?: Backend;
}

function resolve(name: string, opts: BlockOptions): Resolved {
  const r: Resolved = {
    stride: opts.stride ?? 1,
    shortcut: opts.shortcut ?? 'B',
    groups: opts.groups ?? 1,
    baseWidth: opts.baseWidth ?? 64,
    shortcutName: opts.shortcutName ?? 'downsample',
    zeroInitResidual: opts.zeroInitResidual ?? false,
    init: opts.init ?? kaimingNormal('fanOut'),
    rng: opts.rng ?? defaultRng,
    backend: opts.backend,
  };
  for (const [k, v] of [['stride', r.stride], ['groups', r.groups], ['baseWidth', r.baseWidth]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${name}: '${k}' must be an integer >= 1, got ${String(v)}`);
  }
  if (!['A', 'B', 'C', 'none'].includes(r.shortcut)) {
    throw new InvalidArgumentError(`${name}: unknown shortcut option '${String(r.shortcut)}'; valid: A, B, C, none`);
  }
  if (r.zeroInitResidual && r.shortcut === 'none') {
    throw new InvalidArgumentError(`${name}: zeroInitResidual needs a shortcut (a plain block with a zero gamma outputs nothing)`);
  }
  return r;
}

/**
 * What every block shares: channels, stride, the shortcut and the lesion (Veit et al. 2016).
 * @example for (const { name, block } of model.blocks()) console.log(name, block.inChannels, block.outChannels);
 */
export abstract class Block extends Module {
  readonly inChannels: number;
  readonly planes: number;
  readonly outChannels: number;
  readonly stride: number;
  readonly shortcutOption: ShortcutOption | 'none';
  abstract readonly preact: boolean;
  protected shortcut: Module | null = null;
  protected readonly opts: Resolved;

  protected constructor(inChannels: number, planes: number, expansion: number, opts: BlockOptions) {
    super();
    const name = new.target.name;
    for (const [k, v] of [['inChannels', inChannels], ['planes', planes]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${name}: '${k}' must be an integer >= 1, got ${String(v)}`);
    }
    this.opts = resolve(name, opts);
    this.inChannels = inChannels;
    this.planes = planes;
    this.outChannels = planes * expansion;
    this.stride = this.opts.stride;
    this.shortcutOption = this.opts.shortcut;
  }

  /** Registers the shortcut last, as torchvision does (`downsample` after the convs). */
  protected addShortcut(preact: boolean): void {
    if (this.shortcutOption === 'none') return;
    const m = makeShortcut({ inChannels: this.inChannels, outChannels: this.outChannels, stride: this.stride, option: this.shortcutOption,
      preact, init: this.opts.init, rng: this.opts.rng, backend: this.opts.backend });
    if (m) this.shortcut = this.registerModule(this.opts.shortcutName, m);
  }

  protected conv(inC: number, outC: number, k: number, stride = 1, groups = 1): Conv2d {
    return new Conv2d(inC, outC, k, { stride, padding: k === 3 ? 1 : 0, groups, bias: false, init: this.opts.init, rng: this.opts.rng, backend: this.opts.backend });
  }

  protected bn(c: number, last = false): BatchNorm2d {
    return new BatchNorm2d(c, { backend: this.opts.backend, weightInit: last && this.opts.zeroInitResidual ? 0 : 1 });
  }

  /** bn(x), reported to `onResponse` before its ReLU (fused when nobody listens). */
  protected bnForward(name: string, bn: BatchNorm2d, x: Tensor, withRelu: boolean, o: BlockForwardOptions): Tensor {
    if (!o.onResponse) return bn.forward(x, { relu: withRelu });
    const r = bn.forward(x);
    o.onResponse(name, r);
    return withRelu ? relu(r) : r;
  }

  /** branch + shortcut (then ReLU, fused, with `withRelu`) with `o.detach` applied: the
   *  detached side runs without autograd (an identity shortcut is copied, so its input keeps
   *  its gradient elsewhere). */
  protected addBranch(branch: () => Tensor, shortcut: () => Tensor, o: BlockForwardOptions, withRelu = false): Tensor {
    if (o.detach !== undefined && o.detach !== 'branch' && o.detach !== 'shortcut') {
      throw new InvalidArgumentError(`${this.constructor.name}: unknown detach '${String(o.detach)}'; valid: branch, shortcut`);
    }
    const b = o.detach === 'branch' ? noGrad(branch) : branch();
    const s = o.detach === 'shortcut' ? noGrad(() => affine(shortcut(), 1, 0)) : shortcut();
    return withRelu ? addRelu(b, s) : add(b, s);
  }

  protected checkDetach(o: BlockForwardOptions): void {
    if (o.detach !== undefined && this.plain) {
      throw new InvalidArgumentError(`${this.constructor.name}: detach '${String(o.detach)}' needs a shortcut; a plain block has one path only`);
    }
  }

  /** The shortcut module (`downsample` / `shortcut`: option A, or a projection), or null
   *  for the identity and for plain blocks. For code that walks a block's structure
   *  (BN-folded inference, ONNX export). */
  get shortcutModule(): Module | null {
    return this.shortcut;
  }

  /** True for a plain (shortcut-free) block. */
  get plain(): boolean {
    return this.shortcutOption === 'none';
  }

  /** Whether the residual branch can be removed: always, except in a plain block that
   *  changes the shape (there is nothing left to carry the signal). */
  get removable(): boolean {
    return !this.plain || (this.stride === 1 && this.inChannels === this.outChannels);
  }

  /** The block's output with its residual branch F removed (the lesion study of Veit et
   *  al. 2016): what the shortcut carries, through the post-activation if there is one.
   *  A plain block of unchanged shape becomes the identity. */
  forwardWithoutResidual(x: Tensor): Tensor {
    if (this.plain) {
      if (!this.removable) throw new ShapeError(`${this.constructor.name}: a plain block that changes the shape (${this.inChannels} -> ${this.outChannels} channels, stride ${this.stride}) cannot be removed`);
      return x;
    }
    return this.shortcutOf(x);
  }

  protected abstract shortcutOf(x: Tensor): Tensor;

  abstract override forward(x: Tensor, o?: BlockForwardOptions): Tensor;

  /** The BN whose gamma zeroInitResidual zeroes (torchvision: bn2 / bn3). */
  abstract lastBatchNorm(): BatchNorm2d;

  /** The layers as the paper's Table 1 writes them, e.g. "3x3, 64; 3x3, 64". */
  abstract describe(): string;

  protected traceShortcut(shape: Shape, out: number[], trace: ShapeTrace): void {
    if (this.plain) return;
    const s = this.shortcut ? this.shortcut.traceShape(shape, trace) : [...shape];
    if (s.join() !== out.join()) {
      throw new ShapeError(`${this.constructor.name}: the shortcut gives ${fmt(s)} but the residual branch ${fmt(out)} (input ${fmt(shape)})`);
    }
  }

  protected checkInput(x: Shape): void {
    if (x.length !== 4 || x[1] !== this.inChannels) {
      throw new ShapeError(`${this.constructor.name}: input must be [N, ${this.inChannels}, H, W], got ${fmt(x)}`);
    }
  }

  override extraRepr(): string {
    return `${this.inChannels} -> ${this.outChannels}, stride=${this.stride}, shortcut=${this.shortcutOption}`;
  }
}

/**
 * Two 3x3 convs (He et al. 2015, Fig. 5 left): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
 * @example const b = new BasicBlock(64, 128, { stride: 2 }); // downsample.0/.1 projection
 */
export class BasicBlock extends Block {
  static readonly expansion = 1;
  readonly preact = false;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(inChannels: number, planes: number, opts: BlockOptions = {}) {
    super(inChannels, planes, 1, opts);
    if (this.opts.groups !== 1 || this.opts.baseWidth !== 64) {
      throw new InvalidArgumentError(`${new.target.name} only supports groups=1 and baseWidth=64, as torchvision's (got groups=${this.opts.groups}, baseWidth=${this.opts.baseWidth}); grouped or wider 3x3s need a Bottleneck`);
    }
    this.conv1 = this.registerModule('conv1', this.conv(inChannels, planes, 3, this.stride));
    this.bn1 = this.registerModule('bn1', this.bn(planes));
    this.conv2 = this.registerModule('conv2', this.conv(planes, planes, 3));
    this.bn2 = this.registerModule('bn2', this.bn(planes, true));
    this.addShortcut(false);
  }

  override forward(x: Tensor, o: BlockForwardOptions = {}): Tensor {
    this.checkDetach(o);
    const branch = (): Tensor => {
      const out = this.conv2.forward(this.bnForward('bn1', this.bn1, this.conv1.forward(x), true, o));
      return this.bnForward('bn2', this.bn2, out, this.plain, o);
    };
    if (this.plain) return branch();
    return this.addBranch(branch, () => (this.shortcut ? this.shortcut.forward(x) : x), o, true);
  }

  protected override shortcutOf(x: Tensor): Tensor {
    return relu(this.shortcut ? this.shortcut.forward(x) : x);
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    this.checkInput(shape);
    const out = this.conv2.traceShape(this.conv1.traceShape(shape, trace), trace);
    this.traceShortcut(shape, out, trace);
    return out;
  }

  lastBatchNorm(): BatchNorm2d { return this.bn2; }

  describe(): string {
    return `3x3, ${this.planes}; 3x3, ${this.planes}`;
  }
}

function bottleneckWidth(planes: number, o: Resolved): number {
  return Math.floor(planes * (o.baseWidth / 64)) * o.groups; // torchvision: int(planes * (base_width / 64.)) * groups
}

/**
 * 1x1 reduce, 3x3 (with the stride and the groups), 1x1 restore to 4 * planes (He et al. 2015,
 * Fig. 5 right; the stride on the 3x3 as torchvision's v1.5).
 * @example const b = new Bottleneck(256, 128, { stride: 2 }); // 256 -> 512
 */
export class Bottleneck extends Block {
  static readonly expansion = 4;
  readonly preact = false;
  readonly width: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;

  constructor(inChannels: number, planes: number, opts: BlockOptions = {}) {
    super(inChannels, planes, Bottleneck.expansion, opts);
    const width = (this.width = bottleneckWidth(planes, this.opts));
    if (width < 1) throw new InvalidArgumentError(`${new.target.name}: width ${width} (planes ${planes} * baseWidth ${this.opts.baseWidth} / 64 * groups ${this.opts.groups}) must be >= 1`);
    this.conv1 = this.registerModule('conv1', this.conv(inChannels, width, 1));
    this.bn1 = this.registerModule('bn1', this.bn(width));
    this.conv2 = this.registerModule('conv2', this.conv(width, width, 3, this.stride, this.opts.groups));
    this.bn2 = this.registerModule('bn2', this.bn(width));
    this.conv3 = this.registerModule('conv3', this.conv(width, this.outChannels, 1));
    this.bn3 = this.registerModule('bn3', this.bn(this.outChannels, true));
    this.addShortcut(false);
  }

  override forward(x: Tensor, o: BlockForwardOptions = {}): Tensor {
    this.checkDetach(o);
    const branch = (): Tensor => {
      let out = this.bnForward('bn1', this.bn1, this.conv1.forward(x), true, o);
      out = this.bnForward('bn2', this.bn2, this.conv2.forward(out), true, o);
      return this.bnForward('bn3', this.bn3, this.conv3.forward(out), this.plain, o);
    };
    if (this.plain) return branch();
    return this.addBranch(branch, () => (this.shortcut ? this.shortcut.forward(x) : x), o, true);
  }

  protected override shortcutOf(x: Tensor): Tensor {
    return relu(this.shortcut ? this.shortcut.forward(x) : x);
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    this.checkInput(shape);
    const out = this.conv3.traceShape(this.conv2.traceShape(this.conv1.traceShape(shape, trace), trace), trace);
    this.traceShortcut(shape, out, trace);
    return out;
  }

  lastBatchNorm(): BatchNorm2d { return this.bn3; }

  describe(): string {
    const g = this.opts.groups > 1 ? `, groups ${this.opts.groups}` : '';
    return `1x1, ${this.width}; 3x3, ${this.width}${g}; 1x1, ${this.outChannels}`;
  }
}

/**
 * Pre-activation basic unit (He et al. 2016): conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut.
 * @example const b = new PreActBasicBlock(16, 32, { stride: 2, shortcut: 'A' });
 */
export class PreActBasicBlock extends Block {
  static readonly expansion = 1;
  readonly preact = true;
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;

  constructor(inChannels: number, planes: number, opts: BlockOptions = {}) {
    super(inChannels, planes, 1, opts);
    if (this.opts.groups !== 1 || this.opts.baseWidth !== 64) {
      throw new InvalidArgumentError(`${new.target.name} only supports groups=1 and baseWidth=64 (got groups=${this.opts.groups}, baseWidth=${this.opts.baseWidth}); grouped or wider 3x3s need a bottleneck`);
    }
    this.bn1 = this.registerModule('bn1', this.bn(inChannels));
    this.conv1 = this.registerModule('conv1', this.conv(inChannels, planes, 3, this.stride));
    this.bn2 = this.registerModule('bn2', this.bn(planes, true));
    this.conv2 = this.registerModule('conv2', this.conv(planes, planes, 3));
    this.addShortcut(true);
  }

  override forward(x: Tensor, o: BlockForwardOptions = {}): Tensor {
    this.checkDetach(o);
    const pre = this.bnForward('bn1', this.bn1, x, true, o);
    const branch = (): Tensor => this.conv2.forward(this.bnForward('bn2', this.bn2, this.conv1.forward(pre), true, o));
    if (this.plain) return branch();
    return this.addBranch(branch, () => (this.shortcut ? this.shortcut.forward(pre) : x), o);
  }

  protected override shortcutOf(x: Tensor): Tensor {
    return this.shortcut ? this.shortcut.forward(this.bn1.forward(x, { relu: true })) : x;
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    this.checkInput(shape);
    const out = this.conv2.traceShape(this.conv1.traceShape(shape, trace), trace);
    this.traceShortcut(shape, out, trace);
    return out;
  }

  lastBatchNorm(): BatchNorm2d { return this.bn2; }

  describe(): string {
    return `3x3, ${this.planes}; 3x3, ${this.planes}`;
  }
}

/**
 * Pre-activation bottleneck unit (He et al. 2016, the ResNet-164/1001 unit): BN-ReLU before
 * each of the 1x1, 3x3 (stride, groups) and 1x1 convs.
 * @example const block = new PreActBottleneck(256, 64, {});  // 256 -> 256 channels, He et al. 2016
 */
export class PreActBottleneck extends Block {
  static readonly expansion = 4;
  readonly preact = true;
  readonly width: number;
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly conv3: Conv2d;

  constructor(inChannels: number, planes: number, opts: BlockOptions = {}) {
    super(inChannels, planes, PreActBottleneck.expansion, opts);
    const width = (this.width = bottleneckWidth(planes, this.opts));
    if (width < 1) throw new InvalidArgumentError(`${new.target.name}: width ${width} must be >= 1`);
    this.bn1 = this.registerModule('bn1', this.bn(inChannels));
    this.conv1 = this.registerModule('conv1', this.conv(inChannels, width, 1));
    this.bn2 = this.registerModule('bn2', this.bn(width));
    this.conv2 = this.registerModule('conv2', this.conv(width, width, 3, this.stride, this.opts.groups));
    this.bn3 = this.registerModule('bn3', this.bn(width, true));
    this.conv3 = this.registerModule('conv3', this.conv(width, this.outChannels, 1));
    this.addShortcut(true);
  }

  override forward(x: Tensor, o: BlockForwardOptions = {}): Tensor {
    this.checkDetach(o);
    const pre = this.bnForward('bn1', this.bn1, x, true, o);
    const branch = (): Tensor => {
      let out = this.conv1.forward(pre);
      out = this.conv2.forward(this.bnForward('bn2', this.bn2, out, true, o));
      return this.conv3.forward(this.bnForward('bn3', this.bn3, out, true, o));
    };
    if (this.plain) return branch();
    return this.addBranch(branch, () => (this.shortcut ? this.shortcut.forward(pre) : x), o);
  }

  protected override shortcutOf(x: Tensor): Tensor {
    return this.shortcut ? this.shortcut.forward(this.bn1.forward(x, { relu: true })) : x;
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    this.checkInput(shape);
    const out = this.conv3.traceShape(this.conv2.traceShape(this.conv1.traceShape(shape, trace), trace), trace);
    this.traceShortcut(shape, out, trace);
    return out;
  }

  lastBatchNorm(): BatchNorm2d { return this.bn3; }

  describe(): string {
    const g = this.opts.groups > 1 ? `, groups ${this.opts.groups}` : '';
    return `1x1, ${this.width}; 3x3, ${this.width}${g}; 1x1, ${this.outChannels}`;
  }
}

type PlainOptions = Omit<BlockOptions, 'shortcut' | 'zeroInitResidual'>;

/**
 * BasicBlock without its shortcut (the paper's plain nets): relu(bn2(conv2(relu(bn1(conv1(x)))))).
 * @example const block = new PlainBasicBlock(16, 16, { stride: 1 });  // a plain net's block: no shortcut
 */
export class PlainBasicBlock extends BasicBlock {
  constructor(inChannels: number, planes: number, opts: PlainOptions = {}) {
    super(inChannels, planes, { ...opts, shortcut: 'none' });
  }
}

/**
 * Bottleneck without its shortcut.
 * @example const block = new PlainBottleneck(256, 64, { stride: 1 });
 */
export class PlainBottleneck extends Bottleneck {
  constructor(inChannels: number, planes: number, opts: PlainOptions = {}) {
    super(inChannels, planes, { ...opts, shortcut: 'none' });
  }
}

/**
 * The block classes by kind, for builders.
 * @example const kind: BlockKind = archInfo('resnet50').block;  // 'bottleneck'
 */
export type BlockKind = 'basic' | 'bottleneck';

/**
 * @example
 * const Cls = blockClass('bottleneck', false);  // Bottleneck, expansion 4
 * const block = new Cls(64, 64, { stride: 1 });
 */
export function blockClass(kind: BlockKind, preact: boolean): (new (inC: number, planes: number, opts: BlockOptions) => Block) & { expansion: number } {
  if (kind === 'basic') return preact ? PreActBasicBlock : BasicBlock;
  return preact ? PreActBottleneck : Bottleneck;
}
