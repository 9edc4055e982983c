// What every study shares: its options, the output directory (earlier results kept unless
// `force`; work goes to `.<out>.partial` beside it, renamed into place only at the end, so a
// failed run leaves earlier results intact, and an interrupted one can `resume` its nets),
// training a net with the study's recipe, loading a trained net from a checkpoint (errors
// name the file), the test batches in memory, and the error of a net under forward options
// (lesion, hooks).
// Not here: what a study measures or draws (one file per study) or the HTML (page.ts).

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CheckpointError, InvalidArgumentError, ResnetError } from '../errors.js';
import { DataLoader } from '../data/loader.js';
import { archInfo, createModel } from '../models/registry.js';
import type { ForwardOptions, ResNet } from '../models/resnet.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import { BEST, LAST, loadCheckpoint, loadRunCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from '../train/checkpoint.js';
import { loadSplits, transformsFor } from '../train/data.js';
import { readMetrics, METRICS, type ClassifierMetrics } from '../train/metrics.js';
import { DEFAULT_CONFIG, Trainer, type ProgressEvent, type TrainConfig } from '../train/trainer.js';
import type { Figure, Table } from './page.js';
import type { Verdict } from './seeds.js';

/** @example const o: StudyOptions = { out: 'studies/lesion', checkpoints: ['runs/r56'], draws: 10 }; */
export interface StudyOptions {
  /** Output directory: results.json, *.svg, *.png, index.html (and runs/ of trained nets). */
  out: string;
  /** Dataset (default fashion-mnist) and its directory. */
  dataset?: string;
  data?: string;
  /** Training recipe: DEFAULT_CONFIG with these. */
  epochs?: number;
  subset?: number;
  testSubset?: number;
  seed?: number;
  /** Train every net once per seed (`--seeds 0,1,2`); runs go to `runs/<label>/seed<S>`. One
   *  seed (or `seed`) keeps the single-seed layout `runs/<label>`. Not with `seed`. */
  seeds?: number[];
  /** The nets to train (each study has its default). */
  archs?: string[];
  /** Trained nets to study instead (lesion, paths, responses): files or run directories, or
   *  a multi-seed study's net directory (`runs/<label>`, holding `seed<S>/`): then the study
   *  runs once per seed, on that seed's checkpoints. */
  checkpoints?: string[];
  /** Random draws per point (lesion: sets of k deleted blocks; paths: sets of k branches). */
  draws?: number;
  /** Replace earlier results in `out` (and discard an interrupted run's work). */
  force?: boolean;
  /** Continue the interrupted run of the same study and recipe: its nets resume from their
   *  last checkpoints in `.<out>.partial`. */
  resume?: boolean;
  /** The command line that made the results (shown on the page); default: rebuilt from the options. */
  command?: string;
  /** Other training settings (batch size, lr, workers, ...). */
  train?: Partial<TrainConfig>;
  onMessage?: (text: string) => void;
  onTrainProgress?: (label: string, e: ProgressEvent) => void;
  signal?: AbortSignal;
}

/** A study's working context: its options and the temp directory it writes to. */
export interface StudyContext {
  /** The options of this seed's run: `seed` is the seed, `checkpoints` this seed's. */
  opts: StudyOptions;
  /** Several seeds: the nets train into `runs/<label>/seed<S>`. */
  multi?: boolean;
  /** The directory being filled (renamed to `opts.out` at the end). */
  dir: string;
  say: (text: string) => void;
}

/** A net trained by a study, as results.json records it. */
export interface TrainedNet {
  label: string;
  arch: string;
  depth: number;
  plain: boolean;
  params: number;
  /** Relative to the study directory: `runs/<label>` (several seeds: `runs/<label>/seed<S>`). */
  runDir: string;
  metrics: { epoch: number; train_err: number; test_err: number; train_loss: number; test_loss: number; seconds: number }[];
  final: { train_err: number; test_err: number };
  secondsPerEpoch: number;
}

/** Where a study's work goes until it is complete: `.<out>.partial` beside `out`. */
export function partialDir(out: string): string {
  const abs = resolve(out);
  return join(dirname(abs), `.${basename(abs)}.partial`);
}

/** The output directory's state: refuses earlier results unless `force`, and an interrupted
 *  run's work unless `resume` (continue it) or `force` (discard it); returns the directory to
 *  fill and whether it holds earlier work. */
