// The messages between the server and its engine thread (engine.ts <-> engine_worker.ts).
// A served model is a classifier (loadModel: logits and embeddings of fixed-size rows) or a
// detector (openDetector: boxes of one whole image at a time); `kind` tells them apart.

import type { LoadModelOptions } from '../infer/load.js';
import type { PreprocessOptions } from '../infer/preprocess.js';

/** A classifier to serve under a name. */
export interface ClassifierSpec {
  name: string;
  kind?: 'classifier';
  options: LoadModelOptions;
}

/** How to open a detector (src/detect/load.ts's openDetector, then the served resize). */
export interface DetectorLoadOptions {
  /** A torchvision Faster R-CNN checkpoint (needs `arch`) or a `resnet detect train` run. */
  weights: string;
  /** A detection arch (DETECTION_ARCHS); a run names its own. */
  arch?: string;
  /** Backbone BatchNorm eps (default: as openDetector decides). */
  bnEps?: number;
  /** The resize's short side and long-side cap (torchvision's min_size / max_size); default the model's own (800 / 1333). */
  minSize?: number;
  maxSize?: number;
}

/** A detector to serve under a name. */
export interface DetectorSpec {
  name: string;
  kind: 'detector';
  detector: DetectorLoadOptions;
}

/** A model to serve under a name: a classifier (`options`) or a detector (`kind: 'detector'`). */
export type ModelSpec = ClassifierSpec | DetectorSpec;

export interface EngineInit {
  models: ModelSpec[];
  /** auto | fp32 | bf16, resolved in the engine thread (where the backend lives). */
  precision: string;
  /** oneDNN's OpenMP threads in this engine thread (default: RESNET_NUM_THREADS, else every core). */
  threads?: number;
}

/** What the server knows of a loaded classifier; [channels, height, width] is one input row. */
export interface ModelInfo {
  kind: 'classifier';
  name: string;
  arch: string;
  source: string;
  labels: string[];
  numClasses: number;
  numFeatures: number;
  channels: 1 | 3;
  height: number;
  width: number;
  preprocess: PreprocessOptions;
  precision: string;
  fused: boolean;
  notes: string[];
  preprocessNote: string;
}

/** What the server knows of a loaded detector. */
export interface DetectorInfo {
  kind: 'detector';
  name: string;
  arch: string;
  /** The weights' path and their kind ('torchvision' file or training 'run'). */
  source: string;
  /** Class names by label, background first ('N/A' where the model has none). */
  labels: string[];
  numClasses: number;
  minSize: number;
  maxSize: number;
  /** What its convolutions run in (the server's --precision, resolved): 'fp32' or 'bf16'. */
  precision: string;
  notes: string[];
}

/** Any served model. */
export type ServedModel = ModelInfo | DetectorInfo;

/** 'logits': the classifier's output; 'features': the pooled embedding and the logits. */
export type RunKind = 'logits' | 'features';

/** A decoded image as detect() takes it: uint8 planar RGB [3, H, W]. */
export interface DetectImage { data: Uint8Array; channels: number; height: number; width: number }

export type WorkerRequest =
  /** A batch of n rows of `shape`, in input slot `slot` (a SharedArrayBuffer the engine
   *  thread keeps; `buffer` comes with the first request that uses the slot or replaces it). */
  | { type: 'run'; id: number; model: string; kind: RunKind; slot: number; buffer?: SharedArrayBuffer; n: number; shape: number[] }
  | { type: 'detect'; id: number; model: string; images: DetectImage[] }
  | { type: 'close'; id?: number };

export interface WorkerErrorInfo { message: string; name: string; code?: string }

/** One image's detections: boxes [K, 4] x1, y1, x2, y2 in its own pixels. */
export interface RawImageDetections { boxes: Float32Array; scores: Float32Array; labels: Int32Array }

export type WorkerReply =
  | { type: 'ready'; models: ServedModel[]; threads: number; threadIds: number[] }
  | { type: 'init-error'; error: WorkerErrorInfo }
  | { type: 'result'; id: number; logits: Float32Array; embedding: Float32Array | null; ms: number }
  | { type: 'detections'; id: number; detections: RawImageDetections[]; ms: number }
  | { type: 'error'; id: number; error: WorkerErrorInfo };
