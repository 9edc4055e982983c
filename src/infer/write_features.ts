// Writing extracted features, each file atomically (src/io/atomic.ts):
//   FILE.npy   float32 [N, ...shape] (NPY 1.0, C order; numpy.load(allow_pickle=False)),
//              with FILE.npy.files.txt beside it: the N image paths, one per line, row order;
//   FILE.jsonl one {"file", "shape", "data"} object per image, in order.
// Images that failed to decode are not in either (the caller reports them).

import { InvalidArgumentError, ShapeError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { serializeNpy } from '../io/npy.js';
import type { FeatureRow } from './features.js';

export const FEATURE_FORMATS = ['.npy', '.jsonl'] as const;

/**
 * The file list written beside a .npy.
 * @example filesListPath('emb.npy')  // 'emb.npy.files.txt'
 */
export function filesListPath(npyPath: string): string {
  return `${npyPath}.files.txt`;
}

/**
 * Writes feature rows to `.npy` (+ `.npy.files.txt`) or `.jsonl`, chosen by the extension.
 * Returns the paths written.
 * @example writeFeatures('emb.npy', rows.filter((r): r is FeatureRow => 'data' in r));  // emb.npy [N, 512], emb.npy.files.txt
 */
export function writeFeatures(path: string, rows: readonly FeatureRow[]): string[] {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl')) {
    const enc = new TextEncoder();
    writeFileAtomic(path, rows.map((r) => enc.encode(`${JSON.stringify({ file: r.file, shape: r.shape, data: Array.from(r.data) })}\n`)));
    return [path];
  }
  if (!lower.endsWith('.npy')) {
    throw new InvalidArgumentError(`--out: '${path}' must end in ${FEATURE_FORMATS.join(' or ')}`);
  }
  if (rows.length === 0) throw new InvalidArgumentError(`--out ${path}: no features to write (no image could be read)`);
  const shape = rows[0].shape;
  const size = rows[0].data.length;
  const all = new Float32Array(rows.length * size);
  rows.forEach((r, i) => {
    if (r.shape.length !== shape.length || r.shape.some((d, j) => d !== shape[j])) {
      throw new ShapeError(`--out ${path}: ${r.file} gives features of shape [${r.shape.join(', ')}], ${rows[0].file} [${shape.join(', ')}]; ` +
        'one .npy array needs equal shapes: crop to one size (--crop) or write .jsonl');
    }
    all.set(r.data, i * size);
  });
  writeFileAtomic(path, serializeNpy(all, [rows.length, ...shape]));
  const list = filesListPath(path);
  writeFileAtomic(list, [new TextEncoder().encode(rows.map((r) => `${r.file}\n`).join(''))]);
  return [path, list];
}
