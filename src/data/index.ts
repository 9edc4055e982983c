// The data layer's public API: datasets (IDX, CIFAR binary, image folders), transforms,
// statistics, the PIL-exact resize and the DataLoader. Plain arrays out; no tensors.

export type { ArrayDataset, ImageRecord, FloatImage, Batch } from './dataset.js';
export { subsetDataset, checkArrayDataset, checkLabels, imageAt, isPixelArray } from './dataset.js';
export {
  loadIdx, parseIdx, loadFashionMnist, loadMnist, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, MNIST_CLASSES,
  type IdxArray, type IdxOptions, type MnistOptions,
} from './idx.js';
export { loadCifar10, loadCifar100, CIFAR10_CLASSES, type CifarOptions, type Cifar100Options } from './cifar.js';
export {
  loadImageFolder, splitImageFolder, decodeImage, decodeImageHwc, hwcToChw, decodeImageFolder, Limiter, stackImages, IMAGE_EXTENSIONS,
  DEFAULT_LIMIT_INPUT_PIXELS, type ImageFolderDataset, type ImageFolderOptions, type ImageSample, type DecodeOptions,
  type DecodeFolderOptions,
} from './image_folder.js';
export { resizeBilinear, resizeBilinearWindow } from './resample.js';
export { IMAGE_FORMATS, DEFAULT_IMAGE_FORMATS, parseFormats, extensionsFor, sniffFormat, type ImageFormat } from './image_format.js';
export {
  randomCrop, randomHorizontalFlip, randomResizedCrop, resize, centerCrop, normalize, subtractMeanImage, randomErasing,
  applyTransforms, transformedShape, resizeOutputSize, centerCropOffsets, roundHalfEven, cropImage, flipImage, toFloat,
  randomResizedCropBox, randomErasingBox, type Transform, type Size,
} from './transforms.js';
export { computeStats, type DatasetStats } from './stats.js';
export { Random, mixSeed } from './random.js';
export { DataLoader, type DataLoaderOptions, type LoaderDataset, type LoaderState, type LoaderStats } from './loader.js';
export {
  IMAGENET_MEAN, IMAGENET_STD, imagenetTrainTransforms, imagenetEvalTransforms, cifarTrainTransforms,
  paperCifarTrainTransforms, paperCifarEvalTransforms,
} from './presets.js';
