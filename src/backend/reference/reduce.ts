// Reference reduction: the sum of all elements, accumulated in float64, as a one-element
// array. Its backward (dx = dsum everywhere) is a fill, composed above the backend.

import { type FloatArray, allocLike } from './array.js';

/** sum: [1] = sum of every element of x. */
export function sum(x: FloatArray): FloatArray { // x: any shape
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const out = allocLike(x, 1);
  out[0] = s;
  return out;
}
