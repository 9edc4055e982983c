// `resnet train` and `resnet eval`: parse flags, render progress (a live bar on a TTY's
// stderr, plain periodic lines otherwise), print results. The work is in src/train/.

import { withGracefulStop } from './graceful_stop.js';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_CONFIG, evaluateCheckpoint, Trainer, type EpochMetrics, type ProgressEvent, type TrainConfig } from '../train/index.js';
import { num } from './flags.js';
import { recipeConfig, type RecipeFlags } from './recipe.js';
import { precisionOf } from './precision.js';

export interface TrainFlags extends RecipeFlags {
  arch?: string; dataset?: string; data?: string; epochs?: string;
  subset?: string; testSubset?: string; out?: string; resume?: boolean; force?: boolean; seed?: string; json?: boolean;
  checkpointEvery?: string;
  weights?: string; keyMap?: string[]; mapping?: string; pretrained?: boolean; pretrainedTag?: string;
  freeze?: string; freezeBackbone?: boolean; bn?: string; lrBackbone?: string; inChannels?: string; input?: string; valData?: string; preset?: string;
}

/** `--input 28x28` or `--input 28`. */
function sizeOf(v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`--input must be HxW (e.g. 224x224) or one size, got '${v}'`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

export interface EvalFlags { checkpoint?: string; data?: string; subset?: string; json?: boolean; precision?: string }

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** The numbers of an epoch's row: a classifier's errors and accuracies, else every number the
 *  task wrote (train_<loss term> beside the train loss, then the evaluation's). */
function epochLine(m: EpochMetrics): string {
  const pct = (v: number | undefined): string => `${(100 * (v ?? NaN)).toFixed(2)}%`;
  if (typeof m.test_top1 === 'number') {
    return `epoch ${m.epoch}: train loss ${m.train_loss.toFixed(4)} err ${pct(m.train_err)} | test loss ${(m.test_loss ?? NaN).toFixed(4)} ` +
      `top-1 ${pct(m.test_top1)} top-5 ${pct(m.test_top5)}`;
  }
  const fixed = new Set(['epoch', 'step', 'lr', 'train_loss', 'seconds', 'images_per_sec', 'time']);
  const rest = Object.entries(m).filter((kv): kv is [string, number] => !fixed.has(kv[0]) && typeof kv[1] === 'number');
  const fmt = (kv: [string, number][]): string => kv.map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' ');
  const train = rest.filter(([k]) => k.startsWith('train_'));
  const test = rest.filter(([k]) => !k.startsWith('train_'));
  return `epoch ${m.epoch}: train loss ${m.train_loss.toFixed(4)}${train.length ? ` ${fmt(train)}` : ''}${test.length ? ` | ${fmt(test)}` : ''}`;
}

/** A progress renderer for any task's training (ProgressEvent): redraws one line on a TTY,
 *  else prints a line every ~10 s. */
export function progressPrinter(): (e: ProgressEvent) => void {
  const tty = process.stderr.isTTY === true;
  let lastPlain = 0;
  let lastDraw = 0;
  const clear = (): void => { if (tty) process.stderr.write('\r\x1b[K'); };
  return (e) => {
    const now = Date.now();
    switch (e.type) {
      case 'start':
        process.stderr.write(`training on ${e.trainSize} images (${e.stepsPerEpoch} steps/epoch), testing on ${e.testSize}` +
          `${e.resumedFrom ? `; resumed from ${e.resumedFrom} at epoch ${e.epoch + 1}, batch ${e.batch}` : ''}\n`);
        break;
      case 'step': {
        const line = `epoch ${e.epoch}/${e.epochs} ${e.batch}/${e.batches} loss ${e.loss.toFixed(4)} lr ${e.lr.toPrecision(3)} ` +
          `${Math.round(e.imagesPerSec)} img/s ETA ${fmtTime(e.etaSec)}`;
        if (tty) {
          if (now - lastDraw < 100 && e.batch !== e.batches) return;
          lastDraw = now;
          const width = 20;
          const done = Math.round((e.batch / e.batches) * width);
          process.stderr.write(`\r\x1b[K[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${line}`);
        } else if (now - lastPlain >= 10_000) {
          lastPlain = now;
          process.stderr.write(`${line}\n`);
        }
        break;
      }
      case 'eval':
        clear();
        if (tty) process.stderr.write(`epoch ${e.epoch}: evaluating...`);
        break;
      case 'epoch': {
        clear();
        process.stderr.write(`${epochLine(e.metrics)} | ${fmtTime(e.metrics.seconds)}, ${Math.round(e.metrics.images_per_sec)} img/s${e.best ? ' (best)' : ''}\n`);
        break;
      }
      case 'message':
        clear();
        process.stderr.write(`resnet: ${e.text}\n`);
        break;
    }
  };
}

export async function trainCommand(flags: TrainFlags): Promise<void> {
  const config: Partial<TrainConfig> = {
    ...recipeConfig(flags), arch: flags.arch, dataset: flags.dataset, data: flags.data, epochs: num(flags.epochs, 'epochs'),
    subset: num(flags.subset, 'subset'), testSubset: num(flags.testSubset, 'test-subset'), out: flags.out ?? DEFAULT_CONFIG.out,
    seed: num(flags.seed, 'seed'), checkpointEvery: num(flags.checkpointEvery, 'checkpoint-every'),
    weights: flags.weights, keyMap: flags.keyMap, mapping: flags.mapping as TrainConfig['mapping'], pretrained: flags.pretrained, pretrainedTag: flags.pretrainedTag,
    freeze: flags.freeze, freezeBackbone: flags.freezeBackbone, bn: flags.bn as TrainConfig['bn'], lrBackbone: num(flags.lrBackbone, 'lr-backbone'),
    inChannels: num(flags.inChannels, 'in-channels'), input: sizeOf(flags.input), valData: flags.valData, folderPreset: flags.preset as TrainConfig['folderPreset'],
  };
  await withGracefulStop(async (signal) => {
    const trainer = new Trainer(config, { resume: flags.resume, force: flags.force, signal, onProgress: progressPrinter() });
    const r = await trainer.run();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ epochs: r.epochs, top1: r.top1, top5: r.top5, seconds: r.seconds, images_per_sec: r.imagesPerSec })}\n`);
    } else {
      process.stdout.write(`${r.interrupted ? 'interrupted' : 'done'}: ${r.epochs} epochs, test top-1 ${(100 * r.top1).toFixed(2)}% top-5 ${(100 * r.top5).toFixed(2)}%, ` +
        `${r.seconds.toFixed(1)} s, ${Math.round(r.imagesPerSec)} img/s; run in ${r.runDir}\n`);
    }
    if (r.interrupted) process.exitCode = 130;
  });
}

export async function evalCommand(flags: EvalFlags): Promise<void> {
  if (!flags.checkpoint) throw new InvalidArgumentError('eval: --checkpoint FILE_OR_RUN_DIR is required');
  const r = await evaluateCheckpoint(flags.checkpoint, {
    data: flags.data, subset: num(flags.subset, 'subset'), precision: precisionOf(flags.precision), onMessage: (t) => process.stderr.write(`resnet: ${t}\n`),
  });
  if (flags.json) process.stdout.write(`${JSON.stringify({ top1: r.top1, top5: r.top5, loss: r.loss, n: r.n })}\n`);
  else process.stdout.write(`${r.file}: top-1 ${(100 * r.top1).toFixed(2)}% top-5 ${(100 * r.top5).toFixed(2)}% loss ${r.loss.toFixed(4)} on ${r.n} images\n`);
}
