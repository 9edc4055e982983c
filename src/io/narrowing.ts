// Float64 read into float32 (the only dtype our readers narrow; F16, BF16 and the small
// integer types widen exactly): the conversion and what it cost, recorded on the array so
// that `convert` can say it and refuse what does not fit. Rounding is IEEE round-to-nearest
// (Math.fround, as torch's .float()); a finite value beyond float32's range becomes ±inf.

/** What narrowing one tensor did. */
export interface Narrowing {
  from: 'F64';
  /** Values whose float32 differs from the float64. */
  changed: number;
  /** Finite values that became ±inf (beyond ±3.4028235e38). */
  overflow: number;
  /** Non-zero values that became 0 (below float32's smallest subnormal). */
  underflow: number;
  /** Largest |f32 - f64| over the finite results, and the largest relative change |f32 - f64| / |f64|. */
  maxAbs: number;
  maxRel: number;
  /** A value that overflowed (the first one), for the message. */
  firstOverflow: number | null;
}

const narrowed = new WeakMap<Float32Array, Narrowing>();

/** float64 values (read by `get`) as float32, with what was lost recorded (see narrowingOf). */
export function narrowF64(count: number, get: (i: number) => number): Float32Array {
  const out = new Float32Array(count);
  const n: Narrowing = { from: 'F64', changed: 0, overflow: 0, underflow: 0, maxAbs: 0, maxRel: 0, firstOverflow: null };
  for (let i = 0; i < count; i++) {
    const v = get(i);
    const f = Math.fround(v);
    out[i] = f;
    if (f === v || (v !== v && f !== f)) continue; // exact, or NaN stays NaN
    n.changed++;
    if (!Number.isFinite(f)) {
      n.overflow++;
      n.firstOverflow ??= v;
      continue;
    }
    if (f === 0) n.underflow++;
    const abs = Math.abs(f - v);
    if (abs > n.maxAbs) n.maxAbs = abs;
    const rel = abs / Math.abs(v);
    if (rel > n.maxRel) n.maxRel = rel;
  }
  narrowed.set(out, n);
  return out;
}

/** What narrowF64 recorded for `data`, or undefined when it was not narrowed. */
export function narrowingOf(data: ArrayBufferView): Narrowing | undefined {
  return data instanceof Float32Array ? narrowed.get(data) : undefined;
}
