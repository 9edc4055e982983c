// torch.optim.SGD: momentum, nesterov, dampening, weight decay, parameter groups (e.g. no
// weight decay on BN parameters and biases). One fused backend update per parameter.
// The momentum buffers ('momentum_buffer', made on a parameter's first step) are the
// optimiser's state: stateDict()/loadStateDict() carry them across a resume.

import { InvalidArgumentError } from '../errors.js';
import { sgdStepMany } from '../tensor/ops/sgd.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkOption, type GroupItem, Optimizer, type OptimizerState, type ParamGroup, type ParamState } from './optimizer.js';

/** @example const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true } satisfies SgdOptions); */
export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** @example const g: SgdGroup = { params: [], lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false }; */
export interface SgdGroup {
  params: Tensor[];
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * SGD's state dict (kind 'sgd'; buffers 'momentum_buffer').
 * @example
 * const state: SgdState = optimizer.stateDict();  // momentum buffers and lrs, for a checkpoint
 * optimizer.loadStateDict(state);
 */
export type SgdState = OptimizerState;

/**
 * @example
 * const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
 * tidy(() => crossEntropy(model.forward(x), y).backward());
 * opt.step();
 * opt.zeroGrad();
 */
export class SGD extends Optimizer<SgdGroup, SgdOptions> {
  readonly kind = 'sgd';
  protected readonly bufferNames = ['momentum_buffer'] as const;

  /** @example const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }); */
  constructor(params: Iterable<Tensor> | ParamGroup<SgdOptions>[], defaults: SgdOptions) {
    super('SGD', params, (g, where) => {
      const r = {
        lr: g.lr ?? defaults.lr,
        momentum: checkOption(`${where} 'momentum'`, g.momentum ?? defaults.momentum ?? 0),
        dampening: checkOption(`${where} 'dampening'`, g.dampening ?? defaults.dampening ?? 0),
        weightDecay: checkOption(`${where} 'weightDecay'`, g.weightDecay ?? defaults.weightDecay ?? 0),
        nesterov: g.nesterov ?? defaults.nesterov ?? false,
      };
      if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) {
        throw new InvalidArgumentError(`SGD: nesterov needs momentum > 0 and dampening 0, got momentum=${r.momentum} dampening=${r.dampening}`);
      }
      return r;
    });
  }

  protected update(p: Tensor, grad: Tensor, g: SgdGroup, st: ParamState): void {
    this.updateGroup([{ p, grad, st }], g);
  }

  /** One backend call for the group (sgdStepMany), two on a step where some parameters get
   *  their momentum buffer for the first time (torch.optim.SGD copies the step into it). */
  protected override updateGroup(items: GroupItem[], g: SgdGroup): void {
    const opts = { lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov };
    if (g.momentum === 0) {
      sgdStepMany(items.map((it) => it.p), items.map((it) => it.grad), null, opts);
      return;
    }
    // Split before any buffer is made: a buffer made for the first part must not put its
    // parameter in the second.
    const fresh = items.filter((it) => !it.st.buffers.has('momentum_buffer'));
    const going = items.filter((it) => it.st.buffers.has('momentum_buffer'));
    for (const [part, initBuffer] of [[fresh, true], [going, false]] as const) {
      if (part.length === 0) continue;
      const bufs = part.map((it) => this.buffer(it.p, it.st, 'momentum_buffer'));
      sgdStepMany(part.map((it) => it.p), part.map((it) => it.grad), bufs, { ...opts, initBuffer });
    }
  }
}
