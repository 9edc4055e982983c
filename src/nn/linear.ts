// Linear: y = x W^T + b (torch.nn.Linear), `weight` [out, in] and `bias` [out], both
// initialised U(+-1/sqrt(in)) as PyTorch does unless an initializer is given.

import type { Backend, Shape } from '../backend/backend.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { linear } from '../tensor/ops/linear.js';
import { expectRank, fmt } from '../tensor/geometry.js';
import type { Rng } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { defaultRng, defaultWeightInit, uniformValues, type Initializer } from './init.js';
import { Module, ShapeTrace } from './module.js';
import { Parameter } from './parameter.js';

/** @example const fc = new Linear(64, 10, { bias: true } satisfies LinearOptions); */
export interface LinearOptions {
  bias?: boolean;
  init?: Initializer;
  rng?: Rng;
  backend?: Backend;
}

/**
 * @example const fc = new Linear(512, 1000); const logits = fc.forward(features); // [N, 1000]
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    for (const [k, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`Linear: '${k}' must be an integer >= 1, got ${String(v)}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const rng = opts.rng ?? defaultRng;
    const shape = [outFeatures, inFeatures];
    this.registerParameter('weight', new Parameter((opts.init ?? defaultWeightInit)(shape, rng), shape, { backend: opts.backend }));
    if (opts.bias ?? true) {
      this.registerParameter('bias', new Parameter(uniformValues(outFeatures, 1 / Math.sqrt(inFeatures), rng), [outFeatures], { backend: opts.backend }));
    }
  }

  get weight(): Parameter { return this.getParameter('weight'); }
  get bias(): Parameter | null { return this.findParameter('bias'); }

  override forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    expectRank('Linear', 'x', shape, 2, 'N, I');
    if (shape[1] !== this.inFeatures) throw new ShapeError(`Linear: input ${fmt(shape)} has ${shape[1]} features, expected ${this.inFeatures}`);
    trace.macs += shape[0] * this.inFeatures * this.outFeatures;
    return [shape[0], this.outFeatures];
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}
