// The usual transform lists, as the paper and torchvision's references use them.

import type { DatasetStats } from './stats.js';
import {
  centerCrop, normalize, randomCrop, randomHorizontalFlip, randomResizedCrop, resize, subtractMeanImage, type Transform,
} from './transforms.js';

/**
 * ImageNet channel means and stds (torchvision's pretrained weights expect these).
 * @example const t = normalize(IMAGENET_MEAN, IMAGENET_STD);
 */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
/** @example const t = normalize(IMAGENET_MEAN, IMAGENET_STD); */
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/**
 * Training on image folders: RandomResizedCrop(size), flip, normalise (torchvision references).
 * @example const loader = new DataLoader(await loadImageFolder('photos'), { batchSize: 32, transforms: imagenetTrainTransforms(224) });
 */
export function imagenetTrainTransforms(size = 224, mean = IMAGENET_MEAN, std = IMAGENET_STD): Transform[] {
  return [randomResizedCrop(size), randomHorizontalFlip(), normalize(mean, std)];
}

/**
 * Evaluation on image folders: Resize(size * 256 / 224), CenterCrop(size), normalise.
 * @example const t = imagenetEvalTransforms(224);  // resize 256, centre crop 224, normalize
 */
export function imagenetEvalTransforms(size = 224, mean = IMAGENET_MEAN, std = IMAGENET_STD): Transform[] {
  return [resize(Math.floor((size * 256) / 224)), centerCrop(size), normalize(mean, std)];
}

/**
 * The CIFAR recipe (He et al. 2015, sec. 4.2): 4-pixel zero padding, random crop, flip,
 * normalisation with the training set's statistics.
 * @example const t = cifarTrainTransforms(32, stats.mean, stats.std);  // pad 4 + crop, flip, normalize
 */
export function cifarTrainTransforms(size: number, mean: number[], std: number[], padding = 4): Transform[] {
  return [randomCrop(size, { padding }), randomHorizontalFlip(), normalize(mean, std)];
}

/**
 * The paper's CIFAR training input, literally (He et al. 2015, sec. 4.2): per-pixel mean
 * subtracted, 4 pixels padded on each side (the padding is then the mean), a random crop of
 * the original size from the padded image or its horizontal flip.
 * @example const t = paperCifarTrainTransforms(computeStats(train));  // mean image subtracted, as He et al. 2015
 */
export function paperCifarTrainTransforms(stats: DatasetStats, padding = 4): Transform[] {
  return [subtractMeanImage(stats), randomCrop([stats.height, stats.width], { padding }), randomHorizontalFlip()];
}

/**
 * The paper's test input: the single view of the original image, per-pixel mean subtracted.
 * @example const t = paperCifarEvalTransforms(computeStats(train));
 */
export function paperCifarEvalTransforms(stats: DatasetStats): Transform[] {
  return [subtractMeanImage(stats)];
}
