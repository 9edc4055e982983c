// torch.optim.SGD: momentum, nesterov, dampening, weight decay, parameter groups (e.g. no
// weight decay on BN parameters and biases). One fused backend update per parameter.
// The momentum buffers are the optimiser's state: stateDict()/loadStateDict() carry them
// across a resume.

import { InvalidArgumentError } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { sgdStep } from '../tensor/ops/sgd.js';
import { keep } from '../tensor/scope.js';
import { tensor, zeros, type Tensor } from '../tensor/tensor.js';

/** @example const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true } satisfies SgdOptions); */
export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * @example
 * const params = model.parameters();
 * const groups: ParamGroup[] = [
 *   { params: params.filter((p) => p.shape.length > 1), lr: 0.1, weightDecay: 5e-4 },
 *   { params: params.filter((p) => p.shape.length <= 1), lr: 0.1, weightDecay: 0 },
 * ];
 * const opt = new SGD(groups, { lr: 0.1, momentum: 0.9 });
 */
export interface ParamGroup extends SgdOptions {
  params: Tensor[];
}

interface ResolvedGroup {
  params: Tensor[];
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * @example
 * const state: SgdState = optimizer.stateDict();  // momentum buffers and lrs, for a checkpoint
 * optimizer.loadStateDict(state);
 */
export interface SgdState {
  /** Per group, per parameter: the momentum buffer (row-major float32) or null before the first step. */
  buffers: (Float32Array | null)[][];
  lrs: number[];
}

/**
 * @example
 * const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
 * tidy(() => crossEntropy(model.forward(x), y).backward());
 * opt.step();
 * opt.zeroGrad();
 */
export class SGD {
  readonly groups: ResolvedGroup[];
  private readonly buffers = new Map<Tensor, Tensor>();

  /** @example const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }); */
  constructor(params: Iterable<Tensor> | ParamGroup[], defaults: SgdOptions) {
    const list = [...params];
    const groups: ParamGroup[] = list.length > 0 && !(list[0] as Tensor).shape
      ? (list as ParamGroup[])
      : [{ params: list as Tensor[], ...defaults }];
    this.groups = groups.map((g, i) => {
      const r: ResolvedGroup = {
        params: [...g.params],
        lr: g.lr ?? defaults.lr,
        momentum: g.momentum ?? defaults.momentum ?? 0,
        dampening: g.dampening ?? defaults.dampening ?? 0,
        weightDecay: g.weightDecay ?? defaults.weightDecay ?? 0,
        nesterov: g.nesterov ?? defaults.nesterov ?? false,
      };
      for (const k of ['lr', 'momentum', 'dampening', 'weightDecay'] as const) {
        if (!Number.isFinite(r[k]) || r[k] < 0) throw new InvalidArgumentError(`SGD: group ${i} '${k}' must be a finite number >= 0, got ${r[k]}`);
      }
      if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) {
        throw new InvalidArgumentError(`SGD: nesterov needs momentum > 0 and dampening 0, got momentum=${r.momentum} dampening=${r.dampening}`);
      }
      return r;
    });
  }

  /** Sets the learning rate of every group (schedules call this). */
  setLr(lr: number | number[]): void {
    this.groups.forEach((g, i) => { g.lr = Array.isArray(lr) ? lr[i] : lr; });
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const g of this.groups) {
        for (const p of g.params) {
          if (!p.grad) continue;
          let buf = this.buffers.get(p) ?? null;
          const init = buf === null;
          if (g.momentum !== 0 && buf === null) {
            buf = keep(zeros(p.shape, { backend: p.backend }));
            this.buffers.set(p, buf);
          }
          sgdStep(p, p.grad, buf, { lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, initBuffer: init });
        }
      }
    });
  }

  /** Frees every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) { p.grad?.dispose(); p.grad = null; }
  }

  stateDict(): SgdState {
    return {
      buffers: this.groups.map((g) => g.params.map((p) => (this.buffers.get(p)?.toFloat32Array() ?? null))),
      lrs: this.groups.map((g) => g.lr),
    };
  }

  loadStateDict(s: SgdState): void {
    if (s.buffers.length !== this.groups.length) throw new InvalidArgumentError(`SGD.loadStateDict: ${s.buffers.length} groups in the state, ${this.groups.length} in the optimiser`);
    this.groups.forEach((g, gi) => {
      if (s.buffers[gi].length !== g.params.length) throw new InvalidArgumentError(`SGD.loadStateDict: group ${gi} has ${s.buffers[gi].length} buffers, expected ${g.params.length}`);
      g.params.forEach((p, pi) => {
        const data = s.buffers[gi][pi];
        this.buffers.get(p)?.dispose();
        this.buffers.delete(p);
        if (!data) return;
        if (data.length !== p.numel) throw new InvalidArgumentError(`SGD.loadStateDict: buffer ${gi}.${pi} has ${data.length} values, parameter [${p.shape.join(', ')}] has ${p.numel}`);
        this.buffers.set(p, keep(tensor(data, p.shape, { backend: p.backend })));
      });
      g.lr = s.lrs[gi];
    });
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
