// Whole-network speed: the median time of one inference batch (the BN-folded, fused path of
// models/fused.ts, or the plain eval forward) or one training step (forward, cross-entropy,
// backward, SGD with momentum 0.9 and weight decay 1e-4) on random data, after warm-up.
// What `resnet bench` prints and bench/peers.ts compares with onnxruntime and PyTorch.
// Not here: the peers, or any judgement of the numbers.

import { performance } from 'node:perf_hooks';
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import { InvalidArgumentError } from '../errors.js';
import { archInfo, createModel } from '../models/registry.js';
import { fuseForInference } from '../models/fused.js';
import { SGD } from '../optim/sgd.js';
import { noGrad } from '../tensor/autograd.js';
import { crossEntropy } from '../tensor/ops/loss.js';
import { randn, Rng } from '../tensor/random.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';

export const BENCH_MODES = ['infer', 'train'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

export interface ModelBenchOptions {
  arch: string;
  batch: number;
  mode: BenchMode;
  /** [H, W]; default 224x224 for the ImageNet family, 32x32 for CIFAR nets. */
  input?: [number, number];
  classes?: number;
  inChannels?: number;
  /** Timed runs (default 10) after `warmup` untimed ones (default 2). */
  runs?: number;
  warmup?: number;
  /** Inference through the fused, BN-folded net (default) or the plain eval forward. */
  fused?: boolean;
  /** Arithmetic of the run: fp32 (default) or bf16 mixed precision (not implemented here yet). */
  precision?: 'fp32' | 'bf16';
  backend?: Backend;
}

export interface ModelBenchResult {
  arch: string;
  batch: number;
  mode: BenchMode;
  backend: string;
  input: [number, number];
  fused: boolean;
  ms_per_batch: number;
  images_per_sec: number;
  /** Every timed run, in ms, in order. */
  runs_ms: number[];
}

function positive(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`bench: ${what} must be an integer >= 1, got ${String(v)}`);
  return v;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Times `opts.runs` batches of `opts.arch`; see the file header. */
export function benchModel(opts: ModelBenchOptions): ModelBenchResult {
  if (!BENCH_MODES.includes(opts.mode)) throw new InvalidArgumentError(`bench: unknown mode '${String(opts.mode)}'; valid: ${BENCH_MODES.join(', ')}`);
  const info = archInfo(opts.arch);
  const batch = positive('batch', opts.batch);
  const runs = positive('runs', opts.runs ?? 10);
  const warmup = opts.warmup ?? 2;
  if (!Number.isInteger(warmup) || warmup < 0) throw new InvalidArgumentError(`bench: warmup must be an integer >= 0, got ${String(warmup)}`);
  const input = opts.input ?? (info.family === 'imagenet' ? [224, 224] : [32, 32]);
  const backend = opts.backend ?? getBackend();
  const model = createModel(opts.arch, { numClasses: opts.classes, inChannels: opts.inChannels, backend, seed: 0 });
  const classes = model.numClasses;
  const rng = new Rng(1);
  const x = randn([batch, model.inChannels, input[0], input[1]], rng, { backend });
  const labels = tensor(Int32Array.from({ length: batch }, (_, i) => i % classes), [batch], { dtype: 'int32', backend });
  const fused = opts.mode === 'infer' && (opts.fused ?? true);
  const times: number[] = [];
  let step: () => void;
  let release = (): void => {};
  if (opts.mode === 'train') {
    model.train();
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    step = () => {
      tidy(() => {
        const loss = crossEntropy(model.forward(x), labels);
        loss.backward();
        loss.item();
      });
      opt.step();
      opt.zeroGrad();
    };
  } else if (fused) {
    model.eval();
    const net = fuseForInference(model);
    release = () => net.dispose();
    step = () => tidy(() => { net.forward(x).toFloat32Array(); });
  } else {
    model.eval();
    step = () => tidy(() => { noGrad(() => model.forward(x)).toFloat32Array(); });
  }
  try {
    for (let i = 0; i < warmup + runs; i++) {
      const t0 = performance.now();
      step();
      if (i >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    release();
    x.dispose();
    labels.dispose();
    model.dispose();
  }
  const ms = median(times);
  return {
    arch: opts.arch, batch, mode: opts.mode, backend: backend.name, input, fused,
    ms_per_batch: ms, images_per_sec: (batch * 1000) / ms, runs_ms: times,
  };
}