export function prepareOutput(out: string, force: boolean, resume = false): { dir: string; resumed: boolean } {
  if (!out) throw new InvalidArgumentError('study: --out DIR (the output directory) is required');
  const abs = resolve(out);
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory()) throw new InvalidArgumentError(`${out}: exists and is not a directory; choose another --out`);
    const held = readdirSync(abs);
    if (held.length && !force) {
      throw new InvalidArgumentError(`${out}: holds earlier results (${held.slice(0, 6).join(', ')}${held.length > 6 ? ', ...' : ''}); they are kept: use --force to replace them or choose another --out`);
    }
  }
  mkdirSync(dirname(abs), { recursive: true });
  const dir = partialDir(out);
  if (existsSync(dir)) {
    if (resume) return { dir, resumed: true };
    if (!force) {
      throw new InvalidArgumentError(`${dir}: holds the work of an interrupted study for ${out} (${readdirSync(dir).slice(0, 6).join(', ')}); use --resume to continue it or --force to discard it`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir);
  return { dir, resumed: false };
}

/** True when a study's directory holds a net's checkpoint worth resuming. */
export function hasResumableWork(dir: string): boolean {
  const runs = join(dir, 'runs');
  const held = (d: string): boolean => existsSync(join(d, LAST)) || existsSync(join(d, BEST));
  return existsSync(runs) && readdirSync(runs).some((r) => held(join(runs, r)) ||
    (statSync(join(runs, r)).isDirectory() && readdirSync(join(runs, r)).some((s) => SEED_DIR.test(s) && held(join(runs, r, s)))));
}

/** A seed's run directory inside a multi-seed net directory. */
export const SEED_DIR = /^seed(\d+)$/;

/** Where a net of the study trains, relative to the study directory. */
export function runDirOf(ctx: StudyContext, label: string): string {
  return ctx.multi ? `runs/${label}/seed${ctx.opts.seed ?? 0}` : `runs/${label}`;
}

/** The seeds a study trains with: `seeds`, or the one `seed` (default the recipe's). */
export function seedsOf(opts: StudyOptions): number[] {
  if (opts.seeds !== undefined) {
    if (opts.seed !== undefined) throw new InvalidArgumentError('study: give --seed S (one seed) or --seeds S1,S2,... (several), not both');
    if (!Array.isArray(opts.seeds) || !opts.seeds.length || opts.seeds.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new InvalidArgumentError(`study: --seeds must list integers >= 0, e.g. 0,1,2; got ${JSON.stringify(opts.seeds)}`);
    }
    const dup = opts.seeds.find((s, i) => opts.seeds!.indexOf(s) !== i);
    if (dup !== undefined) throw new InvalidArgumentError(`study: --seeds names seed ${dup} twice`);
    return [...opts.seeds];
  }
  return [opts.seed ?? DEFAULT_CONFIG.seed];
}

/** A multi-seed study's net directory (no checkpoint of its own, `seed<S>/` run directories
 *  inside): its seeds and their run directories; null for anything else. */
export function seedDirs(path: string): Map<number, string> | null {
  if (!existsSync(path) || !statSync(path).isDirectory() || existsSync(join(path, LAST)) || existsSync(join(path, BEST))) return null;
  const out = new Map<number, string>();
  for (const e of readdirSync(path).sort()) {
    const m = SEED_DIR.exec(e);
    if (m && statSync(join(path, e)).isDirectory()) out.set(Number(m[1]), join(path, e));
  }
  return out.size ? new Map([...out.entries()].sort((a, b) => a[0] - b[0])) : null;
}

/** `--checkpoint`s per seed: every path a multi-seed net directory with the same seeds gives
 *  one list per seed; none gives null (one run on the paths as given); a mix is refused. */
export function checkpointsBySeed(study: string, paths: string[]): Map<number, string[]> | null {
  const dirs = paths.map((p) => [p, seedDirs(p)] as const);
  const multi = dirs.filter(([, d]) => d);
  if (!multi.length) return null;
  const single = dirs.find(([, d]) => !d);
  if (single) throw new InvalidArgumentError(`study ${study}: --checkpoint ${multi[0][0]} holds several seeds (${[...multi[0][1]!.keys()].map((s) => `seed${s}`).join(', ')}) but ${single[0]} is one checkpoint; give all multi-seed net directories or none`);
  const seeds = [...multi[0][1]!.keys()];
  for (const [p, d] of multi) {
    const has = [...d!.keys()];
    if (JSON.stringify(has) !== JSON.stringify(seeds)) throw new InvalidArgumentError(`study ${study}: --checkpoint ${p} holds seeds ${has.join(', ')}, ${multi[0][0]} holds ${seeds.join(', ')}; the nets must share their seeds`);
  }
  return new Map(seeds.map((s) => [s, multi.map(([, d]) => d!.get(s)!)]));
}

/** The training seed the checkpoints share (null when they differ or do not say). */
export function trainingSeed(nets: { meta: CheckpointMeta }[]): number | null {
  const s = [...new Set(nets.map((n) => (n.meta.config as { seed?: unknown } | undefined)?.seed))];
  return s.length === 1 && typeof s[0] === 'number' ? s[0] : null;
}

/** Moves the finished work directory into place (the earlier results go only now). */
export function commitOutput(tmp: string, out: string): void {
  const abs = resolve(out);
  let old: string | null = null;
  if (existsSync(abs)) {
    old = join(dirname(abs), `.${basename(abs)}.old-${process.pid}-${Date.now()}`);
    renameSync(abs, old);
  }
  try {
    renameSync(tmp, abs);
  } catch (e) {
    if (old) renameSync(old, abs);
    throw e;
  }
  if (old) rmSync(old, { recursive: true, force: true });
}

/** The training recipe of a study: DEFAULT_CONFIG with the study's options. */
export function recipe(opts: StudyOptions): TrainConfig {
  const pick = Object.fromEntries(Object.entries({
    dataset: opts.dataset, data: opts.data, epochs: opts.epochs, subset: opts.subset, testSubset: opts.testSubset, seed: opts.seed,
  }).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_CONFIG, dataset: 'fashion-mnist', ...pick, ...(opts.train ?? {}) } as TrainConfig;
}

/** The recipe's settings that results.json and the page show. */
export function recipeSummary(c: TrainConfig): Record<string, unknown> {
  return {
    dataset: c.dataset, data: c.data ?? null, epochs: c.epochs, subset: c.subset ?? null, testSubset: c.testSubset ?? null, seed: c.seed,
    batchSize: c.batchSize, lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay,
    noWdNormBias: c.noWdNormBias === true, schedule: c.schedule, warmup: c.warmup, labelSmoothing: c.labelSmoothing, aug: c.aug,
  };
}

/** Checks arch names against the registry; residual / plain constraints are the study's. */
export function checkArchs(study: string, archs: string[]): void {
  if (!archs.length) throw new InvalidArgumentError(`study ${study}: --archs lists no net`);
  for (const a of archs) archInfo(a);
  const dup = archs.find((a, i) => archs.indexOf(a) !== i);
  if (dup) throw new InvalidArgumentError(`study ${study}: --archs names ${dup} twice`);
}

/** A study stopped by its signal; its nets' checkpoints stay for `resume`. */
export class StudyInterrupted extends ResnetError {
  constructor(message: string) { super('ERR_INTERRUPTED', message); }
}

/** Trains one net with the study's recipe into `<dir>/runs/<label>`. */
export async function trainNet(ctx: StudyContext, label: string, arch: string, extra: Partial<TrainConfig> = {}): Promise<TrainedNet> {
  const runDir = runDirOf(ctx, label);
  const c = { ...recipe(ctx.opts), arch, ...extra, out: join(ctx.dir, runDir) };
  const named = ctx.multi ? `${label} seed ${c.seed}` : label;
  // Resuming: a net with a checkpoint continues from it (a finished one is only read back); a
  // net killed before its first checkpoint starts over.
  const resume = ctx.opts.resume === true && (existsSync(join(c.out, LAST)) || existsSync(join(c.out, BEST)));
  if (resume && finished(c.out, c.epochs)) {
    // NOTE: a finished net is read back without starting its Trainer (which would rewrite
    // its metrics and evaluate it again): --resume of a multi-seed study leaves done seeds as they are.
    ctx.say(`${named}: finished earlier, read back`);
  } else {
    ctx.say(`${resume ? 'resuming' : 'training'} ${named} (${c.epochs} epoch(s) on ${c.subset ?? 'all'} ${c.dataset} images)`);
    const r = await new Trainer(c, {
      onProgress: (e) => ctx.opts.onTrainProgress?.(named, e),
      signal: ctx.opts.signal,
      resume,
      force: !resume,
    }).run();
    if (r.interrupted) {
      throw new StudyInterrupted(`study: interrupted while training ${named}; earlier results in ${ctx.opts.out} are untouched, and the work so far is kept in ${ctx.dir}: continue it with --resume`);
    }
  }
  const m = readMetrics<ClassifierMetrics>(join(c.out, METRICS));
  const info = archInfo(arch);
  const ck = loadRunCheckpoint(c.out, () => {}, 'last');
  const probe = createModel(arch, { ...(ck.meta.modelOptions as object), init: 'none' });
  const params = probe.numParameters();
  probe.dispose();
  const last = m[m.length - 1];
  return {
    label, arch, depth: info.depth, plain: info.plain, params, runDir,
    metrics: m.map((e) => ({ epoch: e.epoch, train_err: e.train_err, test_err: e.test_err, train_loss: e.train_loss, test_loss: e.test_loss, seconds: e.seconds })),
    final: { train_err: last.train_err, test_err: last.test_err },
    secondsPerEpoch: m.reduce((s, e) => s + e.seconds, 0) / Math.max(1, m.length),
  };
}

/** True when a run directory holds a run that finished all `epochs`: its last checkpoint is
 *  at the end of the last epoch and metrics.jsonl has every epoch. */
function finished(dir: string, epochs: number): boolean {
  try {
    const ck = loadRunCheckpoint(dir, () => {}, 'last');
    return ck.file.endsWith(LAST) && ck.meta.loader.batch === 0 && ck.meta.loader.epoch >= epochs && readMetrics(join(dir, METRICS)).length >= epochs;
  } catch {
    return false;
  }
}

/** A trained net ready to study: the model (eval mode) and the test batches in memory. */
export interface StudyNet {
  label: string;
  arch: string;
  depth: number;
  plain: boolean;
  /** The checkpoint file it came from (absolute for user files, relative for the study's own runs). */
  file: string;
  meta: CheckpointMeta;
  model: ResNet;
  batches: TestBatch[];
  numClasses: number;
}

export interface TestBatch { x: Float32Array; y: Int32Array; shape: number[] }

/** Reads a checkpoint (a file, or a run directory's best) as a ResNet; every problem is a
 *  CheckpointError naming the file. */
export function loadNetCheckpoint(path: string, say: (t: string) => void = () => {}): { ck: LoadedCheckpoint; model: ResNet } {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such checkpoint file or run directory`);
  let ck: LoadedCheckpoint;
  try {
    ck = statSync(path).isDirectory() ? loadRunCheckpoint(path, say, 'best') : loadCheckpoint(path);
  } catch (e) {
    if (e instanceof ResnetError) throw e instanceof CheckpointError ? e : new CheckpointError(`${path}: not a resnet-ts training checkpoint (${e.message})`);
    throw new CheckpointError(`${path}: not a resnet-ts training checkpoint (${(e as Error).message})`);
  }
  const meta = ck.meta;
  if (typeof meta.arch !== 'string' || !meta.modelOptions || !meta.config || !meta.input || !meta.norm) {
    throw new CheckpointError(`${ck.file}: not a ResNet training checkpoint (its metadata lacks arch, modelOptions, config, input or norm)`);
  }
  let model: ResNet;
  try {
    model = createModel(meta.arch, meta.modelOptions as object);
  } catch (e) {
    throw new CheckpointError(`${ck.file}: holds '${meta.arch}', which this version cannot build: ${(e as Error).message}`);
  }
  try {
    model.loadStateDict(ck.model);
  } catch (e) {
    model.dispose();
    throw new CheckpointError(`${ck.file}: does not fit ${meta.arch}: ${(e as Error).message}`);
  }
  return { ck, model: model.eval() };
}

/** The test set of a checkpoint's run (or `data`), first `testSubset` images, normalised as
 *  it trained, as batches in memory (studied many times over). */
export async function testBatches(meta: CheckpointMeta, file: string, opts: StudyOptions): Promise<TestBatch[]> {
  const cfg = meta.config as unknown as TrainConfig;
  const { test } = await loadSplits(cfg.dataset, opts.data ?? cfg.data);
  const input = { ...meta.input, ...meta.norm };
  const sample = test as { channels?: number; height?: number; width?: number };
  if (sample.channels !== undefined && (sample.channels !== input.channels || sample.height !== input.height || sample.width !== input.width)) {
    throw new CheckpointError(`${file}: trained on ${input.channels}x${input.height}x${input.width} images, the test set holds ${sample.channels}x${sample.height}x${sample.width}`);
  }
  const loader = new DataLoader(test, {
    batchSize: 250, shuffle: false, subset: opts.testSubset ?? cfg.testSubset, workers: 0, transforms: transformsFor(test, false, cfg.aug, input),
  });
  const out: TestBatch[] = [];
  try {
    for await (const b of loader.epoch(0)) out.push({ x: Float32Array.from(b.x), y: Int32Array.from(b.y), shape: [...b.shape] });
  } finally {
    await loader.close();
  }
  return out;
}

/** Loads a net to study from a checkpoint path, with its test batches. */
export async function studyNet(path: string, label: string, opts: StudyOptions, say: (t: string) => void): Promise<StudyNet> {
  const { ck, model } = loadNetCheckpoint(path, say);
  const info = archInfo(ck.meta.arch);
  return {
    label, arch: ck.meta.arch, depth: info.depth, plain: model.shortcut === 'none', file: ck.file, meta: ck.meta, model,
    batches: await testBatches(ck.meta, ck.file, opts), numClasses: model.numClasses,
  };
}

/** The nets a study looks at: `--checkpoint`s, or `archs` trained here with the recipe. */
export async function netsFor(ctx: StudyContext, study: string, defaultArchs: string[]): Promise<{ nets: StudyNet[]; trained: TrainedNet[] }> {
  const { opts } = ctx;
  const nets: StudyNet[] = [];
  const trained: TrainedNet[] = [];
  if (opts.checkpoints?.length) {
    if (opts.archs?.length) throw new InvalidArgumentError(`study ${study}: give --checkpoint or --archs, not both`);
    const seen = new Map<string, number>();
    for (const p of opts.checkpoints) {
      // Load and check every checkpoint before any long work.
      const n = await studyNet(p, '', opts, ctx.say);
      const k = (seen.get(n.arch) ?? 0) + 1;
      seen.set(n.arch, k);
      n.label = k > 1 ? `${n.arch} (${k})` : n.arch;
      nets.push(n);
    }
    return { nets, trained };
  }
  const archs = opts.archs?.length ? opts.archs : defaultArchs;
  checkArchs(study, archs);
  for (const arch of archs) {
    const t = await trainNet(ctx, arch, arch);
    trained.push(t);
    const n = await studyNet(join(ctx.dir, t.runDir), arch, opts, ctx.say);
    n.file = join(t.runDir, basename(n.file));
    nets.push(n);
  }
  return { nets, trained };
}

/** Top-1 error of a net on its test batches under forward options (a lesion, a hook). */
export function errorOf(net: StudyNet, fwd: ForwardOptions = {}): number {
  let wrong = 0;
  let n = 0;
  for (const b of net.batches) {
    wrong += tidy(() => noGrad(() => {
      const logits = net.model.forward(tensor(b.x, b.shape), fwd).toFloat32Array();
      const K = net.numClasses;
      let w = 0;
      for (let i = 0; i < b.y.length; i++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
        if (best !== b.y[i]) w++;
      }
      return w;
    }));
    n += b.y.length;
  }
  return wrong / Math.max(1, n);
}

/** A shell-safe rendering of an argument list. */
export function shellJoin(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The CLI command equivalent to a study's options (when the caller gave none). */
export function commandOf(study: string, o: StudyOptions): string {
  const a = ['resnet', 'study', study];
  if (o.data) a.push('--data', o.data);
  if (o.epochs !== undefined) a.push('--epochs', String(o.epochs));
  if (o.subset !== undefined) a.push('--subset', String(o.subset));
  if (o.testSubset !== undefined) a.push('--test-subset', String(o.testSubset));
  if (o.seed !== undefined) a.push('--seed', String(o.seed));
  if (o.seeds !== undefined) a.push('--seeds', o.seeds.join(','));
  if (o.archs?.length) a.push('--archs', o.archs.join(','));
  for (const c of o.checkpoints ?? []) a.push('--checkpoint', c);
  if (o.draws !== undefined) a.push('--draws', String(o.draws));
  a.push('--out', o.out);
  if (o.force) a.push('--force');
  return shellJoin(a);
}

/** A seeded choice of k distinct items (Fisher-Yates on a copy). */
export function sample<T>(items: readonly T[], k: number, next: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

export const pct = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(digits)}%`);

/**
 * results.json: the study, how it was made, and its numbers (enough to redraw every plot).
 * @example const { study, results }: StudyDocument = readStudy('studies/lesion');
 */
export interface StudyDocument<R = unknown> {
  format: 1;
  study: string;
  title: string;
  command: string;
  createdAt: string;
  seconds: number;
  /** The recipe; `seed` for one seed, `seeds` for several. */
  setup: Record<string, unknown>;
  /** The first seed's results (all of them for a single-seed study). */
  results: R;
  /** The seeds, in order (absent in documents older than seeds: `[setup.seed]`). */
  seeds?: number[];
  /** Several seeds: every seed's results, in seed order (the first is `results`). */
  bySeed?: SeedRun<R>[];
  /** Per net, each number over the seeds (mean, min, max, 95% interval, n): the study's own shape. */
  aggregate?: unknown;
  /** The seeds' claims this study tests, counted seed by seed. */
  verdicts?: Verdict[];
}

/**
 * One seed's results of a study.
 * @example const runs: SeedRun[] = seedRuns(readStudy('studies/degradation'));
 */
export interface SeedRun<R = unknown> { seed: number | null; results: R }

/**
 * A document's results per seed (an older single-seed document: its one run).
 * @example for (const { seed, results } of seedRuns(readStudy('studies/degradation'))) console.log(seed, results);
 */
export function seedRuns<R>(doc: StudyDocument<R>): SeedRun<R>[] {
  if (doc.bySeed?.length) return doc.bySeed;
  const s = doc.seeds?.[0] ?? doc.setup?.seed;
  return [{ seed: typeof s === 'number' ? s : null, results: doc.results }];
}

/**
 * One study: how to run it and how to show its results.
 * @example
 * const s: Study = getStudy('degradation');
 * console.log(s.name, s.lead);
 */
export interface Study<R = unknown> {
  name: string;
  title: string;
  /** What the figure shows and which seed argument it tests. */
  lead: string;
  /** Options checked before any work (a wrong flag fails at once). */
  check(opts: StudyOptions): void;
  /** One seed's run. */
  run(ctx: StudyContext): Promise<{ setup: Record<string, unknown>; results: R }>;
  /** Plots and tables of one or more seeds' results (several: mean line, min–max band, and
   *  "mean ± half-interval (min–max), n seeds" in the tables). */
  figures(rs: SeedRun<R>[]): Figure[];
  tables(rs: SeedRun<R>[]): Table[];
  /** What came out, measured, in a sentence or two. */
  finding(rs: SeedRun<R>[]): string;
  /** Per net, each number over the seeds (results.json's `aggregate`). */
  aggregate(rs: SeedRun<R>[]): unknown;
  /** The seeds' claims the study tests, each counted over the seeds. */
  verdicts(rs: SeedRun<R>[]): Verdict[];
}

/** Refuses --checkpoint for a study that trains its own nets. */
export function noCheckpoints(study: string, opts: StudyOptions): void {
  if (opts.checkpoints?.length) throw new InvalidArgumentError(`study ${study}: trains its own nets and takes no --checkpoint (lesion, paths and responses do)`);
}

/** The setup line under a study's plots. */
export function setupLine(setup: Record<string, unknown>): string {
  const s = setup as { dataset?: string; epochs?: number; subset?: number | null; testSubset?: number | null; seed?: number | null; seeds?: number[]; batchSize?: number; lr?: number; schedule?: string; aug?: string; checkpoints?: string[] };
  const parts = [`${s.dataset ?? '?'}`];
  const seeds = s.seeds?.length ? `seeds ${s.seeds.join(', ')}` : typeof s.seed === 'number' ? `seed ${s.seed}` : '';
  if (s.checkpoints?.length) parts.push(`checkpoints ${s.checkpoints.join(', ')}${seeds ? ` (${seeds})` : ''}`);
  else parts.push(`${s.epochs} epoch(s) on ${s.subset ?? 'all'} training images, batch ${s.batchSize}, lr ${s.lr} (${s.schedule}), aug ${s.aug}, ${seeds}`);
  parts.push(`tested on ${s.testSubset ?? 'all'} test images`);
  return parts.join('; ');
}
