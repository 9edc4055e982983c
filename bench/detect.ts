// Faster R-CNN inference against torchvision (issue 16's speed figure): resnet50-FPN on a
// photo resized to 800 on its short side, the same weights on both sides (torchvision's
// architecture, weights from the fixture key formula so the RPN and box head do real work),
// rounds alternating ours / PyTorch, each a fresh process (2 warm-up + N timed runs); the
// median of all timed runs per side and the ratio PyTorch ms / ours ms (above 1: faster).
// Writes bench/results/detect_<cpu>.json and .txt.
//   npm run bench:detect -- [--rounds 3] [--runs 5] [--threads 2] [--image F] [--precision fp32|bf16]
// --precision bf16 runs ours in bf16 (autocast: convolutions and the box head's linear layers),
// PyTorch in fp32 as before; the results file is then detect_<cpu>_bf16.*.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from '../src/bench/model_bench.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const rounds = Number(arg('rounds', '3'));
const runs = arg('runs', '5');
const threads = arg('threads', String(availableParallelism()));
const image = arg('image', 'test/fixtures/predict/images/b_517x389.jpg');
const precision = arg('precision', 'fp32');
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`--precision must be fp32 or bf16, got '${precision}'`);
const env = { ...process.env, RESNET_NUM_THREADS: threads, OMP_NUM_THREADS: threads };
const weights = join(tmpdir(), 'resnet-ts-bench-fasterrcnn_resnet50_fpn.pth');

function json(cmd: string, args: string[]): { runs_ms: number[]; detections: number } {
  const out = execFileSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

if (!existsSync(weights)) json('/usr/bin/python3', ['bench/detect_torch.py', '--image', image, '--save', weights]);
const cpu = cpus()[0]?.model.trim() ?? 'unknown';
const flags = (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
const isa = ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'].filter((f) => flags.includes(f));
const lines: string[] = [];
const say = (s: string): void => { lines.push(s); process.stdout.write(`${s}\n`); };
say(`# Faster R-CNN resnet50-FPN inference, ours vs torchvision 0.14 (PyTorch 1.13), ${new Date().toISOString()}`);
say(`# CPU: ${cpu}, ISA flags: ${isa.join(' ')}; threads ${threads}; image ${image} (resized to 800 on the short side)`);
say(`# command: npm run bench:detect -- ${process.argv.slice(2).join(' ')}`);
const times: Record<'ours' | 'torch', number[]> = { ours: [], torch: [] };
const dets: Record<'ours' | 'torch', number> = { ours: 0, torch: 0 };
const load: number[] = [];
for (let r = 0; r < rounds; r++) {
  load.push(loadavg()[0]);
  const o = json(process.execPath, ['--import', 'tsx', 'bench/detect_ours.ts', '--image', image, '--weights', weights, '--runs', runs, '--precision', precision]);
  const t = json('/usr/bin/python3', ['bench/detect_torch.py', '--image', image, '--weights', weights, '--runs', runs, '--threads', threads]);
  times.ours.push(...o.runs_ms);
  times.torch.push(...t.runs_ms);
  dets.ours = o.detections;
  dets.torch = t.detections;
}
const ours = median(times.ours), torch = median(times.torch);
say(`fasterrcnn_resnet50_fpn 1 image: ours (${precision}) ${ours.toFixed(0)} ms (${dets.ours} detections) | pytorch (fp32) ${torch.toFixed(0)} ms (${dets.torch} detections) -> ${(torch / ours).toFixed(2)}x  (load ${load.map((v) => v.toFixed(1)).join('/')})`);
mkdirSync('bench/results', { recursive: true });
const family = isa.includes('amx_bf16') ? 'amx' : isa.includes('avx512f') ? 'avx512' : 'avx2';
const slug = `${cpu.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '')}_${family}${precision === 'bf16' ? '_bf16' : ''}`;
writeFileSync(`bench/results/detect_${slug}.json`, `${JSON.stringify({ cpu, isa, threads: Number(threads), image, rounds, runs: Number(runs), precision, date: new Date().toISOString(), ours_ms: ours, torch_ms: torch, ratio: torch / ours, detections: dets, runs_ms: times, load }, null, 1)}\n`);
writeFileSync(`bench/results/detect_${slug}.txt`, `${lines.join('\n')}\n`);
