// `resnet detect train`: Faster R-CNN trained on a COCO folder with torchvision's reference
// recipe (references/detection/train.py) scaled to the batch: SGD lr 0.02 per 16 images,
// momentum 0.9, weight decay 1e-4, linear warm-up, the lr divided by 10 at 16/26 and 22/26 of
// the epochs, horizontal flip 0.5, images of several sizes padded into one batch. Backbone:
// torchvision's rule — from trained weights (--weights: a classification checkpoint or a
// detection one) 3 trainable layers and frozen BatchNorm; from scratch every layer and batch
// statistics. The epochs, checkpoints, resume, metrics.jsonl, plots and progress are the one
// training loop's (train/loop.ts); here: the data, the model, the step (model.losses) and
// the evaluation (COCO box AP on the held-out folder, as pycocotools).
// Determinism: the init, the data order, the flips and the sampled anchors and proposals
// derive from the seed and the position, so a resumed run replays an uninterrupted one.

import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../../nn/module.js';
import { InvalidArgumentError } from '../../errors.js';
import { mixSeed, Random } from '../../data/random.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { trainableGroups } from '../../optim/optimizer.js';
import type { ScheduleSpec } from '../../optim/schedule.js';
import { SGD } from '../../optim/sgd.js';
import { linePlotSvg, PALETTE } from '../../plot/svg.js';
import { tidy } from '../../tensor/scope.js';
import { CHECKPOINT_FORMAT, loadRunCheckpoint, type LoadedCheckpoint } from '../../train/checkpoint.js';
import { runTrainLoop, TrainingError, type ProgressEvent, type TrainEvaluation, type TrainLoopSpec } from '../../train/loop.js';
import { METRICS, type EpochMetrics } from '../../train/metrics.js';
import { loadCocoFolder } from '../data/coco.js';
import { DetectionDataset, type DetectionSample } from '../data/dataset.js';
import { COCO_STAT_NAMES, evaluateCoco, toCocoDetections } from '../eval/coco_eval.js';
import type { FasterRCNN } from '../faster_rcnn.js';
import { createDetector, DETECTION_ARCHS, detectorConfig, type DetectorOptions } from '../models.js';
import type { FetchOptions } from '../../infer/pretrained.js';
import { BN_MODES, readWeightsSource, type BnMode } from '../../train/finetune.js';
import { backboneNormalization, isClassificationWeights, loadDetectionWeights } from '../weights.js';
import { initDetector, setTrainable } from './setup.js';
import type { Precision } from '../../backend/backend.js';
import { getBackend } from '../../backend/index.js';
import { resolvePrecision, type PrecisionChoice } from '../../backend/precision.js';
import { autocast } from '../../tensor/precision.js';

