// torchvision.ops.FrozenBatchNorm2d: batch norm with fixed statistics and affine parameters,
// all four of them buffers (state-dict keys weight, bias, running_mean, running_var, as
// torchvision's; no num_batches_tracked). forward: y = x * scale + shift per channel, with
// scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale; the
// gradient flows to x only. It is the inference-mode batchNorm op with frozen gamma and
// beta (src/tensor/ops/batch_norm.ts), whose backward is dx = batchNormInfer(dy) already.
// NOTE: torchvision drops `num_batches_tracked` when it loads an ImageNet checkpoint into a
// FrozenBatchNorm2d; this module has no such key, so a loader mapping such checkpoints must.

import type { Backend, Shape } from '../../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { Module, ShapeTrace } from '../../nn/module.js';
import { expectRank, fmt } from '../../tensor/geometry.js';
import { batchNorm } from '../../tensor/ops/batch_norm.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';

/**
 * torchvision.ops.FrozenBatchNorm2d(numFeatures, eps): weight 1, bias 0, running_mean 0,
 * running_var 1 until a state dict is loaded.
 * @example
 * const bn = new FrozenBatchNorm2d(64, 0);  // eps 0: torchvision's v1 COCO detectors
 * bn.loadStateDict(sd, { strict: false });
 * const y = bn.forward(zeros([1, 64, 8, 8]));
 */
export class FrozenBatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;

  constructor(numFeatures: number, eps = 1e-5, opts: { backend?: Backend } = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new InvalidArgumentError(`FrozenBatchNorm2d: 'numFeatures' must be an integer >= 1, got ${String(numFeatures)}`);
    }
    if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) {
      throw new InvalidArgumentError(`FrozenBatchNorm2d: 'eps' must be a finite number >= 0, got ${String(eps)}`);
    }
    this.numFeatures = numFeatures;
    this.eps = eps;
    const { backend } = opts;
    const filled = (v: number) => tensor(new Float32Array(numFeatures).fill(v), [numFeatures], { backend });
    this.registerBuffer('weight', filled(1));
    this.registerBuffer('bias', filled(0));
    this.registerBuffer('running_mean', filled(0));
    this.registerBuffer('running_var', filled(1));
  }

  get weight(): Tensor { return this.getBuffer('weight'); }
  get bias(): Tensor { return this.getBuffer('bias'); }
  get runningMean(): Tensor { return this.getBuffer('running_mean'); }
  get runningVar(): Tensor { return this.getBuffer('running_var'); }

  /** x: [N, C, H, W] -> the same shape; differentiable wrt x. Train and eval modes are the same. */
  override forward(x: Tensor): Tensor {
    expectRank('FrozenBatchNorm2d', 'x', x.shape, 4, 'N, C, H, W');
    if (x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`FrozenBatchNorm2d: input 'x' ${fmt(x.shape)} has ${x.shape[1]} channels, expected ${this.numFeatures}`);
    }
    return batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar, { training: false, eps: this.eps });
  }

  override traceShape(shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    expectRank('FrozenBatchNorm2d', 'x', shape, 4, 'N, C, H, W');
    if (shape[1] !== this.numFeatures) throw new ShapeError(`FrozenBatchNorm2d: input ${fmt(shape)} has ${shape[1]} channels, expected ${this.numFeatures}`);
    return [...shape];
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}`;
  }
}
