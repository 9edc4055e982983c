// Opening a detector from weights: a torchvision detection checkpoint (with its arch) or a
// `resnet detect train` run (its directory or one of its checkpoints, which name their arch,
// classes and transform). The one place the CLI (predict, eval) and the server get a
// detector from, so every caller accepts the same kinds of weights.

import { existsSync, statSync } from 'node:fs';
import type { Backend } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { createDetector, DETECTION_ARCHS, detectorConfig } from './models.js';
import type { FasterRCNN } from './faster_rcnn.js';
import type { TransformOptions } from './transform.js';
import { loadDetectionWeights } from './weights.js';
import { isDetectionRun, openDetectionRun } from './train/run.js';

/** @example const o: OpenDetectorOptions = { arch: 'fasterrcnn_resnet50_fpn', bnEps: 0 }; */
export interface OpenDetectorOptions {
  /** The arch of a torchvision file (a training run names its own; given, it must agree). */
  arch?: string;
  /** Backbone BatchNorm eps (default: 0 for torchvision's v1 COCO files, else 1e-5). */
  bnEps?: number;
  /** Resize and normalisation overrides (e.g. a smaller minSize: faster on a CPU). */
  transform?: TransformOptions;
  backend?: Backend;
}

/** @example const { model, notes, source }: OpenedDetector = openDetector('runs/det'); */
export interface OpenedDetector {
  model: FasterRCNN;
  /** What loading did that the user should know (renamed keys, eps). */
  notes: string[];
  /** 'torchvision' for a checkpoint file, 'run' for a `resnet detect train` run. */
  source: 'torchvision' | 'run';
}

/**
 * A detector with its weights loaded, in eval mode. `weights`: a torchvision Faster R-CNN
 * checkpoint (.pth / .safetensors; `arch` required) or a `resnet detect train` run directory
 * or checkpoint.
 * @example
 * const { model } = openDetector('fasterrcnn_resnet50_fpn_coco.pth', { arch: 'fasterrcnn_resnet50_fpn' });
 * const [dets] = await detect(model, ['street.jpg']);
 */
export function openDetector(weights: string, opts: OpenDetectorOptions = {}): OpenedDetector {
  if (opts.arch !== undefined && !DETECTION_ARCHS.includes(opts.arch)) {
    throw new InvalidArgumentError(`unknown detection arch '${opts.arch}'; valid: ${DETECTION_ARCHS.join(', ')}`);
  }
  if (!existsSync(weights)) throw new InvalidArgumentError(`${weights}: no such file or directory (give a torchvision Faster R-CNN checkpoint or a 'resnet detect train' run)`);
  if (statSync(weights).isDirectory() || isDetectionRun(weights)) {
    const model = openDetectionRun(weights, { arch: opts.arch, transform: opts.transform, backend: opts.backend });
    if (opts.bnEps !== undefined) model.bnEps = opts.bnEps;
    return { model, notes: [], source: 'run' };
  }
  if (opts.arch === undefined) {
    throw new InvalidArgumentError(`${weights}: a torchvision checkpoint does not name its arch; give one of ${DETECTION_ARCHS.join(', ')}`);
  }
  const model = createDetector(opts.arch, { backend: opts.backend, ...(opts.transform ? { transform: { ...detectorConfig(opts.arch).transform, ...opts.transform } } : {}) });
  try {
    const { notes } = loadDetectionWeights(model, weights, { bnEps: opts.bnEps });
    return { model, notes, source: 'torchvision' };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