/** @example const c: Partial<DetectTrainConfig> = { arch: 'fasterrcnn_resnet18_fpn', data: 'synth/train', valData: 'synth/test', epochs: 6, out: 'runs/det' }; */
export interface DetectTrainConfig {
  arch: string;
  /** COCO folder (instances.json + images/) or the annotation file. */
  data: string;
  /** The held-out COCO folder scored after each epoch (COCO box AP). */
  valData: string;
  epochs: number;
  /** Images per step. */
  batchSize: number;
  /** Default 0.02 * batchSize / 16 (torchvision's 0.02 for 16 images). */
  lr?: number;
  momentum: number;
  weightDecay: number;
  /** Epochs of linear warm-up from 0.1 x lr (default: min(1, epochs / 10)). */
  warmup?: number;
  /** Epochs at which the lr is divided by 10 (default: 16/26 and 22/26 of the epochs, rounded). */
  milestones?: number[];
  /** 'multistep' (torchvision's reference: lr / 10 at the milestones; default) or 'cosine'
   *  (from lr to 0 over the epochs, after the warm-up ramp; no milestones). */
  schedule?: DetectSchedule;
  /** A classification checkpoint (backbone) or a detection checkpoint to start from. */
  weights?: string;
  /** Start the backbone from torchvision's ImageNet weights of its ResNet (downloaded once,
   *  sha256-checked, as `resnet predict --pretrained`). */
  pretrainedBackbone?: boolean;
  /** 0..5 of layer4, layer3, layer2, layer1, conv1 (default 3 with --weights, else 5). */
  trainableLayers?: number;
  /** The backbone's BatchNorm: 'frozen' (FrozenBatchNorm2d: running statistics and affine
   *  fixed) or 'train' (batch statistics, trained affine); default torchvision's rule, frozen
   *  when starting from weights, train from scratch. */
  bn?: BnMode;
  /** Resize: short side (default the arch's 800) and cap of the long side (1333). */
  minSize?: number;
  maxSize?: number;
  /** Probability of a horizontal flip (0.5). */
  hflip: number;
  /** FPN channels (torchvision's resnet_fpn_backbone out_channels; 256). */
  fpnChannels?: number;
  /** RPN proposals kept per image in training (2000) and box-head samples per image (512). */
  rpnPostNmsTopNTrain?: number;
  boxBatchSizePerImage?: number;
  /** Share of the box head's samples that are positive at most (box_positive_fraction, 0.25). */
  boxPositiveFraction?: number;
  /** The box head's width (TwoMLPHead representation_size, 1024). */
  representationSize?: number;
  /** The side of a box pooled from P4 (MultiScaleRoIAlign canonical_scale, 224; each halving
   *  of a box's side is one level finer). */
  roiCanonicalScale?: number;
  /** The side of a pooled region (MultiScaleRoIAlign output_size: 7 for FPN, 14 for C4). */
  roiOutputSize?: number;
  /** Evaluate on the first N held-out images only (default all). */
  valSubset?: number;
  /** Convolution precision: 'auto' (default: bf16 where oneDNN has AMX, else fp32), 'fp32' or
   *  'bf16' (mixed precision as the classifier trainer's: bf16 convolutions in the forward and
   *  backward; fp32 weights, SGD, batch norm, RoIAlign, the heads' inner products and losses). */
  precision?: PrecisionChoice;
  seed: number;
  out: string;
  checkpointEvery: number;
}

/** @example const s: DetectSchedule = DETECT_SCHEDULES[1];  // 'cosine' */
export type DetectSchedule = typeof DETECT_SCHEDULES[number];
/** @example DETECT_SCHEDULES.join(', ')  // 'multistep, cosine' */
export const DETECT_SCHEDULES = ['multistep', 'cosine'] as const;

/** @example const r = await trainDetector({ ...DETECT_TRAIN_DEFAULTS, data: 'synth/train', valData: 'synth/test' }); */
export const DETECT_TRAIN_DEFAULTS: Omit<DetectTrainConfig, 'data' | 'valData'> = {
  arch: 'fasterrcnn_resnet18_fpn', epochs: 12, batchSize: 2, momentum: 0.9, weightDecay: 1e-4, hflip: 0.5, seed: 0, out: 'runs/detect', checkpointEvery: 0,
};

/** @example const o: DetectTrainOptions = { resume: true, onProgress: (e) => { if (e.type === 'epoch') console.log(e.metrics.AP50); } }; */
export interface DetectTrainOptions {
  resume?: boolean;
  force?: boolean;
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Where --pretrained-backbone weights come from and are cached. */
  fetch?: FetchOptions;
}

/** @example const { AP, AP50, runDir }: DetectTrainResult = await trainDetector({ data: 'synth/train', valData: 'synth/test', out: 'runs/det' }); */
export interface DetectTrainResult {
  runDir: string;
  epochs: number;
  /** The last evaluation's COCO box AP and AP50 (NaN when none ran). */
  AP: number;
  AP50: number;
  bestAP50: number;
  seconds: number;
  imagesPerSec: number;
  interrupted: boolean;
}

const RUN_FILES = ['config.json', METRICS, 'last.safetensors', 'best.safetensors', 'losses.svg', 'losses.png', 'ap.svg', 'ap.png'];

