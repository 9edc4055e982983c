// Seeded random numbers for initialisation and tests: a 32-bit PCG-like generator
// (mulberry32) and Box-Muller normals. Deterministic for a given seed on every platform.

import type { Shape } from '../backend/backend.js';
import { numel } from '../backend/backend.js';
import { tensor, type Tensor, type TensorOptions } from './tensor.js';

/**
 * @example
 * const rng = new Rng(42);
 * const u = rng.next();  // in [0, 1)
 */
export class Rng {
  private state: number;
  private spare: number | null = null;
  constructor(seed = 0) {
    this.state = (seed >>> 0) ^ 0x9e3779b9;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * Normal(0, std^2) values.
 * @example const w = randn([16, 3, 3, 3], new Rng(0), { std: 0.1, requiresGrad: true });
 */
export function randn(shape: Shape, rng: Rng, opts: TensorOptions & { std?: number } = {}): Tensor {
  const std = opts.std ?? 1;
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
  return tensor(a, shape, opts);
}

/**
 * Uniform in [low, high).
 * @example const u = rand([2, 5], new Rng(1), { low: -1, high: 1 });
 */
export function rand(shape: Shape, rng: Rng, opts: TensorOptions & { low?: number; high?: number } = {}): Tensor {
  const low = opts.low ?? 0;
  const high = opts.high ?? 1;
  const a = new Float32Array(numel(shape));
  for (let i = 0; i < a.length; i++) a[i] = low + (high - low) * rng.next();
  return tensor(a, shape, opts);
}
