// CIFAR-10 and CIFAR-100 binary versions (www.cs.toronto.edu/~kriz/cifar.html):
// CIFAR-10 records are 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major:
// already planar CHW 3x32x32); CIFAR-100 records carry 2 label bytes (coarse, fine) first.
// A file whose length is not a whole number of records is corrupt; labels are range-checked.

import { DataError, InvalidArgumentError } from '../errors.js';
import { sharedBytes, type ArrayDataset } from './dataset.js';
import { dirExists, fileExists, readDataFile } from './files.js';

const PIXELS = 3 * 32 * 32;

/**
 * CIFAR-10's classes in label order (its batches.meta.txt).
 * @example CIFAR10_CLASSES[3]  // 'cat'
 */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** @example const train = await loadCifar10({ dir: 'data/cifar-10-batches-bin', split: 'train' } satisfies CifarOptions); */
export interface CifarOptions {
  /** The extracted folder (`cifar-10-batches-bin` / `cifar-100-binary`) or its parent. */
  dir: string;
  /** 'train' (50000 images) or 'test' (10000). Default 'train'. */
  split?: 'train' | 'test';
}

/** @example const coarse = await loadCifar100({ dir: 'data/cifar-100-binary', label: 'coarse' } satisfies Cifar100Options);  // 20 classes */
export interface Cifar100Options extends CifarOptions {
  /** Which label to return: 'fine' (100 classes, default) or 'coarse' (20 superclasses). */
  label?: 'fine' | 'coarse';
}

/**
 * Parses CIFAR binary records: `labelBytes` label bytes per record (the label used is at
 * `labelIndex`), then 3072 pixels. Every label byte is range-checked. Writes pixels and labels at record offset `at`.
 */
function parseRecords(bytes: Uint8Array, file: string, limits: LabelByte[], labelIndex: number,
  images: Uint8Array, labels: Uint8Array, at: number): void {
  const labelBytes = limits.length;
  const record = labelBytes + PIXELS;
  const n = bytes.length / record;
  for (let i = 0; i < n; i++) {
    const o = i * record;
    for (let b = 0; b < labelBytes; b++) {
      const { name, classes } = limits[b];
      if (bytes[o + b] >= classes) {
        throw new DataError(`${file}: record ${i} has ${name} ${bytes[o + b]}, expected a class index in 0..${classes - 1}`);
      }
    }
    labels[at + i] = bytes[o + labelIndex];
    images.set(bytes.subarray(o + labelBytes, o + record), (at + i) * PIXELS);
  }
}

function recordCount(bytes: Uint8Array, file: string, labelBytes: number): number {
  const record = labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % record !== 0) {
    throw new DataError(
      `${file}: ${bytes.length} bytes is not a whole number of ${record}-byte records ` +
      `(${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + 3072 pixels); the file is truncated or not a CIFAR batch`);
  }
  return bytes.length / record;
}

async function resolveDir(dir: string, sub: string, marker: string): Promise<string> {
  if (await fileExists(`${dir}/${marker}`)) return dir;
  if (await dirExists(`${dir}/${sub}`)) return `${dir}/${sub}`;
  return dir;
}

async function readNames(path: string, count: number): Promise<string[] | null> {
  if (!(await fileExists(path))) return null;
  const names = (await readDataFile(path)).toString('utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== count) {
    throw new DataError(`${path}: lists ${names.length} class names, expected ${count}`);
  }
  return names;
}

interface LabelByte { name: string; classes: number }

async function loadRecords(files: string[], limits: LabelByte[], labelIndex: number): Promise<{ images: Uint8Array; labels: Uint8Array; n: number }> {
  const labelBytes = limits.length;
  const contents = await Promise.all(files.map((f) => readDataFile(f)));
  const counts = contents.map((b, i) => recordCount(b, files[i], labelBytes));
  const n = counts.reduce((a, b) => a + b, 0);
  const images = sharedBytes(n * PIXELS);
  const labels = new Uint8Array(new SharedArrayBuffer(n));
  let at = 0;
  for (let i = 0; i < files.length; i++) {
    parseRecords(contents[i], files[i], limits, labelIndex, images, labels, at);
    at += counts[i];
  }
  return { images, labels, n };
}

function checkSplit(split: unknown, name: string): 'train' | 'test' {
  const s = split ?? 'train';
  if (s !== 'train' && s !== 'test') throw new InvalidArgumentError(`${name}: 'split' must be 'train' or 'test', got '${String(s)}'`);
  return s;
}

/**
 * CIFAR-10 binary batches: data_batch_1..5.bin (train), test_batch.bin (test).
 * @example const train = await loadCifar10({ dir: 'data/cifar-10-batches-bin' });
 */
export async function loadCifar10(options: CifarOptions): Promise<ArrayDataset<Uint8Array>> {
  if (typeof options?.dir !== 'string') throw new InvalidArgumentError(`cifar10: 'dir' must be a directory path`);
  const split = checkSplit(options.split, 'cifar10');
  const dir = await resolveDir(options.dir, 'cifar-10-batches-bin', 'test_batch.bin');
  const files = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `${dir}/data_batch_${i}.bin`) : [`${dir}/test_batch.bin`];
  const classes = (await readNames(`${dir}/batches.meta.txt`, 10)) ?? CIFAR10_CLASSES;
  const { images, labels, n } = await loadRecords(files, [{ name: 'label', classes: 10 }], 0);
  return { images, labels, n, channels: 3, height: 32, width: 32, classes };
}

/**
 * CIFAR-100 binary: train.bin / test.bin, records `coarse fine pixels`; fine labels by default.
 * @example const test = await loadCifar100({ dir: 'data/cifar-100-binary', split: 'test' });
 */
export async function loadCifar100(options: Cifar100Options): Promise<ArrayDataset<Uint8Array>> {
  if (typeof options?.dir !== 'string') throw new InvalidArgumentError(`cifar100: 'dir' must be a directory path`);
  const split = checkSplit(options.split, 'cifar100');
  const which = options.label ?? 'fine';
  if (which !== 'fine' && which !== 'coarse') throw new InvalidArgumentError(`cifar100: 'label' must be 'fine' or 'coarse', got '${String(which)}'`);
  const dir = await resolveDir(options.dir, 'cifar-100-binary', 'test.bin');
  const numClasses = which === 'fine' ? 100 : 20;
  const { images, labels, n } = await loadRecords([`${dir}/${split}.bin`],
    [{ name: 'coarse label', classes: 20 }, { name: 'fine label', classes: 100 }], which === 'fine' ? 1 : 0);
  const classes = (await readNames(`${dir}/${which}_label_names.txt`, numClasses)) ??
    Array.from({ length: numClasses }, (_, i) => String(i));
  return { images, labels, n, channels: 3, height: 32, width: 32, classes };
}
