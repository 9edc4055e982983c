// Training checkpoints: one safetensors file holding the model's state dict (its own keys,
// so the file loads as plain weights too), the optimiser's buffers as
// `optim.<group>.<param>.<buffer>` (PyTorch's names: momentum_buffer, exp_avg, ...) with its
// kind and per-parameter step counts in the `optim_state` metadata, and a JSON metadata
// entry with everything an exact resume needs (REFERENCE.md section 6). Checkpoints from
// before AdamW (SGD's `optim.<group>.<param>`, no `optim_state`) load as SGD state.
// Written atomically (writeSafetensors: temp file, fsync, rename, fsync of the directory);
// a sha256 over the tensor names and bytes is checked on load. Not here: the training loop.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, OutputError } from '../errors.js';
import { readSafetensors, writeSafetensors, type NamedArray } from '../io/safetensors.js';
import { infoToMetadata, type WeightsInfo } from '../io/weights.js';
import type { Module } from '../nn/module.js';
import type { BaseGroup, Optimizer, OptimizerState } from '../optim/optimizer.js';

/** @example loadCheckpoint('runs/a/last.safetensors').meta.format === CHECKPOINT_FORMAT  // true */
export const CHECKPOINT_FORMAT = 1;
export const META_KEY = 'resnet_ts';
/** @example const ck = loadCheckpoint(`runs/a/${LAST}`); */
export const LAST = 'last.safetensors';
/** @example const ck = loadCheckpoint(`runs/a/${BEST}`); */
export const BEST = 'best.safetensors';

/**
 * What a checkpoint says about where training stands (JSON in the file's metadata).
 * @example const { arch, epoch, input, norm }: CheckpointMeta = loadCheckpoint('runs/a/best.safetensors').meta;
 */
export interface CheckpointMeta {
  format: number;
  arch: string;
  modelOptions: Record<string, unknown>;
  /** The epoch in progress (0-based); with `batch` 0 and `epochDone` true, epoch `epoch` is finished. */
  epoch: number;
  /** Optimiser steps taken so far. */
  step: number;
  /** Loader position of the next batch: { seed, epoch, batch }. */
  loader: { seed: number; epoch: number; batch: number };
  /** Every random stream of training derives from this seed and the loader position. */
  rng: { seed: number };
  /** Sums of the epoch in progress (a mid-epoch checkpoint): loss sum, errors (a classifier's),
   *  samples, seconds, and the image-weighted sums of named loss terms (a detector's). */
  partial: { lossSum: number; wrong?: number; seen: number; seconds: number; parts?: Record<string, number> };
  /** The best evaluation so far: its metric's name ('top1' for classifiers), value, epoch. */
  best: { metric: string; value: number; epoch: number } | null;
  plateau: { best: number; bad: number; cooldownLeft: number; factor: number } | null;
  /** Normalisation used for inputs (eval reproduces it without the training set). */
  norm: { mean: number[]; std: number[] };
  /** Input geometry and class names of the data trained on. */
  input: { channels: number; height: number; width: number; classes: string[] };
  lrs: number[];
  config: Record<string, unknown>;
  savedAt: string;
}

/** @example const { file, meta, model: weights }: LoadedCheckpoint = loadCheckpoint('runs/a/best.safetensors'); */
export interface LoadedCheckpoint {
  file: string;
  meta: CheckpointMeta;
  model: Map<string, NamedArray>;
  optim: OptimizerState | null;
}

function digest(entries: [string, NamedArray][]): string {
  const h = createHash('sha256');
  for (const [name, a] of [...entries].sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0))) {
    h.update(name);
    h.update(JSON.stringify(a.shape));
    // NOTE: integer tensors are stored as I64 (PyTorch's num_batches_tracked): hash them so.
    const d = a.data instanceof Float32Array || a.data instanceof BigInt64Array ? a.data : BigInt64Array.from(a.data, (v) => BigInt(v));
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}

/** What a checkpoint says about its net in the flat keys every weights loader reads
 *  (io/weights.ts WeightsInfo), beside the full JSON under META_KEY.
 * @example const info = checkpointInfo(loadCheckpoint('runs/a/best.safetensors').meta);  // { arch, labels, inputSize, mean, std, ... }
 */
export function checkpointInfo(meta: CheckpointMeta): WeightsInfo {
  const { seed: _seed, init: _init, backend: _backend, ...modelOptions } = meta.modelOptions;
  return {
    arch: meta.arch, numClasses: meta.input.classes.length, labels: [...meta.input.classes], inChannels: meta.input.channels,
    inputSize: [meta.input.height, meta.input.width], mean: [...meta.norm.mean], std: [...meta.norm.std], modelOptions,
  };
}

/**
 * Writes model + optimiser + metadata atomically to `file` (what the Trainer saves each epoch).
 * @example
 * saveCheckpoint('runs/a/last.safetensors', model, optimizer, meta);
 * const { model: weights, meta: saved } = loadCheckpoint('runs/a/last.safetensors');
 */
