// Module: the base of every layer and network (torch.nn.Module). A module owns named
// parameters, buffers and child modules, each registered in definition order; that order is
// the order of namedParameters() and of the state dict, as in PyTorch (a module's own
// parameters, then its own buffers, then each child's, depth first), so torchvision key
// lists come out identical. Not here: hooks, forward pre/post callbacks, parametrizations.
// Invariant: every tensor a module owns is `keep`-ed (never freed by a tidy) and lives until
// the module's dispose(), or until to() / a non-finite loadStateDict target replaces it.

import type { Backend, Shape } from '../backend/backend.js';
import { numel } from '../backend/backend.js';
import { CheckpointError, InvalidArgumentError } from '../errors.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/geometry.js';
import { keep } from '../tensor/scope.js';
import { Tensor, tensor } from '../tensor/tensor.js';
import { Parameter } from './parameter.js';
import {
  copyInto, describeReport, readValues,
  type LoadReport, type LoadStateDictOptions, type StateDict, type StateDictInput, type StateValue,
} from './state_dict.js';

export type { LoadReport, LoadStateDictOptions, StateDict, StateDictInput, StateTensor, StateValue } from './state_dict.js';
export { describeReport } from './state_dict.js';

/** An integer buffer kept on the JS side (BatchNorm2d's num_batches_tracked). It appears in
 *  the state dict as a one-element int32 entry of shape [], as PyTorch's int64 scalar.
 * @example
 * const c = new Counter(0);
 * c.value++;
 */
export class Counter {
  constructor(public value = 0) {}
}

/**
 * Accumulates what an analytic shape trace counts (multiply-adds of conv and linear).
 * @example
 * const trace = new ShapeTrace();
 * trace.macs  // multiply-adds counted by a shape trace
 */
export class ShapeTrace {
  macs = 0;
}

interface BufferSlot {
  value: Tensor | Counter;
  persistent: boolean;
}

const NAME = /^[A-Za-z0-9_]+$/;

/**
 * The base class of layers and networks.
 * @example
 * class Tiny extends Module {
 *   readonly fc = this.registerModule('fc', new Linear(4, 2));
 *   override forward(x: Tensor): Tensor { return this.fc.forward(x); }
 * }
 */
export class Module {
  /** Training mode (batch statistics in BatchNorm2d); set by train() / eval(). */
  training = true;
  private readonly _parameters = new Map<string, Parameter>();
  private readonly _buffers = new Map<string, BufferSlot>();
  private readonly _modules = new Map<string, Module>();

  // ---- registration ---------------------------------------------------------------------

