// The Trainer: a classifier's training run. It owns what is a classifier's: the data (a named
// dataset or in-memory splits, DataLoaders), the model (fine-tuning, freezing), the optimiser
// and its groups, config.json, the step (autocast forward, cross-entropy, backward) and the
// test evaluation (top-1/top-5); the epochs themselves (lr schedule, guards, progress, stop,
// checkpoints, metrics.jsonl, the plot, resume) are runTrainLoop's (loop.ts). It never prints.
// Determinism: model init, data order and augmentation derive only from the seed and the
// loader position, so a resumed run replays exactly.

import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { DataLoader, type LoaderDataset } from '../data/loader.js';
import type { Batch } from '../data/dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { createModel } from '../models/registry.js';
import { fuseForInference } from '../models/fused.js';
import type { ResNet } from '../models/resnet.js';
import type { ShortcutOption } from '../models/shortcut.js';
import { ReduceOnPlateau, type ScheduleSpec } from '../optim/schedule.js';
import { ADAMW_DEFAULTS, AdamW } from '../optim/adamw.js';
import { trainableGroups } from '../optim/optimizer.js';
import { SGD } from '../optim/sgd.js';
import { crossEntropy } from '../tensor/ops/loss.js';
import { noGrad } from '../tensor/autograd.js';
import { autocast } from '../tensor/precision.js';
import { getBackend } from '../backend/index.js';
import type { Precision } from '../backend/backend.js';
import { resolvePrecision, type PrecisionChoice } from '../backend/precision.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import { BEST, CHECKPOINT_FORMAT, LAST, loadRunCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { describeInput, isArrayDataset, loadSplits, transformsFor, type FolderPreset } from './data.js';
import { applyFreeze, BN_MODES, describeFit, fineTuneGroups, fitWeights, FREEZE_POINTS, readWeightsSource, type BnMode, type FitReport, type WeightsSource } from './finetune.js';
import { KEY_MAPPINGS, type KeyMapping } from '../io/weights.js';
import type { FetchOptions } from '../infer/pretrained.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/presets.js';
import { METRICS } from './metrics.js';
import { runTrainLoop, TrainingError, type ProgressEvent, type TrainEvaluation, type TrainLoopResult, type TrainLoopSpec } from './loop.js';
import { errorPlotSvg } from './plot.js';

export { TrainingError, nonFiniteEntry, type ProgressEvent } from './loop.js';

/** @example SCHEDULES.join(', ')  // 'constant, step, multistep, cosine, plateau' */
export const SCHEDULES = ['constant', 'step', 'multistep', 'cosine', 'plateau'] as const;
/** @example OPTIMIZERS.join(', ')  // 'sgd, adamw' */
export const OPTIMIZERS = ['sgd', 'adamw'] as const;
/** @example const config: Partial<TrainConfig> = { optimizer: 'adamw' satisfies OptimizerKind, lr: 1e-3 }; */
export type OptimizerKind = (typeof OPTIMIZERS)[number];