export function saveCheckpoint(file: string, model: Module, opt: Optimizer<BaseGroup> | null, meta: CheckpointMeta): void {
  const entries: [string, NamedArray][] = [];
  for (const [k, v] of Object.entries(model.stateDict())) entries.push([k, { data: v.data, shape: v.shape }]);
  const extra: Record<string, string> = {};
  if (opt) {
    const s = opt.stateDict();
    s.state.forEach((g, gi) => g.forEach((ps, pi) => {
      for (const [name, b] of Object.entries(ps?.buffers ?? {})) {
        entries.push([`optim.${gi}.${pi}.${name}`, { data: b, shape: [...opt.groups[gi].params[pi].shape] }]);
      }
    }));
    meta = { ...meta, lrs: s.lrs };
    extra.optim_state = JSON.stringify({ kind: s.kind, steps: s.state.map((g) => g.map((ps) => (ps ? ps.step : null))) });
  }
  const layout = opt ? opt.groups.map((g) => g.params.length) : [];
  try {
    writeSafetensors(file, entries, {
      ...infoToMetadata(checkpointInfo(meta)),
      [META_KEY]: JSON.stringify(meta),
      optim_layout: JSON.stringify(layout),
      ...extra,
      sha256: digest(entries),
      format: 'pt',
    });
  } catch (e) {
    // The writer's OutputError says why in words (a FIFO, a missing directory ...): keep it.
    const out = e instanceof OutputError ? e : null;
    const code = out ? out.errno ?? 'not a regular file' : (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const why = out && !out.reason.startsWith(`${out.errno} `) ? `: ${out.reason.replace(/; (the previous file is intact|nothing was written)$/, '')}` : '';
    throw new CheckpointError(`${file}: cannot write the checkpoint (${code}); ${existsSync(file) ? 'the previous one is intact' : 'no earlier checkpoint there'}${why}`);
  }
}

/**
 * Reads and verifies one checkpoint; any problem is a CheckpointError naming the file.
 * @example
 * const ck = loadCheckpoint('runs/default/best.safetensors');
 * const model = createModel(ck.meta.arch, ck.meta.modelOptions);
 * model.loadStateDict(ck.model);
 */
export function loadCheckpoint(file: string): LoadedCheckpoint {
  if (!existsSync(file)) throw new CheckpointError(`${file}: no such checkpoint`);
  const { tensors, metadata } = readSafetensors(file);
  const raw = metadata[META_KEY];
  if (raw === undefined) throw new CheckpointError(`${file}: not a resnet-ts training checkpoint (no '${META_KEY}' metadata)`);
  let meta: CheckpointMeta;
  try { meta = JSON.parse(raw) as CheckpointMeta; } catch (e) { throw new CheckpointError(`${file}: its '${META_KEY}' metadata is not JSON (${(e as Error).message})`); }
  if (meta.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${file}: checkpoint format ${meta.format}, this version reads ${CHECKPOINT_FORMAT}`);
  const entries = [...tensors.entries()];
  const want = metadata.sha256;
  const got = digest(entries);
  if (want !== got) throw new CheckpointError(`${file}: corrupt: the sha256 of its tensors is ${got.slice(0, 12)}…, the file says ${String(want).slice(0, 12)}…`);
  const model = new Map<string, NamedArray>();
  const optimEntries = new Map<string, NamedArray>();
  for (const [k, v] of entries) (k.startsWith('optim.') ? optimEntries : model).set(k, v);
  const optim = metadata.optim_layout ? optimizerState(file, metadata, optimEntries, meta) : null;
  return { file, meta, model, optim };
}

/** The optimiser state of a checkpoint: `optim_state` names the kind and the steps; a file
 *  without it is SGD's from before AdamW (momentum buffer `optim.<g>.<p>`, steps = meta.step). */
function optimizerState(file: string, metadata: Record<string, string>, entries: Map<string, NamedArray>, meta: CheckpointMeta): OptimizerState {
  let layout: number[];
  let saved: { kind: string; steps: (number | null)[][] } | null;
  try {
    layout = JSON.parse(metadata.optim_layout) as number[];
    saved = metadata.optim_state ? JSON.parse(metadata.optim_state) as { kind: string; steps: (number | null)[][] } : null;
  } catch (e) {
    throw new CheckpointError(`${file}: its optimiser metadata is not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(layout) || (saved && (!Array.isArray(saved.steps) || saved.steps.length !== layout.length))) {
    throw new CheckpointError(`${file}: its optimiser metadata does not fit together (optim_layout ${metadata.optim_layout}, optim_state ${metadata.optim_state})`);
  }
  const state = layout.map((n, gi) => Array.from({ length: n }, (_, pi) => {
    const prefix = `optim.${gi}.${pi}`;
    const buffers: Record<string, Float32Array> = {};
    for (const [k, a] of entries) {
      if (k.startsWith(`${prefix}.`)) buffers[k.slice(prefix.length + 1)] = a.data as Float32Array;
    }
    if (!saved) {
      const legacy = entries.get(prefix);
      return legacy ? { step: meta.step, buffers: { momentum_buffer: legacy.data as Float32Array } } : null;
    }
    const step = saved.steps[gi]?.[pi] ?? null;
    return step === null ? null : { step, buffers };
  }));
  return { kind: saved?.kind ?? 'sgd', lrs: meta.lrs, state };
}

/**
 * The newest good checkpoint of a run directory: `last`, or `best` when `last` is missing or
 * corrupt (`onMessage` says why). Throws naming both files when neither loads.
 * @example const ck = loadRunCheckpoint('runs/default', (text) => console.warn(text));  // last, or best when last is damaged
 */
export function loadRunCheckpoint(dir: string, onMessage: (text: string) => void = () => {}, prefer: 'last' | 'best' = 'last'): LoadedCheckpoint {
  const order = prefer === 'last' ? [LAST, BEST] : [BEST, LAST];
  const errors: string[] = [];
  for (const name of order) {
    const file = join(dir, name);
    if (!existsSync(file)) { errors.push(`${file}: missing`); continue; }
    try {
      const c = loadCheckpoint(file);
      if (errors.length) onMessage(`${errors.join('; ')}; using ${file} instead`);
      return c;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  throw new CheckpointError(`${dir}: no loadable checkpoint (${errors.join('; ')})`);
}
