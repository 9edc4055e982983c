// The detection API: decode images (sharp, as PIL's convert('RGB')), scale to [0, 1]
// (torchvision's to_tensor), run a FasterRCNN and name the labels. Boxes are in each
// image's own pixels, x1, y1, x2, y2. COCO's 91 names are torchvision's _COCO_CATEGORIES
// ("__background__" first, "N/A" for the ids COCO left unused).

import type { FloatImage, ImageRecord } from '../data/dataset.js';
import { decodeImage } from '../data/image_folder.js';
import type { Precision } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { autocast } from '../tensor/precision.js';
import type { FasterRCNN } from './faster_rcnn.js';

/** torchvision's COCO category names, indexed by label. @example COCO_CATEGORIES[1]  // 'person' */
export const COCO_CATEGORIES: readonly string[] = [
  '__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
  'boat', 'traffic light', 'fire hydrant', 'N/A', 'stop sign', 'parking meter', 'bench', 'bird',
  'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'N/A', 'backpack',
  'umbrella', 'N/A', 'N/A', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
  'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
  'tennis racket', 'bottle', 'N/A', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl',
  'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut',
  'cake', 'chair', 'couch', 'potted plant', 'bed', 'N/A', 'dining table', 'N/A', 'N/A', 'toilet',
  'N/A', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
  'toaster', 'sink', 'refrigerator', 'N/A', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
  'hair drier', 'toothbrush',
];

/** @example const o: DetectOptions = { scoreThresh: 0.5 }; */
export interface DetectOptions {
  /** Keep detections scoring at least this (default 0: all the model returns; its own
   *  box score threshold, 0.05 for torchvision's models, applies before NMS). */
  scoreThresh?: number;
  /** Convolution precision (default fp32): 'bf16' runs the convolutions in bf16 (autocast);
   *  boxes and scores stay float32. Resolve a user's choice with resolvePrecision first. */
  precision?: Precision;
}

/** One image's detections.
 * @example const { boxes, scores, labels, names }: ImageDetections = (await detect(createDetector('fasterrcnn_resnet50_fpn'), ['cat.jpg']))[0];
 */
export interface ImageDetections {
  boxes: [number, number, number, number][];
  scores: number[];
  labels: number[];
  names: string[];
}

/** What detect takes per image: a file, its bytes, a decoded uint8 image or a float one in [0, 1]. @example const input: DetectInput = 'cat.jpg'; */
export type DetectInput = string | Uint8Array | ImageRecord | FloatImage;

/**
 * A uint8 [C, H, W] image as floats in [0, 1] (torchvision's to_tensor: x / 255 in float32).
 * @example const x = toFloatImage(await decodeImage('cat.jpg'));
 */
export function toFloatImage(img: ImageRecord): FloatImage {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(img.data[i] / 255);
  return { data, channels: img.channels, height: img.height, width: img.width };
}

async function asFloat(input: DetectInput): Promise<FloatImage> {
  if (typeof input === 'string' || input instanceof Uint8Array) return toFloatImage(await decodeImage(input));
  if (input.data instanceof Float32Array) return input as FloatImage;
  if (input.data instanceof Uint8Array) return toFloatImage(input as ImageRecord);
  throw new InvalidArgumentError('detect: each image must be a file path, encoded bytes, a decoded ImageRecord or a FloatImage');
}

/**
 * Detects objects in each image: boxes in its own pixels, scores, labels and their names.
 * @example
 * const model = createDetector('fasterrcnn_resnet50_fpn');
 * loadDetectionWeights(model, 'fasterrcnn_resnet50_fpn_coco.pth');
 * const [dets] = await detect(model, ['street.jpg'], { scoreThresh: 0.5 });
 * dets.names  // ['person', 'car', ...]
 */
export async function detect(model: FasterRCNN, images: readonly DetectInput[], opts: DetectOptions = {}): Promise<ImageDetections[]> {
  const thresh = opts.scoreThresh ?? 0;
  if (typeof thresh !== 'number' || !(thresh >= 0 && thresh <= 1)) throw new InvalidArgumentError(`detect: scoreThresh must be a number in [0, 1], got ${String(thresh)}`);
  const out: ImageDetections[] = [];
  for (const input of images) {
    const img = await asFloat(input);
    const [d] = autocast(opts.precision ?? 'fp32', () => model.detect([img]));
    const r: ImageDetections = { boxes: [], scores: [], labels: [], names: [] };
    for (let i = 0; i < d.scores.length; i++) {
      if (d.scores[i] < thresh) continue;
      r.boxes.push([d.boxes[4 * i], d.boxes[4 * i + 1], d.boxes[4 * i + 2], d.boxes[4 * i + 3]]);
      r.scores.push(d.scores[i]);
      r.labels.push(d.labels[i]);
      r.names.push(model.categories?.[d.labels[i]] ?? String(d.labels[i]));
    }
    out.push(r);
  }
  return out;
}
