// Deterministic "random" weights from a formula of the key and element index, computed the
// same way by scripts/make_detect_fixtures.py (numpy): large models' parity fixtures then
// need no stored weights. See the script's header for the formula.

const f = Math.fround;

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** u in [0, 1) for element i of `key`. */
export function uniform(key: string, n: number): Float64Array {
  const seed = fnv1a(key);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b) >>> 0;
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35) >>> 0;
    x ^= x >>> 16;
    out[i] = (x >>> 8) / 16777216;
  }
  return out;
}

export function syntheticValues(key: string, shape: readonly number[], scales: Record<string, number> = {}): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = uniform(key, n);
  const out = new Float32Array(n);
  if (key.endsWith('running_mean')) for (let i = 0; i < n; i++) out[i] = f((2 * u[i] - 1) * 0.1);
  else if (key.endsWith('running_var')) for (let i = 0; i < n; i++) out[i] = f(0.5 + u[i]);
  else if (shape.length === 1 && key.endsWith('weight')) for (let i = 0; i < n; i++) out[i] = f(0.5 + 0.5 * u[i]);
  else if (shape.length === 1) for (let i = 0; i < n; i++) out[i] = f((2 * u[i] - 1) * 0.1);
  else {
    const bound = Math.sqrt(6 / (n / shape[0]));
    const s = scales[key] ?? 1;
    for (let i = 0; i < n; i++) out[i] = f((2 * u[i] - 1) * bound * s);
  }
  return out;
}

/** A state dict of formula values for every [key, shape] (num_batches_tracked skipped). */
export function syntheticStateDict(keys: readonly [string, number[]][], scales: Record<string, number> = {}): Map<string, { data: Float32Array; shape: number[] }> {
  const sd = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [k, shape] of keys) {
    if (k.endsWith('num_batches_tracked')) continue;
    sd.set(k, { data: syntheticValues(k, shape, scales), shape });
  }
  return sd;
}