/** @example const config: Partial<TrainConfig> = { arch: 'resnet56', dataset: 'cifar10', data: 'data/cifar', epochs: 164, schedule: 'multistep', out: 'runs/r56' }; */
export interface TrainConfig {
  /** A registered arch (`resnet list`). */
  arch: string;
  /** A dataset name (DATASETS), or 'custom' for the Trainer's `train` / `test` options. */
  dataset: string;
  /** Dataset directory (Fashion-MNIST defaults to Debian's). */
  data?: string;
  epochs: number;
  batchSize: number;
  /** 'sgd' (default: torch.optim.SGD) or 'adamw' (torch.optim.AdamW; given no `lr` or
   *  `weightDecay`, AdamW takes PyTorch's defaults 1e-3 and 1e-2). */
  optimizer?: OptimizerKind;
  lr: number;
  /** SGD only. */
  momentum: number;
  /** Weight decay: L2 added to the gradient with SGD, decoupled (p *= 1 - lr * wd) with AdamW. */
  weightDecay: number;
  /** No weight decay on BatchNorm parameters and biases (every 1-D parameter). */
  noWdNormBias?: boolean;
  /** SGD only. */
  nesterov: boolean;
  /** AdamW only: the running averages' coefficients (default [0.9, 0.999]). */
  betas?: [number, number];
  /** AdamW only: added to the denominator (default 1e-8). */
  eps?: number;
  /** AdamW only: the AMSGrad variant (default false). */
  amsgrad?: boolean;
  schedule: (typeof SCHEDULES)[number];
  /** Linear warm-up epochs. */
  warmup: number;
  labelSmoothing: number;
  aug: string;
  /** Train on the first N images only. */
  subset?: number;
  /** Evaluate on the first N test images only. */
  testSubset?: number;
  /** Run directory. */
  out: string;
  seed: number;
  /** Loader worker threads (default: the loader's). */
  workers?: number;
  /** Also save `last` every this many steps (0: only at the end of each epoch). */
  checkpointEvery?: number;
  /** Shortcut option of a residual arch (default: the arch's own, A for CIFAR nets, B for
   *  ImageNet nets); recorded in the checkpoint's modelOptions. */
  shortcut?: ShortcutOption;
  /** Convolution precision: 'auto' (default: bf16 where oneDNN has AMX, else fp32), 'fp32'
   *  or 'bf16' (mixed precision: bf16 convolutions and activations; fp32 master weights, SGD,
   *  batch-norm statistics, loss and weight gradients). */
  precision?: PrecisionChoice;
  /** Fine-tuning: start from this weights file (.pth/.pt/.safetensors), resnet-ts checkpoint
   *  or run directory (its best): every tensor whose name and shape match is loaded, the
   *  classifier re-created when the class count differs. The arch defaults to the weights'. */
  weights?: string;
  /** Prefix renames FROM=TO of `weights`' keys (as predict's --key-map). */
  keyMap?: string[];
  /** Whose key names `weights` uses: auto (default), torchvision, timm, hf. */
  mapping?: KeyMapping;
  /** Start from torchvision's ImageNet weights for `arch` (downloaded once, sha256-checked). */
  pretrained?: boolean;
  /** DEFAULT, IMAGENET1K_V1 or IMAGENET1K_V2. */
  pretrainedTag?: string;
  /** Everything up to and including this stage keeps its weights and BN statistics:
   *  stem, layer1 .. layer4 (layer3 is the last of CIFAR nets). */
  freeze?: string;
  /** Only the classifier trains. */
  freezeBackbone?: boolean;
  /** 'train' (default): BN normalises with batch statistics and updates its running ones;
   *  'frozen': every BN uses and keeps its running statistics, affine fixed (FrozenBatchNorm2d). */
  bn?: BnMode;
  /** Learning rate of everything but the classifier (default: `lr`); the schedule scales both. */
  lrBackbone?: number;
  /** Input channels of the net (default: the weights', else the data's); images are converted. */
  inChannels?: number;
  /** Image-folder input [H, W] (default: the weights' input, else 224x224). */
  input?: [number, number];
  /** A separate validation image folder (dataset 'folder'), instead of a 10% split of `data`. */
  valData?: string;
  /** How image folders are prepared (default: from the weights, 'whole' for weights trained
   *  on whole small images, else 'imagenet'); recorded so predict and eval repeat it. */
  folderPreset?: FolderPreset;
}

/**
 * The default run: resnet20 on Fashion-MNIST (see README for its measured result).
 * @example const r = await new Trainer({ ...DEFAULT_CONFIG, epochs: 1, out: 'runs/one' }).run();
 */
export const DEFAULT_CONFIG: TrainConfig = {
  arch: 'resnet20', dataset: 'fashion-mnist', epochs: 4, batchSize: 128, lr: 0.1, momentum: 0.9, weightDecay: 5e-4,
  nesterov: false, schedule: 'cosine', warmup: 0, labelSmoothing: 0, aug: 'flip', out: 'runs/default', seed: 0,
  checkpointEvery: 0,
};

/**
 * How a run is carried out, beside its recipe (TrainConfig): the data when it is in memory,
 * resume/overwrite, progress and stopping.
 * @example
 * const options: TrainOptions = {
 *   train, test,                          // ArrayDatasets (uint8 or float32 images) or image folders
 *   onProgress: (e) => { if (e.type === 'epoch') console.log(e.metrics.epoch, e.metrics.test_top1); },
 * };
 */
