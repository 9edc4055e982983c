// Preprocessed images in batches for inference: each batch of up to B files is decoded and
// preprocessed (a few at once: sharp decodes in libuv's threads) while the previous batch
// runs through the model, then split into runs of equal size (with --crop 0 sizes may
// differ) stacked as [n, C, H, W]. Any failure on one file (it does not decode, is too
// large, or anything unexpected) is reported, not fatal: a folder with one broken image
// still gives results for the rest.

import { InvalidArgumentError, ResnetError } from '../errors.js';
import type { FloatImage } from '../data/dataset.js';
import { Limiter, oneLine } from '../data/image_folder.js';
import { preprocessImage, preprocessTransforms, type PreprocessOptions } from './preprocess.js';

/** @example for await (const { groups } of imageBatches(files, {}, 16)) for (const g of groups) console.log(g.files, g.shape); */
export interface ImageGroup {
  files: string[];
  /** Position of each file in the list given to imageBatches. */
  indices: number[];
  /** [n, C, H, W] float32, image i at i*C*H*W. */
  x: Float32Array;
  shape: [number, number, number, number];
}

/** @example for (const r of results) if ('error' in r) console.warn(`${r.file}: ${r.error}`); */
export interface FailedImage {
  file: string;
  error: string;
}

/** @example for await (const batch of imageBatches(files, { resize: 32, crop: 32 }, 8)) console.log(batch.start, batch.count, batch.failed.length); */
export interface ImageBatch {
  /** Index of the batch's first file in the list; the batch covers `count` files from there. */
  start: number;
  count: number;
  groups: ImageGroup[];
  failed: (FailedImage & { index: number })[];
}

/**
 * One line saying why `file` failed: the error's message, prefixed with the file unless it
 * already names it; an error that is not a ResnetError (a bug, or memory) says its class.
 */
export function imageErrorLine(file: string, e: unknown): string {
  const err = e instanceof Error ? e : new Error(String(e));
  let msg = oneLine(err.message);
  if (!(err instanceof ResnetError)) msg = `unexpected ${err.name}: ${msg}`;
  const name = oneLine(file);
  return msg.startsWith(name) ? msg : `${name}: ${msg}`;
}

/** Consecutive images of equal size stacked together. */
function stack(items: { file: string; index: number; image: FloatImage }[]): ImageGroup[] {
  const groups: ImageGroup[] = [];
  let i = 0;
  while (i < items.length) {
    const { channels: C, height: H, width: W } = items[i].image;
    let j = i;
    while (j < items.length && items[j].image.channels === C && items[j].image.height === H && items[j].image.width === W) j++;
    const size = C * H * W;
    const x = new Float32Array((j - i) * size);
    for (let k = i; k < j; k++) x.set(items[k].image.data, (k - i) * size);
    const run = items.slice(i, j);
    groups.push({ files: run.map((it) => it.file), indices: run.map((it) => it.index), x, shape: [j - i, C, H, W] });
    i = j;
  }
  return groups;
}

/**
 * Yields the files in batches of `batch`, preprocessed; the next batch is prepared while the
 * caller works on the current one.
 * @example for await (const { groups, failed } of imageBatches(files, { resize: 256, crop: 224 }, 16)) console.log(groups.length, failed.length);
 */
export async function* imageBatches(files: readonly string[], options: PreprocessOptions, batch: number, concurrency = 4): AsyncGenerator<ImageBatch> {
  if (!Number.isInteger(batch) || batch < 1) throw new InvalidArgumentError(`--batch must be an integer >= 1, got ${batch}`);
  preprocessTransforms(options); // validates before any decoding
  const limiter = new Limiter(concurrency);
  const prepare = async (start: number): Promise<ImageBatch> => {
    const chunk = files.slice(start, start + batch);
    const done = await Promise.all(chunk.map((file, i) => limiter.run(async () => {
      const index = start + i;
      try {
        return { file, index, image: await preprocessImage(file, options) };
      } catch (e) {
        // Whatever fails on one image (not only a DataError) is that image's error line.
        return { file, index, error: imageErrorLine(file, e) };
      }
    })));
    const ok = done.filter((d): d is { file: string; index: number; image: FloatImage } => 'image' in d);
    const failed = done.filter((d): d is FailedImage & { index: number } => 'error' in d);
    let groups: ImageGroup[];
    try {
      groups = stack(ok);
    } catch (e) {
      // Stacking (a large allocation with --crop 0) failed: these images fail, the next batch goes on.
      groups = [];
      failed.push(...ok.map(({ file, index }) => ({ file, index, error: imageErrorLine(file, e) })));
      failed.sort((a, b) => a.index - b.index);
    }
    return { start, count: chunk.length, groups, failed };
  };
  let next: Promise<ImageBatch> | null = files.length > 0 ? prepare(0) : null;
  for (let start = 0; next !== null; start += batch) {
    const cur: Promise<ImageBatch> = next;
    next = start + batch < files.length ? prepare(start + batch) : null;
    // An abandoned prefetch must not become an unhandled rejection.
    next?.catch(() => {});
    yield await cur;
  }
}
