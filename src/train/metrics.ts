// metrics.jsonl: one JSON object per finished epoch, appended as whole lines. On resume the
// file is cut back (atomically) to the epochs the checkpoint has seen, so a run killed
// between writing a line and saving its checkpoint never shows an epoch twice.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';

/** @example const rows = readMetrics(`runs/default/${METRICS}`); */
export const METRICS = 'metrics.jsonl';

/**
 * One epoch's row of metrics.jsonl (errors and accuracies in [0, 1]): what every task writes
 * (epoch, step, lr, train_loss, seconds, images_per_sec, time), then the task's own numbers:
 * a classifier's train_err and test_loss / test_top1 / test_top5 / test_err (ClassifierMetrics),
 * a detector's train_<loss term> and AP, AP50 ...
 * @example const last: EpochMetrics | undefined = readMetrics('runs/default/metrics.jsonl').at(-1);
 */
export interface EpochMetrics {
  epoch: number;
  step: number;
  lr: number;
  train_loss: number;
  seconds: number;
  images_per_sec: number;
  time: string;
  /** Classifier: training error of the epoch (absent when the task counts no errors). */
  train_err?: number;
  test_loss?: number;
  test_top1?: number;
  test_top5?: number;
  test_err?: number;
  /** The task's other numbers (`train_<loss term>`, AP ...). */
  [key: string]: number | string | undefined;
}

/**
 * A classifier run's row: every field the Trainer writes.
 * @example const rows = readMetrics<ClassifierMetrics>('runs/default/metrics.jsonl'); const err = rows.map((m) => m.test_err);
 */
export interface ClassifierMetrics extends EpochMetrics {
  train_err: number;
  test_loss: number;
  test_top1: number;
  test_top5: number;
  test_err: number;
}

/** @example appendMetrics('runs/a/metrics.jsonl', readMetrics('runs/b/metrics.jsonl')[0]); */
export function appendMetrics(file: string, m: EpochMetrics): void {
  appendFileSync(file, `${JSON.stringify(m)}\n`);
}

/**
 * The well-formed lines of a metrics file (a torn last line is skipped). `M` is what the
 * caller knows the run wrote (ClassifierMetrics for a Trainer's run); nothing is checked.
 * @example for (const m of readMetrics('runs/default/metrics.jsonl')) console.log(m.epoch, m.test_err);
 */
export function readMetrics<M extends EpochMetrics = EpochMetrics>(file: string): M[] {
  if (!existsSync(file)) return [];
  const out: M[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as M); } catch { /* a line cut by a crash */ }
  }
  return out;
}

/**
 * Keeps the lines of epochs 1..`epochs` only.
 * @example truncateMetrics('runs/a/metrics.jsonl', 2);  // keep epochs 1 and 2
 */
export function truncateMetrics(file: string, epochs: number): void {
  if (!existsSync(file)) return;
  const keep = readMetrics(file).filter((m) => m.epoch <= epochs);
  writeFileAtomic(file, [new TextEncoder().encode(keep.map((m) => `${JSON.stringify(m)}\n`).join(''))]);
}