  private checkName(kind: string, name: string): void {
    if (!NAME.test(name)) throw new InvalidArgumentError(`${this.constructor.name}.${kind}: name '${name}' must be letters, digits or '_' (no dots)`);
    if (this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name)) {
      throw new InvalidArgumentError(`${this.constructor.name}.${kind}: '${name}' is already registered`);
    }
  }

  protected registerParameter<P extends Parameter>(name: string, p: P): P {
    this.checkName('registerParameter', name);
    this._parameters.set(name, p);
    return p;
  }

  /** A buffer: state that is not trained (running statistics). Non-persistent buffers move
   *  with to() and die with dispose() but stay out of the state dict. */
  protected registerBuffer<T extends Tensor>(name: string, t: T, persistent = true): T {
    this.checkName('registerBuffer', name);
    keep(t);
    this._buffers.set(name, { value: t, persistent });
    return t;
  }

  protected registerCounter(name: string, value = 0): Counter {
    this.checkName('registerCounter', name);
    const c = new Counter(value);
    this._buffers.set(name, { value: c, persistent: true });
    return c;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkName('registerModule', name);
    this._modules.set(name, m);
    return m;
  }

  /** This module's own parameter of that name (not a child's). */
  getParameter(name: string): Parameter {
    const p = this._parameters.get(name);
    if (!p) throw new InvalidArgumentError(`${this.constructor.name}: no parameter '${name}'; it has: ${[...this._parameters.keys()].join(', ') || '(none)'}`);
    return p;
  }

  /** This module's own parameter of that name, or null when it has none. */
  findParameter(name: string): Parameter | null {
    return this._parameters.get(name) ?? null;
  }

  /** This module's own tensor buffer of that name. */
  getBuffer(name: string): Tensor {
    const b = this._buffers.get(name);
    if (!b || !(b.value instanceof Tensor)) {
      throw new InvalidArgumentError(`${this.constructor.name}: no tensor buffer '${name}'`);
    }
    return b.value;
  }

  /** The child of that name. */
  getChild(name: string): Module {
    const m = this._modules.get(name);
    if (!m) throw new InvalidArgumentError(`${this.constructor.name}: no child '${name}'; it has: ${[...this._modules.keys()].join(', ') || '(none)'}`);
    return m;
  }

  /** The descendant at a dotted path ("layer2.1.conv1"); "" is this module. */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const next = m._modules.get(part);
      if (!next) throw new InvalidArgumentError(`getSubmodule: no module '${path}' ('${part}' is not a child of ${m.constructor.name})`);
      m = next;
    }
    return m;
  }

  // ---- computation ----------------------------------------------------------------------

  /** The layer's computation. Subclasses override it. */
  forward(_x: Tensor): Tensor {
    throw new InvalidArgumentError(`${this.constructor.name}: forward() is not implemented`);
  }

  /** The output shape for an input shape, computed without running anything; adds the
   *  multiply-adds this module performs to `trace`. Subclasses override it. */
  traceShape(_shape: Shape, _trace: ShapeTrace = new ShapeTrace()): number[] {
    throw new InvalidArgumentError(`${this.constructor.name}: traceShape() is not implemented`);
  }

  // ---- traversal ------------------------------------------------------------------------

  namedChildren(): [string, Module][] {
    return [...this._modules];
  }

  children(): Module[] {
    return [...this._modules.values()];
  }

  /** This module (name "") and every descendant, depth first, in definition order. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of m._parameters) out.push([path ? `${path}.${name}` : name, p]);
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Tensor buffers (running statistics, and non-persistent ones), depth first. Counters
   *  (num_batches_tracked) are not tensors and appear only in the state dict. */
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m._buffers) {
        if (b.value instanceof Tensor) out.push([path ? `${path}.${name}` : name, b.value]);
      }
    }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** Total number of parameter elements. */
  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.numel;
    return n;
  }

  // ---- modes ----------------------------------------------------------------------------

  /** Sets training mode here and in every descendant. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Inference mode: BatchNorm2d uses its running statistics. */
  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      if (p.grad) { p.grad.dispose(); p.grad = null; }
    }
  }

  // ---- state ----------------------------------------------------------------------------

  /** Visits every state-dict slot in PyTorch's order. */
  private stateSlots(): { key: string; owner: Module; name: string; kind: 'parameter' | 'buffer' | 'counter' }[] {
    const out: { key: string; owner: Module; name: string; kind: 'parameter' | 'buffer' | 'counter' }[] = [];
    for (const [path, m] of this.namedModules()) {
      const k = (name: string) => (path ? `${path}.${name}` : name);
      for (const name of m._parameters.keys()) out.push({ key: k(name), owner: m, name, kind: 'parameter' });
      for (const [name, b] of m._buffers) {
        if (!b.persistent) continue;
        out.push({ key: k(name), owner: m, name, kind: b.value instanceof Counter ? 'counter' : 'buffer' });
      }
    }
    return out;
  }

  /**
   * Parameters and persistent buffers as plain arrays keyed by their dotted names, in
   * torchvision's order (`conv1.weight`, `bn1.weight`, `bn1.bias`, `bn1.running_mean`, ...).
   * @example const sd = model.stateDict(); sd['fc.weight'].shape // [1000, 512]
   */
  stateDict(): StateDict {
    const sd: StateDict = {};
    for (const s of this.stateSlots()) {
      if (s.kind === 'parameter') {
        const p = s.owner._parameters.get(s.name)!;
        sd[s.key] = { data: p.toFloat32Array(), shape: [...p.shape] };
      } else {
        const v = s.owner._buffers.get(s.name)!.value;
        sd[s.key] = v instanceof Counter
          ? { data: Int32Array.of(v.value), shape: [] }
          : { data: v.toArray(), shape: [...v.shape] };
      }
    }
    return sd;
  }

  /** The state dict's keys and shapes, in order, without reading any value. */
  stateDictShapes(): [string, number[]][] {
    return this.stateSlots().map((s) => {
      if (s.kind === 'counter') return [s.key, []];
      const t = s.kind === 'parameter' ? s.owner._parameters.get(s.name)! : s.owner._buffers.get(s.name)!.value as Tensor;
      return [s.key, [...t.shape]];
    });
  }

  /**
   * Copies a state dict into this module's parameters and buffers (in place: parameter
   * objects keep their identity, so an optimiser built before still holds them).
   * @example
   * const report = model.loadStateDict(sd, { strict: false });
   * report.missing // ['fc.weight', 'fc.bias'] when fine-tuning a new head
   */
  loadStateDict(sd: StateDictInput, opts: LoadStateDictOptions = {}): LoadReport {
    const strict = opts.strict ?? true;
    const entries = new Map<string, StateValue>(sd instanceof Map ? sd : Object.entries(sd as Record<string, StateValue>));
    const slots = this.stateSlots();
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [], loaded: [] };
    const known = new Set(slots.map((s) => s.key));
    for (const key of entries.keys()) if (!known.has(key)) report.unexpected.push(key);
    const plan: { slot: (typeof slots)[number]; value: StateValue }[] = [];
    for (const slot of slots) {
      const value = entries.get(slot.key);
      if (value === undefined) {
        if (slot.kind !== 'counter') report.missing.push(slot.key);
        continue;
      }
      const got = [...value.shape];
      if (slot.kind === 'counter') {
        if (numel(got) !== 1) report.mismatched.push({ key: slot.key, expected: [], got });
        else plan.push({ slot, value });
        continue;
      }
      const t = slot.kind === 'parameter' ? slot.owner._parameters.get(slot.name)! : slot.owner._buffers.get(slot.name)!.value as Tensor;
      const length = value instanceof Tensor ? value.numel : value.data.length;
      if (got.length !== t.shape.length || got.some((d, i) => d !== t.shape[i])) {
        report.mismatched.push({ key: slot.key, expected: [...t.shape], got });
      } else if (length !== numel(got)) {
        throw new CheckpointError(`loadStateDict: '${slot.key}' holds ${length} values but its shape ${fmt(got)} needs ${numel(got)}`);
      } else {
        plan.push({ slot, value });
      }
    }
    if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
      throw new CheckpointError(`loadStateDict: the state dict does not fit ${this.constructor.name}; nothing was loaded. ${describeReport(report)}`);
    }
    noGrad(() => {
      for (const { slot, value } of plan) {
        const owner = slot.owner;
        const values = readValues(value);
        if (slot.kind === 'counter') {
          (owner._buffers.get(slot.name)!.value as Counter).value = Number(values[0]);
        } else if (slot.kind === 'parameter') {
          const p = owner._parameters.get(slot.name)!;
          if (!copyInto(p, values)) {
            owner._parameters.set(slot.name, new Parameter(values, p.shape, { backend: p.backend, requiresGrad: p.requiresGrad }));
            p.dispose();
          }
        } else {
          const b = owner._buffers.get(slot.name)!;
          const t = b.value as Tensor;
          if (!copyInto(t, values)) {
            b.value = keep(tensor(values, t.shape, { backend: t.backend, dtype: t.dtype }));
            t.dispose();
          }
        }
        report.loaded.push(slot.key);
      }
    });
    return report;
  }

  /**
   * Moves every parameter and buffer to `backend` (new tensors: build optimisers after
   * moving, as PyTorch advises for .to()). Gradients are dropped. Same backend: no-op.
   * @example model.to(backendByName('reference'))
   */
  to(backend: Backend): this {
    for (const m of this.modules()) {
      for (const [name, p] of m._parameters) {
        if (p.backend === backend) continue;
        m._parameters.set(name, new Parameter(p.toFloat32Array(), p.shape, { backend, requiresGrad: p.requiresGrad }));
        p.dispose();
      }
      for (const b of m._buffers.values()) {
        const t = b.value;
        if (!(t instanceof Tensor) || t.backend === backend) continue;
        b.value = keep(tensor(t.toArray(), t.shape, { backend, dtype: t.dtype }));
        t.dispose();
      }
    }
    return this;
  }

  /** Frees every parameter (and its gradient) and buffer, here and below. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m._parameters.values()) p.dispose();
      for (const b of m._buffers.values()) if (b.value instanceof Tensor) b.value.dispose();
    }
  }

  // ---- printing -------------------------------------------------------------------------

  /** The constructor arguments worth showing, e.g. "3, 64, kernel_size=(7, 7)". */
  extraRepr(): string {
    return '';
  }

  /** PyTorch's module printout. */
  toString(): string {
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (this._modules.size === 0) return `${head})`;
    const lines = [...this._modules].map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`);
    return `${head}\n${lines.join('\n')}\n)`;
  }
}