export interface TrainOptions {
  /** Train on this dataset instead of `config.dataset` (recorded as 'custom'); needs `test`. */
  train?: LoaderDataset;
  /** The split evaluated after each epoch, with `train`. */
  test?: LoaderDataset;
  /** Continue the run in `config.out` from its last checkpoint. */
  resume?: boolean;
  /** Overwrite an earlier run in `config.out`. */
  force?: boolean;
  /** Called with every start, step, evaluation, epoch and message; the Trainer never prints. */
  onProgress?: (e: ProgressEvent) => void;
  /** Aborting stops after the step in flight and saves `last`. */
  signal?: AbortSignal;
  /** Where `pretrained` weights are downloaded from and cached (default: as predict). */
  fetch?: FetchOptions;
}

/** @example const { top1, bestTop1, seconds, imagesPerSec, interrupted }: TrainResult = await new Trainer({ out: 'runs/a' }).run(); */
export interface TrainResult {
  runDir: string;
  epochs: number;
  top1: number;
  top5: number;
  loss: number;
  bestTop1: number;
  seconds: number;
  imagesPerSec: number;
  interrupted: boolean;
}

/**
 * Options of evaluate.
 * @example const { top1 } = await evaluate(model, loader, { precision: 'bf16' } satisfies EvaluateOptions);
 */
export interface EvaluateOptions {
  /** Convolution precision (default fp32). */
  precision?: Precision;
}

/**
 * Test top-1 / top-5 accuracy, mean loss and the number of images evaluated.
 * @example const { top1, n }: EvalResult = await evaluate(model, loader);
 */
export interface EvalResult { top1: number; top5: number; loss: number; n: number }

/** Counts rows whose label ranks first / within the first five (ties: lower index first). */
function hits(logits: Float32Array, labels: Int32Array, K: number): { top1: number; top5: number } {
  let top1 = 0;
  let top5 = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = n * K;
    const l = labels[n];
    const v = logits[row + l];
    let rank = 0;
    for (let k = 0; k < K; k++) {
      const u = logits[row + k];
      if (u > v || (u === v && k < l)) rank++;
    }
    if (rank < 1) top1++;
    if (rank < 5) top5++;
  }
  return { top1, top5 };
}

/** Test top-1/top-5 and mean loss of a model over a loader (eval mode, no gradients), with
 *  convolutions in `options.precision` (default fp32; a bare Precision is accepted too).
 * @example const { top1, top5, loss } = await evaluate(model, new DataLoader(test, { batchSize: 256, shuffle: false }));
 */
export async function evaluate(model: ResNet, loader: DataLoader, options: EvaluateOptions | Precision = {}): Promise<EvalResult> {
  const precision = (typeof options === 'string' ? options : options.precision) ?? 'fp32';
  model.eval();
  // The BN-folded, fused net: same logits as model.forward in eval mode (1e-4), fewer passes.
  const net = fuseForInference(model, { precision });
  let lossSum = 0;
  let t1 = 0;
  let t5 = 0;
  let n = 0;
  try {
    for await (const { x, y, shape } of loader.epoch(0)) {
      const r = tidy(() => noGrad(() => {
        const logits = net.forward(tensor(x, shape));
        const loss = crossEntropy(logits, tensor(y, [y.length], { dtype: 'int32' })).item();
        return { loss, ...hits(logits.toFloat32Array(), y, logits.shape[1]) };
      }));
      lossSum += r.loss * y.length;
      t1 += r.top1;
      t5 += r.top5;
      n += y.length;
    }
  } finally {
    net.dispose();
  }
  return { top1: t1 / n, top5: t5 / n, loss: lossSum / n, n };
}

function scheduleSpec(c: TrainConfig): ScheduleSpec {
  switch (c.schedule) {
    case 'constant': case 'plateau': return { kind: 'constant' };
    case 'step': return { kind: 'step', stepSize: Math.max(1, Math.ceil(c.epochs / 3)) };
    case 'multistep': return { kind: 'multistep', milestones: [Math.round(c.epochs * 0.5), Math.round(c.epochs * 0.75)] };
    case 'cosine': return { kind: 'cosine', epochs: c.epochs };
    default: throw new InvalidArgumentError(`train: unknown schedule '${String(c.schedule)}'; valid: ${SCHEDULES.join(', ')}`);
  }
}

