// The messages between the server and its engine thread (engine.ts <-> engine_worker.ts).

import type { LoadModelOptions } from '../infer/load.js';
import type { PreprocessOptions } from '../infer/preprocess.js';

/** A model to serve under a name. */
export interface ModelSpec {
  name: string;
  options: LoadModelOptions;
}

export interface EngineInit {
  models: ModelSpec[];
  /** auto | fp32 | bf16, resolved in the engine thread (where the backend lives). */
  precision: string;
}

/** What the server knows of a loaded model; [channels, height, width] is one input row. */
export interface ModelInfo {
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

/** 'logits': the classifier's output; 'features': the pooled embedding and the logits. */
export type RunKind = 'logits' | 'features';

export type WorkerRequest =
  | { type: 'run'; id: number; model: string; kind: RunKind; x: Float32Array; n: number; shape: number[] }
  | { type: 'close'; id?: number };

export interface WorkerErrorInfo { message: string; name: string; code?: string }

export type WorkerReply =
  | { type: 'ready'; models: ModelInfo[] }
  | { type: 'init-error'; error: WorkerErrorInfo }
  | { type: 'result'; id: number; logits: Float32Array; embedding: Float32Array | null; ms: number }
  | { type: 'error'; id: number; error: WorkerErrorInfo };
