// Small dataset files in every format the data layer reads, written to a temp directory:
// IDX (raw and gzip), CIFAR-10 and CIFAR-100 binaries, and an image folder with jpg, png
// and webp made by sharp from known pixels. Pixel values come from a 31-bit LCG, the same
// one scripts/make_data_fixtures.py uses, so tests can rebuild any input.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';

/** A fresh temp directory and a function removing it. */
export function tempDir(prefix = 'resnet-data-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `count` bytes of the LCG state = (state * 1103515245 + 12345) mod 2^31, byte = state >> 16. */
export function lcgBytes(seed: number, count: number): Uint8Array {
  let state = seed & 0x7fffffff;
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1103515245) + 12345) & 0x7fffffff;
    out[i] = (state >>> 16) & 0xff;
  }
  return out;
}

/** HWC -> CHW. */
export function hwcToChw(hwc: Uint8Array, channels: number, height: number, width: number): Uint8Array {
  const out = new Uint8Array(hwc.length);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < channels; c++) out[c * height * width + p] = hwc[p * channels + c];
  }
  return out;
}

/** The bytes of an unsigned-byte IDX file with the given dims. */
export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

export interface MnistFiles {
  dir: string;
  train: { images: Uint8Array; labels: Uint8Array; n: number };
  test: { images: Uint8Array; labels: Uint8Array; n: number };
  height: number;
  width: number;
}

/** Writes train-/t10k- images and labels (IDX, `.gz` when gzip) of small random images. */
export function writeMnistDir(dir: string, options: { gzip?: boolean; nTrain?: number; nTest?: number; height?: number; width?: number } = {}): MnistFiles {
  const { gzip = false, nTrain = 12, nTest = 5, height = 6, width = 5 } = options;
  mkdirSync(dir, { recursive: true });
  const make = (prefix: string, n: number, seed: number) => {
    const images = lcgBytes(seed, n * height * width);
    const labels = Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) % 10);
    const ext = gzip ? '.gz' : '';
    const img = idxBytes([n, height, width], images);
    const lab = idxBytes([n], labels);
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${ext}`), gzip ? gzipSync(img) : img);
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${ext}`), gzip ? gzipSync(lab) : lab);
    return { images, labels, n };
  };
  return { dir, train: make('train', nTrain, 3), test: make('t10k', nTest, 4), height, width };
}

export interface CifarRecords {
  images: Uint8Array;
  labels: Uint8Array;
  coarse?: Uint8Array;
}

/** CIFAR-10 records: label byte + 3072 pixels. */
export function cifar10Bytes(n: number, seed: number): { bytes: Buffer } & CifarRecords {
  const images = lcgBytes(seed, n * 3072);
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3 + seed) % 10);
  const bytes = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    bytes[i * 3073] = labels[i];
    bytes.set(images.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
  }
  return { bytes, images, labels };
}

/** Writes cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin (+ batches.meta.txt). */
export function writeCifar10Dir(root: string, options: { perBatch?: number; meta?: boolean } = {}): { dir: string; train: CifarRecords; test: CifarRecords } {
  const { perBatch = 3, meta = true } = options;
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const trainParts = [1, 2, 3, 4, 5].map((b) => cifar10Bytes(perBatch, 10 + b));
  trainParts.forEach((p, i) => writeFileSync(join(dir, `data_batch_${i + 1}.bin`), p.bytes));
  const test = cifar10Bytes(perBatch + 1, 20);
  writeFileSync(join(dir, 'test_batch.bin'), test.bytes);
  if (meta) writeFileSync(join(dir, 'batches.meta.txt'), ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', '', ''].join('\n'));
  const cat = (parts: Uint8Array[]) => { const o = new Uint8Array(parts.reduce((a, p) => a + p.length, 0)); let at = 0; for (const p of parts) { o.set(p, at); at += p.length; } return o; };
  return {
    dir,
    train: { images: cat(trainParts.map((p) => p.images)), labels: cat(trainParts.map((p) => p.labels)) },
    test: { images: test.images, labels: test.labels },
  };
}

/** CIFAR-100 records: coarse byte, fine byte, 3072 pixels. */
export function cifar100Bytes(n: number, seed: number): { bytes: Buffer } & Required<CifarRecords> {
  const images = lcgBytes(seed, n * 3072);
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 37 + seed) % 100);
  const coarse = Uint8Array.from({ length: n }, (_, i) => (i * 5 + seed) % 20);
  const bytes = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    bytes[i * 3074] = coarse[i];
    bytes[i * 3074 + 1] = labels[i];
    bytes.set(images.subarray(i * 3072, (i + 1) * 3072), i * 3074 + 2);
  }
  return { bytes, images, labels, coarse };
}