/** @example checkConfig({ ...DEFAULT_CONFIG, epochs: 3 });  // throws InvalidArgumentError naming a bad field */
export function checkConfig(c: TrainConfig): void {
  const num = (k: keyof TrainConfig, min: number, int = false, max = Infinity): void => {
    const v = c[k] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
      throw new InvalidArgumentError(`train: '${k}' must be ${int ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`);
    }
  };
  num('epochs', 1, true); num('batchSize', 1, true); num('lr', 0); num('momentum', 0); num('weightDecay', 0);
  num('warmup', 0); num('labelSmoothing', 0, false, 1); num('seed', 0, true);
  if (c.subset !== undefined) num('subset', 1, true);
  if (c.testSubset !== undefined) num('testSubset', 1, true);
  const opt = c.optimizer ?? 'sgd';
  if (!(OPTIMIZERS as readonly string[]).includes(opt)) throw new InvalidArgumentError(`train: unknown optimizer '${String(opt)}'; valid: ${OPTIMIZERS.join(', ')}`);
  if (opt === 'adamw') {
    if (c.nesterov) throw new InvalidArgumentError("train: 'nesterov' is an SGD option; optimizer 'adamw' takes betas, eps and amsgrad");
    const b = c.betas;
    if (b !== undefined && (!Array.isArray(b) || b.length !== 2 || b.some((v) => typeof v !== 'number' || !(v >= 0 && v < 1)))) {
      throw new InvalidArgumentError(`train: 'betas' must be two numbers in [0, 1), got ${JSON.stringify(b)}`);
    }
    if (c.eps !== undefined) num('eps', 0);
  } else {
    const adamOnly = (['betas', 'eps', 'amsgrad'] as const).filter((k) => c[k] !== undefined);
    if (adamOnly.length) throw new InvalidArgumentError(`train: '${adamOnly[0]}' is an AdamW option; set optimizer 'adamw' (valid optimizers: ${OPTIMIZERS.join(', ')})`);
  }
  if (!(SCHEDULES as readonly string[]).includes(c.schedule)) throw new InvalidArgumentError(`train: unknown schedule '${c.schedule}'; valid: ${SCHEDULES.join(', ')}`);
  if (!c.out) throw new InvalidArgumentError("train: 'out' (the run directory) is required");
  if (c.weights !== undefined && c.pretrained) throw new InvalidArgumentError('train: give one of --weights FILE and --pretrained, not both');
  if (c.mapping !== undefined && !KEY_MAPPINGS.includes(c.mapping)) throw new InvalidArgumentError(`train: unknown --mapping '${String(c.mapping)}'; valid: ${KEY_MAPPINGS.join(', ')}`);
  if (c.freeze !== undefined && !(FREEZE_POINTS as readonly string[]).includes(c.freeze)) {
    throw new InvalidArgumentError(`train: unknown --freeze '${c.freeze}'; valid: ${FREEZE_POINTS.join(', ')}`);
  }
  if (c.freeze !== undefined && c.freezeBackbone) throw new InvalidArgumentError('train: give one of --freeze UPTO and --freeze-backbone');
  if (c.bn !== undefined && !(BN_MODES as readonly string[]).includes(c.bn)) throw new InvalidArgumentError(`train: unknown --bn '${String(c.bn)}'; valid: ${BN_MODES.join(', ')}`);
  if (c.lrBackbone !== undefined) num('lrBackbone', 0);
  if (c.folderPreset !== undefined && c.folderPreset !== 'imagenet' && c.folderPreset !== 'whole') {
    throw new InvalidArgumentError(`train: unknown --preset '${String(c.folderPreset)}'; valid: imagenet, whole`);
  }
  if (c.folderPreset !== undefined && c.dataset !== 'folder') throw new InvalidArgumentError(`train: --preset is for dataset 'folder' (image folders), not '${c.dataset}'`);
  if (c.inChannels !== undefined && c.inChannels !== 1 && c.inChannels !== 3) throw new InvalidArgumentError(`train: 'inChannels' must be 1 or 3, got ${String(c.inChannels)}`);
  const inp = c.input;
  if (inp !== undefined && (!Array.isArray(inp) || inp.length !== 2 || inp.some((v) => !Number.isInteger(v) || v < 8 || v > 4096))) {
    throw new InvalidArgumentError(`train: 'input' must be [H, W], integers in [8, 4096], got ${JSON.stringify(inp)}`);
  }
}

/**
 * The input of a run: geometry, channels, normalisation. Without weights, the data's
 * (image folders: ImageNet's statistics at 224x224); with weights, what they were trained
 * on: their channels, input size (image folders) and normalisation; `inChannels` and `input`
 * override both.
 */
