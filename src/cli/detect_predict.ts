// `resnet detect predict`: load a detection arch and its weights, detect objects in the
// given image files or folders, print each image's detections (a line each) or, with
// --json, one array [{"file", "detections": [{"box", "score", "label", "name"}]}] on stdout
// (boxes in each image's pixels). The work is in src/detect/;
// the lead wires this action into the `resnet detect` command group (src/cli/detect.ts).

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { errnoWords, InvalidArgumentError } from '../errors.js';
import { listImages } from '../infer/preprocess.js';
import { DETECTION_ARCHS } from '../detect/models.js';
import { detect } from '../detect/predict.js';
import { writeDetectionPages } from '../detect/draw.js';
import { openDetector, type OpenedDetector } from '../detect/load.js';
import { isDetectionRun } from '../detect/train/run.js';
import { numberInRange } from './flags.js';
import { precisionOf } from './precision.js';

/** @example const f: DetectPredictFlags = { arch: 'fasterrcnn_resnet50_fpn', weights: 'coco.pth', score: '0.5', json: true }; */
export interface DetectPredictFlags {
  arch?: string;
  weights?: string;
  /** Keep detections scoring at least this (0..1). */
  score?: string;
  /** The same as score (`--score-thresh`, torchvision's box_score_thresh). */
  scoreThresh?: string;
  /** One JSON array instead of lines. */
  json?: boolean;
  /** Also write each image with its boxes drawn (PNG) and an HTML page of them here. */
  out?: string;
  /** Backbone BatchNorm eps (default: 0 for torchvision's v1 COCO files, else 1e-5). */
  bnEps?: string;
  /** auto | fp32 | bf16 (cli/precision.ts). */
  precision?: string;
  /** Where the output goes, a line at a time (default: console.log). */
  print?: (line: string) => void;
}

/**
 * The detector the flags name, checked before any work: the arch (default
 * fasterrcnn_resnet50_fpn for a torchvision file; a training run names its own), the
 * required weights and the backbone BatchNorm eps.
 * @example const { arch, weights, bnEps } = detectorFlags({ arch: 'fasterrcnn_resnet18_fpn', weights: 'det.safetensors' });
 */
export function detectorFlags(flags: { arch?: string; weights?: string; bnEps?: string }): { arch: string | undefined; weights: string; bnEps: number | undefined } {
  if (flags.arch !== undefined && !DETECTION_ARCHS.includes(flags.arch)) throw new InvalidArgumentError(`--arch: unknown detection arch '${flags.arch}'; valid: ${DETECTION_ARCHS.join(', ')}`);
  if (!flags.weights) throw new InvalidArgumentError("--weights is required: a torchvision Faster R-CNN checkpoint (.pth or .safetensors) or a 'resnet detect train' run");
  const arch = flags.arch ?? (isDetectionRun(flags.weights) ? undefined : 'fasterrcnn_resnet50_fpn');
  return { arch, weights: flags.weights, bnEps: numberInRange(flags.bnEps, 'bn-eps', 0, 1) };
}

/**
 * The detector of the flags, loaded (see detectorFlags and openDetector).
 * @example const { model } = openFlaggedDetector({ weights: 'runs/det' });
 */
export function openFlaggedDetector(flags: { arch?: string; weights?: string; bnEps?: string }): OpenedDetector {
  const { arch, weights, bnEps } = detectorFlags(flags);
  return openDetector(weights, { arch, bnEps });
}

/**
 * The --score threshold (0 when neither --score nor its alias --score-thresh is given).
 * @example scoreFlag({ score: '0.5' }); // 0.5
 */
export function scoreFlag(flags: { score?: string; scoreThresh?: string }): number {
  const score = numberInRange(flags.score, 'score', 0, 1);
  const alias = numberInRange(flags.scoreThresh, 'score-thresh', 0, 1);
  if (score !== undefined && alias !== undefined && score !== alias) {
    throw new InvalidArgumentError(`--score ${flags.score} and --score-thresh ${flags.scoreThresh} disagree; --score-thresh is another name for --score: give one`);
  }
  return score ?? alias ?? 0;
}

/**
 * An image's detections as text: the file, then a line per detection, best first.
 * @example detectionLines('a.jpg', [{ box: [1, 2, 30, 40], score: 0.9, label: 1, name: 'person' }]); // 'a.jpg: 1 detection\n  0.9000  person (1)  [1.0, 2.0, 30.0, 40.0]'
 */
export function detectionLines(file: string, detections: readonly { box: readonly number[]; score: number; label: number; name: string }[]): string {
  const head = `${file}: ${detections.length} detection${detections.length === 1 ? '' : 's'}`;
  return [head, ...detections.map((d) => `  ${d.score.toFixed(4)}  ${d.name} (${d.label})  [${d.box.map((v) => v.toFixed(1)).join(', ')}]`)].join('\n');
}

/**
 * Detects objects in image files and prints them (lines, or JSON with flags.json).
 * @example await detectPredict(['street.jpg'], { arch: 'fasterrcnn_resnet50_fpn', weights: 'fasterrcnn_resnet50_fpn_coco.pth', score: '0.5', json: true });
 */
export async function detectPredict(images: string[], flags: DetectPredictFlags): Promise<void> {
  detectorFlags(flags);
  const scoreThresh = scoreFlag(flags);
  const precision = precisionOf(flags.precision);
  if (flags.out !== undefined) {
    // Before any work: --out must be a directory we can make.
    if (existsSync(flags.out) && !statSync(flags.out).isDirectory()) throw new InvalidArgumentError(`--out ${flags.out}: is not a directory; give a folder for the drawn images and index.html`);
    try { mkdirSync(flags.out, { recursive: true }); } catch (e) { throw new InvalidArgumentError(`--out ${flags.out}: cannot make the folder: ${errnoWords(e)}`); }
  }
  const files = await listImages(images);
  const { model } = openFlaggedDetector(flags);
  try {
    const results = await detect(model, files, { scoreThresh, precision });
    const out = files.map((file, i) => ({
      file,
      detections: results[i].scores.map((score, k) => ({
        box: results[i].boxes[k], score, label: results[i].labels[k], name: results[i].names[k],
      })),
    }));
    if (flags.out !== undefined) {
      await writeDetectionPages(flags.out, files.map((file, i) => ({ file, detections: results[i] })));
    }
    const print = flags.print ?? console.log;
    if (flags.json) print(JSON.stringify(out));
    else for (const o of out) print(detectionLines(o.file, o.detections));
  } finally {
    model.dispose();
  }
}
