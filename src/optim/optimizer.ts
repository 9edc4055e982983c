// What every optimiser here shares (torch.optim.Optimizer's part): parameter groups resolved
// against the defaults and validated once, per-parameter state (a step count and named
// float32 buffers, made on the parameter's first step), setLr/zeroGrad, and
// stateDict()/loadStateDict() for an exact resume. A subclass adds its options and its fused
// update. Parameters without a gradient are skipped by step(): their state does not advance.

import { InvalidArgumentError } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { keep } from '../tensor/scope.js';
import { Tensor, tensor, zeros } from '../tensor/tensor.js';

/**
 * A parameter group: its parameters and any options that differ from the optimiser's defaults.
 * @example const g: ParamGroup<AdamwOptions> = { params: model.parameters().filter((p) => p.shape.length <= 1), weightDecay: 0 };
 */
export type ParamGroup<O extends object = Record<string, unknown>> = Partial<O> & { params: Iterable<Tensor> };

/**
 * The fields every resolved group has.
 * @example const lrs = optimizer.groups.map((g: BaseGroup) => g.lr);
 */
export interface BaseGroup {
  params: Tensor[];
  lr: number;
}

/**
 * One parameter's state as plain arrays (what checkpoints store).
 * @example const first: ParamStateDict | null = optimizer.stateDict().state[0][0];
 */
export interface ParamStateDict {
  /** Steps this parameter has taken. */
  step: number;
  /** Named buffers, row-major float32, PyTorch's names (momentum_buffer, exp_avg, ...). */
  buffers: Record<string, Float32Array>;
}

/** A parameter of a group being stepped, its gradient and its state. */
export interface GroupItem {
  p: Tensor;
  grad: Tensor;
  st: ParamState;
}

/**
 * An optimiser's state: which optimiser, per group the lr, per group and parameter the state.
 * @example const state: OptimizerState = optimizer.stateDict(); optimizer.loadStateDict(state);
 */
export interface OptimizerState {
  kind: string;
  lrs: number[];
  /** state[group][param]: null before the parameter's first step. */
  state: (ParamStateDict | null)[][];
}

export interface ParamState {
  step: number;
  buffers: Map<string, Tensor>;
}

/** A finite number within [min, max) (or [min, max] when `maxIncluded`), else the error. */
export function checkOption(where: string, v: unknown, min = 0, max = Infinity, maxIncluded = true): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (maxIncluded ? v > max : v >= max)) {
    const range = `[${min}, ${max}${maxIncluded ? ']' : ')'}`;
    throw new InvalidArgumentError(`${where} must be a finite number in ${range}, got ${String(v)}`);
  }
  return v;
}

/**
 * What SGD and AdamW share: parameter groups, per-parameter state, lr per group, state dicts.
 * @example const opt: Optimizer<BaseGroup> = new AdamW(model.parameters()); opt.setLr(1e-4);
 */
export abstract class Optimizer<G extends BaseGroup, O extends object = object> {
  /** 'sgd' | 'adamw': recorded in the state dict; loading another optimiser's state fails. */
  abstract readonly kind: string;
  readonly groups: G[];
  /** The buffer names this optimiser keeps per parameter (loadStateDict accepts only these). */
  protected abstract readonly bufferNames: readonly string[];
  protected readonly state = new Map<Tensor, ParamState>();
  private readonly name: string;

  /**
   * `params`: tensors (one group with `defaults`) or groups, each overriding some defaults.
   * `resolve` fills a group's options from the defaults and validates them (`where` names
   * the group in messages).
   */
  protected constructor(name: string, params: Iterable<Tensor> | ParamGroup<O>[], resolve: (g: ParamGroup<O>, where: string) => Omit<G, 'params'>) {
    this.name = name;
    const list = [...params] as (Tensor | ParamGroup<O>)[];
    const none: Partial<O> = {};
    const isGroup = (x: unknown): x is ParamGroup<O> => typeof x === 'object' && x !== null && 'params' in x;
    const groups = list.length > 0 && isGroup(list[0]) ? (list as ParamGroup<O>[]) : [{ ...none, params: list as Tensor[] }];
    const seen = new Map<Tensor, number>();
    this.groups = groups.map((g, i) => {
      if (!isGroup(g)) throw new InvalidArgumentError(`${name}: give either tensors or groups { params, ...options }, not a mix (item ${i})`);
      const r = { ...resolve(g, `${name}: group ${i}`), params: [...g.params] } as G;
      for (const p of r.params) {
        if (!(p instanceof Tensor)) throw new InvalidArgumentError(`${name}: group ${i} holds ${p === null ? 'null' : typeof p}, expected tensors (or give a list of groups { params, ...options })`);
        const other = seen.get(p);
        if (other !== undefined) throw new InvalidArgumentError(`${name}: a parameter ${p.toString()} is in group ${other} and group ${i}; each may be in one group only`);
        seen.set(p, i);
      }
      checkOption(`${name}: group ${i} 'lr'`, r.lr);
      return r;
    });
  }

  /** The fused update of one parameter; `st.step` already counts this step. */
  protected abstract update(p: Tensor, grad: Tensor, group: G, st: ParamState): void;

