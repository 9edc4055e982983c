// bfloat16 rounding for the reference backend's bf16 convolutions (the judge of native bf16):
// round to nearest even on the float32 bit pattern, as oneDNN's and PyTorch's conversions do;
// NaN stays NaN, overflow past the largest bf16 goes to infinity.

import type { Precision } from '../backend.js';
import { type FloatArray, allocLike } from './array.js';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** `v` rounded to the nearest bfloat16 (ties to even), as a float32 value. */
export function roundBf16(v: number): number {
  F32[0] = v;
  const u = U32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return NaN;
  U32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return F32[0];
}

/** A copy of `a` with every element rounded to bfloat16 (the array type kept). */
export function roundArrayBf16(a: FloatArray): FloatArray {
  const out = allocLike(a, a.length);
  for (let i = 0; i < a.length; i++) out[i] = roundBf16(a[i]);
  return out;
}

/** What a precision does to a kernel's inputs and outputs. */
export function atPrecision(p: Precision): { in: (a: FloatArray) => FloatArray; out: (a: FloatArray) => FloatArray } {
  const same = (a: FloatArray): FloatArray => a;
  return p === 'bf16' ? { in: roundArrayBf16, out: roundArrayBf16 } : { in: same, out: same };
}
