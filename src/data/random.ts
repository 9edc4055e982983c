// Seeded random numbers for the data layer: mulberry32 (32-bit state, period 2^32) and a
// seed mixer, so every shuffle and every augmentation repeats exactly for a given seed.
// Not cryptographic. Independent of src/tensor/random.ts on purpose (data/ sits beside
// tensor/, not on it). Streams are derived, never shared: one per (seed, epoch, sample).

/**
 * Mixes integers into one 32-bit seed (murmur3's finaliser over a running hash).
 * @example const rng = new Random(mixSeed(seed, epoch, i));  // one stream per (seed, epoch, sample)
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Two 32-bit halves, so epochs or positions past 2^32 still mix in.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    for (const v of [lo, hi]) {
      h = Math.imul(h ^ v, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/**
 * mulberry32: a small, fast, well-distributed 32-bit generator.
 * @example
 *   const r = new Random(42);
 *   r.next();        // uniform in [0, 1)
 *   r.int(10);       // integer in [0, 10)
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The state, to save and restore a stream exactly. */
  get seed(): number { return this.state; }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n), n >= 1 (torch.randint(0, n)). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]; p[i] = p[j]; p[j] = t;
    }
    return p;
  }
}
