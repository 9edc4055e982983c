// Conv2d: a 2-D convolution layer (torch.nn.Conv2d) over the differentiable conv2d op.
// Parameters `weight` [K, C/groups, R, S] and optional `bias` [K]; PyTorch's default init
// unless an initializer is given. Output-size maths comes from tensor/geometry.ts.

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { conv2d } from '../tensor/ops/conv2d.js';
import { conv2dGeometry, type Pair } from '../tensor/geometry.js';
import type { Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { defaultRng, defaultWeightInit, fanIn, uniformValues, type Initializer } from './init.js';
import { Module, ShapeTrace } from './module.js';
import { Parameter } from './parameter.js';

/** @example const conv = new Conv2d(64, 64, 3, { padding: 1, bias: false }); */
export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Default true, as in PyTorch (torchvision's ResNet convs have none). */
  bias?: boolean;
  /** Weight initializer; default PyTorch's U(+-1/sqrt(fan_in)). */
  init?: Initializer;
  rng?: Rng;
  backend?: Backend;
}

function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function positiveInt(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`Conv2d: '${what}' must be an integer >= 1, got ${String(v)}`);
}

/**
 * @example
 * const conv = new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false });
 * const y = conv.forward(x); // [N, 64, H/2, W/2]
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super();
    positiveInt('inChannels', inChannels);
    positiveInt('outChannels', outChannels);
    this.groups = opts.groups ?? 1;
    positiveInt('groups', this.groups);
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new InvalidArgumentError(`Conv2d: inChannels ${inChannels} and outChannels ${outChannels} must both be divisible by groups=${this.groups}`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.dilation = pair(opts.dilation ?? 1);
    for (const k of this.kernelSize) positiveInt('kernelSize', k);
    const rng = opts.rng ?? defaultRng;
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    const init = opts.init ?? defaultWeightInit;
    this.registerParameter('weight', new Parameter(init(shape, rng), shape, { backend: opts.backend }));
    if (opts.bias ?? true) {
      this.registerParameter('bias', new Parameter(uniformValues(outChannels, 1 / Math.sqrt(fanIn(shape)), rng), [outChannels], { backend: opts.backend }));
    }
  }

  get weight(): Parameter {
    return this.getParameter('weight');
  }

  get bias(): Parameter | null {
    return this.findParameter('bias');
  }

  private convOptions() {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  override forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.convOptions());
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    const w = [this.outChannels, this.inChannels / this.groups, ...this.kernelSize];
    const g = conv2dGeometry(shape, w, null, this.convOptions());
    trace.macs += g.N * g.K * g.OH * g.OW * (g.C / g.groups) * g.R * g.S;
    return [g.N, g.K, g.OH, g.OW];
  }

  override extraRepr(): string {
    const t = (p: [number, number]) => `(${p[0]}, ${p[1]})`;
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${t(this.kernelSize)}, stride=${t(this.stride)}`;
    if (this.padding[0] || this.padding[1]) s += `, padding=${t(this.padding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${t(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}
