// Tiny study configurations for the tests: a 4-class IDX dataset of 12x12 images (a bright
// band per class, plus noise) and the options that train the smallest registered nets
// (resnet20 / plain20) for one epoch on it in seconds.

import type { StudyOptions } from '../../src/studies/index.js';
export { makeBandsIdx } from './data_files.js';


/** Options of a tiny study run on `data` (one epoch, batch 32, one loader worker). */
export function tinyOptions(data: string, out: string, extra: Partial<StudyOptions> = {}): StudyOptions {
  return {
    out, dataset: 'mnist', data, epochs: 1, testSubset: 96, seed: 1, draws: 2,
    train: { batchSize: 32, lr: 0.05, workers: 1 }, ...extra,
  };
}
