// Writing extracted features through the one atomic writer (src/io/atomic.ts):
//   FILE.npy   float32 [N, ...shape] (NPY 1.0, C order; numpy.load(allow_pickle=False)),
//              with FILE.npy.files.txt beside it: the N image paths, one per line, row order,
//              then one last line `# resnet-ts: rows of FILE.npy, sha256 HEX, N rows`;
//   FILE.jsonl one {"file", "shape", "data"} object per image, in order.
// The pair: both temp files are written and fsynced first, then the .npy is renamed into
// place, then the list. The list's last line names the sha256 of the .npy it belongs to, so
// a reader that checks it (readFeatures) never takes a mixed pair (a crash between the two
// renames, or two runs racing) for a good one. Images that failed to decode are in neither.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DataError, InvalidArgumentError, ShapeError } from '../errors.js';
import { checkOutputPath, writeFilesAtomic } from '../io/atomic.js';
import { readNpy, serializeNpy } from '../io/npy.js';
import type { FeatureRow } from './features.js';

export const FEATURE_FORMATS = ['.npy', '.jsonl'] as const;

/**
 * The file list written beside a .npy.
 * @example filesListPath('emb.npy')  // 'emb.npy.files.txt'
 */
export function filesListPath(npyPath: string): string {
  return `${npyPath}.files.txt`;
}

const PAIR_RE = /^# resnet-ts: rows of (.*), sha256 ([0-9a-f]{64}), (\d+) rows$/;

function sha256(chunks: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

function formatOf(path: string): 'npy' | 'jsonl' {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl')) return 'jsonl';
  if (lower.endsWith('.npy')) return 'npy';
  throw new InvalidArgumentError(`--out: '${path}' must end in ${FEATURE_FORMATS.join(' or ')}`);
}

/**
 * Checks, before any inference, that the features can be written to `path` (and, for .npy,
 * its file list): the format is known, the directory exists and is writable, neither path is a
 * directory, device, FIFO, socket or dangling symlink. Throws an OutputError otherwise.
 * @example checkFeaturesOut('emb.npy');  // before the inference, so a bad --out costs nothing
 */
export function checkFeaturesOut(path: string): void {
  checkOutputPath(path, 'features: --out');
  if (formatOf(path) === 'npy') checkOutputPath(filesListPath(path), 'features: --out');
}

/**
 * Writes feature rows to `.npy` (+ `.npy.files.txt`) or `.jsonl`, chosen by the extension.
 * Returns the paths written.
 * @example writeFeatures('emb.npy', rows.filter((r): r is FeatureRow => 'data' in r));  // emb.npy [N, 512], emb.npy.files.txt
 */
export function writeFeatures(path: string, rows: readonly FeatureRow[]): string[] {
  const enc = new TextEncoder();
  if (formatOf(path) === 'jsonl') {
    writeFilesAtomic([{ path, chunks: rows.map((r) => enc.encode(`${JSON.stringify({ file: r.file, shape: r.shape, data: Array.from(r.data) })}\n`)) }], 'features: --out');
    return [path];
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
  const npy = serializeNpy(all, [rows.length, ...shape]);
  const list = filesListPath(path);
  const trailer = `# resnet-ts: rows of ${basename(path)}, sha256 ${sha256(npy)}, ${rows.length} rows\n`;
  writeFilesAtomic([{ path, chunks: npy }, { path: list, chunks: [enc.encode(`${rows.map((r) => `${r.file}\n`).join('')}${trailer}`)] }], 'features: --out');
  return [path, list];
}

/**
 * Reads a .npy written by writeFeatures with its file list, and checks that they are a pair:
 * the list's last line must name the sha256 of this .npy and its row count. A list from
 * another write (a crash between the two renames, or a copy of one file only) is a DataError
 * that says "mixed pair".
 * @example const { data, shape, files } = readFeatures('emb.npy');
 */
export function readFeatures(path: string): { data: Float32Array; shape: number[]; files: string[] } {
  const list = filesListPath(path);
  if (!existsSync(list)) throw new DataError(`${path}: its file list ${list} is missing`);
  const bytes = readFileSync(path);
  const lines = readFileSync(list, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const m = PAIR_RE.exec(lines[lines.length - 1] ?? '');
  if (!m) throw new DataError(`${list}: no '# resnet-ts: rows of ..., sha256 ...' last line; cannot tell whether it belongs to ${path} (written by hand, or by an older resnet-ts)`);
  const got = sha256([bytes]);
  if (m[2] !== got) {
    throw new DataError(`${path} and ${list} are a mixed pair: the list was written for a .npy with sha256 ${m[2].slice(0, 12)}…, this one has ${got.slice(0, 12)}… ` +
      '(an interrupted or concurrent write, or one file copied without the other); run features again');
  }
  const files = lines.slice(0, -1);
  const { data, shape } = readNpy(path);
  if (files.length !== Number(m[3]) || shape[0] !== files.length) {
    throw new DataError(`${list}: lists ${files.length} files, its last line says ${m[3]} rows and ${path} has ${shape[0]}`);
  }
  return { data, shape, files };
}
