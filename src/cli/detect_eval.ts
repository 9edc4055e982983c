// `resnet detect eval`: run a detector over a COCO folder (instances.json + images) and score
// it as pycocotools does (the 12 box numbers), as torchvision's detection reference evaluates:
// every image at its own size, every detection the model returns (its own box score
// threshold applies); labels are COCO category ids for torchvision's models, and a training
// run's classes are matched to the folder's categories by name. The work is in src/detect/.

import { join } from 'node:path';
import { loadCocoFolder } from '../detect/data/coco.js';
import { COCO_STAT_NAMES, evaluateCoco, formatCocoSummary, toCocoDetections, type CocoDetection, type CocoStats } from '../detect/eval/coco_eval.js';
import { DataError } from '../errors.js';
import { detect } from '../detect/predict.js';
import { detectorFlags, openFlaggedDetector } from './detect_predict.js';
import { intFlag } from './flags.js';
import { precisionOf } from './precision.js';

/** @example const f: DetectEvalFlags = { arch: 'fasterrcnn_resnet50_fpn', weights: 'coco.pth', data: 'synth-test' }; */
export interface DetectEvalFlags {
  arch?: string;
  weights?: string;
  /** A folder holding instances.json (and images/), or the annotation file itself. */
  data: string;
  /** Backbone BatchNorm eps (default: as the weights say, see loadDetectionWeights). */
  bnEps?: string;
  /** Evaluate the first N images only. */
  limit?: string;
  /** auto | fp32 | bf16 (cli/precision.ts). */
  precision?: string;
  json?: boolean;
  /** Where the output goes (default: stdout). */
  print?: (text: string) => void;
  /** Progress lines (default: stderr). */
  say?: (text: string) => void;
}

/**
 * Detects on every image of a COCO folder and prints the COCO numbers.
 * @example const stats = await detectEval({ arch: 'fasterrcnn_resnet50_fpn', weights: 'coco.pth', data: 'synth-test', json: true });
 */
export async function detectEval(flags: DetectEvalFlags): Promise<CocoStats> {
  detectorFlags(flags);
  const limit = intFlag(flags.limit, 'limit', 1);
  const precision = precisionOf(flags.precision);
  const say = flags.say ?? ((t: string) => process.stderr.write(`${t}\n`));
  const coco = await loadCocoFolder(flags.data);
  const file = coco.file;
  const images = coco.images.slice(0, limit);
  const { model, source } = openFlaggedDetector(flags);
  const dets: CocoDetection[] = [];
  const t0 = performance.now();
  try {
    let categoryIds: number[] | undefined;
    if (source === 'run') {
      // A run's labels are its own 1..K: map each class name to this folder's category id.
      const byName = new Map(coco.categories.map((cat) => [cat.name, cat.id]));
      categoryIds = (model.categories ?? []).map((name, label) => {
        if (label === 0) return 0;
        const id = byName.get(name);
        if (id === undefined) throw new DataError(`${file}: has no category '${name}', a class of ${flags.weights}; its categories: ${[...byName.keys()].join(', ')}`);
        return id;
      });
    }
    for (let i = 0; i < images.length; i++) {
      const img = images[i];
      const [r] = await detect(model, [join(coco.imageDir, img.file_name)], { precision });
      dets.push(...toCocoDetections(img.id, { boxes: r.boxes.flat(), scores: r.scores, labels: r.labels }, categoryIds));
      if ((i + 1) % 10 === 0 || i + 1 === images.length) say(`detect eval: ${i + 1}/${images.length} images, ${((performance.now() - t0) / 1000 / (i + 1)).toFixed(2)} s per image`);
    }
  } finally {
    model.dispose();
  }
  const gt = limit === undefined ? coco.raw : { ...coco.raw, images };
  const { stats } = evaluateCoco(gt, dets, { imgIds: images.map((im) => im.id) });
  const print = flags.print ?? ((t: string) => process.stdout.write(t));
  if (flags.json) print(`${JSON.stringify(Object.fromEntries(COCO_STAT_NAMES.map((k) => [k, stats[k]])))}\n`);
  else print(`${formatCocoSummary(stats)}\n`);
  return stats;
}
