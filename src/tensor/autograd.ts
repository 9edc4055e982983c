// Define-by-run reverse-mode autograd. Each differentiable op records one Node on its
// output (inputs, a backward closure, and the tensors only the backward needs, which the
// node owns). backward() walks the graph once in reverse topological order, accumulates
// gradients of leaves into `.grad`, and releases every node it passed: what a node owned is
// freed, intermediate gradients are freed as soon as they have been used.
// Not here: higher-order gradients, retain_graph (a second backward through the same graph
// is an error that says so).

import { InvalidArgumentError, ShapeError } from '../errors.js';
import { keep } from './scope.js';
import { Tensor, fromStorage } from './tensor.js';

export type BackwardFn = (dy: Tensor) => readonly (Tensor | null)[];

export class Node {
  private fn: BackwardFn | null;
  private owned: Tensor[];
  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    fn: BackwardFn,
    owned: Tensor[],
  ) {
    this.fn = fn;
    this.owned = owned;
  }

  get released(): boolean {
    return this.fn === null;
  }

  run(dy: Tensor): readonly (Tensor | null)[] {
    if (!this.fn) {
      throw new InvalidArgumentError(`backward: the graph through '${this.op}' was already used by an earlier backward() (recompute the forward)`);
    }
    return this.fn(dy);
  }

  /** Frees what only the backward needed. */
  release(): void {
    this.fn = null;
    for (const t of this.owned) t.dispose();
    this.owned = [];
  }
}

let gradEnabled = true;

/**
 * Whether ops currently record the graph.
 * @example noGrad(() => isGradEnabled())  // false
 */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording anything for autograd (inference, optimiser steps).
 * @example const logits = noGrad(() => model.forward(x));
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attaches a backward to `out` when any input requires a gradient and recording is on;
 * otherwise frees `owned` at once. Returns `out`.
 */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], fn: BackwardFn, owned: Tensor[] = []): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = new Node(op, inputs, fn, owned);
  } else {
    for (const t of owned) t.dispose();
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: { t: Tensor; i: number }[] = [{ t: root, i: 0 }];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const inputs = top.t.gradFn ? top.t.gradFn.inputs : [];
    if (top.i < inputs.length) {
      const next = inputs[top.i++];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push({ t: next, i: 0 });
      }
    } else {
      order.push(top.t);
      stack.pop();
    }
  }
  return order.reverse();
}

function clone(t: Tensor): Tensor {
  return fromStorage(t.backend, t.backend.affineScalar(t.storage, t.shape, 1, 0), t.shape, t.dtype);
}

/**
 * Computes gradients of `root` with respect to every leaf that requires them and adds
 * them to the leaves' `.grad`. `root` must be a scalar unless `grad` (same shape) is given.
 * @example
 * const loss = crossEntropy(model.forward(x), y);
 * backward(loss);  // same as loss.backward()
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new InvalidArgumentError('backward: the tensor does not require grad (no input of the ops that made it had requiresGrad, or it was made under noGrad)');
  }
  if (grad === undefined && root.numel !== 1) {
    throw new ShapeError(`backward: implicit gradient needs a one-element tensor, got [${root.shape.join(', ')}]; pass grad`);
  }
  if (grad !== undefined && grad.shape.join() !== root.shape.join()) {
    throw new ShapeError(`backward: grad shape [${grad.shape.join(', ')}] does not match tensor shape [${root.shape.join(', ')}]`);
  }
  // One gradient tensor may stand for several tensors' gradients at once: an add hands its
  // dy on to both inputs, unchanged. `refs` counts the holders of each (entries of `grads`,
  // plus one for the caller's `grad`, which is never written or freed); a gradient is
  // accumulated into in place only while it has one holder, otherwise the sum is a new
  // tensor. So a residual block's fork costs one addition, never a copy.
  const grads = new Map<Tensor, Tensor>();
  const refs = new Map<Tensor, number>();
  const hold = (g: Tensor): void => { refs.set(g, (refs.get(g) ?? 0) + 1); };
  const drop = (g: Tensor): void => {
    const n = (refs.get(g) ?? 0) - 1;
    if (n > 0) { refs.set(g, n); return; }
    refs.delete(g);
    g.dispose();
  };
  const store = (t: Tensor, g: Tensor): void => {
    const prev = grads.get(t);
    if (!prev) {
      grads.set(t, g);
      hold(g);
    } else if (refs.get(prev) === 1) {
      prev.backend.axpbyInPlace(prev.storage, g.storage, prev.shape, 1, 1);
    } else {
      const sum = fromStorage(prev.backend, prev.backend.add(prev.storage, g.storage, prev.shape), prev.shape, prev.dtype);
      grads.set(t, sum);
      hold(sum);
      drop(prev);
    }
  };
  const seed = grad ?? fromStorage(root.backend, root.backend.full(root.shape, 'float32', 1), root.shape);
  if (grad !== undefined) hold(grad);
  store(root, seed);

  for (const t of topoOrder(root)) {
    const dy = grads.get(t);
    const node = t.gradFn;
    if (!node) {
      // A leaf: its gradient outlives this call, owned by the leaf.
      if (dy) {
        grads.delete(t);
        if (t.grad && !t.grad.disposed) {
          t.grad.backend.axpbyInPlace(t.grad.storage, dy.storage, t.grad.shape, 1, 1);
          drop(dy);
        } else {
          let g = dy;
          if (refs.get(dy) === 1) refs.delete(dy); // handed over whole
          else { g = clone(dy); drop(dy); }
          if (t.scope) t.scope.adopt(g); else keep(g);
          t.grad = g;
        }
      }
      continue;
    }
    if (!dy) { node.release(); continue; }
    const inGrads = node.run(dy);
    node.inputs.forEach((input, i) => {
      const g = inGrads[i];
      if (g && input.requiresGrad) store(input, g);
    });
    for (const g of new Set(inGrads)) if (g && g !== dy && !refs.has(g)) g.dispose();
    node.release(); // kept on t, released: a second backward through it says so
    grads.delete(t);
    drop(dy);
  }
  for (const g of grads.values()) drop(g);
}
