// Mixed precision as a scope, as torch.autocast: inside autocast('bf16', fn) every conv2d,
// conv2dFused and linear that is not given a precision runs in bf16 (torch.autocast's CPU list
// has both), and its backward runs in the precision its forward ran in. Everything else
// (batch norm statistics, the loss, weight gradients, the optimiser) stays float32. Choosing a precision the machine can run is the
// caller's job (backend/precision.ts: resolvePrecision).

import type { Precision } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';

let current: Precision = 'fp32';

/**
 * The precision convolutions run in when not told otherwise ('fp32' outside autocast).
 * @example autocast('bf16', () => autocastPrecision())  // 'bf16'
 */
export function autocastPrecision(): Precision {
  return current;
}

/** Throws an InvalidArgumentError naming `op` unless `p` is 'fp32' or 'bf16'. */
export function expectPrecision(op: string, p: unknown): asserts p is Precision {
  if (p !== 'fp32' && p !== 'bf16') throw new InvalidArgumentError(`${op}: precision must be 'fp32' or 'bf16', got '${String(p)}'`);
}

/**
 * Runs `fn` with convolutions and linear layers in `precision`.
 * @example const loss = autocast('bf16', () => crossEntropy(model.forward(x), labels));
 */
export function autocast<T>(precision: Precision, fn: () => T): T {
  expectPrecision('autocast', precision);
  const prev = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = prev;
  }
}
