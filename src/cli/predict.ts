// `resnet predict` and `resnet features`: parse flags, load the model (a download bar on a
// TTY's stderr for --pretrained), print results or say what was written. The work is in
// src/infer/. Images that fail (do not decode, are too large, are of a format not enabled by
// --formats, or anything else) get one line each on stderr and make the exit status 1; the
// others are still predicted.

import { InvalidArgumentError } from '../errors.js';
import type { Size } from '../data/transforms.js';
import {
  checkFeaturesOut, extractFeatures, listImages, loadModel, predictFiles, writeFeatures, type FeatureRow, type LoadedModel, type PreprocessOptions,
} from '../infer/index.js';
import { extensionsFor, parseFormats, type ImageFormat } from '../data/image_format.js';
import { parseKeyMap } from '../io/weights.js';
import { describeReport } from '../nn/state_dict.js';
import { intFlag } from './flags.js';
import { precisionOf } from './precision.js';

export interface ModelFlags {
  arch?: string; weights?: string; pretrained?: boolean; pretrainedTag?: string; classes?: string; keyMap?: string[]; width?: string;
  resize?: string; crop?: string; batch?: string; formats?: string;
}
export interface PredictFlags extends ModelFlags { top?: string; json?: boolean; logits?: boolean; precision?: string }
export interface FeaturesFlags extends ModelFlags { layer?: string; out?: string; json?: boolean; precision?: string }

/** commander's collector for a repeatable option. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function width(v: string | undefined): { width: number } | undefined {
  if (v === undefined) return undefined;
  const w = Number(v);
  if (v.trim() === '' || !(w > 0) || !Number.isFinite(w)) throw new InvalidArgumentError(`--width must be a positive number (a multiplier of every stage's planes), got '${v}'`);
  return { width: w };
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** A download bar redrawn on a TTY's stderr (at most every 100 ms); nothing otherwise. */
function downloadBar(): (received: number, total: number | null) => void {
  if (process.stderr.isTTY !== true) return () => {};
  let last = 0;
  return (received, total) => {
    const now = Date.now();
    const done = total !== null && received >= total;
    if (now - last < 100 && !done) return;
    last = now;
    const width = 30;
    const bar = total ? `[${'#'.repeat(Math.round((received / total) * width)).padEnd(width, '.')}] ${mb(received)}/${mb(total)} MB` : `${mb(received)} MB`;
    process.stderr.write(`\r\x1b[Kdownloading ${bar}${done ? '\n' : ''}`);
  };
}

async function load(flags: ModelFlags): Promise<LoadedModel> {
  if (flags.pretrainedTag !== undefined && !flags.pretrained) throw new InvalidArgumentError('--pretrained-tag needs --pretrained');
  const loaded = await loadModel({
    arch: flags.arch, weights: flags.weights,
    pretrained: flags.pretrained ? (flags.pretrainedTag ?? true) : undefined,
    classes: intFlag(flags.classes, 'classes', 1), keyMap: parseKeyMap(flags.keyMap), modelOptions: width(flags.width),
    fetch: { onProgress: downloadBar(), onMessage: (t) => process.stderr.write(`resnet: ${t}\n`) },
  });
  const r = loaded.report;
  process.stderr.write(`resnet: loaded ${r.loaded.length} tensors from ${loaded.source} into ${loaded.arch} ` +
    `(${loaded.model.numClasses} classes; ${describeReport(r)})${loaded.notes.length ? `; ${loaded.notes.join('; ')}` : ''}\n`);
  return loaded;
}

function preprocessFor(loaded: LoadedModel, flags: ModelFlags): PreprocessOptions {
  const resize: Size = intFlag(flags.resize, 'resize', 0) ?? loaded.resize;
  const crop: Size = intFlag(flags.crop, 'crop', 0) ?? loaded.crop;
  if (flags.resize === undefined || flags.crop === undefined) process.stderr.write(`resnet: preprocessing: ${loaded.preprocessNote}${flags.resize !== undefined || flags.crop !== undefined ? ', overridden by --resize/--crop' : ''}\n`);
  return { resize, crop, mean: loaded.mean, std: loaded.std, channels: loaded.channels, formats: formatsOf(flags) };
}

/** --formats as a list (undefined: the default jpeg, png, webp). */
function formatsOf(flags: ModelFlags): ImageFormat[] | undefined {
  return flags.formats === undefined ? undefined : parseFormats(flags.formats, '--formats');
}

/** The image files of the arguments; folders are walked for the extensions of --formats. */
function imagesOf(inputs: string[], flags: ModelFlags): Promise<string[]> {
  const formats = formatsOf(flags);
  return listImages(inputs, formats === undefined ? undefined : extensionsFor(formats));
}

function reportFailures(failed: { file: string; error: string }[], total: number): void {
  for (const f of failed) process.stderr.write(`resnet: ${f.error}\n`);
  if (failed.length) {
    process.stderr.write(`resnet: ${failed.length} of ${total} image(s) could not be read; the others were processed\n`);
    process.exitCode = 1;
  }
}

export async function predictCommand(inputs: string[], flags: PredictFlags): Promise<void> {
  const topK = intFlag(flags.top, 'top', 1) ?? 5;
  const batch = intFlag(flags.batch, 'batch', 1) ?? 16;
  const files = await imagesOf(inputs, flags);
  const loaded = await load(flags);
  const failed: { file: string; error: string }[] = [];
  const results = await predictFiles(loaded.model, files, {
    topK, batch, labels: loaded.labels, logits: flags.logits === true, preprocess: preprocessFor(loaded, flags),
    precision: precisionOf(flags.precision),
    onResult: (r) => {
      if ('error' in r) { failed.push(r); return; }
      if (flags.json) return;
      const lines = r.top.map((t) => `  ${t.prob.toFixed(4)}  ${t.label} (${t.index})`);
      if (r.logits) lines.push(`  logits: ${r.logits.map((v) => v.toPrecision(6)).join(' ')}`);
      process.stdout.write(`${r.file}\n${lines.join('\n')}\n`);
    },
  });
  loaded.model.dispose();
  if (flags.json) process.stdout.write(`${JSON.stringify(results)}\n`);
  reportFailures(failed, files.length);
}

export async function featuresCommand(inputs: string[], flags: FeaturesFlags): Promise<void> {
  if (!flags.out) throw new InvalidArgumentError('features: --out FILE.npy or FILE.jsonl is required');
  if (!/\.(npy|jsonl)$/i.test(flags.out)) throw new InvalidArgumentError(`features: --out '${flags.out}' must end in .npy or .jsonl`);
  checkFeaturesOut(flags.out); // a bad --out is said before the model loads and the images run
  const batch = intFlag(flags.batch, 'batch', 1) ?? 16;
  const files = await imagesOf(inputs, flags);
  const loaded = await load(flags);
  const rows: FeatureRow[] = [];
  const failed: { file: string; error: string }[] = [];
  await extractFeatures(loaded.model, files, {
    layer: flags.layer ?? 'pool', batch, preprocess: preprocessFor(loaded, flags), precision: precisionOf(flags.precision),
    onResult: (r) => { if ('error' in r) failed.push(r); else rows.push(r); },
  });
  loaded.model.dispose();
  reportFailures(failed, files.length);
  const written = writeFeatures(flags.out, rows);
  const shape = rows.length ? rows[0].shape : [];
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ out: written, n: rows.length, shape, failed: failed.map((f) => f.file) })}\n`);
  } else {
    process.stdout.write(`wrote ${written.join(' and ')}: ${rows.length} image(s), features [${shape.join(', ')}] each\n`);
  }
}