  /** The buffer `key` of a parameter, made as zeros of the parameter's shape on first use. */
  protected buffer(p: Tensor, st: ParamState, key: string): Tensor {
    let b = st.buffers.get(key);
    if (!b) {
      b = keep(zeros(p.shape, { backend: p.backend }));
      st.buffers.set(key, b);
    }
    return b;
  }

  /** Sets the learning rate of every group, or of each group from a list (schedules call this). */
  setLr(lr: number | number[]): void {
    if (Array.isArray(lr) && lr.length !== this.groups.length) {
      throw new InvalidArgumentError(`${this.name}.setLr: ${lr.length} learning rates for ${this.groups.length} groups`);
    }
    this.groups.forEach((g, i) => { g.lr = checkOption(`${this.name}.setLr: group ${i} lr`, Array.isArray(lr) ? lr[i] : lr); });
  }

  /** The update of a group's parameters that have gradients (each `st.step` already counts
   *  this step): by default update() on each; an optimiser may update them all in one call. */
  protected updateGroup(items: GroupItem[], group: G): void {
    for (const { p, grad, st } of items) this.update(p, grad, group, st);
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const g of this.groups) {
        const items: GroupItem[] = [];
        for (const p of g.params) {
          if (!p.grad) continue;
          let st = this.state.get(p);
          if (!st) {
            st = { step: 0, buffers: new Map() };
            this.state.set(p, st);
          }
          st.step++;
          items.push({ p, grad: p.grad, st });
        }
        if (items.length > 0) this.updateGroup(items, g);
      }
    });
  }

  /** Frees every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) { p.grad?.dispose(); p.grad = null; }
  }

  stateDict(): OptimizerState {
    return {
      kind: this.kind,
      lrs: this.groups.map((g) => g.lr),
      state: this.groups.map((g) => g.params.map((p) => {
        const st = this.state.get(p);
        if (!st) return null;
        return { step: st.step, buffers: Object.fromEntries([...st.buffers].map(([k, b]) => [k, b.toFloat32Array()])) };
      })),
    };
  }

  /** Replaces the whole state (every parameter's, and the groups' lrs) by `s`; checks it first. */
  loadStateDict(s: OptimizerState): void {
    const where = `${this.name}.loadStateDict`;
    if (s.kind !== this.kind) throw new InvalidArgumentError(`${where}: the state is of optimiser '${s.kind}', this is '${this.kind}'`);
    if (s.state.length !== this.groups.length || s.lrs.length !== this.groups.length) {
      throw new InvalidArgumentError(`${where}: ${s.state.length} groups in the state, ${this.groups.length} in the optimiser`);
    }
    this.groups.forEach((g, gi) => {
      if (s.state[gi].length !== g.params.length) throw new InvalidArgumentError(`${where}: group ${gi} has ${s.state[gi].length} parameters in the state, ${g.params.length} in the optimiser`);
      g.params.forEach((p, pi) => {
        const ps = s.state[gi][pi];
        if (!ps) return;
        if (!Number.isInteger(ps.step) || ps.step < 0) throw new InvalidArgumentError(`${where}: parameter ${gi}.${pi} has step ${ps.step}, expected an integer >= 0`);
        for (const [k, data] of Object.entries(ps.buffers)) {
          if (!this.bufferNames.includes(k)) throw new InvalidArgumentError(`${where}: parameter ${gi}.${pi} has a buffer '${k}'; ${this.kind} keeps ${this.bufferNames.join(', ')}`);
          if (data.length !== p.numel) throw new InvalidArgumentError(`${where}: buffer ${gi}.${pi}.${k} has ${data.length} values, parameter [${p.shape.join(', ')}] has ${p.numel}`);
        }
      });
    });
    this.dispose();
    this.groups.forEach((g, gi) => {
      g.lr = s.lrs[gi];
      g.params.forEach((p, pi) => {
        const ps = s.state[gi][pi];
        if (!ps) return;
        const buffers = new Map<string, Tensor>();
        for (const [k, data] of Object.entries(ps.buffers)) buffers.set(k, keep(tensor(data, p.shape, { backend: p.backend })));
        this.state.set(p, { step: ps.step, buffers });
      });
    });
  }

  /** Frees the state buffers (the optimiser starts afresh if stepped again). */
  dispose(): void {
    for (const st of this.state.values()) for (const b of st.buffers.values()) b.dispose();
    this.state.clear();
  }
}

/**
 * The groups a training recipe gives an optimiser: frozen parameters (requiresGrad false)
 * left out and, with `noDecayNormBias`, every 1-D parameter (BatchNorm weight and bias,
 * biases) in a second group with weight decay 0 (torchvision's reference recipe,
 * `--norm-weight-decay 0`). Group 0 holds the rest, so a state dict's layout is stable.
 * @example const opt = new AdamW(trainableGroups(model.parameters(), true), { lr: 1e-3, weightDecay: 0.05 });
 */
export function trainableGroups(params: Iterable<Tensor>, noDecayNormBias = false): ParamGroup<{ weightDecay: number }>[] {
  const trainable = [...params].filter((p) => p.requiresGrad);
  if (!noDecayNormBias) return [{ params: trainable }];
  return [{ params: trainable.filter((p) => p.shape.length > 1) }, { params: trainable.filter((p) => p.shape.length <= 1), weightDecay: 0 }];
}
