// `resnet bench`: the median time of one inference batch or one training step of a network
// on random data (bench/model_bench.ts does the work). Parsing and printing only.

import { InvalidArgumentError } from '../errors.js';
import { BENCH_MODES, benchModel, type BenchMode } from '../bench/model_bench.js';
import { parseInput } from './models.js';
import { precisionOf } from './precision.js';

export interface BenchFlags {
  arch: string;
  batch: string;
  mode: string;
  input?: string;
  classes?: string;
  inChannels?: string;
  runs?: string;
  warmup?: string;
  unfused?: boolean;
  precision?: string;
  json?: boolean;
}

function int(flag: string, v: string, min = 1): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`bench: ${flag} must be an integer >= ${min}, got '${v}'`);
  return Number(v);
}

export function benchCommand(flags: BenchFlags): void {
  if (!BENCH_MODES.includes(flags.mode as BenchMode)) {
    throw new InvalidArgumentError(`bench: --mode must be one of ${BENCH_MODES.join(', ')}, got '${flags.mode}'`);
  }
  const r = benchModel({
    arch: flags.arch,
    batch: int('--batch', flags.batch),
    mode: flags.mode as BenchMode,
    input: flags.input !== undefined ? parseInput(flags.input) : undefined,
    classes: flags.classes !== undefined ? int('--classes', flags.classes) : undefined,
    inChannels: flags.inChannels !== undefined ? int('--in-channels', flags.inChannels) : undefined,
    runs: flags.runs !== undefined ? int('--runs', flags.runs) : undefined,
    warmup: flags.warmup !== undefined ? int('--warmup', flags.warmup, 0) : undefined,
    fused: !flags.unfused,
    precision: precisionOf(flags.precision),
  });
  if (flags.json) {
    const { arch, batch, mode, backend, precision, ms_per_batch, images_per_sec } = r;
    process.stdout.write(`${JSON.stringify({ arch, batch, mode, backend, precision, ms_per_batch, images_per_sec, input: r.input, fused: r.fused, runs_ms: r.runs_ms })}\n`);
    return;
  }
  const path = r.mode === 'train' ? 'training step' : r.fused ? 'fused inference' : 'plain eval forward';
  process.stdout.write(`${r.arch} ${r.mode} batch ${r.batch} at ${r.input.join('x')} (${r.backend}, ${r.precision}, ${path}): ` +
    `${r.ms_per_batch.toFixed(1)} ms per batch, ${r.images_per_sec.toFixed(1)} images/s (median of ${r.runs_ms.length} runs)\n`);
}
