// The shortcut connections of He et al. 2015, section 3.3 and 4.1 ("Identity vs.
// Projection Shortcuts"): option A keeps the identity and, where the shape changes,
// subsamples by the stride and pads zero channels (parameter-free); option B projects with
// a 1x1 conv + BN only where the shape changes (torchvision's `downsample`); option C
// projects everywhere. Pre-activation blocks project with the 1x1 conv alone (He et al.
// 2016, the input is already normalised).

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import type { Initializer } from '../nn/init.js';
import { Module, ShapeTrace } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { fmt } from '../tensor/geometry.js';
import { shortcutA, shortcutAGeometry } from '../tensor/ops/shortcut.js';
import type { Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * 'none' is a plain (shortcut-free) block.
 * @example const s: ShortcutOption = 'B';  // projection where the shape changes (the paper's option B)
 */
export type ShortcutOption = 'A' | 'B' | 'C';
/** @example SHORTCUT_OPTIONS.join(', ')  // 'A, B, C' */
export const SHORTCUT_OPTIONS: readonly ShortcutOption[] = ['A', 'B', 'C'];

/**
 * Option A where the shape changes: y = zero-pad-channels(x[:, :, ::s, ::s]), the new
 * channels split equally before and after the existing ones, exactly the
 * `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4))` of the widely used CIFAR
 * code, so its checkpoints load. Parameter-free (the state dict has no key for it); counts
 * no multiply-adds (it moves data: tensor/ops/shortcut.ts). NOTE: the odd channel, if
 * out - in is odd, goes after.
 * @example const sc = new ShortcutA(16, 32, 2);  // subsample and zero-pad channels
 */
export class ShortcutA extends Module {
  readonly before: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number, _backend?: Backend) {
    super();
    if (outChannels < inChannels) {
      throw new InvalidArgumentError(`shortcut option A pads channels and cannot reduce them (${inChannels} -> ${outChannels}); use option B or C`);
    }
    this.before = Math.floor((outChannels - inChannels) / 2);
  }

  override forward(x: Tensor): Tensor {
    if (x.shape.length === 4 && x.shape[1] !== this.inChannels) {
      throw new ShapeError(`ShortcutA(${this.inChannels} -> ${this.outChannels}): x must have ${this.inChannels} channels, got ${fmt(x.shape)}`);
    }
    return shortcutA(x, this.outChannels, this.stride);
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    const g = shortcutAGeometry(shape, this.outChannels, this.stride);
    return [g.N, g.K, g.OH, g.OW];
  }

  override extraRepr(): string {
    return `${this.inChannels} -> ${this.outChannels}, stride=${this.stride}, zero channels ${this.before} before and ${this.outChannels - this.inChannels - this.before} after`;
  }
}

/** @example const spec: ShortcutSpec = { inChannels: 16, outChannels: 32, stride: 2, option: 'B', preact: false, init: kaimingNormal('fanOut'), rng: new Rng(0) }; */
export interface ShortcutSpec {
  inChannels: number;
  outChannels: number;
  stride: number;
  option: ShortcutOption;
  /** Pre-activation blocks project with a conv alone (no BN). */
  preact: boolean;
  init: Initializer;
  rng: Rng;
  backend?: Backend;
}

/**
 * The shortcut module of a block, or null for the identity.
 * @example const sc = makeShortcut({ inChannels: 16, outChannels: 32, stride: 2, option: 'A', preact: false, init: kaimingNormal('fanOut'), rng: new Rng(0) });
 */
export function makeShortcut(s: ShortcutSpec): Module | null {
  const changes = s.stride !== 1 || s.inChannels !== s.outChannels;
  if (s.option === 'A') return changes ? new ShortcutA(s.inChannels, s.outChannels, s.stride, s.backend) : null;
  if (s.option === 'B' && !changes) return null;
  const conv = new Conv2d(s.inChannels, s.outChannels, 1, { stride: s.stride, bias: false, init: s.init, rng: s.rng, backend: s.backend });
  return s.preact ? new Sequential(conv) : new Sequential<Module>(conv, new BatchNorm2d(s.outChannels, { backend: s.backend }));
}
