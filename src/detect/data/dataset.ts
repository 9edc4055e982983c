// A detection dataset over a COCO folder (ours from `resnet detect synth`, a real one, or a
// VOC split through vocToCoco): item i is the image as float32 RGB [3, H, W] in [0, 1] (as
// torchvision's ToTensor; normalising and resizing are the model's transform's job) with its
// boxes [x1, y1, x2, y2] (COCO's [x, y, w, h] converted and clipped to the image, as
// torchvision's references/detection/coco_utils.py ConvertCocoPolysToMask), labels, image id
// and crowd flags. Images are decoded by the project's decoder (data/image_folder.ts: magic
// check, pixel limit) at their own size; batches are lists (images differ in size).

import { DataError, InvalidArgumentError } from '../../errors.js';
import { decodeImage, type DecodeOptions } from '../../data/image_folder.js';
import { flipImage, toFloat } from '../../data/transforms.js';
import { mixSeed, Random } from '../../data/random.js';
import { join } from 'node:path';
import { clipBox, xywhToXyxy, type CocoDataset, type CocoImage } from './coco.js';

/** @example const s: DetectionSample = await new DetectionDataset(await loadCoco('synth/instances.json')).get(0); console.log(s.boxes.length / 4, s.labels); */
export interface DetectionSample {
  /** Planar RGB [3, height, width], float32 in [0, 1]. */
  image: Float32Array;
  height: number;
  width: number;
  /** [x1, y1, x2, y2] per object, continuous pixel coordinates. */
  boxes: Float32Array;
  /** Training labels 1..K (0 is the background), through the dataset's labelMap. */
  labels: Int32Array;
  /** The COCO category ids of the objects. */
  categoryIds: Int32Array;
  /** 1 for crowd regions (COCO iscrowd), else 0. */
  iscrowd: Uint8Array;
  /** The COCO annotation id of each object. */
  annotationIds: Int32Array;
  imageId: number;
  /** The image file. */
  file: string;
  /** Whether this sample was mirrored. */
  flipped: boolean;
}

/** @example const data = new DetectionDataset(await loadCoco('synth/instances.json'), { hflip: 0.5, seed: 0, labels: 'contiguous' } satisfies DetectionDatasetOptions); */
export interface DetectionDatasetOptions extends DecodeOptions {
  /** Probability of a horizontal flip per sample and epoch (default 0: none). torchvision's reference trains with 0.5. */
  hflip?: number;
  /** Seed of the flips (default 0); a flip is drawn from mixSeed(seed, epoch, i). */
  seed?: number;
  /**
   * 'contiguous' (default): category ids, sorted, map to 1..K, as a detector with K + 1
   * outputs trains on; 'category': labels are the category ids themselves (torchvision's
   * COCO models use ids 1..90 with 91 outputs).
   */
  labels?: 'contiguous' | 'category';
  /** Leave out images with no (kept) annotation, as torchvision's reference does for training (default false). */
  skipEmpty?: boolean;
}

/** @example
 * const data = new DetectionDataset(await loadCoco('synth/instances.json'));
 * const { images, targets }: DetectionBatch = collateDetection(await Promise.all([data.get(0), data.get(1)]));
 */
export interface DetectionBatch {
  /** One [3, H, W] image per sample, sizes may differ. */
  images: Float32Array[];
  /** [height, width] of each image. */
  sizes: [number, number][];
  /** torchvision's targets: one { boxes, labels, imageId, iscrowd } per image. */
  targets: { boxes: Float32Array; labels: Int32Array; imageId: number; iscrowd: Uint8Array }[];
  samples: DetectionSample[];
}

/**
 * The samples as a batch: lists, not a stacked array (torchvision's detection collate_fn is
 * `tuple(zip(*batch))`); the model's transform pads them to one size.
 * @example
 * const data = new DetectionDataset(await loadCoco('synth/instances.json'), { hflip: 0.5 });
 * const batch = collateDetection(await Promise.all([0, 1, 2, 3].map((i) => data.get(i, epoch))));
 * console.log(batch.sizes, batch.targets[0].boxes);
 */
export function collateDetection(samples: readonly DetectionSample[]): DetectionBatch {
  return {
    images: samples.map((s) => s.image),
    sizes: samples.map((s) => [s.height, s.width]),
    targets: samples.map((s) => ({ boxes: s.boxes, labels: s.labels, imageId: s.imageId, iscrowd: s.iscrowd })),
    samples: [...samples],
  };
}

/**
 * A sample mirrored left-right: the image, and each box x1' = W - x2, x2' = W - x1
 * (torchvision's references/detection/transforms.py RandomHorizontalFlip).
 * @example const mirrored = hflipSample(await new DetectionDataset(await loadCoco('synth/instances.json')).get(0));
 */
