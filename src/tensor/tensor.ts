// Tensor: a shape, a dtype and backend-owned storage, plus the autograd fields
// (requiresGrad, grad, and the node that produced it). The public view is plain row-major;
// the backend may keep another layout inside. Storage is freed deterministically by
// dispose() or the enclosing tidy(); a FinalizationRegistry frees what was dropped
// without either (a safety net, not the mechanism).

import type { Backend, DType, Shape, Storage } from '../backend/backend.js';
import { numel } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import { DisposedError, DTypeError, ShapeError } from '../errors.js';
import { currentScope, type Scope, type Scoped } from './scope.js';
import { backward, type Node } from './autograd.js';

interface Held { backend: Backend; storage: Storage }
const finalizer = new FinalizationRegistry<Held>((h) => {
  try { h.backend.free(h.storage); } catch { /* already gone: nothing to free */ }
});

let liveCount = 0;
/**
 * Tensors created and not yet disposed (all backends).
 * @example
 * const before = liveTensors();
 * tidy(() => relu(x));
 * liveTensors() === before  // true: tidy freed what it made
 */
export function liveTensors(): number {
  return liveCount;
}

/**
 * @example
 * const t = tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true });
 * sum(mul(t, t)).backward();
 * t.grad?.toArray()  // Float32Array [2, 4, 6, 8]
 */
export class Tensor implements Scoped {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly backend: Backend;
  /** Set by ops when gradients are being recorded; null for leaves. */
  gradFn: Node | null = null;
  /** Accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  requiresGrad: boolean;
  scope: Scope | null = null;
  private _storage: Storage | null;
  private readonly token = {};

  /** Wraps storage the backend just made; prefer the factory functions. */
  constructor(backend: Backend, storage: Storage, shape: Shape, dtype: DType, requiresGrad = false) {
    this.backend = backend;
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.requiresGrad = requiresGrad;
    liveCount++;
    finalizer.register(this, { backend, storage }, this.token);
    currentScope()?.adopt(this);
  }

  get storage(): Storage {
    if (this._storage === null) {
      throw new DisposedError(`tensor [${this.shape.join(', ')}] ${this.dtype} was used after dispose()`);
    }
    return this._storage;
  }

  get disposed(): boolean {
    return this._storage === null;
  }

  get numel(): number {
    return numel(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Frees the storage now (idempotent). The gradient, if any, is disposed too. */
  dispose(): void {
    if (this._storage === null) return;
    const s = this._storage;
    this._storage = null;
    finalizer.unregister(this.token);
    liveCount--;
    this.scope?.tracked.delete(this);
    this.scope = null;
    this.gradFn = null;
    this.backend.free(s);
    if (this.grad) { this.grad.dispose(); this.grad = null; }
  }

  /** A plain row-major copy of the values. */
  toArray(): Float32Array | Int32Array {
    return this.backend.read(this.storage, this.shape, this.dtype);
  }

  /** Values as a Float32Array (float32 tensors only). */
  toFloat32Array(): Float32Array {
    if (this.dtype !== 'float32') throw new DTypeError(`toFloat32Array: tensor is ${this.dtype}, expected float32`);
    return this.toArray() as Float32Array;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new ShapeError(`item: tensor must have exactly one element, got shape [${this.shape.join(', ')}]`);
    return this.toArray()[0];
  }

  /** Reverse-mode autograd from this tensor (a scalar unless `grad` is given): adds the
   *  gradients of every leaf that requires them to its `.grad`. */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  toString(): string {
    return `Tensor([${this.shape.join(', ')}], ${this.dtype}, ${this.backend.name}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** @example const labels = tensor([0, 2, 1], [3], { dtype: 'int32' }); */
export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  backend?: Backend;
}

function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: shape must hold non-negative integers, got [${shape.join(', ')}]`);
  }
}

/**
 * A tensor holding a copy of `data` (row-major) with the given shape.
 * @example const t = tensor(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
 */
export function tensor(data: ArrayLike<number>, shape: Shape, opts: TensorOptions = {}): Tensor {
  checkShape('tensor', shape);
  const dtype = opts.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
  if (data.length !== numel(shape)) {
    throw new ShapeError(`tensor: ${data.length} values do not fill shape [${shape.join(', ')}] (${numel(shape)} elements)`);
  }
  const backend = opts.backend ?? getBackend();
  const arr = dtype === 'float32'
    ? (data instanceof Float32Array ? data : Float32Array.from(data))
    : (data instanceof Int32Array ? data : Int32Array.from(data));
  return new Tensor(backend, backend.fromArray(arr, shape, dtype), shape, dtype, opts.requiresGrad ?? false);
}

/**
 * A tensor filled with `value`.
 * @example const sevens = full([2, 3], 7);
 */
export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  checkShape('full', shape);
  const backend = opts.backend ?? getBackend();
  const dtype = opts.dtype ?? 'float32';
  return new Tensor(backend, backend.full(shape, dtype, value), shape, dtype, opts.requiresGrad ?? false);
}

/** @example const z = zeros([1, 3, 32, 32]); */
export function zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

/** @example const o = ones([4], { requiresGrad: true }); */
export function ones(shape: Shape, opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** Makes a tensor of the same backend from storage an op produced. */
export function fromStorage(backend: Backend, storage: Storage, shape: Shape, dtype: DType = 'float32'): Tensor {
  return new Tensor(backend, storage, shape, dtype, false);
}
