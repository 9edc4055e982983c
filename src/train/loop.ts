// The training loop every task drives (classifier Trainer, detection training): epochs of
// optimiser steps from a start position with the lr set per iteration from the schedule,
// the non-finite guards, progress events, the graceful stop, mid-epoch and per-epoch
// checkpoints (`last`, `best` on a better score), per-epoch evaluation, metrics.jsonl and the
// plots. The task supplies its batches, a step (forward + backward only), its evaluation and
// what a checkpoint says about it; it never sees the optimiser step or the files. Not here:
// data, models, config.json, the run directory's creation (the caller owns and disposes them).
// Invariant: a run stopped at any step and continued from the checkpoint it saved writes the
// same metrics rows as one that never stopped (the position and the partial sums travel).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ResnetError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Module } from '../nn/module.js';
import type { BaseGroup, Optimizer } from '../optim/optimizer.js';
import { lrAt, type ReduceOnPlateau, type ScheduleSpec } from '../optim/schedule.js';
import { svgToPng } from '../plot/png.js';
import { BEST, LAST, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { appendMetrics, METRICS, readMetrics, truncateMetrics, type EpochMetrics } from './metrics.js';

/**
 * Training stopped for a reason the user must see (non-finite loss, a run dir in the way).
 * @example try { await new Trainer({ out: 'runs/a', lr: 100 }).run(); } catch (e) { if (e instanceof TrainingError) console.log(e.message); }  // diverged
 */
export class TrainingError extends ResnetError {
  constructor(message: string) { super('ERR_TRAINING', message); }
}

/**
 * What training reports while it runs; the loop never prints.
 * @example
 * const onProgress = (e: ProgressEvent): void => {
 *   if (e.type === 'step') console.log(`${e.epoch}/${e.epochs} ${e.batch}/${e.batches} loss ${e.loss.toFixed(3)}`);
 *   else if (e.type === 'message') console.log(e.text);
 * };
 */
export type ProgressEvent =
  | { type: 'start'; epochs: number; stepsPerEpoch: number; trainSize: number; testSize: number; resumedFrom: string | null; epoch: number; batch: number }
  | { type: 'step'; epoch: number; epochs: number; batch: number; batches: number; step: number; loss: number; lr: number; imagesPerSec: number; etaSec: number }
  | { type: 'eval'; epoch: number }
  | { type: 'epoch'; metrics: EpochMetrics; best: boolean }
  | { type: 'message'; text: string };

/** The first state-dict entry holding NaN or Inf, or null. oneDNN's ReLU and max pooling map
 *  NaN to 0, so a net whose weights went non-finite can still give a finite loss: the guard
 *  checks the weights themselves before anything is saved.
 * @example nonFiniteEntry(model)  // null, or the first 'key[i] = NaN'
 */
export function nonFiniteEntry(model: Module): string | null {
  for (const [k, v] of Object.entries(model.stateDict())) {
    if (!(v.data instanceof Float32Array)) continue;
    for (let i = 0; i < v.data.length; i++) if (!Number.isFinite(v.data[i])) return `${k}[${i}] = ${v.data[i]}`;
  }
  return null;
}

/**
 * One step's numbers, from the task's `step` (forward and backward done, no optimiser step).
 * `loss`: the batch's mean loss; a non-finite one stops the run (the task should then skip
 * its backward). `images`: the batch's size, the weight of `loss` and `parts` in the epoch's
 * means. `wrong`: misclassified images (gives `train_err`). `parts`: named loss terms, averaged
 * into the row as `train_<name>` (every step should give the same names).
 * @example const r: TrainStep = { loss: 0.7, images: 2, parts: { loss_classifier: 0.5, loss_box_reg: 0.2 } };
 */
export interface TrainStep { loss: number; images: number; wrong?: number; parts?: Record<string, number> }

/**
 * One evaluation after an epoch. `metrics` join the epoch's row (e.g. test_loss, test_top1
 * or AP, AP50); `score` (higher is better) under the name `metric` decides `best`; `loss`,
 * when given, steps the plateau schedule, and a non-finite one stops the run.
 * @example const ev: TrainEvaluation = { metrics: { test_top1: 0.9, test_err: 0.1 }, score: 0.9, metric: 'top1', loss: 0.31 };
 */
export interface TrainEvaluation { metrics: Record<string, number>; score: number; metric: string; loss?: number }

/**
 * Sums of the epoch in progress (what a mid-epoch checkpoint carries): image-weighted loss
 * sum, misclassified images (only when the task counts them), images, seconds, and the
 * image-weighted sums of the named loss terms (only when the task gives them).
 * @example const fresh: PartialSums = { lossSum: 0, seen: 0, seconds: 0 };
 */
export interface PartialSums { lossSum: number; wrong?: number; seen: number; seconds: number; parts?: Record<string, number> }

/**
 * Where training stands: what the loop hands to `meta` for a checkpoint, and what a resumed
 * run starts from. `epoch` is the epoch in progress (0-based) and `batch` the next batch of
 * it; `step` counts optimiser steps.
 * @example const from: TrainPosition = { epoch: 2, batch: 10, step: 130, partial: { lossSum: 5.1, wrong: 40, seen: 320, seconds: 12 }, best: { metric: 'top1', value: 0.8, epoch: 2 } };
 */
export interface TrainPosition {
  epoch: number;
  batch: number;
  step: number;
  partial: PartialSums;
  best: CheckpointMeta['best'];
  /** The plateau schedule's state (null without one); set by the loop, ignored in `from`. */
  plateau?: CheckpointMeta['plateau'];
}

/**
 * A plot written after every epoch as `<name>.svg` and `<name>.png` in the run directory.
 * @example const plot: TrainPlot = { name: 'errors', svg: (rows) => errorPlotSvg(rows, 'resnet20: error (%)') };
 */
export interface TrainPlot { name: string; svg: (rows: EpochMetrics[]) => string }

/**
 * What a task gives runTrainLoop; `B` is its batch (tensors of a DataLoader, images with
 * boxes ...). The caller owns the model, optimiser and data, and disposes them afterwards.
 * @example
 * const spec: TrainLoopSpec<number> = {
 *   dir: 'runs/toy', model, optimizer, epochs: 2, batchesPerEpoch: 4,
 *   batches: async function* (_epoch, start) { for (let b = start; b < 4; b++) yield b; },
 *   step: (_b) => ({ loss: 0.5, images: 8 }),
 *   evaluate: async () => ({ metrics: { test_loss: 0.4 }, score: -0.4, metric: 'neg_loss', loss: 0.4 }),
 *   schedule: { spec: { kind: 'constant' }, baseLrs: optimizer.groups.map((g) => g.lr) },
 *   meta: (p) => ({ ...meta, epoch: p.epoch, step: p.step, loader: { ...meta.loader, epoch: p.epoch, batch: p.batch }, partial: p.partial, best: p.best, plateau: p.plateau ?? null }),
 * };
 */
export interface TrainLoopSpec<B> {
  /** Run directory (exists): metrics.jsonl, the plots, `last` and `best` go here. */
  dir: string;
  /** Saved in every checkpoint; its weights are checked for NaN/Inf before each save. */
  model: Module;
  /** Stepped by the loop after each task step; its groups' lrs are set every iteration. */
  optimizer: Optimizer<BaseGroup>;
  /** Train until this many epochs are done. */
  epochs: number;
  /** Batches of one epoch (for progress, the ETA and fractional epochs of the schedule). */
  batchesPerEpoch: number;
  /** The batches of `epoch` (0-based) from batch `startBatch` on, deterministic in both. */
  batches(epoch: number, startBatch: number): AsyncIterable<B>;
  /** Forward and backward of one batch (train mode); the loop steps the optimiser. */
  step(batch: B): TrainStep;
  /** Evaluation after epoch `epoch` (1-based: the number of epochs done). */
  evaluate(epoch: number): Promise<TrainEvaluation>;
  /** The lr of every iteration: lrAt(spec, base, fractional epoch, warmup) times the plateau
   *  factor, for each group from its own base lr (`baseLrs`, taken before any resumed
   *  optimiser state is loaded). The progress lr is group 0's. */
  schedule: { spec: ScheduleSpec; baseLrs: number[]; warmup?: number; plateau?: ReduceOnPlateau | null };
  /** What a checkpoint at `position` says (format, arch, input, config ... and the position). */
  meta(position: TrainPosition): CheckpointMeta;
  /** Continue from here (a resumed run): metrics.jsonl is cut back to its epochs. */
  from?: Omit<TrainPosition, 'plateau'>;
  /** Plots rewritten after every epoch from all rows of metrics.jsonl. */
  plots?: TrainPlot[];
  /** Also save `last` every this many steps (0 or absent: only at the end of each epoch). */
  checkpointEvery?: number;
  /** Aborting stops after the step in flight and saves `last` with the partial sums. */
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** What the 'start' event says of the data and the resumed checkpoint. */
  info?: { trainSize?: number; testSize?: number; resumedFrom?: string | null };
}

/**
 * How the loop ended: epochs done, optimiser steps, the best score, the last evaluation (of
 * the last epoch finished in this call, or of the model as loaded when no epoch was left;
 * null when stopped before finishing one), training seconds and images per second, whether
 * it was stopped.
 * @example const line = (r: TrainLoopResult): string => `${r.epochs} epochs, best ${r.best?.metric} ${r.best?.value}, ${r.imagesPerSec.toFixed(0)} img/s${r.interrupted ? ' (stopped)' : ''}`;
 */
export interface TrainLoopResult {
  epochs: number;
  step: number;
  best: CheckpointMeta['best'];
  last: TrainEvaluation | null;
  seconds: number;
  imagesPerSec: number;
  interrupted: boolean;
}

/** A copy with every sum at zero, keeping which optional sums the task keeps. */
function zeroed(p: PartialSums): PartialSums {
  const z: PartialSums = { lossSum: 0, seen: 0, seconds: 0 };
  if (p.wrong !== undefined) z.wrong = 0;
  if (p.parts !== undefined) z.parts = Object.fromEntries(Object.keys(p.parts).map((k) => [k, 0]));
  return z;
}

function copy(p: PartialSums): PartialSums {
  return { ...p, ...(p.parts ? { parts: { ...p.parts } } : {}) };
}

/**
 * Trains `spec.model` from `spec.from` (or the start) to `spec.epochs`: per batch the lr from
 * the schedule, the task's step, the non-finite guard, the optimiser step, a 'step' event and
 * the abort / `checkpointEvery` saves; per epoch the weights check, the evaluation, a row of
 * metrics.jsonl (epoch, step, lr, train_loss[, train_err][, train_<part>], the evaluation's
 * metrics, seconds, images_per_sec, time), the plots, `last`, and `best` when the score beats
 * every earlier one. Throws TrainingError on a non-finite loss, test loss or weight, saving
 * nothing then.
 * @example
 * const { epochs, best, interrupted } = await runTrainLoop({
 *   dir: 'runs/toy', model, optimizer, epochs: 2, batchesPerEpoch: 1,
 *   batches: async function* () { yield { x, y: labels }; },
 *   step: (b) => { const loss = crossEntropy(model.forward(b.x), b.y); loss.backward(); return { loss: loss.item(), images: b.x.shape[0] }; },
 *   evaluate: async () => ({ metrics: { test_score: 1 }, score: 1, metric: 'score' }),
 *   schedule: { spec: { kind: 'constant' }, baseLrs: [0.1] },
 *   meta: (p) => ({ ...meta, epoch: p.epoch, step: p.step, loader: { ...meta.loader, epoch: p.epoch, batch: p.batch }, partial: p.partial, best: p.best }),
 * });
 */
export async function runTrainLoop<B>(spec: TrainLoopSpec<B>): Promise<TrainLoopResult> {
  const { dir, model, optimizer: opt, epochs, batchesPerEpoch: nb } = spec;
  const emit = spec.onProgress ?? (() => {});
  const plateau = spec.schedule.plateau ?? null;
  const warmup = spec.schedule.warmup ?? 0;
  const baseLrs = spec.schedule.baseLrs;
  const last = join(dir, LAST);
  let epoch = spec.from?.epoch ?? 0;
  let batch = spec.from?.batch ?? 0;
  let step = spec.from?.step ?? 0;
  let best: CheckpointMeta['best'] = spec.from?.best ?? null;
  let partial: PartialSums = spec.from ? copy(spec.from.partial) : { lossSum: 0, seen: 0, seconds: 0 };
  if (spec.from) truncateMetrics(join(dir, METRICS), epoch);
  const position = (e: number, b: number): TrainPosition => ({ epoch: e, batch: b, step, partial: copy(partial), best, plateau: plateau ? plateau.state() : null });
  const kept = (): string => (existsSync(last) ? `${last} holds the last good state` : 'no checkpoint was written yet');
  const checkWeights = (where: string): void => {
    const bad = nonFiniteEntry(model);
    if (bad) throw new TrainingError(`training diverged: ${bad} after ${where}; stopped without saving: ${kept()}. Try a lower --lr or a --warmup`);
  };
  emit({
    type: 'start', epochs, stepsPerEpoch: nb, trainSize: spec.info?.trainSize ?? 0, testSize: spec.info?.testSize ?? 0,
    resumedFrom: spec.info?.resumedFrom ?? null, epoch, batch,
  });

  let final: TrainEvaluation | null = null;
  let interrupted = false;
  let trainSeconds = 0;
  let trainImages = 0;
  for (; epoch < epochs && !interrupted; epoch++, batch = 0) {
    let tEpoch = performance.now();
    let stepsDone = 0;
    let windowImages = 0;
    for await (const b of spec.batches(epoch, batch)) {
      const at = epoch + batch / nb;
      const factor = plateau ? plateau.state().factor : 1;
      const lrs = baseLrs.map((base) => lrAt(spec.schedule.spec, base, at, warmup) * factor);
      const lr = lrs[0];
      opt.setLr(lrs);
      const r = spec.step(b);
      if (!Number.isFinite(r.loss)) {
        opt.zeroGrad();
        throw new TrainingError(`training diverged: the loss is ${r.loss} at epoch ${epoch + 1}, batch ${batch + 1} (step ${step + 1}, lr ${lr.toPrecision(3)}); ` +
          `stopped without saving: ${kept()}. Try a lower --lr or a --warmup`);
      }
      opt.step();
      opt.zeroGrad();
      step++;
      batch++;
      stepsDone++;
      partial.lossSum += r.loss * r.images;
      if (r.wrong !== undefined) partial.wrong = (partial.wrong ?? 0) + r.wrong;
      if (r.parts) {
        const sums = partial.parts ?? (partial.parts = {});
        for (const [k, v] of Object.entries(r.parts)) sums[k] = (sums[k] ?? 0) + v * r.images;
      }
      partial.seen += r.images;
      trainImages += r.images;
      windowImages += r.images;
      const now = performance.now();
      const elapsed = (now - tEpoch) / 1000;
      const stepsLeft = (nb - batch) + (epochs - epoch - 1) * nb;
      emit({
        type: 'step', epoch: epoch + 1, epochs, batch, batches: nb, step, loss: r.loss, lr,
        imagesPerSec: windowImages / Math.max(elapsed, 1e-9), etaSec: (elapsed / stepsDone) * stepsLeft * 1.1,
      });
      const stop = spec.signal?.aborted ?? false;
      if (stop || (spec.checkpointEvery && step % spec.checkpointEvery === 0 && batch < nb)) {
        partial.seconds += elapsed;
        trainSeconds += elapsed;
        tEpoch = now;
        stepsDone = 0;
        windowImages = 0;
        checkWeights(`epoch ${epoch + 1}, batch ${batch}`);
        saveCheckpoint(last, model, opt, spec.meta(position(epoch, batch)));
        if (stop) {
          interrupted = true;
          emit({ type: 'message', text: `stopped at epoch ${epoch + 1}, batch ${batch}/${nb}; saved ${last}; continue with --resume` });
          break;
        }
      }
    }
    if (interrupted) break;
    const tail = (performance.now() - tEpoch) / 1000;
    const epochSeconds = partial.seconds + tail;
    trainSeconds += tail;
    checkWeights(`epoch ${epoch + 1}`);
    emit({ type: 'eval', epoch: epoch + 1 });
    const ev = await spec.evaluate(epoch + 1);
    if (ev.loss !== undefined && !Number.isFinite(ev.loss)) {
      throw new TrainingError(`training diverged: the test loss is ${ev.loss} after epoch ${epoch + 1}; stopped without saving: ${kept()}`);
    }
    final = ev;
    if (plateau && ev.loss !== undefined) plateau.step(ev.loss);
    const isBest = best === null || ev.score > best.value;
    if (isBest) best = { metric: ev.metric, value: ev.score, epoch: epoch + 1 };
    const seen = partial.seen;
    const m: EpochMetrics = { epoch: epoch + 1, step, lr: opt.groups[0].lr, train_loss: partial.lossSum / seen } as EpochMetrics;
    if (partial.wrong !== undefined) m.train_err = partial.wrong / seen;
    for (const [k, v] of Object.entries(partial.parts ?? {})) m[`train_${k}`] = v / seen;
    Object.assign(m, ev.metrics);
    m.seconds = epochSeconds;
    m.images_per_sec = seen / Math.max(epochSeconds, 1e-9);
    m.time = new Date().toISOString();
    partial = zeroed(partial);
    const file = join(dir, METRICS);
    appendMetrics(file, m);
    if (spec.plots?.length) {
      const rows = readMetrics(file);
      for (const p of spec.plots) {
        const svg = p.svg(rows);
        writeFileAtomic(join(dir, `${p.name}.svg`), [new TextEncoder().encode(svg)]);
        writeFileAtomic(join(dir, `${p.name}.png`), [svgToPng(svg)]);
      }
    }
    const done = spec.meta(position(epoch + 1, 0));
    saveCheckpoint(last, model, opt, done);
    if (isBest) saveCheckpoint(join(dir, BEST), model, opt, done);
    emit({ type: 'epoch', metrics: m, best: isBest });
  }
  // Resumed a finished run: report its last evaluation.
  if (!final && !interrupted) final = await spec.evaluate(epoch);
  return { epochs: epoch, step, best, last: final, seconds: trainSeconds, imagesPerSec: trainImages / Math.max(trainSeconds, 1e-9), interrupted };
}