export function hflipSample(s: DetectionSample): DetectionSample {
  const img = flipImage({ data: s.image, channels: 3, height: s.height, width: s.width });
  const boxes = new Float32Array(s.boxes.length);
  for (let k = 0; k < boxes.length; k += 4) {
    boxes[k] = s.width - s.boxes[k + 2];
    boxes[k + 1] = s.boxes[k + 1];
    boxes[k + 2] = s.width - s.boxes[k];
    boxes[k + 3] = s.boxes[k + 3];
  }
  return { ...s, image: img.data, boxes, flipped: !s.flipped };
}

/**
 * Item i of a COCO folder as a detection sample (see the file comment).
 * @example
 * const ds = new DetectionDataset(await loadCoco('synth/instances.json'), { hflip: 0.5 });
 * const { image, boxes, labels } = await ds.get(0);
 */
export class DetectionDataset {
  readonly coco: CocoDataset;
  /** COCO category id -> training label (1..K, or the id itself). */
  readonly labelMap: Map<number, number>;
  /** Class names by training label; index 0 is '__background__' (torchvision's convention), unused labels ''. */
  readonly classes: string[];
  /** The image ids served, in order (all, or those with annotations when skipEmpty). */
  readonly imageIds: number[];
  private readonly opts: DetectionDatasetOptions;
  private readonly byId: Map<number, CocoImage>;

  constructor(coco: CocoDataset, options: DetectionDatasetOptions = {}) {
    const hflip = options.hflip ?? 0;
    if (!(hflip >= 0 && hflip <= 1)) throw new InvalidArgumentError(`DetectionDataset: hflip must be a probability in [0, 1], got ${String(options.hflip)}`);
    const mode = options.labels ?? 'contiguous';
    if (mode !== 'contiguous' && mode !== 'category') throw new InvalidArgumentError(`DetectionDataset: labels must be 'contiguous' or 'category', got '${String(mode)}'`);
    this.coco = coco;
    this.opts = options;
    const ids = coco.categories.map((c) => c.id).sort((a, b) => a - b);
    if (mode === 'category' && ids[0] < 1) throw new InvalidArgumentError(`DetectionDataset: labels 'category' needs category ids >= 1 (0 is the background), got ${ids[0]}`);
    this.labelMap = new Map(ids.map((id, k) => [id, mode === 'contiguous' ? k + 1 : id]));
    const names = new Map(coco.categories.map((c) => [c.id, c.name]));
    this.classes = new Array<string>(Math.max(...this.labelMap.values()) + 1).fill('');
    this.classes[0] = '__background__';
    for (const [id, label] of this.labelMap) this.classes[label] = names.get(id)!;
    this.byId = new Map(coco.images.map((im) => [im.id, im]));
    this.imageIds = coco.images.map((im) => im.id).filter((id) => !options.skipEmpty || (coco.annotationsByImage.get(id)?.length ?? 0) > 0);
  }

  /** Number of images served. */
  get length(): number { return this.imageIds.length; }

  /** The targets of item i without decoding its image (boxes clipped to the image). */
  target(i: number): Omit<DetectionSample, 'image' | 'flipped'> {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new InvalidArgumentError(`DetectionDataset: index ${i} out of range 0..${this.length - 1}`);
    const imageId = this.imageIds[i];
    const im = this.byId.get(imageId)!;
    const anns = this.coco.annotationsByImage.get(imageId) ?? [];
    const boxes = new Float32Array(anns.length * 4);
    anns.forEach((a, k) => boxes.set(clipBox(xywhToXyxy(a.bbox), im.width, im.height), 4 * k));
    return {
      height: im.height, width: im.width, boxes, imageId, file: join(this.coco.imageDir, im.file_name),
      labels: Int32Array.from(anns, (a) => this.labelMap.get(a.category_id)!),
      categoryIds: Int32Array.from(anns, (a) => a.category_id),
      iscrowd: Uint8Array.from(anns, (a) => a.iscrowd),
      annotationIds: Int32Array.from(anns, (a) => a.id),
    };
  }

  /** Item i, decoded, flipped with probability hflip (drawn from seed, epoch and i). */
  async get(i: number, epoch = 0): Promise<DetectionSample> {
    const t = this.target(i);
    const img = await decodeImage(t.file, this.opts);
    if (img.height !== t.height || img.width !== t.width) {
      throw new DataError(`${this.coco.file}: image id ${t.imageId}: the annotation says ${t.width}x${t.height} (width x height) but ${t.file} decodes to ${img.width}x${img.height}`);
    }
    const sample: DetectionSample = { ...t, image: toFloat(img).data, height: img.height, width: img.width, flipped: false };
    const p = this.opts.hflip ?? 0;
    return p > 0 && new Random(mixSeed(this.opts.seed ?? 0, epoch, i)).next() < p ? hflipSample(sample) : sample;
  }
}
