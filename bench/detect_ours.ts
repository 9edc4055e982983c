// Our side of bench/detect.ts: a detector with torchvision's weights file on one photo at its
// own size, warm-up then timed runs of model.detect; prints one JSON line.
//   node --import tsx bench/detect_ours.ts --image F --weights W.pth [--arch fasterrcnn_resnet50_fpn] [--runs 5] [--precision fp32|bf16]

import { decodeImage } from '../src/data/image_folder.js';
import { openDetector } from '../src/detect/load.js';
import { toFloatImage } from '../src/detect/predict.js';
import { autocast } from '../src/tensor/precision.js';

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  if (def === undefined) throw new Error(`--${name} is required`);
  return def;
}

const { model } = openDetector(arg('weights'), { arch: arg('arch', 'fasterrcnn_resnet50_fpn'), bnEps: 1e-5 });
const img = toFloatImage(await decodeImage(arg('image')));
const precision = arg('precision', 'fp32') as 'fp32' | 'bf16';
const detect = () => autocast(precision, () => model.detect([img]));
let dets = 0;
for (let i = 0; i < 2; i++) detect();
const runs: number[] = [];
for (let i = 0; i < Number(arg('runs', '5')); i++) {
  const t = performance.now();
  dets = detect()[0].scores.length;
  runs.push(performance.now() - t);
}
model.dispose();
console.log(JSON.stringify({ runs_ms: runs, detections: dets }));
