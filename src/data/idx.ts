// IDX files (LeCun's MNIST format, also Fashion-MNIST): big-endian header `0 0 type ndims`,
// ndims uint32 sizes, then the data. We read unsigned-byte (type 0x08) files only: images
// idx3 [N, H, W], labels idx1 [N]. `.gz` or raw. Every size is checked against the file's
// length (a `.gz` is inflated only up to the length its header gives, see files.ts); images
// and labels must agree on N. Images come back as uint8 CHW with C = 1.

import { DataError, InvalidArgumentError } from '../errors.js';
import { checkLabels, sharedBytes, type ArrayDataset } from './dataset.js';
import { findFile, readDataFile } from './files.js';

/**
 * Where Debian's `dataset-fashion-mnist` package puts the files.
 * @example const train = await loadFashionMnist({ dir: FASHION_MNIST_DIR });  // Debian's dataset-fashion-mnist
 */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Fashion-MNIST's classes, in label order (zalandoresearch/fashion-mnist README).
 * @example FASHION_MNIST_CLASSES[0]  // 'T-shirt/top'
 */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/**
 * MNIST's classes: the digits.
 * @example MNIST_CLASSES.length  // 10
 */
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const UBYTE = 0x08;

/**
 * A parsed IDX array: its sizes and a view of its bytes.
 * @example const { dims, data }: IdxArray = parseIdx(bytes, 't10k-labels-idx1-ubyte', 1);
 */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses an IDX file's bytes; `file` names it in errors; `ndims` is what the caller expects.
 * @example const { dims, data } = parseIdx(bytes, 'train-labels-idx1-ubyte', 1);
 */
export function parseIdx(bytes: Uint8Array, file: string, ndims: number): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(`${file}: truncated IDX file, expected a 4-byte magic number, found ${bytes.length} bytes`);
  }
  const expectedLength = idxLength(bytes, file, ndims);
  if (expectedLength === undefined) {
    throw new DataError(`${file}: truncated IDX header, expected ${4 + 4 * ndims} bytes, found ${bytes.length}`);
  }
  if (bytes.length !== expectedLength) {
    const what = bytes.length < expectedLength ? 'truncated' : 'too long';
    throw new DataError(
      `${file}: ${what}: its header says [${idxDims(bytes, ndims).join(', ')}], so ${expectedLength} bytes, found ${bytes.length}`);
  }
  return { dims: idxDims(bytes, ndims), data: bytes.subarray(4 + 4 * ndims) };
}

const idxDims = (bytes: Uint8Array, ndims: number): number[] => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: ndims }, (_, d) => view.getUint32(4 + 4 * d, false));
};

/**
 * An IDX file's whole length from its first bytes (magic checked), or undefined while the
 * header is incomplete: what a gzip'd IDX file may inflate to (readDataFile's `sizeOf`).
 */
export function idxLength(bytes: Uint8Array, file: string, ndims: number): number | undefined {
  if (bytes.length < 4) return undefined;
  const magic = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  const expected = (UBYTE << 8) | ndims;
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE || bytes[3] !== ndims) {
    throw new DataError(
      `${file}: wrong IDX magic number 0x${magic.toString(16).padStart(8, '0')}, expected 0x${expected.toString(16).padStart(8, '0')} ` +
      `(unsigned bytes, ${ndims} dimension${ndims > 1 ? 's' : ''})`);
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header) return undefined;
  // Past 2^53 the product is inexact, but then it passes every limit and matches no file.
  const count = idxDims(bytes, ndims).reduce((a, b) => a * b, 1);
  return header + count;
}

/** @example const ds = await loadIdx('images-idx3-ubyte', 'labels-idx1-ubyte', { classes: ['no', 'yes'] } satisfies IdxOptions); */
export interface IdxOptions {
  /** Class names; default "0".."K-1" with K = 10. */
  classes?: string[];
}

/**
 * Loads an IDX image file and its label file into an ArrayDataset (C = 1).
 * @example const ds = await loadIdx('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz');
 */
export async function loadIdx(imagesPath: string, labelsPath: string, options: IdxOptions = {}): Promise<ArrayDataset<Uint8Array>> {
  const classes = options.classes ?? MNIST_CLASSES;
  const [imageBytes, labelBytes] = await Promise.all([
    readDataFile(imagesPath, (head) => idxLength(head, imagesPath, 3)),
    readDataFile(labelsPath, (head) => idxLength(head, labelsPath, 1)),
  ]);
  const img = parseIdx(imageBytes, imagesPath, 3);
  const lab = parseIdx(labelBytes, labelsPath, 1);
  const [n, height, width] = img.dims;
  if (lab.dims[0] !== n) {
    throw new DataError(`${labelsPath}: holds ${lab.dims[0]} labels, expected ${n}, the number of images in ${imagesPath}`);
  }
  if (n === 0 || height === 0 || width === 0) {
    throw new DataError(`${imagesPath}: holds no pixels ([${img.dims.join(', ')}]), expected at least one image`);
  }
  checkLabels(lab.data, classes.length, labelsPath);
  const images = sharedBytes(img.data.length);
  images.set(img.data);
  const labels = new Uint8Array(new SharedArrayBuffer(n));
  labels.set(lab.data);
  return { images, labels, n, channels: 1, height, width, classes: [...classes] };
}

/** @example const test = await loadMnist({ dir: 'data/mnist', split: 'test' } satisfies MnistOptions); */
export interface MnistOptions {
  /** Directory holding the four files (`.gz` or raw); Fashion-MNIST defaults to Debian's. */
  dir?: string;
  /** 'train' (60000 images) or 'test' (10000). Default 'train'. */
  split?: 'train' | 'test';
}

function candidates(prefix: string, kind: 'images' | 'labels'): string[] {
  const nd = kind === 'images' ? 3 : 1;
  const base = [`${prefix}-${kind}-idx${nd}-ubyte`, `${prefix}-${kind}.idx${nd}-ubyte`];
  return base.flatMap((b) => [`${b}.gz`, b]);
}

async function loadMnistLike(options: MnistOptions, defaultDir: string | undefined, classes: string[], name: string): Promise<ArrayDataset<Uint8Array>> {
  const dir = options.dir ?? defaultDir;
  if (dir === undefined) throw new InvalidArgumentError(`${name}: 'dir' is required`);
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new InvalidArgumentError(`${name}: 'split' must be 'train' or 'test', got '${String(split)}'`);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesPath = await findFile(dir, candidates(prefix, 'images'), `${name} ${split} images`);
  const labelsPath = await findFile(dir, candidates(prefix, 'labels'), `${name} ${split} labels`);
  return loadIdx(imagesPath, labelsPath, { classes });
}

/**
 * Fashion-MNIST (28x28 grey, 10 classes), by default from /usr/share/datasets/fashion-mnist.
 * @example const train = await loadFashionMnist({ split: 'train' }); // n = 60000
 */
export function loadFashionMnist(options: MnistOptions = {}): Promise<ArrayDataset<Uint8Array>> {
  return loadMnistLike(options, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, 'fashion-mnist');
}

/**
 * MNIST digits from a directory of the four IDX files.
 * @example const test = await loadMnist({ dir: 'data/mnist', split: 'test' });
 */
export function loadMnist(options: MnistOptions = {}): Promise<ArrayDataset<Uint8Array>> {
  return loadMnistLike(options, undefined, MNIST_CLASSES, 'mnist');
}
