// `resnet serve` as a library: the server, its batcher and the protocol's reader and writer.

export { startServer, type ServeOptions, type RunningServer } from './server.js';
export { Batcher, type BatcherOptions, type BatchResults, type Done } from './batcher.js';
export { HELPER_PRIORITIES, type HelperPriority } from './priority.js';
export { parseInferRequest, encodeInferResponse, V2_DATATYPES, type InferRequest, type InferInput, type OutputTensor } from './protocol.js';
export { HttpError } from './http_error.js';
export type { ModelSpec, ModelInfo, ClassifierSpec, DetectorSpec, DetectorLoadOptions, DetectorInfo, ServedModel } from './engine_messages.js';
export { openServedDetector } from './detector.js';
