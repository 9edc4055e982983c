// The shortcut connections of He et al. 2015, section 3.3 and 4.1 ("Identity vs.
// Projection Shortcuts"): option A keeps the identity and, where the shape changes,
// subsamples by the stride and pads zero channels (parameter-free); option B projects with
// a 1x1 conv + BN only where the shape changes (torchvision's `downsample`); option C
// projects everywhere. Pre-activation blocks project with the 1x1 conv alone (He et al.
// 2016, the input is already normalised).

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import type { Initializer } from '../nn/init.js';
import { Module, ShapeTrace } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { conv2d } from '../tensor/ops/conv2d.js';
import { conv2dGeometry } from '../tensor/geometry.js';
import type { Rng } from '../tensor/random.js';
import { tensor, type Tensor } from '../tensor/tensor.js';

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
 * code, so its checkpoints load. Computed as a 1x1 convolution with stride s and a fixed
 * 0/1 selection weight [out, in, 1, 1] (exact: each output is 1*x or a sum of zeros); the
 * weight is a non-persistent, non-trainable buffer, so the state dict has no key for it.
 * Counts no multiply-adds (it moves data). NOTE: the odd channel, if out - in is odd, goes
 * after.
 * @example const sc = new ShortcutA(16, 32, 2);  // subsample and zero-pad channels
 */
export class ShortcutA extends Module {
  readonly before: number;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number, backend?: Backend) {
    super();
    if (outChannels < inChannels) {
      throw new InvalidArgumentError(`shortcut option A pads channels and cannot reduce them (${inChannels} -> ${outChannels}); use option B or C`);
    }
    this.before = Math.floor((outChannels - inChannels) / 2);
    const w = new Float32Array(outChannels * inChannels);
    for (let c = 0; c < inChannels; c++) w[(this.before + c) * inChannels + c] = 1;
    this.registerBuffer('selection', tensor(w, [outChannels, inChannels, 1, 1], { backend }), false);
  }

  override forward(x: Tensor): Tensor {
    return conv2d(x, this.getBuffer('selection'), null, { stride: this.stride });
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    const g = conv2dGeometry(shape, [this.outChannels, this.inChannels, 1, 1], null, { stride: this.stride });
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
