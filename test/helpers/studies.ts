// Tiny study configurations for the tests: a 4-class IDX dataset of 12x12 images (a bright
// band per class, plus noise) and the options that train the smallest registered nets
// (resnet20 / plain20) for one epoch on it in seconds.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StudyOptions } from '../../src/studies/index.js';

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

/** Options of a tiny study run on `data` (one epoch, batch 32, one loader worker). */
export function tinyOptions(data: string, out: string, extra: Partial<StudyOptions> = {}): StudyOptions {
  return {
    out, dataset: 'mnist', data, epochs: 1, testSubset: 96, seed: 1, draws: 2,
    train: { batchSize: 32, lr: 0.05, workers: 1 }, ...extra,
  };
}
