// The plain data the layer hands around: an in-memory array dataset (uint8 or float32 CHW
// images, integer labels), one decoded image, and a batch. No tensors here: the trainer
// makes them. Invariant of an ArrayDataset: images.length == n * channels * height * width,
// every label in [0, classes.length). Float32 images are in ToTensor units (x / 255 done).

import { DataError, InvalidArgumentError } from '../errors.js';

/**
 * Same-size images in one buffer: image i is images[i*C*H*W .. (i+1)*C*H*W), planar CHW.
 * Pixels are uint8 (0..255, what the dataset loaders return) or float32 in ToTensor units
 * (already x / 255, typically in [0, 1]): transforms and normalisation treat both alike.
 * @example
 * const ds: ArrayDataset = {
 *   images: new Float32Array(8 * 1 * 28 * 28).fill(0.5), labels: new Int32Array(8), n: 8,
 *   channels: 1, height: 28, width: 28, classes: ['a', 'b'],
 * };
 */
export interface ArrayDataset<T extends Uint8Array | Float32Array = Uint8Array | Float32Array> {
  /** Pixels [N, C, H, W]: uint8, or float32 in [0, 1] units; backed by a SharedArrayBuffer when a loader made it. */
  images: T;
  /** One class index per image. */
  labels: Uint8Array | Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  /** Class names; labels index into it. */
  classes: string[];
}

/**
 * One decoded image, uint8, planar [C, H, W].
 * @example const img: ImageRecord = { data: new Uint8Array(3 * 32 * 32), channels: 3, height: 32, width: 32 };
 */
export interface ImageRecord {
  data: Uint8Array;
  channels: number;
  height: number;
  width: number;
}

/**
 * A float32 image, planar [C, H, W] (what transforms produce).
 * @example const img: FloatImage = { data: new Float32Array(28 * 28), channels: 1, height: 28, width: 28 };
 */
export interface FloatImage {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/**
 * What the loader yields: x is [N, C, H, W] float32, y is [N] class indices.
 * @example
 * for await (const { x, y, shape } of loader.epoch(0)) console.log(shape, x.length, y.length);
 */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  shape: [number, number, number, number];
}

/** A Uint8Array over a fresh SharedArrayBuffer (workers read it without copies). */
export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

/**
 * Image i of an array dataset, as a view (no copy): uint8 or float32 as the dataset holds.
 * @example const first = imageAt(train, 0);  // { data, channels, height, width }
 */
export function imageAt(ds: ArrayDataset, i: number): ImageRecord | FloatImage {
  const size = ds.channels * ds.height * ds.width;
  const data = ds.images.subarray(i * size, (i + 1) * size);
  return data instanceof Float32Array
    ? { data, channels: ds.channels, height: ds.height, width: ds.width }
    : { data: data as Uint8Array, channels: ds.channels, height: ds.height, width: ds.width };
}

/**
 * True for a dataset's pixel buffer the library reads: Uint8Array or Float32Array.
 * @example isPixelArray(new Float32Array(4))  // true: a dataset may hold float32 pixels
 */
export function isPixelArray(a: unknown): a is Uint8Array | Float32Array {
  return a instanceof Uint8Array || a instanceof Float32Array;
}

/**
 * The first `count` images of a dataset (views, no copy), as `--subset N` wants.
 * @example const small = subsetDataset(train, 1000);
 */
export function subsetDataset<T extends Uint8Array | Float32Array>(ds: ArrayDataset<T>, count: number): ArrayDataset<T> {
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(`subsetDataset: 'count' must be a positive integer, got ${count}`);
  }
  const n = Math.min(count, ds.n);
  const size = ds.channels * ds.height * ds.width;
  return { ...ds, n, images: ds.images.subarray(0, n * size) as T, labels: ds.labels.subarray(0, n) };
}

/**
 * Checks the invariants of an array dataset; `name` says where it came from.
 * @example checkArrayDataset(ds, 'my data');  // throws InvalidArgumentError / DataError naming what is wrong
 */
export function checkArrayDataset(ds: ArrayDataset, name: string): void {
  for (const k of ['n', 'channels', 'height', 'width'] as const) {
    if (!Number.isInteger(ds[k]) || ds[k] < 1) {
      throw new InvalidArgumentError(`${name}: '${k}' must be a positive integer, got ${ds[k]}`);
    }
  }
  const size = ds.n * ds.channels * ds.height * ds.width;
  const images: unknown = ds.images;
  const dims = `n*C*H*W = ${ds.n}*${ds.channels}*${ds.height}*${ds.width} = ${size}`;
  if (!isPixelArray(images)) {
    const what = images === null || images === undefined ? String(images) : (images as object).constructor?.name ?? typeof images;
    throw new InvalidArgumentError(`${name}: 'images' must be a Uint8Array (0..255) or a Float32Array (x / 255 units) of ${dims} values, got ${what}`);
  }
  if (images.length !== size) {
    throw new InvalidArgumentError(`${name}: 'images' must hold ${dims} values, got a ${images.constructor.name} of ${images.length}`);
  }
  if (!(ds.labels instanceof Uint8Array || ds.labels instanceof Int32Array)) {
    throw new InvalidArgumentError(`${name}: 'labels' must be a Uint8Array or Int32Array of class indices, got ${(ds.labels as object)?.constructor?.name ?? typeof ds.labels}`);
  }
  if (ds.labels.length !== ds.n) {
    throw new InvalidArgumentError(`${name}: 'labels' must have n = ${ds.n} entries, got ${ds.labels.length}`);
  }
  checkLabels(ds.labels, ds.classes.length, name);
}

/**
 * Every label in [0, numClasses), else a DataError naming the source and the first bad one.
 * @example checkLabels(new Int32Array([0, 1, 2]), 3, 'labels.idx');
 */
export function checkLabels(labels: ArrayLike<number>, numClasses: number, source: string): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!(v >= 0 && v < numClasses)) {
      throw new DataError(`${source}: label ${i} is ${v}, expected a class index in 0..${numClasses - 1}`);
    }
  }
}
