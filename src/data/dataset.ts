// The plain data the layer hands around: an in-memory array dataset (uint8 CHW images,
// integer labels), one decoded image, and a batch. No tensors here: the trainer makes them.
// Invariant of an ArrayDataset: images.length == n * channels * height * width, every
// label in [0, classes.length).

import { DataError, InvalidArgumentError } from '../errors.js';

/** Same-size images in one buffer: image i is images[i*C*H*W .. (i+1)*C*H*W), planar CHW. */
export interface ArrayDataset {
  /** uint8 pixels, [N, C, H, W]; backed by a SharedArrayBuffer when a loader made it. */
  images: Uint8Array;
  /** One class index per image. */
  labels: Uint8Array | Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  /** Class names; labels index into it. */
  classes: string[];
}

/** One decoded image, uint8, planar [C, H, W]. */
export interface ImageRecord {
  data: Uint8Array;
  channels: number;
  height: number;
  width: number;
}

/** A float32 image, planar [C, H, W] (what transforms produce). */
export interface FloatImage {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** What the loader yields: x is [N, C, H, W] float32, y is [N] class indices. */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  shape: [number, number, number, number];
}

/** A Uint8Array over a fresh SharedArrayBuffer (workers read it without copies). */
export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

/** Image i of an array dataset, as a view (no copy). */
export function imageAt(ds: ArrayDataset, i: number): ImageRecord {
  const size = ds.channels * ds.height * ds.width;
  return { data: ds.images.subarray(i * size, (i + 1) * size), channels: ds.channels, height: ds.height, width: ds.width };
}

/**
 * The first `count` images of a dataset (views, no copy), as `--subset N` wants.
 * @example const small = subsetDataset(train, 1000);
 */
export function subsetDataset(ds: ArrayDataset, count: number): ArrayDataset {
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(`subsetDataset: 'count' must be a positive integer, got ${count}`);
  }
  const n = Math.min(count, ds.n);
  const size = ds.channels * ds.height * ds.width;
  return { ...ds, n, images: ds.images.subarray(0, n * size), labels: ds.labels.subarray(0, n) };
}

/** Checks the invariants of an array dataset; `name` says where it came from. */
export function checkArrayDataset(ds: ArrayDataset, name: string): void {
  for (const k of ['n', 'channels', 'height', 'width'] as const) {
    if (!Number.isInteger(ds[k]) || ds[k] < 1) {
      throw new InvalidArgumentError(`${name}: '${k}' must be a positive integer, got ${ds[k]}`);
    }
  }
  const size = ds.n * ds.channels * ds.height * ds.width;
  if (!(ds.images instanceof Uint8Array) || ds.images.length !== size) {
    throw new InvalidArgumentError(`${name}: 'images' must be a Uint8Array of n*C*H*W = ${ds.n}*${ds.channels}*${ds.height}*${ds.width} = ${size} bytes, got ${ds.images?.length}`);
  }
  if (ds.labels.length !== ds.n) {
    throw new InvalidArgumentError(`${name}: 'labels' must have n = ${ds.n} entries, got ${ds.labels.length}`);
  }
  checkLabels(ds.labels, ds.classes.length, name);
}

/** Every label in [0, numClasses), else a DataError naming the source and the first bad one. */
export function checkLabels(labels: ArrayLike<number>, numClasses: number, source: string): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!(v >= 0 && v < numClasses)) {
      throw new DataError(`${source}: label ${i} is ${v}, expected a class index in 0..${numClasses - 1}`);
    }
  }
}
