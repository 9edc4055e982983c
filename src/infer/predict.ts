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
import { softmax } from '../tensor/ops/softmax.js';
import { imageBatches, imageErrorLine, type FailedImage } from './batches.js';
import type { LoadedModel } from './load.js';
import type { PreprocessOptions } from './preprocess.js';
import type { Precision } from '../backend/backend.js';
import { autocast } from '../tensor/precision.js';

/**
 * One of an image's most likely classes.
 * @example const best: TopClass = { index: 3, label: 'Dress', prob: 0.91 };
 */
export interface TopClass {
  index: number;
  label: string;
  prob: number;
}

/**
 * The top classes of one image file.
 * @example for (const r of results) if ('top' in r) console.log(r.file, r.top[0].label);
 */
export interface Prediction {
  file: string;
  top: TopClass[];
  /** The raw logits, when asked for. */
  logits?: number[];
}

/**
 * A prediction, or the file's error (an undecodable image does not stop the others).
 * @example const failed = results.filter((r): r is FailedImage => 'error' in r);
 */
export type PredictResult = Prediction | FailedImage;

/**
 * Options of predictFiles.
 * @example const options: PredictOptions = { topK: 3, batch: 8, preprocess: { resize: 32, crop: 32 } };
 */
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

/**
 * Indices of the k largest values, largest first; ties keep the lower index first.
 * @example topIndices([0.1, 0.7, 0.2], 2)  // [1, 2]
 */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k);
}

/** A model, or what loadModel returned (its preprocessing and labels become the defaults). */
function unpack<O extends { preprocess?: PreprocessOptions; labels?: readonly string[] }>(m: ResNet | LoadedModel, options: O): [ResNet, O] {
  if (!('model' in m)) return [m, options];
  return [m.model, { ...options, preprocess: options.preprocess ?? m.preprocess, labels: options.labels ?? m.labels }];
}

/**
 * Top-K classes of each image file. Given what loadModel returned, its preprocessing and
 * labels are used unless `options` gives others.
 * @example
 * const loaded = await loadModel({ weights: 'resnet20.safetensors' });
 * const results = await predictFiles(loaded, ['cat.png'], { topK: 3 });
 * for (const r of results) if ('top' in r) console.log(r.file, r.top[0].label, r.top[0].prob);
 */
export async function predictFiles(source: ResNet | LoadedModel, files: readonly string[], opts: PredictOptions = {}): Promise<PredictResult[]> {
  const [model, options] = unpack(source, opts);
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
