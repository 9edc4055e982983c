// Classification of image files: preprocessed batches through the model in eval mode
// (noGrad inside tidy, so every intermediate tensor is freed per batch), softmax over the
// logits in float64, the top-K classes with their names. Results come in file order; a file
// that fails (does not decode, is too large, its forward throws) gives a failure entry
// instead and the others go on. Printing is the CLI's job.

import { InvalidArgumentError } from '../errors.js';
import type { ResNet } from '../models/resnet.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import { imageBatches, imageErrorLine, type FailedImage } from './batches.js';
import type { PreprocessOptions } from './preprocess.js';
import type { Precision } from '../backend/backend.js';
import { autocast } from '../tensor/precision.js';

export interface TopClass {
  index: number;
  label: string;
  prob: number;
}

export interface Prediction {
  file: string;
  top: TopClass[];
  /** The raw logits, when asked for. */
  logits?: number[];
}

export type PredictResult = Prediction | FailedImage;

export interface PredictOptions {
  /** Classes to report per image (default 5, at most the number of classes). */
  topK?: number;
  /** Images per forward (default 16). */
  batch?: number;
  preprocess?: PreprocessOptions;
  /** Class names, one per logit (default "class i"). */
  labels?: readonly string[];
  /** Keep the raw logits in each result. */
  logits?: boolean;
  /** Called with each result as soon as its batch is done (in file order). */
  onResult?: (r: PredictResult) => void;
  /** Convolution precision (default fp32). */
  precision?: Precision;
}

/** Softmax in float64 (max subtracted), as torch.softmax up to float32 rounding. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** Indices of the k largest values, largest first; ties keep the lower index first. */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k);
}

/**
 * Top-K classes of each image file.
 * @example
 *   const { model, labels } = await loadModel({ arch: 'resnet18', pretrained: true });
 *   const results = await predictFiles(model, ['cat.jpg'], { labels, topK: 3 });
 */
export async function predictFiles(model: ResNet, files: readonly string[], options: PredictOptions = {}): Promise<PredictResult[]> {
  const topK = options.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 1) throw new InvalidArgumentError(`--top must be an integer >= 1, got ${topK}`);
  const k = Math.min(topK, model.numClasses);
  const labels = options.labels ?? [];
  model.eval();
  const out: PredictResult[] = [];
  const emit = (r: PredictResult) => { out.push(r); options.onResult?.(r); };
  for await (const { start, count, groups, failed } of imageBatches(files, options.preprocess ?? {}, options.batch ?? 16)) {
    const results = new Array<PredictResult>(count);
    for (const f of failed) results[f.index - start] = { file: f.file, error: f.error };
    for (const g of groups) {
      let logits: Float32Array;
      try {
        logits = tidy(() => noGrad(() => autocast(options.precision ?? 'fp32',
          () => model.forward(tensor(g.x, g.shape))).toArray() as Float32Array));
      } catch (e) {
        // E.g. with --crop 0 an image too small for the net: its group fails, the rest go on.
        g.files.forEach((file, i) => { results[g.indices[i] - start] = { file, error: imageErrorLine(file, e) }; });
        continue;
      }
      const K = model.numClasses;
      g.files.forEach((file, i) => {
        const row = logits.subarray(i * K, (i + 1) * K);
        const prob = softmax(row);
        const top = topIndices(row, k).map((index) => ({ index, label: labels[index] ?? `class ${index}`, prob: prob[index] }));
        results[g.indices[i] - start] = options.logits ? { file, top, logits: Array.from(row) } : { file, top };
      });
    }
    for (const r of results) emit(r);
  }
  return out;
}
