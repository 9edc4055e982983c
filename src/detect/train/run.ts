// A `resnet detect train` run on disk: its checkpoints are the Trainer's (train/checkpoint.ts:
// safetensors, the model's state dict + the optimiser's, metadata under META_KEY) with `arch` a
// detection arch and `modelOptions` the detector's options (classes, categories, transform,
// anchors), so a run opens into the detector it trained without anything else.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../../backend/backend.js';
import { CheckpointError, InvalidArgumentError } from '../../errors.js';
import { BEST, LAST, loadCheckpoint, loadRunCheckpoint, META_KEY, type LoadedCheckpoint } from '../../train/checkpoint.js';
import type { FasterRCNN } from '../faster_rcnn.js';
import { createDetector, DETECTION_ARCHS, detectorConfig, type DetectorOptions } from '../models.js';
import type { TransformOptions } from '../transform.js';

/** Whether `path` is a run directory holding a checkpoint, or a safetensors file with a
 *  resnet-ts training header (read from the header only).
 * @example isDetectionRun('runs/det')  // true once an epoch was saved
 */
export function isDetectionRun(path: string): boolean {
  if (!existsSync(path)) return false;
  if (statSync(path).isDirectory()) return existsSync(join(path, LAST)) || existsSync(join(path, BEST));
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return false;
    const n = Number(head.readBigUInt64LE(0));
    if (n <= 0 || n > 100_000_000 || n + 8 > statSync(path).size) return false;
    const json = Buffer.alloc(Math.min(n, 1 << 20));
    readSync(fd, json, 0, json.length, 8);
    return json.includes(`"${META_KEY}"`);
  } finally {
    closeSync(fd);
  }
}

/** The checkpoint of a run directory (best, else last) or the given checkpoint file.
 * @example const { meta } = detectionCheckpoint('runs/det');  // meta.arch 'fasterrcnn_resnet18_fpn'
 */
export function detectionCheckpoint(path: string): LoadedCheckpoint {
  const ck = statSync(path).isDirectory() ? loadRunCheckpoint(path, () => {}, 'best') : loadCheckpoint(path);
  if (!DETECTION_ARCHS.includes(ck.meta.arch)) {
    throw new CheckpointError(`${ck.file}: a ${ck.meta.arch} training checkpoint, not a detector's; valid detection archs: ${DETECTION_ARCHS.join(', ')}`);
  }
  return ck;
}

/**
 * The detector a training run (directory: its best checkpoint; or one checkpoint file)
 * trained, in eval mode.
 * @example const model = openDetectionRun('runs/det');  // fasterrcnn_resnet18_fpn, its classes
 */
export function openDetectionRun(path: string, opts: { arch?: string; transform?: TransformOptions; backend?: Backend } = {}): FasterRCNN {
  const ck = detectionCheckpoint(path);
  if (opts.arch !== undefined && opts.arch !== ck.meta.arch) {
    throw new InvalidArgumentError(`${ck.file}: holds a ${ck.meta.arch} run, but --arch says ${opts.arch}; leave --arch out (the run names its arch)`);
  }
  const recorded = ck.meta.modelOptions as DetectorOptions;
  const transform = opts.transform ? { ...detectorConfig(ck.meta.arch).transform, ...recorded.transform, ...opts.transform } : recorded.transform;
  const model = createDetector(ck.meta.arch, { ...recorded, ...(transform ? { transform } : {}), backend: opts.backend });
  try {
    const weights = new Map([...ck.model].filter(([k]) => !k.startsWith('optim.')));
    model.loadStateDict(weights);
    return model.eval();
  } catch (e) {
    model.dispose();
    throw e;
  }
}
