// `resnet study NAME` and `resnet report DIR...`: parse flags, print progress on stderr
// (a line per epoch of each net trained, messages) and the result on stdout. The work is in
// src/studies/.

import { withGracefulStop } from './graceful_stop.js';
import { InvalidArgumentError } from '../errors.js';
import { getStudy, runStudy, seedRuns, writeReport } from '../studies/index.js';
import { shellJoin } from '../studies/common.js';
import type { ProgressEvent } from '../train/trainer.js';
import { recipeConfig, type RecipeFlags } from './recipe.js';

export interface StudyFlags extends RecipeFlags {
  data?: string; epochs?: string; subset?: string; testSubset?: string; seed?: string; seeds?: string; archs?: string; checkpoint?: string[];
  draws?: string; out?: string; force?: boolean; resume?: boolean; json?: boolean;
}

export interface ReportFlags { out?: string; json?: boolean }

function int(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`--${flag} must be an integer >= ${min}, got '${v}'`);
  return n;
}

/** `--seeds 0,1,2` (integers >= 0, each once). */
function seedList(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((x) => x.trim());
  if (!parts.length || parts.some((x) => !/^\d+$/.test(x))) throw new InvalidArgumentError(`--seeds must list integers >= 0 separated by commas, e.g. 0,1,2; got '${v}'`);
  return parts.map(Number);
}

/** The command line as typed (what the page shows), with the thread setting if there is one;
 *  without --resume, so it remakes the results from scratch. */
function commandLine(): string {
  const env = process.env.RESNET_NUM_THREADS ? `RESNET_NUM_THREADS=${process.env.RESNET_NUM_THREADS} ` : '';
  return `${env}resnet ${shellJoin(process.argv.slice(2).filter((a) => a !== '--resume'))}`;
}

function trainPrinter(): (label: string, e: ProgressEvent) => void {
  let last = 0;
  return (label, e) => {
    if (e.type === 'epoch') {
      const m = e.metrics;
      process.stderr.write(`  ${label} epoch ${m.epoch}: training error ${(100 * (m.train_err ?? NaN)).toFixed(2)}%, test error ${(100 * (m.test_err ?? NaN)).toFixed(2)}%, ${m.seconds.toFixed(0)} s\n`);
    } else if (e.type === 'step' && Date.now() - last > 30_000) {
      last = Date.now();
      process.stderr.write(`  ${label} epoch ${e.epoch}/${e.epochs} batch ${e.batch}/${e.batches} loss ${e.loss.toFixed(3)}, ${Math.round(e.imagesPerSec)} img/s\n`);
    } else if (e.type === 'message') {
      process.stderr.write(`resnet: ${label}: ${e.text}\n`);
    }
  };
}

export async function studyCommand(name: string, flags: StudyFlags): Promise<void> {
  const out = flags.out;
  if (!out) throw new InvalidArgumentError('study: --out DIR is required');
  const archs = flags.archs === undefined ? undefined : flags.archs.split(',').map((s) => s.trim()).filter(Boolean);
  await withGracefulStop(async (signal) => {
    const r = await runStudy(name, {
      out, data: flags.data, epochs: int(flags.epochs, 'epochs', 1), subset: int(flags.subset, 'subset', 1),
      testSubset: int(flags.testSubset, 'test-subset', 1), seed: int(flags.seed, 'seed', 0), seeds: seedList(flags.seeds), archs, checkpoints: flags.checkpoint,
      draws: int(flags.draws, 'draws', 1), train: recipeConfig(flags), force: flags.force === true, resume: flags.resume === true, command: commandLine(),
      onMessage: (t) => process.stderr.write(`resnet: ${t}\n`), onTrainProgress: trainPrinter(), signal,
    });
    const finding = [getStudy(name).finding(seedRuns(r.document)), ...(r.document.verdicts ?? []).map((v) => v.text)].join('\n');
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ study: name, out: r.out, files: r.files, seconds: r.document.seconds, finding, results: r.document.results })}\n`);
    } else {
      process.stdout.write(`${finding}\nwrote ${r.files.length} files to ${r.out} (open ${r.out}/index.html) in ${r.document.seconds.toFixed(0)} s\n`);
    }
  }, '; earlier results are kept, and --resume continues this run');
}

export async function reportCommand(dirs: string[], flags: ReportFlags): Promise<void> {
  if (!flags.out) throw new InvalidArgumentError('report: --out FILE.html is required');
  const r = writeReport(dirs, flags.out);
  const seeds = r.documents.map((d) => (d.bySeed ? `${d.study} (${d.bySeed.length} seeds)` : d.study));
  if (flags.json) process.stdout.write(`${JSON.stringify({ out: r.out, studies: r.studies, seeds: r.documents.map((d) => d.seeds ?? []) })}\n`);
  else process.stdout.write(`wrote ${r.out}: ${seeds.join(', ')}\n`);
}
