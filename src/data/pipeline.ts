// Making one batch: transform each sample with its own seeded stream and pack the results
// into [N, C, H, W] float32 plus [N] int32 labels. The same code runs in the worker threads
// and, with `workers: 0`, on the calling thread, so both give identical batches. A sample's
// randomness depends only on (loader seed, epoch, position in the epoch), never on which
// worker made it or how far ahead it was prepared.

import { DataError } from '../errors.js';
import type { Batch, FloatImage, ImageRecord } from './dataset.js';
import { mixSeed, Random } from './random.js';
import { hwcToChw } from './image_folder.js';
import { applyFused, fusedShape, planFused, type FusedPlan } from './fused.js';
import { applyTransforms, type Transform } from './transforms.js';

/** The seed of the sample at `position` (0-based, within the epoch's order). */
export function sampleSeed(seed: number, epoch: number, position: number): number {
  return mixSeed(seed, epoch, position, 0x5a3);
}

/** The seed of an epoch's shuffle. */
export function orderSeed(seed: number, epoch: number): number {
  return mixSeed(seed, epoch, 0x0dde7);
}

/**
 * Transforms `count` samples and packs them. `image(k)` gives sample k's uint8 image,
 * `label(k)` its class, `seeds[k]` its stream, `name(k)` how errors name it.
 */
export function assembleBatch(count: number, image: (k: number) => ImageRecord | FloatImage, label: (k: number) => number,
  seeds: Uint32Array, transforms: readonly Transform[], name: (k: number) => string, noFused = false): Batch {
  const plan = noFused ? null : fusedPlanFor(transforms);
  let x: Float32Array | null = null;
  let C = 0;
  let H = 0;
  let W = 0;
  const check = (k: number, c: number, h: number, w: number): void => {
    if (x === null) {
      C = c; H = h; W = w;
      x = new Float32Array(count * C * H * W);
    } else if (c !== C || h !== H || w !== W) {
      throw new DataError(
        `${name(k)}: is ${c}x${h}x${w} after the transforms, expected ${C}x${H}x${W} like ${name(0)}; ` +
        `add a resize + centerCrop or randomResizedCrop so every image comes out the same size`);
    }
  };
  const y = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const img = image(k);
    const rng = new Random(seeds[k]);
    // The fused path reads uint8 through a lookup table; float32 images take the general one.
    const shape = plan === null || img.data instanceof Float32Array ? null : fusedShape(plan, img as ImageRecord);
    if (shape !== null) {
      check(k, shape[0], shape[1], shape[2]);
      applyFused(plan!, img as ImageRecord, rng, x!, k * C * H * W);
    } else {
      const out = transformOne(img, transforms, rng, name(k));
      check(k, out.channels, out.height, out.width);
      x!.set(out.data, k * C * H * W);
    }
    y[k] = label(k);
  }
  return { x: x ?? new Float32Array(0), y, shape: [count, C, H, W] };
}

/** applyTransforms on one sample; whatever fails (a transform too large for it, a bug) is a DataError naming it. */
function transformOne(img: ImageRecord | FloatImage, transforms: readonly Transform[], rng: Random, name: string): FloatImage {
  try {
    return applyTransforms(img, transforms, rng);
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e);
    if (e instanceof DataError && msg.startsWith(name)) throw e;
    throw new DataError(`${name}: ${msg}`, { cause: e });
  }
}

const plans = new WeakMap<readonly Transform[], FusedPlan | null>();

function fusedPlanFor(transforms: readonly Transform[]): FusedPlan | null {
  if (!plans.has(transforms)) plans.set(transforms, planFused(transforms));
  return plans.get(transforms)!;
}

/** What a worker is given once: the shared dataset (if any) and the transforms. */
export interface WorkerInit {
  transforms: Transform[];
  /** Take the general path even where the fused one applies (tests compare the two). */
  noFused?: boolean;
  array: null | { images: Uint8Array | Float32Array; labels: Uint8Array | Int32Array; channels: number; height: number; width: number };
}

/** A request for one batch: by indices into the shared array, or with decoded images (interleaved when hwc). */
export type BatchRequest =
  | { id: number; kind: 'array'; indices: Int32Array; seeds: Uint32Array }
  | { id: number; kind: 'records'; images: ImageRecord[]; hwc: boolean; labels: Int32Array; names: string[]; seeds: Uint32Array };

export type BatchReply =
  | { id: number; batch: Batch }
  | { id: number; error: { message: string; code?: string; name?: string } };

/** Serves a request against a worker's init (shared by workers and the inline path). */
export function serveRequest(init: WorkerInit, req: BatchRequest): Batch {
  if (req.kind === 'array') {
    const a = init.array;
    if (a === null) throw new DataError('data worker: got an array request without a shared dataset');
    const size = a.channels * a.height * a.width;
    return assembleBatch(req.indices.length,
      (k) => {
        const data = a.images.subarray(req.indices[k] * size, (req.indices[k] + 1) * size);
        return data instanceof Float32Array ? { data, channels: a.channels, height: a.height, width: a.width }
          : { data: data as Uint8Array, channels: a.channels, height: a.height, width: a.width };
      },
      (k) => a.labels[req.indices[k]], req.seeds, init.transforms, (k) => `image ${req.indices[k]}`, init.noFused);
  }
  const images = req.hwc ? req.images.map(hwcToChw) : req.images;
  return assembleBatch(images.length, (k) => images[k], (k) => req.labels[k], req.seeds, init.transforms,
    (k) => req.names[k], init.noFused);
}
