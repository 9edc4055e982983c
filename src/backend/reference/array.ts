// The array type every reference kernel computes on, and how a kernel makes its outputs.
// Kernels take Float32Array or Float64Array and return outputs of their main input's type,
// so the tests can run everything in float64 while the backend stores float32. Sums are
// always accumulated in JS numbers (float64), whatever the array type.

export type FloatArray = Float32Array | Float64Array;

/** A zeroed array of `like`'s type with `n` elements. */
export function allocLike(like: FloatArray, n: number): FloatArray {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

/** A copy of `src` with `like`'s type. */
export function copyLike(like: FloatArray, src: ArrayLike<number>): FloatArray {
  return like instanceof Float64Array ? Float64Array.from(src) : Float32Array.from(src);
}
