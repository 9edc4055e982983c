// BatchNorm2d (torch.nn.BatchNorm2d, affine, tracking running statistics): parameters
// `weight` (gamma, ones) and `bias` (beta, zeros); buffers `running_mean` (zeros),
// `running_var` (ones) and the counter `num_batches_tracked`, in PyTorch's order.
// Training mode normalises with batch statistics and updates the running ones in place
// (momentum 0.1: new = 0.9 * old + 0.1 * batch, unbiased variance); eval mode uses them.
// forward(x, { relu: true }) is BN followed by ReLU, fused by the op where it can be.

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { batchNorm } from '../tensor/ops/batch_norm.js';
import { expectRank, fmt } from '../tensor/geometry.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { Module, ShapeTrace, type Counter } from './module.js';
import { Parameter } from './parameter.js';

/** @example const bn = new BatchNorm2d(64, { eps: 1e-5, momentum: 0.1, weightInit: 0 } satisfies BatchNorm2dOptions); */
export interface BatchNorm2dOptions {
  /** The initial gamma (default 1; 0 is torchvision's zero_init_residual). */
  weightInit?: number;
  eps?: number;
  momentum?: number;
  backend?: Backend;
}

/**
 * @example
 * const bn = new BatchNorm2d(64);
 * const y = bn.forward(x, { relu: true }); // relu(bn(x)), one fused op
 */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  /** Running-statistics momentum; may be changed (PyTorch allows it too). */
  momentum: number;
  private readonly tracked: Counter;

  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new InvalidArgumentError(`BatchNorm2d: 'numFeatures' must be an integer >= 1, got ${String(numFeatures)}`);
    }
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new InvalidArgumentError(`BatchNorm2d: 'eps' must be > 0, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new InvalidArgumentError(`BatchNorm2d: 'momentum' must be in [0, 1], got ${this.momentum}`);
    const backend = opts.backend;
    this.registerParameter('weight', new Parameter(new Float32Array(numFeatures).fill(opts.weightInit ?? 1), [numFeatures], { backend }));
    this.registerParameter('bias', new Parameter(new Float32Array(numFeatures), [numFeatures], { backend }));
    this.registerBuffer('running_mean', tensor(new Float32Array(numFeatures), [numFeatures], { backend }));
    this.registerBuffer('running_var', tensor(new Float32Array(numFeatures).fill(1), [numFeatures], { backend }));
    this.tracked = this.registerCounter('num_batches_tracked');
  }

  get weight(): Parameter { return this.getParameter('weight'); }
  get bias(): Parameter { return this.getParameter('bias'); }
  get runningMean(): Tensor { return this.getBuffer('running_mean'); }
  get runningVar(): Tensor { return this.getBuffer('running_var'); }
  /** Training batches seen (PyTorch's num_batches_tracked). */
  get numBatchesTracked(): number { return this.tracked.value; }

  override forward(x: Tensor, opts: { relu?: boolean } = {}): Tensor {
    expectRank('BatchNorm2d', 'x', x.shape, 4, 'N, C, H, W');
    if (x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`BatchNorm2d: input 'x' ${fmt(x.shape)} has ${x.shape[1]} channels, expected ${this.numFeatures}`);
    }
    const y = batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar,
      { training: this.training, momentum: this.momentum, eps: this.eps, relu: opts.relu ?? false });
    if (this.training) this.tracked.value++;
    return y;
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    expectRank('BatchNorm2d', 'x', shape, 4, 'N, C, H, W');
    if (shape[1] !== this.numFeatures) throw new ShapeError(`BatchNorm2d: input ${fmt(shape)} has ${shape[1]} channels, expected ${this.numFeatures}`);
    return [...shape];
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}`;
  }
}
