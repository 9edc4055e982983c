// Evaluating a saved checkpoint (a file, or a run directory's best) on a dataset's test
// split, with the normalisation the run trained with. Errors name the checkpoint file.

import { existsSync, statSync } from 'node:fs';
import type { Precision } from '../backend/backend.js';
import { CheckpointError, ResnetError } from '../errors.js';
import { DataLoader, type LoaderDataset } from '../data/loader.js';
import { createModel } from '../models/registry.js';
import { loadCheckpoint, loadRunCheckpoint } from './checkpoint.js';
import { loadSplits, transformsFor } from './data.js';
import { evaluate, type EvalResult, type TrainConfig } from './trainer.js';

/** @example const { top1 } = await evaluateCheckpoint('runs/default', { subset: 1000, precision: 'fp32' } satisfies EvalCheckpointOptions); */
export interface EvalCheckpointOptions {
  /** The test split to evaluate on instead of the run's dataset (needed for a run trained
   *  on in-memory data). */
  test?: LoaderDataset;
  /** Dataset directory (default: the one the run trained on). */
  data?: string;
  /** Evaluate the first N test images only. */
  subset?: number;
  workers?: number;
  /** Convolution precision of the evaluation (default fp32). */
  precision?: Precision;
  onMessage?: (text: string) => void;
}

/** @example const { top1 } = await evaluateCheckpoint('runs/default'); */
export async function evaluateCheckpoint(path: string, options: EvalCheckpointOptions = {}): Promise<EvalResult & { file: string }> {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such checkpoint file or run directory`);
  const ck = statSync(path).isDirectory() ? loadRunCheckpoint(path, options.onMessage, 'best') : loadCheckpoint(path);
  const cfg = ck.meta.config as unknown as TrainConfig;
  if (cfg.dataset === 'custom' && options.test === undefined) {
    throw new CheckpointError(`${ck.file}: trained on in-memory data (Trainer's train/test options); give 'test' to evaluate it`);
  }
  const test = options.test ?? (await loadSplits(cfg.dataset, options.data ?? cfg.data, options.data === undefined ? cfg.valData : undefined)).test;
  const model = createModel(ck.meta.arch, ck.meta.modelOptions);
  try {
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      if (e instanceof ResnetError) throw new CheckpointError(`${ck.file}: does not fit ${ck.meta.arch}: ${e.message}`);
      throw e;
    }
    const input = { ...ck.meta.input, ...ck.meta.norm };
    const loader = new DataLoader(test, { batchSize: 256, shuffle: false, subset: options.subset, workers: options.workers, transforms: transformsFor(test, false, cfg.aug, input, cfg.folderPreset) });
    try {
      const sample = (test as { channels?: number; height?: number; width?: number });
      // Channels 1 <-> 3 are converted (fine-tuned runs); the size must match.
      if (sample.height !== undefined && (sample.height !== input.height || sample.width !== input.width)) {
        throw new CheckpointError(`${ck.file}: trained on ${input.channels}x${input.height}x${input.width} images, the test set holds ${sample.channels}x${sample.height}x${sample.width}`);
      }
      return { ...(await evaluate(model, loader, { precision: options.precision })), file: ck.file };
    } finally {
      await loader.close();
    }
  } finally {
    model.dispose();
  }
}