/** Writes cifar-100-binary/{train,test}.bin (+ fine_label_names.txt when names). */
export function writeCifar100Dir(root: string, options: { names?: boolean } = {}): { dir: string; train: Required<CifarRecords>; test: Required<CifarRecords> } {
  const dir = join(root, 'cifar-100-binary');
  mkdirSync(dir, { recursive: true });
  const train = cifar100Bytes(7, 30);
  const test = cifar100Bytes(4, 31);
  writeFileSync(join(dir, 'train.bin'), train.bytes);
  writeFileSync(join(dir, 'test.bin'), test.bytes);
  if (options.names ?? true) {
    writeFileSync(join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n') + '\n');
    writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n') + '\n');
  }
  return { dir, train, test };
}

export interface FolderImage {
  path: string;
  label: number;
  /** The pixels as written, CHW RGB; exact after decoding for png and webp (lossless). */
  chw: Uint8Array;
  height: number;
  width: number;
  lossless: boolean;
}

/**
 * An image folder: classes 'cat' and 'dog' (and 'empty_ignored.txt' beside them), with
 * png, lossless webp, jpg, a grey png and an RGBA png, of a few sizes.
 */
export async function writeImageFolder(root: string): Promise<FolderImage[]> {
  const specs: { cls: string; label: number; name: string; w: number; h: number; fmt: 'png' | 'webp' | 'jpg' | 'jpeg'; channels: 1 | 3 | 4 }[] = [
    { cls: 'cat', label: 0, name: 'a.png', w: 9, h: 7, fmt: 'png', channels: 3 },
    { cls: 'cat', label: 0, name: 'b.webp', w: 8, h: 8, fmt: 'webp', channels: 3 },
    { cls: 'cat', label: 0, name: 'c.JPG', w: 16, h: 12, fmt: 'jpg', channels: 3 },
    { cls: 'cat', label: 0, name: 'sub/d.png', w: 5, h: 6, fmt: 'png', channels: 1 },
    { cls: 'dog', label: 1, name: 'e.png', w: 7, h: 9, fmt: 'png', channels: 4 },
    { cls: 'dog', label: 1, name: 'f.jpeg', w: 10, h: 10, fmt: 'jpeg', channels: 3 },
    { cls: 'dog', label: 1, name: 'g.webp', w: 12, h: 6, fmt: 'webp', channels: 3 },
  ];
  const out: FolderImage[] = [];
  let seed = 100;
  for (const s of specs) {
    const path = join(root, s.cls, s.name);
    mkdirSync(join(path, '..'), { recursive: true });
    // Noise for the lossless formats; a smooth picture for JPEG (noise is its worst case).
    const raw = s.fmt === 'png' || s.fmt === 'webp' ? lcgBytes(seed++, s.w * s.h * s.channels)
      : Uint8Array.from({ length: s.w * s.h * s.channels }, (_, i) => {
        const p = Math.floor(i / s.channels);
        return Math.floor(p / s.w) * 9 + (p % s.w) * 5 + (i % s.channels) * 40;
      });
    let img = sharp(Buffer.from(raw), { raw: { width: s.w, height: s.h, channels: s.channels } });
    img = s.fmt === 'png' ? img.png() : s.fmt === 'webp' ? img.webp({ lossless: true }) : img.jpeg({ quality: 95 });
    await img.toFile(path);
    // What PIL's convert('RGB') gives: grey replicated, alpha dropped.
    const rgb = new Uint8Array(s.w * s.h * 3);
    for (let p = 0; p < s.w * s.h; p++) {
      for (let c = 0; c < 3; c++) rgb[p * 3 + c] = s.channels === 1 ? raw[p] : raw[p * s.channels + c];
    }
    out.push({ path, label: s.label, chw: hwcToChw(rgb, 3, s.h, s.w), height: s.h, width: s.w, lossless: s.fmt === 'png' || s.fmt === 'webp' });
  }
  writeFileSync(join(root, 'dog', 'notes.txt'), 'not an image');
  writeFileSync(join(root, 'empty_ignored.txt'), '');
  // ImageFolder's order: classes sorted, files sorted within (recursively, by full path).
  out.sort((a, b) => a.label - b.label || (a.path < b.path ? -1 : 1));
  return out;
}

/** Writes train/t10k IDX files: class k has a bright band at rows 3k..3k+2. */
export function makeBandsIdx(dir: string, nTrain = 256, nTest = 128, size = 12): string {
  mkdirSync(dir, { recursive: true });
  const write = (prefix: string, n: number, seed: number): void => {
    let s = seed;
    const rnd = (): number => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32; };
    const img = Buffer.alloc(16 + n * size * size);
    img.writeUInt32BE(0x803, 0); img.writeUInt32BE(n, 4); img.writeUInt32BE(size, 8); img.writeUInt32BE(size, 12);
    const lab = Buffer.alloc(8 + n);
    lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(n, 4);
    for (let i = 0; i < n; i++) {
      const k = i % 4;
      lab[8 + i] = k;
      for (let p = 0; p < size * size; p++) {
        const on = Math.floor(Math.floor(p / size) / (size / 4)) === k;
        img[16 + i * size * size + p] = Math.min(255, Math.round((on ? 150 : 30) + rnd() * 90));
      }
    }
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), img);
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), lab);
  };
  write('train', nTrain, 1);
  write('t10k', nTest, 2);
  return dir;
}
