// The datasets a training run names (`fashion-mnist`, `mnist`, `cifar10`, `cifar100`,
// `folder`), loaded into array datasets, and the transform lists of each `--aug` choice.
// Loading happens before a run directory is made, so a bad path leaves nothing behind.

import { DataError, InvalidArgumentError } from '../errors.js';
import type { ArrayDataset } from '../data/dataset.js';
import { loadCifar10, loadCifar100 } from '../data/cifar.js';
import { loadFashionMnist, loadMnist } from '../data/idx.js';
import { loadImageFolder } from '../data/image_folder.js';
import type { LoaderDataset } from '../data/loader.js';
import { IMAGENET_MEAN, IMAGENET_STD, imagenetEvalTransforms, imagenetTrainTransforms } from '../data/presets.js';
import { computeStats } from '../data/stats.js';
import { centerCrop, normalize, randomCrop, randomErasing, randomHorizontalFlip, randomResizedCrop, resize, toChannels, type Transform } from '../data/transforms.js';

/** @example DATASETS.join(', ')  // 'fashion-mnist, mnist, cifar10, cifar100, folder' */
export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'folder'] as const;
export type DatasetName = (typeof DATASETS)[number];
/** @example AUGMENTATIONS.includes('flip')  // true */
export const AUGMENTATIONS = ['none', 'flip', 'crop', 'standard', 'erasing'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/**
 * Loads the train and test splits. Errors name the file or directory.
 * @example const { train, test } = await loadSplits('fashion-mnist', undefined);
 */
export async function loadSplits(name: string, dir: string | undefined, valDir?: string): Promise<{ train: LoaderDataset; test: LoaderDataset }> {
  if (valDir !== undefined && name !== 'folder') throw new InvalidArgumentError(`train: --val-data is for dataset 'folder' (image folders), not '${name}'`);
  switch (name) {
    case 'fashion-mnist': return { train: await loadFashionMnist({ dir, split: 'train' }), test: await loadFashionMnist({ dir, split: 'test' }) };
    case 'mnist':
      if (!dir) throw new InvalidArgumentError("train: dataset 'mnist' needs --data DIR (the four IDX files)");
      return { train: await loadMnist({ dir, split: 'train' }), test: await loadMnist({ dir, split: 'test' }) };
    case 'cifar10':
    case 'cifar100': {
      if (!dir) throw new InvalidArgumentError(`train: dataset '${name}' needs --data DIR (the extracted binary batches)`);
      const load = name === 'cifar10' ? loadCifar10 : loadCifar100;
      return { train: await load({ dir, split: 'train' }), test: await load({ dir, split: 'test' }) };
    }
    case 'folder': {
      if (!dir) throw new InvalidArgumentError("train: dataset 'folder' needs --data DIR (one subfolder per class)");
      if (valDir !== undefined) {
        const [train, test] = [await loadImageFolder(dir), await loadImageFolder(valDir)];
        if (train.classes.join('\n') !== test.classes.join('\n')) {
          throw new DataError(`${valDir}: the validation folder's classes (${test.classes.join(', ')}) differ from ${dir}'s (${train.classes.join(', ')})`);
        }
        return { train, test };
      }
      return {
        train: await loadImageFolder(dir, { split: 'train', valFraction: 0.1, seed: 0 }),
        test: await loadImageFolder(dir, { split: 'val', valFraction: 0.1, seed: 0 }),
      };
    }
    default: throw new InvalidArgumentError(`train: unknown dataset '${name}'; valid: ${DATASETS.join(', ')}`);
  }
}

/**
 * Training transforms of an `--aug` choice (the crop pads by 4, as the paper's CIFAR recipe).
 * @example const t = trainTransforms('standard', 32, 32, stats.mean, stats.std);  // crop, flip, normalize
 */
export function trainTransforms(aug: string, height: number, width: number, mean: number[], std: number[]): Transform[] {
  const norm = normalize(mean, std);
  const crop = randomCrop([height, width], { padding: 4 });
  switch (aug) {
    case 'none': return [norm];
    case 'flip': return [randomHorizontalFlip(), norm];
    case 'crop': return [crop, norm];
    case 'standard': return [crop, randomHorizontalFlip(), norm];
    case 'erasing': return [crop, randomHorizontalFlip(), norm, randomErasing()];
    default: throw new InvalidArgumentError(`train: unknown --aug '${aug}'; valid: ${AUGMENTATIONS.join(', ')}`);
  }
}

/** @example const t = evalTransforms(stats.mean, stats.std); */
export function evalTransforms(mean: number[], std: number[]): Transform[] {
  return [normalize(mean, std)];
}

export function isArrayDataset(ds: LoaderDataset): ds is ArrayDataset {
  const images: unknown = (ds as ArrayDataset).images;
  return images instanceof Uint8Array || images instanceof Float32Array;
}

/** Input geometry, classes and normalisation of a training set (image folders: ImageNet's
 *  statistics at `size`, default 224). */
export function describeInput(ds: LoaderDataset, size = 224): { channels: number; height: number; width: number; classes: string[]; mean: number[]; std: number[] } {
  if (isArrayDataset(ds)) {
    const s = computeStats(ds);
    return { channels: ds.channels, height: ds.height, width: ds.width, classes: [...ds.classes], mean: s.mean, std: s.std };
  }
  return { channels: 3, height: size, width: size, classes: [...ds.classes], mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

/** How an image folder is brought to the net's input: 'imagenet' (torchvision's recipe:
 *  RandomResizedCrop + flip; resize H*256/224 + centre crop) or 'whole' (the whole image
 *  resized to fit and centre-cropped to HxW, then the `--aug` transforms: how weights trained
 *  on whole small images, MNIST or CIFAR, saw them).
 * @example const p: FolderPreset = 'whole'; */
export type FolderPreset = 'imagenet' | 'whole';

/** Transforms of a dataset kind: array datasets use trainTransforms; folders their preset.
 *  When `input.channels` differs from the data's (fine-tuning grey data on RGB weights, or
 *  the reverse), the images are converted first. */
export function transformsFor(ds: LoaderDataset, train: boolean, aug: string, input: { channels?: number; height: number; width: number; mean: number[]; std: number[] },
  preset: FolderPreset = 'imagenet'): Transform[] {
  const convert = input.channels !== undefined && input.channels !== ds.channels ? [toChannels(input.channels)] : [];
  if (!isArrayDataset(ds) && preset === 'whole') {
    const fit = [resize(Math.max(input.height, input.width)), centerCrop([input.height, input.width])];
    return [...convert, ...fit, ...(train ? trainTransforms(aug, input.height, input.width, input.mean, input.std) : evalTransforms(input.mean, input.std))];
  }
  if (!isArrayDataset(ds)) {
    const { height: H, width: W } = input;
    if (H === W) return [...convert, ...(train ? imagenetTrainTransforms(H, input.mean, input.std) : imagenetEvalTransforms(H, input.mean, input.std))];
    return [...convert, ...(train
      ? [randomResizedCrop([H, W]), randomHorizontalFlip(), normalize(input.mean, input.std)]
      : [resize(Math.floor((H * 256) / 224)), centerCrop([H, W]), normalize(input.mean, input.std)])];
  }
  return [...convert, ...(train ? trainTransforms(aug, input.height, input.width, input.mean, input.std) : evalTransforms(input.mean, input.std))];
}
