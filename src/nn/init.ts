// Weight initialisers (torch.nn.init), seeded by an Rng so a model is reproducible from its
// seed. Fans follow torch.nn.init._calculate_fan_in_and_fan_out: for a weight
// [K, C/groups, R, S], fan_in = C/groups * R * S and fan_out = K * R * S.

import type { Shape } from '../backend/backend.js';
import { numel } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { Rng } from '../tensor/random.js';

/**
 * Makes the values of a new weight of `shape`.
 * @example const init: Initializer = (shape, rng) => normalValues(shape.reduce((a, b) => a * b, 1), 0.01, rng);
 */
export type Initializer = (shape: Shape, rng: Rng) => Float32Array;

/** The generator layers use when they are given none (seed 0, shared, so successive layers
 *  differ; pass an explicit Rng for reproducible models).
 * @example const v = defaultRng.next();
 */
export const defaultRng = new Rng(0);

function receptive(shape: Shape): number {
  return numel(shape.slice(2));
}

/** @example fanIn([64, 3, 7, 7])  // 147 */
export function fanIn(shape: Shape): number {
  if (shape.length < 2) throw new InvalidArgumentError(`fanIn: needs a weight of rank >= 2, got [${shape.join(', ')}]`);
  return shape[1] * receptive(shape);
}

/** @example fanOut([64, 3, 7, 7])  // 3136 */
export function fanOut(shape: Shape): number {
  if (shape.length < 2) throw new InvalidArgumentError(`fanOut: needs a weight of rank >= 2, got [${shape.join(', ')}]`);
  return shape[0] * receptive(shape);
}

/**
 * U(-bound, bound).
 * @example const v = uniformValues(10, 0.5, new Rng(0));  // 10 values in [-0.5, 0.5)
 */
export function uniformValues(n: number, bound: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * bound;
  return a;
}

/** N(0, std^2), by Marsaglia's polar method (two normals per accepted pair of uniforms,
 *  no sin/cos: about 2.5x faster than Box-Muller here, which matters for 25M+ weights).
 * @example const v = normalValues(10, 0.1, new Rng(0));
 */
export function normalValues(n: number, std: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let u: number; let v: number; let s: number;
    do {
      u = 2 * rng.next() - 1;
      v = 2 * rng.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = std * Math.sqrt((-2 * Math.log(s)) / s);
    a[i] = u * f;
    if (i + 1 < n) a[i + 1] = v * f;
  }
  return a;
}

/**
 * He et al. 2015 ("Delving deep into rectifiers"), torch.nn.init.kaiming_normal_ with
 * nonlinearity 'relu': std = sqrt(2 / fan). torchvision's ResNet uses mode 'fanOut'.
 * @example new Conv2d(3, 64, 7, { init: kaimingNormal('fanOut') })
 */
export function kaimingNormal(mode: 'fanIn' | 'fanOut' = 'fanIn'): Initializer {
  return (shape, rng) => normalValues(numel(shape), Math.sqrt(2 / (mode === 'fanIn' ? fanIn(shape) : fanOut(shape))), rng);
}

/** PyTorch's default for Conv2d and Linear weights: kaiming_uniform_(a=sqrt(5)), i.e.
 *  U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 * @example new Linear(512, 10, { init: defaultWeightInit })  // PyTorch's default
 */
export const defaultWeightInit: Initializer = (shape, rng) => uniformValues(numel(shape), 1 / Math.sqrt(fanIn(shape)), rng);

/**
 * Constant values.
 * @example new Conv2d(3, 8, 3, { init: constant(0) })
 */
export function constant(value: number): Initializer {
  return (shape) => new Float32Array(numel(shape)).fill(value);
}
