// The training-recipe flags that `resnet train` and `resnet study` share: one place declares
// them on a command and one turns them into TrainConfig fields, so the two commands cannot
// drift apart in names, help text or validation.

import type { Command } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import type { PrecisionChoice } from '../backend/precision.js';
import type { TrainConfig } from '../train/index.js';
import { PRECISION_HELP } from './precision.js';

export interface RecipeFlags {
  batchSize?: string; lr?: string; momentum?: string; wd?: string; wdNormBias?: boolean; nesterov?: boolean;
  schedule?: string; warmup?: string; labelSmoothing?: string; aug?: string; workers?: string; precision?: string;
}

/** A finite number, or undefined when the flag was not given. */
export function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`--${flag} must be a number, got '${v}'`);
  return n;
}

/** Declares the recipe flags on `cmd` (defaults are the trainer's, so none is set here). */
export function addRecipeOptions(cmd: Command): Command {
  return cmd
    .option('--batch-size <n>', 'batch size')
    .option('--lr <x>', 'base learning rate')
    .option('--momentum <x>', 'SGD momentum')
    .option('--wd <x>', 'weight decay')
    .option('--no-wd-norm-bias', 'no weight decay on BatchNorm parameters and biases')
    .option('--nesterov', 'nesterov momentum')
    .option('--schedule <kind>', 'constant | step | multistep | cosine | plateau')
    .option('--warmup <epochs>', 'linear warm-up epochs')
    .option('--label-smoothing <x>', 'label smoothing in [0, 1]')
    .option('--aug <kind>', 'none | flip | crop | standard (pad-4 crop + flip) | erasing')
    .option('--workers <n>', 'data loader worker threads')
    .option('--precision <p>', PRECISION_HELP);
}

/** The recipe fields the flags set; unset flags are absent, so the trainer's defaults hold. */
export function recipeConfig(flags: RecipeFlags): Partial<TrainConfig> {
  const c: Partial<TrainConfig> = {
    batchSize: num(flags.batchSize, 'batch-size'), lr: num(flags.lr, 'lr'), momentum: num(flags.momentum, 'momentum'),
    weightDecay: num(flags.wd, 'wd'), noWdNormBias: flags.wdNormBias === false ? true : undefined, nesterov: flags.nesterov,
    schedule: flags.schedule as TrainConfig['schedule'] | undefined, warmup: num(flags.warmup, 'warmup'),
    labelSmoothing: num(flags.labelSmoothing, 'label-smoothing'), aug: flags.aug, workers: num(flags.workers, 'workers'),
    precision: flags.precision as PrecisionChoice | undefined,
  };
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
}
