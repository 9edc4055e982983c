// The training-recipe flags that `resnet train` and `resnet study` share: one place declares
// them on a command and one turns them into TrainConfig fields, so the two commands cannot
// drift apart in names, help text or validation.

import type { Command } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import type { PrecisionChoice } from '../backend/precision.js';
import { ADAMW_DEFAULTS } from '../optim/index.js';
import { OPTIMIZERS, type TrainConfig } from '../train/index.js';
import { num } from './flags.js';
import { PRECISION_HELP } from './precision.js';

export interface RecipeFlags {
  batchSize?: string; lr?: string; momentum?: string; wd?: string; weightDecay?: string; wdNormBias?: boolean; nesterov?: boolean;
  optimizer?: string; betas?: string; eps?: string; amsgrad?: boolean;
  schedule?: string; warmup?: string; labelSmoothing?: string; aug?: string; workers?: string; precision?: string;
}

/** `--betas 0.9,0.999` as two numbers in [0, 1). */
function betasOf(v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((t) => t.trim());
  const b = parts.map(Number);
  if (parts.length !== 2 || parts.some((t) => t === '') || b.some((x) => !(x >= 0 && x < 1))) {
    throw new InvalidArgumentError(`--betas must be two numbers in [0, 1) as b1,b2 (e.g. 0.9,0.999), got '${v}'`);
  }
  return [b[0], b[1]];
}

/** Declares the recipe flags on `cmd` (defaults are the trainer's, so none is set here). */
export function addRecipeOptions(cmd: Command): Command {
  return cmd
    .option('--batch-size <n>', 'batch size')
    .option('--optimizer <name>', `${OPTIMIZERS.join(' | ')} (default sgd; adamw is torch.optim.AdamW, default --lr 1e-3 --wd 1e-2)`)
    .option('--lr <x>', 'base learning rate')
    .option('--momentum <x>', 'SGD momentum')
    .option('--betas <b1,b2>', 'AdamW running-average coefficients (default 0.9,0.999)')
    .option('--eps <x>', 'AdamW denominator term (default 1e-8)')
    .option('--amsgrad', 'the AMSGrad variant of AdamW')
    .option('--wd <x>', 'weight decay (SGD: L2 in the gradient; AdamW: decoupled)')
    .option('--weight-decay <x>', 'same as --wd')
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
  const optimizer = flags.optimizer;
  if (optimizer !== undefined && !(OPTIMIZERS as readonly string[]).includes(optimizer)) {
    throw new InvalidArgumentError(`--optimizer must be one of ${OPTIMIZERS.join(', ')}, got '${optimizer}'`);
  }
  const adamw = optimizer === 'adamw';
  const misplaced = adamw
    ? [flags.momentum !== undefined && '--momentum', flags.nesterov && '--nesterov']
    : [flags.betas !== undefined && '--betas', flags.eps !== undefined && '--eps', flags.amsgrad && '--amsgrad'];
  const wrong = misplaced.find((f) => f);
  if (wrong) throw new InvalidArgumentError(`${wrong} does not apply to --optimizer ${optimizer ?? 'sgd'}; ${adamw ? 'sgd takes --momentum and --nesterov' : 'adamw takes --betas, --eps and --amsgrad'}`);
  const wd = num(flags.wd, 'wd');
  const weightDecay = num(flags.weightDecay, 'weight-decay');
  if (wd !== undefined && weightDecay !== undefined && wd !== weightDecay) {
    throw new InvalidArgumentError(`--wd ${flags.wd} and --weight-decay ${flags.weightDecay} disagree; give one`);
  }
  const c: Partial<TrainConfig> = {
    optimizer: optimizer as TrainConfig['optimizer'], betas: betasOf(flags.betas), eps: num(flags.eps, 'eps'), amsgrad: flags.amsgrad,
    batchSize: num(flags.batchSize, 'batch-size'), lr: num(flags.lr, 'lr') ?? (adamw ? ADAMW_DEFAULTS.lr : undefined),
    momentum: num(flags.momentum, 'momentum'),
    weightDecay: wd ?? weightDecay ?? (adamw ? ADAMW_DEFAULTS.weightDecay : undefined), noWdNormBias: flags.wdNormBias === false ? true : undefined, nesterov: flags.nesterov,
    schedule: flags.schedule as TrainConfig['schedule'] | undefined, warmup: num(flags.warmup, 'warmup'),
    labelSmoothing: num(flags.labelSmoothing, 'label-smoothing'), aug: flags.aug, workers: num(flags.workers, 'workers'),
    precision: flags.precision as PrecisionChoice | undefined,
  };
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
}
