// The fused AdamW update (torch.optim.AdamW of PyTorch 1.13, see AdamwParams in
// backend.ts), in place on the parameter and its moment buffers. Not differentiable: it is
// the optimiser's step, run outside the tape.

import type { AdamwParams } from '../../backend/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import type { Tensor } from '../tensor.js';
import { expectDtype, expectFinite, expectSameShape, sameBackend } from './check.js';

/**
 * The moment buffers of one parameter (zeros before its first step).
 * @example const m: AdamwMoments = { expAvg: zeros(w.shape), expAvgSq: zeros(w.shape) };
 */
export interface AdamwMoments {
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** Required with amsgrad. */
  maxExpAvgSq?: Tensor | null;
}

/**
 * One AdamW step of `param` with `grad`; `opts.step` counts this step (1 on the first).
 * @example
 * const m: AdamwMoments = { expAvg: zeros(w.shape), expAvgSq: zeros(w.shape) };
 * adamwStep(w, w.grad!, m, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, step: 1, amsgrad: false });
 */
export function adamwStep(param: Tensor, grad: Tensor, moments: AdamwMoments, opts: AdamwParams): void {
  const op = 'adamwStep';
  const { expAvg, expAvgSq } = moments;
  const vmax = opts.amsgrad ? moments.maxExpAvgSq ?? null : null;
  sameBackend(op, param, grad, expAvg, expAvgSq, vmax);
  const named: [string, Tensor | null][] = [['param', param], ['grad', grad], ['expAvg', expAvg], ['expAvgSq', expAvgSq], ['maxExpAvgSq', vmax]];
  for (const [name, t] of named) {
    if (!t) continue;
    expectDtype(op, name, t, 'float32');
    expectSameShape(op, param, t);
  }
  for (const k of ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'step'] as const) expectFinite(op, k, opts[k]);
  if (opts.lr < 0 || opts.eps < 0 || opts.weightDecay < 0) {
    throw new InvalidArgumentError(`${op}: lr, eps and weightDecay must be >= 0, got lr=${opts.lr} eps=${opts.eps} weightDecay=${opts.weightDecay}`);
  }
  for (const k of ['beta1', 'beta2'] as const) {
    if (opts[k] < 0 || opts[k] >= 1) throw new InvalidArgumentError(`${op}: '${k}' must be in [0, 1) (as torch.optim.AdamW), got ${opts[k]}`);
  }
  if (!Number.isInteger(opts.step) || opts.step < 1) throw new InvalidArgumentError(`${op}: 'step' must be an integer >= 1, got ${opts.step}`);
  if (opts.amsgrad && !vmax) throw new InvalidArgumentError(`${op}: amsgrad needs the 'maxExpAvgSq' buffer`);
  const distinct = new Set(named.filter(([, t]) => t).map(([, t]) => t!.storage));
  if (distinct.size !== named.filter(([, t]) => t).length) throw new InvalidArgumentError(`${op}: param, grad and the moments must be distinct tensors`);
  param.backend.adamwUpdate(param.storage, grad.storage, expAvg.storage, expAvgSq.storage, vmax?.storage ?? null, param.shape,
    { lr: opts.lr, beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: opts.weightDecay, step: opts.step, amsgrad: opts.amsgrad });
}
