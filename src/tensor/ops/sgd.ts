// The fused SGD update (torch.optim.SGD semantics), in place on the parameter and its
// momentum buffer. Not differentiable: it is the optimiser's step, run outside the tape.

import type { SgdParams } from '../../backend/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import type { Tensor } from '../tensor.js';
import { expectDtype, expectFinite, expectSameShape, sameBackend } from './check.js';

/** @example const o: SgdStepOptions = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false }; */
export type SgdStepOptions = Omit<SgdParams, 'initBuffer'> & { initBuffer?: boolean };

/**
 * param -= lr * update(grad); `buf` (same shape as param) is required when momentum != 0.
 * @example
 * const p = tensor([1, 2], [2]);
 * sgdStep(p, tensor([0.5, 0.5], [2]), null, { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false });  // p = [0.95, 1.95]
 */
export function sgdStep(param: Tensor, grad: Tensor, buf: Tensor | null, opts: SgdStepOptions): void {
  const op = 'sgdStep';
  checkSgd(op, param, grad, buf, opts);
  param.backend.sgdUpdate(param.storage, grad.storage, opts.momentum !== 0 ? buf!.storage : null, param.shape,
    { ...opts, initBuffer: opts.initBuffer ?? false });
}

/**
 * sgdStep on every parameter at once, in one backend call (PyTorch's multi-tensor `foreach`
 * SGD: one native call and one OpenMP region per step instead of one per parameter). `bufs`
 * is null when momentum == 0, else one buffer per parameter.
 * @example
 * const bufs = [zeros(w.shape), zeros(b.shape)];  // momentum buffers, kept across steps
 * sgdStepMany([w, b], [w.grad!, b.grad!], bufs, { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false, initBuffer: true });
 */
export function sgdStepMany(params: Tensor[], grads: Tensor[], bufs: Tensor[] | null, opts: SgdStepOptions): void {
  const op = 'sgdStepMany';
  if (grads.length !== params.length || (bufs && bufs.length !== params.length)) {
    throw new InvalidArgumentError(`${op}: ${params.length} params, ${grads.length} grads${bufs ? `, ${bufs.length} bufs` : ''}; give one of each per parameter`);
  }
  if (params.length === 0) return;
  params.forEach((p, i) => checkSgd(`${op}: parameter ${i}`, p, grads[i], bufs ? bufs[i] : null, opts));
  sameBackend(op, ...params);
  params[0].backend.sgdUpdateMany(params.map((p) => p.storage), grads.map((g) => g.storage), opts.momentum !== 0 ? bufs!.map((b) => b.storage) : null,
    params.map((p) => p.shape), { ...opts, initBuffer: opts.initBuffer ?? false });
}

function checkSgd(op: string, param: Tensor, grad: Tensor, buf: Tensor | null, opts: SgdStepOptions): void {
  sameBackend(op, param, grad, buf);
  expectDtype(op, 'param', param, 'float32');
  expectDtype(op, 'grad', grad, 'float32');
  expectSameShape(op, param, grad);
  for (const k of ['lr', 'momentum', 'dampening', 'weightDecay'] as const) expectFinite(op, k, opts[k]);
  if (opts.momentum < 0 || opts.weightDecay < 0 || opts.lr < 0) {
    throw new InvalidArgumentError(`${op}: lr, momentum and weightDecay must be >= 0, got lr=${opts.lr} momentum=${opts.momentum} weightDecay=${opts.weightDecay}`);
  }
  if (opts.nesterov && (opts.momentum <= 0 || opts.dampening !== 0)) {
    throw new InvalidArgumentError(`${op}: nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD), got momentum=${opts.momentum} dampening=${opts.dampening}`);
  }
  if (opts.momentum !== 0) {
    if (!buf) throw new InvalidArgumentError(`${op}: momentum ${opts.momentum} needs a momentum buffer`);
    expectSameShape(op, param, buf);
  }
}
