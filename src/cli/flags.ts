// Numeric command-line flags, parsed the one way every command does: undefined when the flag
// was not given, else the value or a one-line error naming the flag and what is valid.

import { InvalidArgumentError } from '../errors.js';

/** A finite number, or undefined when the flag was not given. */
export function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`--${flag} must be a number, got '${v}'`);
  return n;
}

/** An integer >= min, or undefined when the flag was not given. */
export function intFlag(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min) throw new InvalidArgumentError(`--${flag} must be an integer >= ${min}, got '${v}'`);
  return Number(v);
}

/** A number in [min, max], or undefined when the flag was not given. */
export function numberInRange(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`--${flag} must be a number in [${min}, ${max}], got '${v}'`);
  return n;
}
