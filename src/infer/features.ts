// Feature extraction from image files: preprocessed batches through model.features() in
// eval mode (noGrad inside tidy), keeping one layer per image: the pooled embedding
// ('pool', [C]), the stem's map ('stem') or a stage's output ('stage1'.. as [C, H, W]).
// Results stay in memory in file order; writing them (.npy, .jsonl) is features_io.ts's job.

import { InvalidArgumentError } from '../errors.js';
import type { ResNet } from '../models/resnet.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import { imageBatches, imageErrorLine, type FailedImage } from './batches.js';
import type { PreprocessOptions } from './preprocess.js';
import type { LoadedModel } from './load.js';
import type { Precision } from '../backend/backend.js';
import { autocast } from '../tensor/precision.js';

/**
 * The features of one image file.
 * @example for (const r of rows) if ('data' in r) console.log(r.file, r.shape, r.data.length);
 */
export interface FeatureRow {
  file: string;
  /** Per image: [C] for 'pool', [C, H, W] for a map. */
  shape: number[];
  data: Float32Array;
}

/**
 * A feature row, or the file's error.
 * @example const ok = rows.filter((r): r is FeatureRow => 'data' in r);
 */
export type FeatureResult = FeatureRow | FailedImage;

/**
 * Options of extractFeatures.
 * @example const options: FeatureOptions = { layer: 'stage2', batch: 8 };
 */
export interface FeatureOptions {
  /** 'pool' (default), 'stem', or 'stage1' .. 'stageN' (N = the model's stages). */
  layer?: string;
  /** Images per forward (default 16). */
  batch?: number;
  preprocess?: PreprocessOptions;
  onResult?: (r: FeatureResult) => void;
  /** Convolution precision (default fp32). */
  precision?: Precision;
}

/**
 * The layer names a model offers.
 * @example featureLayers(createModel('resnet20'))  // ['pool', 'stem', 'stage1', 'stage2', 'stage3']
 */
export function featureLayers(model: ResNet): string[] {
  return ['pool', 'stem', ...model.stages.map((_, i) => `stage${i + 1}`)];
}

/**
 * One layer's features for each image file. Given what loadModel returned, its
 * preprocessing is used unless `options.preprocess` gives another.
 * @example
 * const loaded = await loadModel({ weights: 'resnet20.safetensors' });
 * const rows = await extractFeatures(loaded, ['cat.png'], { layer: 'pool' });  // rows[i].data: Float32Array(64) for resnet20
 */
export async function extractFeatures(source: ResNet | LoadedModel, files: readonly string[], opts: FeatureOptions = {}): Promise<FeatureResult[]> {
  const model = 'model' in source ? source.model : source;
  const options = 'model' in source ? { ...opts, preprocess: opts.preprocess ?? source.preprocess } : opts;
  const layer = options.layer ?? 'pool';
  const valid = featureLayers(model);
  if (!valid.includes(layer)) throw new InvalidArgumentError(`--layer: ${model.name} has no layer '${layer}'; valid: ${valid.join(', ')}`);
  // maps[0] is the stem, maps[k] stage k.
  const mapIndex = layer === 'stem' ? 0 : layer === 'pool' ? -1 : Number(layer.slice('stage'.length));
  model.eval();
  const out: FeatureResult[] = [];
  for await (const { start, count, groups, failed } of imageBatches(files, options.preprocess ?? {}, options.batch ?? 16)) {
    const results = new Array<FeatureResult>(count);
    for (const f of failed) results[f.index - start] = { file: f.file, error: f.error };
    for (const g of groups) {
      let data: Float32Array;
      let shape: number[];
      try {
        ({ data, shape } = tidy(() => noGrad(() => {
          const f = autocast(options.precision ?? 'fp32', () => model.features(tensor(g.x, g.shape)));
          const t = mapIndex < 0 ? f.embedding : f.maps[mapIndex].tensor;
          return { data: t.toArray() as Float32Array, shape: [...t.shape] };
        })));
      } catch (e) {
        // A group whose forward throws fails alone; the other images go on.
        g.files.forEach((file, i) => { results[g.indices[i] - start] = { file, error: imageErrorLine(file, e) }; });
        continue;
      }
      const per = shape.slice(1);
      const size = per.reduce((a, b) => a * b, 1);
      g.files.forEach((file, i) => {
        results[g.indices[i] - start] = { file, shape: per, data: data.slice(i * size, (i + 1) * size) };
      });
    }
    for (const r of results) {
      out.push(r);
      options.onResult?.(r);
    }
  }
  return out;
}