function runInput(ds: LoaderDataset, c: TrainConfig, src: WeightsSource | null): { channels: number; height: number; width: number; classes: string[]; mean: number[]; std: number[] } {
  const folder = !isArrayDataset(ds);
  if (c.input !== undefined && !folder) throw new InvalidArgumentError(`train: --input sets an image folder's input size; dataset '${c.dataset}' has fixed-size images`);
  const d = describeInput(ds);
  const channels = c.inChannels ?? src?.inChannels ?? d.channels;
  const [height, width] = folder ? c.input ?? src?.inputSize ?? [224, 224] : [d.height, d.width];
  const fits = (v: number[] | undefined): v is number[] => v !== undefined && (v.length === 1 || v.length === channels);
  const avg = (v: number[]): number[] => [v.reduce((a, b) => a + b, 0) / v.length];
  let mean: number[];
  let std: number[];
  if (fits(src?.mean) && fits(src?.std)) [mean, std] = [[...src.mean], [...src.std]];
  else if (folder) [mean, std] = channels === 1 ? [avg(IMAGENET_MEAN), avg(IMAGENET_STD)] : [[...IMAGENET_MEAN], [...IMAGENET_STD]];
  else [mean, std] = channels === 1 && d.mean.length !== 1 ? [avg(d.mean), avg(d.std)] : [d.mean, d.std];
  return { channels, height, width, classes: d.classes, mean, std };
}

const RUN_FILES = [METRICS, LAST, BEST, 'config.json', 'errors.svg', 'errors.png'];

/**
 * Trains a registered arch: epochs of SGD with the schedule, evaluation after each epoch,
 * metrics.jsonl, `last` and `best` checkpoints in `config.out`, exact resume.
 * @example
 * const trainer = new Trainer({ arch: 'resnet20', epochs: 1, out: 'runs/demo' }, {
 *   train, test, force: true,
 *   onProgress: (e) => { if (e.type === 'step' && e.step % 10 === 0) console.log(`step ${e.step} loss ${e.loss.toFixed(3)}`); },
 * });
 * const { top1, runDir } = await trainer.run();
 */
export class Trainer {
  readonly config: TrainConfig;
  private readonly opts: TrainOptions;
  private readonly emit: (e: ProgressEvent) => void;
  /** False when the arch is to come from the weights (`weights` given, `arch` not). */
  private readonly archGiven: boolean;

  /**
   * A run of `config` (unset fields from DEFAULT_CONFIG), on the named dataset or on
   * `options.train` / `options.test`.
   * @example
   * const trainer = new Trainer({ arch: 'resnet20', epochs: 1, batchSize: 32, out: 'runs/a' }, { train, test, force: true });
   * const result = await trainer.run();  // result.top1, result.runDir
   */
  constructor(config: Partial<TrainConfig>, options: TrainOptions = {}) {
    const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
    if ((options.train === undefined) !== (options.test === undefined)) {
      throw new InvalidArgumentError(`Trainer: give both 'train' and 'test' datasets (the test split is evaluated after each epoch), got only '${options.train ? 'train' : 'test'}'`);
    }
    if (options.train !== undefined && given.dataset === undefined) given.dataset = 'custom';
    // AdamW's own defaults where the recipe says nothing (SGD's lr 0.1 would make it diverge).
    const adamw = given.optimizer === 'adamw'
      ? { lr: ADAMW_DEFAULTS.lr, weightDecay: ADAMW_DEFAULTS.weightDecay, betas: [...ADAMW_DEFAULTS.betas], eps: ADAMW_DEFAULTS.eps, amsgrad: ADAMW_DEFAULTS.amsgrad }
      : {};
    this.config = { ...DEFAULT_CONFIG, ...adamw, ...given } as TrainConfig;
    this.archGiven = given.arch !== undefined;
    this.opts = options;
    this.emit = options.onProgress ?? (() => {});
    checkConfig(this.config);
  }

