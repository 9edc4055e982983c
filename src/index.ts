// resnet-ts public API, one import for a library user: tensors and ops (with softmax and
// argmax), nn modules and the model registry, optimisers, data (datasets, transforms, the
// DataLoader), training (Trainer, evaluate, checkpoints), inference (loadModel, predict,
// features, the BN-folded net), weights in and out, ONNX export, studies. Entry points take
// one options object; the same names (numClasses, inChannels, labels, mean, std, ...) mean
// the same thing everywhere. Exports carry a TSDoc @example that test/api_examples.test.ts
// compiles (and fails on an export without one).

export { Tensor, tensor, full, zeros, ones, liveTensors, type TensorOptions } from './tensor/tensor.js';
export { tidy, keep } from './tensor/scope.js';
export { noGrad, isGradEnabled, backward } from './tensor/autograd.js';
export { autocast, autocastPrecision } from './tensor/precision.js';
export { resolvePrecision, bf16Supported, PRECISION_CHOICES, type PrecisionChoice, type PrecisionInfo } from './backend/precision.js';
export { Rng, randn, rand } from './tensor/random.js';
export * from './tensor/ops/index.js';
export { conv2dGeometry, pool2dGeometry, type Conv2dOptions, type Pool2dOptions, type Pair } from './tensor/geometry.js';
export { getBackend, setBackend, backendByName, nativeAvailable, BACKEND_NAMES, type BackendName } from './backend/index.js';
export type { Backend, BackendInfo, DType, Shape, Storage, Conv2dGeometry, Pool2dGeometry, SgdParams, AdamwParams, Precision } from './backend/backend.js';
export * from './errors.js';
export { VERSION } from './version.js';
export * from './nn/index.js';
export * from './models/index.js';
export * from './optim/index.js';
export * from './data/index.js';
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors, type NamedArray } from './io/safetensors.js';
export { exportOnnx, decodeOnnx, ONNX_IR_VERSION, ONNX_OPSETS, type ExportOnnxOptions } from './io/onnx.js';
export { writeNpy, readNpy, serializeNpy, npyHeader } from './io/npy.js';
export * from './infer/index.js';
export {
  loadWeights, saveWeights, parseKeyMap, infoToMetadata, metadataToInfo, KEY_MAPPINGS,
  type LoadWeightsOptions, type LoadedWeights, type KeyMapping, type WeightsInfo, type WeightsInput, type SaveWeightsOptions,
} from './io/weights.js';
export * from './train/index.js';
export * from './detect/index.js';
export { readPth, parsePth, writePth, serializePth, type PthContents } from './io/pth.js';
export {
  unpickle, TensorRef, StorageRef, PickleGlobal, isTuple, isOrderedDict, ALLOWED_GLOBALS, DEFAULT_LIMITS as PICKLE_LIMITS,
  type PickleValue, type PickleKey, type PickleLimits, type UnpickleOptions, type TorchDType,
} from './io/pickle.js';
export {
  runStudy, writeReport, readStudy, getStudy, STUDY_NAMES, pathLengthDistribution, seedRuns, combineSeeds, seedStat,
  type StudyOptions, type StudyDocument, type Study, type StudyRun, type SeedRun, type Stat, type Verdict,
} from './studies/index.js';
