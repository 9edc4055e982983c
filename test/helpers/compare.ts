// Comparison with a readable failure: shape, then values; on failure the worst elements
// and the max error are printed.

import assert from 'node:assert/strict';

export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-3): { err: number; at: number } {
  let err = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor);
    if (!(e <= err)) { err = e; at = i; }
  }
  return { err, at };
}

/** |a - e| / max(|e|, floor) <= tol for every element (NaN fails). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string, floor = 1e-3): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != expected ${expected.length}`);
  const { err, at } = maxRelError(actual, expected, floor);
  if (err > tol || Number.isNaN(err)) {
    const worst = [...Array(expected.length).keys()]
      .map((i) => ({ i, a: actual[i], e: expected[i], d: Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor) }))
      .sort((p, q) => (q.d || Infinity) - (p.d || Infinity)).slice(0, 5)
      .map((p) => `  [${p.i}] got ${p.a} expected ${p.e} (rel ${p.d.toExponential(2)})`).join('\n');
    assert.fail(`${what}: max relative error ${err.toExponential(3)} at ${at} > ${tol}\n${worst}`);
  }
}