  /**
   * Runs the training to its last epoch (or until `options.signal` aborts).
   * @example const { top1, bestTop1, runDir } = await new Trainer({ out: 'runs/a', epochs: 1 }).run();
   */
  async run(): Promise<TrainResult> {
    const t0 = performance.now();
    const dir = this.config.out;
    let resumed: LoadedCheckpoint | null = null;
    const hasRun = existsSync(dir) && readdirSync(dir).some((f) => RUN_FILES.includes(f));
    if (hasRun && this.opts.resume) {
      resumed = loadRunCheckpoint(dir, (text) => this.emit({ type: 'message', text }));
    } else if (hasRun && !this.opts.force) {
      throw new TrainingError(`${dir}: holds an earlier run (${readdirSync(dir).filter((f) => RUN_FILES.includes(f)).join(', ')}); use --resume to continue it or --force to overwrite it`);
    } else if (this.opts.resume) {
      this.emit({ type: 'message', text: `${dir}: no checkpoint to resume; starting a new run` });
    }
    // A resumed run follows its checkpoint's recipe, so it ends where an uninterrupted one would.
    // Only where the data live and how many workers read them may change.
    const c: TrainConfig = resumed
      ? { ...(resumed.meta.config as unknown as TrainConfig), out: dir, workers: this.config.workers, data: this.config.data ?? (resumed.meta.config.data as string | undefined) }
      : { ...this.config };

    // Data first: a bad path fails here, before anything is written.
    const { train, test } = this.opts.train && this.opts.test ? { train: this.opts.train, test: this.opts.test } : await loadSplits(c.dataset, c.data, c.valData);
    // Fine-tuning: the weights are read (and checked against the arch) before anything is
    // written; a resumed run continues from its checkpoint and never reloads them.
    let src: WeightsSource | null = null;
    if (!resumed && (c.weights !== undefined || c.pretrained)) {
      src = await readWeightsSource(c, this.archGiven ? c.arch : undefined, this.opts.fetch, (text) => this.emit({ type: 'message', text }));
      if (this.archGiven && src.arch !== undefined && src.arch !== c.arch) {
        throw new InvalidArgumentError(`${src.source}: holds ${src.arch} weights, but --arch says ${c.arch}; valid: --arch ${src.arch}, or leave --arch out (the weights name their arch)`);
      }
      if (!this.archGiven) c.arch = src.arch ?? c.arch;
    }
    if (!resumed && c.dataset === 'folder') c.folderPreset = c.folderPreset ?? src?.preset ?? 'imagenet';
    const input = resumed
      ? { ...resumed.meta.input, ...resumed.meta.norm }
      : runInput(train, c, src);

    // A resumed run keeps its precision choice; 'auto' resolves on the machine it runs on.
    const precision = resolvePrecision(c.precision, getBackend());
    this.emit({ type: 'message', text: `precision: ${precision.precision} (${precision.reason}; oneDNN ISA ${precision.isa})` });

    const modelOptions: Record<string, unknown> = resumed
      ? { ...resumed.meta.modelOptions }
      : { ...src?.modelOptions, inChannels: input.channels, numClasses: input.classes.length, seed: c.seed, ...(c.shortcut ? { shortcut: c.shortcut } : {}) };
    const model = createModel(c.arch, modelOptions);
    let fit: FitReport | null = null;
    let setModes: () => void;
    try {
      if (src) {
        fit = fitWeights(model, c.arch, src);
        for (const text of src.notes) this.emit({ type: 'message', text });
        this.emit({ type: 'message', text: describeFit(fit, src) });
      }
      setModes = applyFreeze(model, c);
    } catch (e) {
      model.dispose();
      throw e;
    }
    // Everything is checked: only now is an earlier run replaced.
    if (hasRun && !resumed) for (const f of RUN_FILES) rmSync(join(dir, f), { force: true });
    mkdirSync(dir, { recursive: true });
    if (!resumed) {
      const recorded: Record<string, unknown> = { ...c, optimizer: c.optimizer ?? 'sgd', precision: c.precision ?? 'auto', resolvedPrecision: precision.precision, isa: precision.isa };
      if (recorded.optimizer === 'adamw') { delete recorded.momentum; delete recorded.nesterov; }
      recorded.inputResolved = { channels: input.channels, height: input.height, width: input.width, mean: input.mean, std: input.std, classes: input.classes };
      if (src && fit) {
        recorded.initialWeights = {
          source: src.source, file: src.file, sha256: src.sha256, arch: src.arch ?? null, notes: src.notes,
          loaded: fit.loaded, reinitialised: fit.reinitialised, unexpected: fit.unexpected,
        };
      }
      writeFileAtomic(join(dir, 'config.json'), [new TextEncoder().encode(`${JSON.stringify(recorded, null, 2)}\n`)]);
    }
    // A run from before AdamW records no optimizer: it was SGD. Without --lr-backbone one
    // group (two with noWdNormBias) in the model's parameter order, as before fine-tuning.
    const groups = c.lrBackbone === undefined ? trainableGroups(model.parameters(), c.noWdNormBias === true) : fineTuneGroups(model, c.lrBackbone, c.noWdNormBias === true);
    const opt = c.optimizer === 'adamw'
      ? new AdamW(groups, { lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay, amsgrad: c.amsgrad })
      : new SGD(groups, { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov });
    // Each group's own base lr (before a resumed state sets the scaled ones); the schedule
    // scales them all by the same factor.
    const baseLrs = opt.groups.map((g) => g.lr);
    const plateau = c.schedule === 'plateau' ? new ReduceOnPlateau({ factor: 0.1, patience: 2 }) : null;
    let from: TrainLoopSpec<Batch>['from'];
    if (resumed) {
      model.loadStateDict(resumed.model);
      if (resumed.optim) opt.loadStateDict(resumed.optim);
      const m = resumed.meta;
      from = { epoch: m.loader.epoch, batch: m.loader.batch, step: m.step, best: m.best, partial: m.partial };
      if (plateau && m.plateau) plateau.load(m.plateau);
    }

    const trainLoader = new DataLoader(train, {
      batchSize: c.batchSize, seed: c.seed, shuffle: true, subset: c.subset, workers: c.workers,
      transforms: transformsFor(train, true, c.aug, input, c.folderPreset),
    });
    const testLoader = new DataLoader(test, {
      batchSize: Math.max(c.batchSize, 256), shuffle: false, subset: c.testSubset, workers: c.workers,
      transforms: transformsFor(test, false, c.aug, input, c.folderPreset),
    });
    const classify = async (): Promise<TrainEvaluation> => {
      const ev = await evaluate(model, testLoader, { precision: precision.precision });
      return { metrics: { test_loss: ev.loss, test_top1: ev.top1, test_top5: ev.top5, test_err: 1 - ev.top1 }, score: ev.top1, metric: 'top1', loss: ev.loss };
    };
    let r: TrainLoopResult;
    try {
      r = await runTrainLoop<Batch>({
        dir, model, optimizer: opt, epochs: c.epochs, batchesPerEpoch: trainLoader.length, from,
        batches: async function* (epoch, startBatch) {
          model.train();
          setModes();
          trainLoader.resetStats();
          yield* trainLoader.epoch(epoch, { startBatch });
        },
        step: ({ x, y, shape }) => tidy(() => {
          const logits = autocast(precision.precision, () => model.forward(tensor(x, shape)));
          const loss = crossEntropy(logits, tensor(y, [y.length], { dtype: 'int32' }), { labelSmoothing: c.labelSmoothing });
          const value = loss.item();
          if (!Number.isFinite(value)) return { loss: value, images: y.length };
          loss.backward();
          return { loss: value, images: y.length, wrong: y.length - hits(logits.toFloat32Array(), y, logits.shape[1]).top1 };
        }),
        evaluate: classify,
        schedule: { spec: scheduleSpec(c), baseLrs, warmup: c.warmup, plateau },
        meta: (p) => ({
          format: CHECKPOINT_FORMAT, arch: c.arch, modelOptions, epoch: p.epoch, step: p.step,
          loader: { seed: c.seed, epoch: p.epoch, batch: p.batch }, rng: { seed: c.seed }, partial: p.partial, best: p.best,
          plateau: p.plateau ?? null, norm: { mean: input.mean, std: input.std },
          input: { channels: input.channels, height: input.height, width: input.width, classes: input.classes },
          lrs: opt.groups.map((g) => g.lr), config: c as unknown as Record<string, unknown>, savedAt: new Date().toISOString(),
        }),
        plots: [{ name: 'errors', svg: (rows) => errorPlotSvg(rows, `${c.arch} on ${c.dataset}: error (%)`) }],
        checkpointEvery: c.checkpointEvery, signal: this.opts.signal, onProgress: this.emit,
        info: { trainSize: trainLoader.size, testSize: testLoader.size, resumedFrom: resumed?.file ?? null },
      });
    } finally {
      await trainLoader.close();
      await testLoader.close();
      opt.dispose();
      model.dispose();
    }
    const final = r.last?.metrics;
    return {
      runDir: dir, epochs: r.epochs, top1: final?.test_top1 ?? NaN, top5: final?.test_top5 ?? NaN, loss: final?.test_loss ?? NaN,
      bestTop1: r.best?.value ?? NaN, seconds: (performance.now() - t0) / 1000, imagesPerSec: r.imagesPerSec, interrupted: r.interrupted,
    };
  }
}
