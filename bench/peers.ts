// resnet-ts against what a user would pick instead, in the same run on the same machine
// (../shared/BENCHMARKS.md): for each case, rounds of ours / onnxruntime-node / PyTorch
// alternating, each a fresh process doing warm-up + timed runs; the median over all timed
// runs of each side, and the ratio ours / peer in images per second (above 1.0: faster).
// Writes bench/results/peers_<cpu>.json and .txt with the CPU model, flags and versions (a
// run of some cases only, `--cases infer|train`, writes peers_<cpu>_<cases>.*: it never
// replaces the full run's files).
// With --precision bf16, ours runs bf16 mixed precision and PyTorch bf16 autocast in channels-
// last (its fast bf16 path); onnxruntime stays fp32 (its CPU provider has no bf16 convolution).
//   node --import tsx bench/peers.ts [--rounds 3] [--runs 5] [--cases infer|train|all] [--threads 2] [--precision fp32|bf16]

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { median } from '../src/bench/model_bench.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

interface Case { arch: string; batch: number; mode: 'infer' | 'train'; input?: string; inChannels?: number; peers: ('ort' | 'torch')[] }

const CASES: Case[] = [
  { arch: 'resnet50', batch: 1, mode: 'infer', peers: ['ort', 'torch'] },
  { arch: 'resnet50', batch: 16, mode: 'infer', peers: ['ort', 'torch'] },
  { arch: 'resnet18', batch: 1, mode: 'infer', peers: ['ort', 'torch'] },
  { arch: 'resnet18', batch: 16, mode: 'train', peers: ['torch'] },
  { arch: 'resnet20', batch: 128, mode: 'train', input: '28x28', inChannels: 1, peers: ['torch'] },
];

const rounds = Number(arg('rounds', '3'));
const runs = arg('runs', '5');
const threads = arg('threads', String(availableParallelism()));
const which = arg('cases', 'all');
if (!['all', 'infer', 'train'].includes(which)) throw new Error(`--cases must be infer, train or all, got '${which}'`);
const precision = arg('precision', 'fp32');
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision must be fp32 or bf16, got '${precision}'`);
const bf16 = precision === 'bf16';
const env = { ...process.env, RESNET_NUM_THREADS: threads, OMP_NUM_THREADS: threads };

function json(cmd: string, args: string[]): { ms_per_batch: number; runs_ms: number[]; [k: string]: unknown } {
  const out = execFileSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

function common(c: Case): string[] {
  const a = ['--arch', c.arch, '--batch', String(c.batch), '--runs', runs];
  if (c.input) a.push('--input', c.input);
  if (c.inChannels) a.push('--in-channels', String(c.inChannels));
  return a;
}

const sides = {
  ours: (c: Case) => json(process.execPath, ['dist/cli/main.js', 'bench', ...common(c), '--mode', c.mode, '--precision', precision, '--json']),
  ort: (c: Case) => json(process.execPath, ['--import', 'tsx', 'bench/peer_ort.ts', ...common(c), '--threads', threads]),
  torch: (c: Case) => json('/usr/bin/python3', ['bench/peer_torch.py', ...common(c), '--mode', c.mode, '--threads', threads,
    ...(bf16 ? ['--bf16', '--channels-last'] : [])]),
};

const cpu = cpus()[0]?.model.trim() ?? 'unknown';
const flags = (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
const isa = ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile'].filter((f) => flags.includes(f));
const info = JSON.parse(execFileSync(process.execPath, ['dist/cli/main.js', 'info', '--json'], { env, encoding: 'utf8' }));
const results: Record<string, unknown>[] = [];
const lines: string[] = [];
const say = (s: string) => { lines.push(s); process.stdout.write(`${s}\n`); };
say(`# resnet-ts vs peers, ${new Date().toISOString()}`);
say(`# CPU: ${cpu} (${cpus().length} logical), ISA flags: ${isa.join(' ') || 'none of avx2/avx512/amx'}; oneDNN ${info.onednn} dispatching to ${info.isa}; threads ${threads}`);
say(`# command: node --import tsx bench/peers.ts ${process.argv.slice(2).join(' ')}`);
say(`# method: ${rounds} rounds alternating ours/peers, each a fresh process (2 warm-up + ${runs} timed runs); medians over all timed runs`);

for (const c of CASES) {
  if (which !== 'all' && which !== c.mode) continue;
  const times: Record<string, number[]> = { ours: [] };
  for (const p of c.peers) times[p] = [];
  const load: number[] = [];
  for (let r = 0; r < rounds; r++) {
    load.push(loadavg()[0]);
    for (const side of ['ours', ...c.peers] as const) times[side].push(...sides[side](c).runs_ms);
  }
  const label = `${c.arch} ${c.mode} batch ${c.batch}${c.input ? ` ${c.inChannels ?? 3}x${c.input}` : ''} ${precision}`;
  const ours = median(times.ours);
  const row: Record<string, unknown> = { case: label, ...c, ours_ms: ours, ours_img_s: (c.batch * 1000) / ours, load: load.map((v) => +v.toFixed(2)) };
  let text = `${label.padEnd(36)} ours ${ours.toFixed(1)} ms (${((c.batch * 1000) / ours).toFixed(1)} img/s)`;
  for (const p of c.peers) {
    const ms = median(times[p]);
    row[`${p}_ms`] = ms;
    row[`ratio_vs_${p}`] = ms / ours;
    text += ` | ${p === 'ort' ? 'onnxruntime' : 'pytorch'} ${ms.toFixed(1)} ms -> ${(ms / ours).toFixed(2)}x`;
  }
  say(`${text}  (load ${load.map((v) => v.toFixed(1)).join('/')})`);
  results.push(row);
}

mkdirSync('bench/results', { recursive: true });
// The model name alone does not tell the kinds apart ("AMD EPYC" is Zen 3 and Zen 5 here).
const family = isa.includes('amx_bf16') ? 'amx' : isa.includes('avx512f') ? 'avx512' : 'avx2';
const slug = `${cpu.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '')}_${family}`;
const name = `peers_${slug}${bf16 ? '_bf16' : ''}${which === 'all' ? '' : `_${which}`}`;
writeFileSync(`bench/results/${name}.json`, `${JSON.stringify({ cpu, isa, onednn: info.onednn, dispatch: info.isa, threads: Number(threads), precision, rounds, runs: Number(runs), date: new Date().toISOString(), results }, null, 1)}\n`);
writeFileSync(`bench/results/${name}.txt`, `${lines.join('\n')}\n`);
