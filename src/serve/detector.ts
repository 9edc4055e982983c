// A detector as the server holds it: opened by openDetector (a torchvision Faster R-CNN file
// with its arch, or a `resnet detect train` run), with the served resize (--min-size,
// --max-size: torchvision's min_size / max_size, the biggest lever on a CPU's latency) set on
// its transform. The engine thread and the tests open detectors here, so what the server
// computes is what `detect()` computes on the model this returns.

import type { Backend, Precision } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { openDetector } from '../detect/load.js';
import type { FasterRCNN } from '../detect/faster_rcnn.js';
import type { DetectorInfo, DetectorLoadOptions } from './engine_messages.js';

/**
 * Opens a detector to serve, its resize as asked; `precision` is what its convolutions will
 * run in (the engine runs detect() under autocast(precision)), reported in its info.
 * @example
 * const { model, info } = openServedDetector('det', { weights: 'det.pth', arch: 'fasterrcnn_resnet50_fpn', minSize: 512 });
 */
export function openServedDetector(name: string, opts: DetectorLoadOptions, backend?: Backend, precision: Precision = 'fp32'): { model: FasterRCNN; info: DetectorInfo } {
  for (const k of ['minSize', 'maxSize'] as const) {
    const v = opts[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new InvalidArgumentError(`serve: detector '${name}': ${k} must be an integer >= 1, got ${String(v)}`);
  }
  const transform = { ...(opts.minSize !== undefined ? { minSize: opts.minSize } : {}), ...(opts.maxSize !== undefined ? { maxSize: opts.maxSize } : {}) };
  const { model, notes, source } = openDetector(opts.weights, { arch: opts.arch, bnEps: opts.bnEps, backend, transform });
  const K = model.numClasses;
  const labels = Array.from({ length: K }, (_, i) => model.categories?.[i] ?? String(i));
  return {
    model,
    info: {
      kind: 'detector', name, arch: model.name, source: `${opts.weights} (${source === 'run' ? "a 'resnet detect train' run" : 'torchvision checkpoint'})`,
      labels, numClasses: K, minSize: model.transform.minSize, maxSize: model.transform.maxSize, precision, notes,
    },
  };
}
