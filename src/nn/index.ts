// The nn layer: Module and the layers a ResNet is made of (torch.nn names and semantics).

export { Module, Counter, ShapeTrace } from './module.js';
export {
  describeReport, type StateDict, type StateTensor, type StateValue, type StateDictInput, type LoadStateDictOptions, type LoadReport,
} from './state_dict.js';
export { Parameter, type ParameterOptions } from './parameter.js';
export { Conv2d, type Conv2dOptions as Conv2dLayerOptions } from './conv.js';
export { BatchNorm2d, type BatchNorm2dOptions } from './batch_norm.js';
export { Linear, type LinearOptions } from './linear.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, type AvgPool2dLayerOptions } from './pooling.js';
export { ReLU, Identity } from './activation.js';
export { Sequential } from './sequential.js';
export {
  kaimingNormal, defaultWeightInit, constant, fanIn, fanOut, uniformValues, normalValues, defaultRng, type Initializer,
} from './init.js';
