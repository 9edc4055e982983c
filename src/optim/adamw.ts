// torch.optim.AdamW of PyTorch 1.13 (Loshchilov & Hutter, "Decoupled Weight Decay
// Regularization", ICLR 2019, algorithm 2): Adam's moments with bias correction and the
// weight decay applied to the weights (p *= 1 - lr * wd) before, not folded into, the
// gradient; optional AMSGrad. Per-parameter step counts; one fused backend update per
// parameter (see AdamwParams in backend.ts for the exact float32 operation order).

import { InvalidArgumentError } from '../errors.js';
import { adamwStep } from '../tensor/ops/adamw.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkOption, Optimizer, type OptimizerState, type ParamGroup, type ParamState } from './optimizer.js';

/**
 * torch.optim.AdamW's options and defaults.
 * @example const o: AdamwOptions = { lr: 3e-4, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.05, amsgrad: false };
 */
export interface AdamwOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Coefficients of the running averages of the gradient and its square; default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Added to the denominator; default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; default 1e-2 (PyTorch's AdamW default, not Adam's 0). */
  weightDecay?: number;
  /** The AMSGrad variant (Reddi et al. 2018); default false. */
  amsgrad?: boolean;
}

/** @example const { lr, weightDecay } = ADAMW_DEFAULTS;  // 1e-3, 1e-2 (torch's) */
export const ADAMW_DEFAULTS = { lr: 1e-3, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: 1e-2, amsgrad: false };

/** @example const g: AdamwGroup = new AdamW(model.parameters()).groups[0]; */
export interface AdamwGroup {
  params: Tensor[];
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

/**
 * AdamW's state dict (kind 'adamw'; buffers 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq').
 * @example const state: AdamwState = new AdamW(model.parameters()).stateDict();
 */
export type AdamwState = OptimizerState;

/**
 * torch.optim.AdamW (decoupled weight decay), with parameter groups and exact resume.
 * @example
 * const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.05 });
 * tidy(() => crossEntropy(model.forward(x), y).backward());
 * opt.step();
 * opt.zeroGrad();
 */
export class AdamW extends Optimizer<AdamwGroup, AdamwOptions> {
  readonly kind = 'adamw';
  protected readonly bufferNames = ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] as const;

  /**
   * @example
   * // timm's fine-tuning recipe: no weight decay on norm parameters and biases
   * const params = model.parameters();
   * const opt = new AdamW([
   *   { params: params.filter((p) => p.shape.length > 1) },
   *   { params: params.filter((p) => p.shape.length <= 1), weightDecay: 0 },
   * ], { lr: 1e-3, weightDecay: 0.05 });
   * tidy(() => crossEntropy(model.forward(x), y).backward()); opt.step(); opt.zeroGrad();
   */
  constructor(params: Iterable<Tensor> | ParamGroup<AdamwOptions>[], defaults: AdamwOptions = {}) {
    super('AdamW', params, (g, where) => {
      const betas = g.betas ?? defaults.betas ?? ADAMW_DEFAULTS.betas;
      if (!Array.isArray(betas) || betas.length !== 2) throw new InvalidArgumentError(`${where} 'betas' must be two numbers [beta1, beta2], got ${JSON.stringify(betas)}`);
      return {
        lr: g.lr ?? defaults.lr ?? ADAMW_DEFAULTS.lr,
        betas: [checkOption(`${where} 'betas[0]'`, betas[0], 0, 1, false), checkOption(`${where} 'betas[1]'`, betas[1], 0, 1, false)] as const,
        eps: checkOption(`${where} 'eps'`, g.eps ?? defaults.eps ?? ADAMW_DEFAULTS.eps),
        weightDecay: checkOption(`${where} 'weightDecay'`, g.weightDecay ?? defaults.weightDecay ?? ADAMW_DEFAULTS.weightDecay),
        amsgrad: g.amsgrad ?? defaults.amsgrad ?? ADAMW_DEFAULTS.amsgrad,
      };
    });
  }

  protected update(p: Tensor, grad: Tensor, g: AdamwGroup, st: ParamState): void {
    adamwStep(p, grad, {
      expAvg: this.buffer(p, st, 'exp_avg'),
      expAvgSq: this.buffer(p, st, 'exp_avg_sq'),
      maxExpAvgSq: g.amsgrad ? this.buffer(p, st, 'max_exp_avg_sq') : null,
    }, { lr: g.lr, beta1: g.betas[0], beta2: g.betas[1], eps: g.eps, weightDecay: g.weightDecay, step: st.step, amsgrad: g.amsgrad });
  }
}
