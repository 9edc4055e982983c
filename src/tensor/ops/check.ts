// Argument checks shared by the ops: one backend, the right dtype, matching shapes.
// Every message names the op, the argument, what was expected and what came.

import type { DType } from '../../backend/backend.js';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { fmt } from '../geometry.js';
import type { Tensor } from '../tensor.js';

export function sameBackend(op: string, ...ts: (Tensor | null | undefined)[]): void {
  const present = ts.filter((t): t is Tensor => !!t);
  const b = present[0]?.backend;
  for (const t of present) {
    if (t.backend !== b) {
      throw new InvalidArgumentError(`${op}: tensors live on different backends (${b?.name} and ${t.backend.name}); move them to one backend first`);
    }
  }
}

export function expectDtype(op: string, name: string, t: Tensor, dtype: DType): void {
  if (t.dtype !== dtype) throw new DTypeError(`${op}: '${name}' must be ${dtype}, got ${t.dtype} ${fmt(t.shape)}`);
}

export function expectSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: shapes must match, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
}

export function expectFinite(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidArgumentError(`${op}: '${name}' must be a finite number, got ${String(v)}`);
}