function checkConfig(c: DetectTrainConfig): void {
  if (!DETECTION_ARCHS.includes(c.arch)) throw new InvalidArgumentError(`unknown detection arch '${c.arch}'; valid: ${DETECTION_ARCHS.join(', ')}`);
  if (!c.data) throw new InvalidArgumentError('--data is required: a COCO folder (instances.json + images/), e.g. from resnet detect synth');
  if (!c.valData) throw new InvalidArgumentError('--val-data is required: a held-out COCO folder scored after each epoch (resnet detect synth --split test)');
  const int = (k: keyof DetectTrainConfig, min: number, max = Infinity): void => {
    const v = c[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) throw new InvalidArgumentError(`${k} must be an integer in ${min}..${max}, got ${String(v)}`);
  };
  if (c.bn !== undefined && !BN_MODES.includes(c.bn)) throw new InvalidArgumentError(`--bn must be one of ${BN_MODES.join(', ')}, got '${String(c.bn)}'`);
  int('epochs', 1); int('batchSize', 1); int('seed', 0); int('checkpointEvery', 0); int('trainableLayers', 0, 5);
  int('minSize', 16, 4096); int('maxSize', 16, 4096); int('rpnPostNmsTopNTrain', 1); int('fpnChannels', 8, 1024); int('boxBatchSizePerImage', 1); int('valSubset', 1);
  int('representationSize', 1); int('roiCanonicalScale', 1); int('roiOutputSize', 1, 64);
  for (const k of ['lr', 'momentum', 'weightDecay', 'warmup', 'hflip'] as const) {
    const v = c[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new InvalidArgumentError(`${k} must be a number >= 0, got ${String(v)}`);
  }
  if (detectorConfig(c.arch).head === 'c4') {
    const fpnOnly = (['fpnChannels', 'representationSize', 'roiCanonicalScale'] as const).filter((k) => c[k] !== undefined);
    if (fpnOnly.length) throw new InvalidArgumentError(`${fpnOnly.join(', ')}: ${fpnOnly.length > 1 ? 'these shape' : 'this shapes'} an FPN detector's FPN and box head; ${c.arch} has no FPN (its box head is the ResNet's layer4): use a *_fpn arch or leave ${fpnOnly.length > 1 ? 'them' : 'it'} out`);
  }
  if (c.schedule !== undefined && !DETECT_SCHEDULES.includes(c.schedule)) throw new InvalidArgumentError(`--schedule must be one of ${DETECT_SCHEDULES.join(', ')}, got '${String(c.schedule)}'`);
  if (c.schedule === 'cosine' && c.milestones !== undefined) throw new InvalidArgumentError('--milestones go with --schedule multistep; a cosine schedule has none');
  if (c.weights !== undefined && c.pretrainedBackbone) throw new InvalidArgumentError('give --weights or --pretrained-backbone, not both');
  if (c.hflip > 1) throw new InvalidArgumentError(`hflip must be a probability in [0, 1], got ${c.hflip}`);
  const pf = c.boxPositiveFraction;
  if (pf !== undefined && !(typeof pf === 'number' && pf > 0 && pf <= 1)) throw new InvalidArgumentError(`boxPositiveFraction must be a fraction in (0, 1], got ${String(pf)}`);
}

/** The detector options a run trains and records (what openDetectionRun rebuilds). */
function modelOptions(c: DetectTrainConfig, classes: string[]): DetectorOptions {
  const o: DetectorOptions = { numClasses: classes.length, categories: classes };
  if (c.minSize !== undefined || c.maxSize !== undefined) o.transform = { ...(c.minSize !== undefined ? { minSize: c.minSize } : {}), ...(c.maxSize !== undefined ? { maxSize: c.maxSize } : {}) };
  if (c.fpnChannels !== undefined) o.fpnOutChannels = c.fpnChannels;
  if (c.rpnPostNmsTopNTrain !== undefined) o.rpn = { postNmsTopNTrain: c.rpnPostNmsTopNTrain };
  if (c.boxBatchSizePerImage !== undefined || c.boxPositiveFraction !== undefined) {
    o.roiHeads = { ...(c.boxBatchSizePerImage !== undefined ? { batchSizePerImage: c.boxBatchSizePerImage } : {}), ...(c.boxPositiveFraction !== undefined ? { positiveFraction: c.boxPositiveFraction } : {}) };
  }
  if (c.representationSize !== undefined) o.representationSize = c.representationSize;
  if (c.roiCanonicalScale !== undefined) o.roiPool = { canonicalScale: c.roiCanonicalScale };
  if (c.roiOutputSize !== undefined) o.roiOutputSize = c.roiOutputSize;
  return o;
}

/** The training losses per epoch (losses.svg of a run).
 * @example const svg = lossPlotSvg(readMetrics('runs/det/metrics.jsonl'), 'fasterrcnn_resnet18_fpn: training losses');
 */
export function lossPlotSvg(rows: EpochMetrics[], title: string): string {
  const keys = ['train_loss', 'train_loss_classifier', 'train_loss_box_reg', 'train_loss_objectness', 'train_loss_rpn_box_reg'];
  return linePlotSvg({
    title, xLabel: 'epoch', yLabel: 'loss', xMin: 0, xMax: Math.max(1, ...rows.map((m) => m.epoch)), integerX: true,
    series: keys.map((k, i) => ({ name: k.replace('train_', ''), points: rows.flatMap((m) => (typeof m[k] === 'number' ? [[m.epoch, m[k] as number] as [number, number]] : [])), color: PALETTE[i], width: i === 0 ? 3 : 1.5 })),
  });
}

/** COCO AP, AP50 and AP75 on the held-out images per epoch (ap.svg of a run).
 * @example const svg = apPlotSvg(readMetrics('runs/det/metrics.jsonl'), 'COCO box AP on 100 held-out images');
 */
export function apPlotSvg(rows: EpochMetrics[], title: string): string {
  return linePlotSvg({
    title, xLabel: 'epoch', yLabel: 'COCO box AP (held out)', xMin: 0, xMax: Math.max(1, ...rows.map((m) => m.epoch)), integerX: true,
    series: ['AP50', 'AP75', 'AP'].map((k, i) => ({ name: k, points: rows.flatMap((m) => (typeof m[k] === 'number' ? [[m.epoch, m[k] as number] as [number, number]] : [])), color: PALETTE[i], width: k === 'AP50' ? 3 : 1.5, markers: true })),
  });
}

/**
 * Detections of `model` on every image of `data` scored as pycocotools does: the 12 numbers
 * by name (AP, AP50, ... ARl).
 * @example const stats = await evaluateDetector(openDetector('runs/det').model, new DetectionDataset(await loadCoco('synth/test/instances.json')));
 */
export async function evaluateDetector(model: FasterRCNN, data: DetectionDataset, limit = data.length, precision: Precision = 'fp32'): Promise<Record<string, number>> {
  const categoryIds = new Array<number>(model.numClasses).fill(0);
  for (const [id, label] of data.labelMap) categoryIds[label] = id;
  model.eval();
  const dets = [];
  const ids: number[] = [];
  for (let i = 0; i < Math.min(limit, data.length); i++) {
    const s = await data.get(i);
    const [d] = autocast(precision, () => model.detect([{ data: s.image, channels: 3, height: s.height, width: s.width }]));
    dets.push(...toCocoDetections(s.imageId, d, categoryIds));
    ids.push(s.imageId);
  }
  const { stats } = evaluateCoco(data.coco.raw, dets, { imgIds: ids });
  return Object.fromEntries(COCO_STAT_NAMES.map((k) => [k, stats[k]]));
}

/**
 * Trains a detector (see the file comment); returns the last evaluation and where the run is.
 * @example
 * const r = await trainDetector({ arch: 'fasterrcnn_resnet18_fpn', data: 'synth/train', valData: 'synth/test', epochs: 6, minSize: 320, maxSize: 320, out: 'runs/det' });
 * console.log(r.AP50);
 */
export async function trainDetector(config: Partial<DetectTrainConfig>, options: DetectTrainOptions = {}): Promise<DetectTrainResult> {
  const t0 = performance.now();
  const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as Partial<DetectTrainConfig>;
  const emit = options.onProgress ?? (() => {});
  const dir = given.out ?? DETECT_TRAIN_DEFAULTS.out;
  let resumed: LoadedCheckpoint | null = null;
  const hasRun = existsSync(dir) && readdirSync(dir).some((f) => RUN_FILES.includes(f));
  if (hasRun && options.resume) resumed = loadRunCheckpoint(dir, (text) => emit({ type: 'message', text }));
  else if (hasRun && !options.force) throw new TrainingError(`${dir}: holds an earlier run (${readdirSync(dir).filter((f) => RUN_FILES.includes(f)).join(', ')}); use --resume to continue it or --force to overwrite it`);
  else if (options.resume) emit({ type: 'message', text: `${dir}: no checkpoint to resume; starting a new run` });
  // A resumed run follows its recorded recipe; only where the data live may change.
  const c: DetectTrainConfig = resumed
    ? { ...(resumed.meta.config as unknown as DetectTrainConfig), out: dir, data: given.data ?? (resumed.meta.config.data as string), valData: given.valData ?? (resumed.meta.config.valData as string) }
    : { ...DETECT_TRAIN_DEFAULTS, ...given, out: dir } as DetectTrainConfig;
  checkConfig(c);
  // A resumed run keeps its precision choice; 'auto' resolves on the machine it runs on (a
  // CPU without bf16 is a one-line error here, before anything is read or written).
  const precision = resolvePrecision(c.precision ?? 'auto', getBackend());

  // Data first: a bad folder fails here, before anything is written.
  const trainCoco = await loadCocoFolder(c.data);
  const valCoco = await loadCocoFolder(c.valData);
  const train = new DetectionDataset(trainCoco, { hflip: c.hflip, seed: c.seed, skipEmpty: true });
  const val = new DetectionDataset(valCoco);
  if (train.length === 0) throw new InvalidArgumentError(`${trainCoco.file}: no image with an object to train on`);
  const missing = [...val.labelMap.keys()].filter((id) => !train.labelMap.has(id));
  if (missing.length || val.labelMap.size !== train.labelMap.size) {
    throw new InvalidArgumentError(`${valCoco.file}: its categories (${[...val.labelMap.keys()].join(', ')}) are not the training set's (${[...train.labelMap.keys()].join(', ')})`);
  }
  const classes = train.classes;
  // What the run starts from, read once: a file, a resnet-ts run or checkpoint (classifier or
  // detector), or torchvision's ImageNet backbone. A classification backbone brings the input
  // normalisation it was trained with.
  const fromWeights = c.weights !== undefined || c.pretrainedBackbone === true;
  const start = !resumed && fromWeights
    ? await readWeightsSource({ weights: c.weights, pretrained: c.pretrainedBackbone }, detectorConfig(c.arch).backbone, options.fetch, (text) => emit({ type: 'message', text }))
    : undefined;
  const norm = start && isClassificationWeights(start.tensors) ? backboneNormalization(start) : undefined;
  const baseOpts = resumed ? resumed.meta.modelOptions as DetectorOptions : modelOptions(c, classes);
  const opts = norm ? { ...baseOpts, transform: { ...baseOpts.transform, ...norm } } : baseOpts;
  const model = createDetector(c.arch, opts);
  let setModes: () => void;
  let notes: string[] = [];
  try {
    if (!resumed) {
      initDetector(model, c.seed);
      if (start) notes = [...start.notes, ...loadDetectionWeights(model, start.file, { tensors: start.tensors }).notes];
      if (norm) notes.push(`images normalised as the backbone was trained: mean ${fmtList(norm.imageMean)}, std ${fmtList(norm.imageStd)}`);
    }
    const trainable = c.trainableLayers ?? (fromWeights ? 3 : 5);
    const frozenBn = (c.bn ?? (fromWeights ? 'frozen' : 'train')) === 'frozen';
    setModes = setTrainable(model, { trainableLayers: trainable, frozenBn });
    emit({ type: 'message', text: `${c.arch}: ${classes.length - 1} classes; backbone ${start ? `from ${start.source}` : resumed ? 'resumed' : 'from scratch'}, BatchNorm ${frozenBn ? 'frozen' : 'with batch statistics'}, ${trainable} of 5 layers trained` });
    for (const text of notes) emit({ type: 'message', text });
    emit({ type: 'message', text: `precision: ${precision.precision} (${precision.reason}; oneDNN ISA ${precision.isa})` });
  } catch (e) {
    model.dispose();
    throw e;
  }
  if (hasRun && !resumed) for (const f of RUN_FILES) rmSync(join(dir, f), { force: true });
  mkdirSync(dir, { recursive: true });
  const lr = c.lr ?? 0.02 * c.batchSize / 16;
  const warmup = c.warmup ?? Math.min(1, c.epochs / 10);
  const schedule: DetectSchedule = c.schedule ?? 'multistep';
  const milestones = schedule === 'multistep' ? c.milestones ?? [Math.round(c.epochs * 16 / 26), Math.round(c.epochs * 22 / 26)] : undefined;
  const spec: ScheduleSpec = milestones ? { kind: 'multistep', milestones } : { kind: 'cosine', epochs: c.epochs };
  if (!resumed) {
    const recorded = { ...c, lr, warmup, schedule, milestones, precision: c.precision ?? 'auto', resolvedPrecision: precision.precision, isa: precision.isa, classes, model: opts };
    writeFileAtomic(join(dir, 'config.json'), [new TextEncoder().encode(`${JSON.stringify(recorded, null, 2)}\n`)]);
  }
  const opt = new SGD(trainableGroups(model.parameters()), { lr, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: false });
  const baseLrs = opt.groups.map((g) => g.lr);
  let from: TrainLoopSpec<DetectionSample[]>['from'];
  if (resumed) {
    model.loadStateDict(new Map([...resumed.model].filter(([k]) => !k.startsWith('optim.'))));
    if (resumed.optim) opt.loadStateDict(resumed.optim);
    const m = resumed.meta;
    from = { epoch: m.loader.epoch, batch: m.loader.batch, step: m.step, best: m.best, partial: m.partial };
  }
  const perEpoch = Math.ceil(train.length / c.batchSize);
  let position = { epoch: 0, batch: 0 };
  const t = model.transform;
  try {
    const r = await runTrainLoop<DetectionSample[]>({
      dir, model: model as Module, optimizer: opt, epochs: c.epochs, batchesPerEpoch: perEpoch, from,
      batches: async function* (epoch, startBatch) {
        model.train();
        setModes();
        const order = new Random(mixSeed(c.seed, epoch, 0x0de7)).permutation(train.length);
        for (let b = startBatch; b < perEpoch; b++) {
          position = { epoch, batch: b };
          const idx = Array.from(order.subarray(b * c.batchSize, (b + 1) * c.batchSize));
          yield await Promise.all(idx.map((i) => train.get(i, epoch)));
        }
      },
      step: (samples) => tidy(() => {
        const rng = new Random(mixSeed(c.seed, position.epoch, position.batch, 0x5a3e));
        const images = samples.map((s) => ({ data: s.image, channels: 3, height: s.height, width: s.width }));
        // Convolutions' backward runs in the precision their forward ran in.
        const l = autocast(precision.precision, () => model.losses(images, samples.map((s) => ({ boxes: s.boxes, labels: s.labels })), rng));
        const value = l.loss.item();
        if (Number.isFinite(value)) l.loss.backward();
        return { loss: value, images: samples.length, parts: l.parts };
      }),
      evaluate: async (): Promise<TrainEvaluation> => {
        const stats = await evaluateDetector(model, val, c.valSubset, precision.precision);
        return { metrics: stats, score: stats.AP50, metric: 'AP50' };
      },
      schedule: { spec, baseLrs, warmup },
      meta: (p) => ({
        format: CHECKPOINT_FORMAT, arch: c.arch, modelOptions: opts as Record<string, unknown>, epoch: p.epoch, step: p.step,
        loader: { seed: c.seed, epoch: p.epoch, batch: p.batch }, rng: { seed: c.seed }, partial: p.partial, best: p.best, plateau: null,
        norm: { mean: [...t.imageMean], std: [...t.imageStd] },
        input: { channels: 3, height: t.minSize, width: t.maxSize, classes },
        lrs: opt.groups.map((g) => g.lr), config: c as unknown as Record<string, unknown>, savedAt: new Date().toISOString(),
      }),
      plots: [
        { name: 'losses', svg: (rows) => lossPlotSvg(rows, `${c.arch}: training losses`) },
        { name: 'ap', svg: (rows) => apPlotSvg(rows, `${c.arch}: COCO box AP on ${Math.min(val.length, c.valSubset ?? val.length)} held-out images`) },
      ],
      checkpointEvery: c.checkpointEvery, signal: options.signal, onProgress: emit,
      info: { trainSize: train.length, testSize: Math.min(val.length, c.valSubset ?? val.length), resumedFrom: resumed?.file ?? null },
    });
    return {
      runDir: dir, epochs: r.epochs, AP: r.last?.metrics.AP ?? NaN, AP50: r.last?.metrics.AP50 ?? NaN, bestAP50: r.best?.value ?? NaN,
      seconds: (performance.now() - t0) / 1000, imagesPerSec: r.imagesPerSec, interrupted: r.interrupted,
    };
  } finally {
    opt.dispose();
    model.dispose();
  }
}

function fmtList(v: readonly number[]): string {
  return `[${v.map((x) => x.toFixed(3)).join(', ')}]`;
}
