// Inference: preprocessing as torchvision, models from weights files, checkpoints or
// pretrained torchvision weights, top-K prediction and feature extraction.

export { preprocessImage, preprocessDecoded, preprocessTransforms, rgbToGrey, listImages, type PreprocessOptions } from './preprocess.js';
export { imageBatches, type ImageBatch, type ImageGroup, type FailedImage } from './batches.js';
export { loadModel, readWeights, type LoadModelOptions, type LoadedModel } from './load.js';
export {
  registerPretrained, unregisterPretrained, pretrainedEntry, pretrainedArchs, fetchPretrained, hashPrefix, defaultCacheDir,
  defaultWeightsUrl, DEFAULT_WEIGHTS_URL, type PretrainedEntry, type FetchOptions,
} from './pretrained.js';
export { predictFiles, topIndices, type Prediction, type PredictResult, type PredictOptions, type TopClass } from './predict.js';
export { extractFeatures, featureLayers, type FeatureRow, type FeatureResult, type FeatureOptions } from './features.js';
export { writeFeatures, readFeatures, checkFeaturesOut, filesListPath } from './write_features.js';
export { IMAGENET_CLASSES } from './imagenet_classes.js';
