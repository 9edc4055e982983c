// Whole-network speed against its limit, measured in the same run (../shared/BENCHMARKS.md,
// issue 13): ours (src/bench/model_bench.ts, in this process) and the bare oneDNN network of
// bench/bare/bare_net.cc (a child process doing the same work with the primitives a
// hand-written oneDNN program would use), alternating ours, bare, ours, bare, ... for
// `--rounds` rounds; each side warms up 2 iterations then times `--runs`. The median of all
// timed runs per side, and the ratio ours / bare in images per second (1.0: ours is at the
// limit). bf16 rows where the bare probe finds a non-reference bf16 convolution; ours' bf16
// counts only if model_bench reports it ran bf16 (else ours_ips is null).
//   npm run -s bench:net -- [--cases resnet50_infer_b1,resnet20_train] [--precision fp32,bf16]
//                        [--rounds 3] [--runs 5] [--threads N] [--json] [--out FILE]
// (-s keeps npm's banner off stdout, so --json output parses.) --out writes FILE (under
// bench/results/ unless it has a directory) with the CPU model and flags, node and oneDNN
// versions, the date, the command and every run. Both sides run with the same threads and
// OpenMP environment (ours sets OMP_WAIT_POLICY=PASSIVE when it loads).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const KNOWN = new Set(['--cases', '--precision', '--rounds', '--runs', '--threads', '--json', '--out']);
for (const a of argv) if (a.startsWith('--') && !KNOWN.has(a)) fail(`unknown option ${a}`);

function opt(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) fail(`--${name} needs a value`);
  return v;
}
function intOpt(name: string, def: number, min: number): number {
  const s = opt(name);
  if (s === undefined) return def;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got '${s}'`);
  return n;
}
function fail(msg: string): never {
  process.stderr.write(`bench:net: ${msg}\n`);
  process.exit(2);
}

const jsonOut = argv.includes('--json');
const say = (s: string): void => { (jsonOut ? process.stderr : process.stdout).write(`${s}\n`); };
const rounds = intOpt('rounds', 3, 1);
const runs = intOpt('runs', 5, 1);
const warmup = 2;
const threads = String(intOpt('threads', availableParallelism(), 1));
// Before the addon loads: ours reads RESNET_NUM_THREADS, libgomp OMP_NUM_THREADS.
process.env.RESNET_NUM_THREADS = threads;
process.env.OMP_NUM_THREADS = threads;

interface Case {
  name: string;
  bare: 'resnet50_infer' | 'resnet18_train' | 'resnet20_train';
  arch: string;
  mode: 'infer' | 'train';
  batch: number;
  input?: [number, number];
  inChannels?: number;
  classes?: number;
}

const CASES: Case[] = [
  { name: 'resnet50_infer_b1', bare: 'resnet50_infer', arch: 'resnet50', mode: 'infer', batch: 1 },
  { name: 'resnet50_infer_b16', bare: 'resnet50_infer', arch: 'resnet50', mode: 'infer', batch: 16 },
  { name: 'resnet18_train_b16', bare: 'resnet18_train', arch: 'resnet18', mode: 'train', batch: 16 },
  { name: 'resnet20_train_b128', bare: 'resnet20_train', arch: 'resnet20', mode: 'train', batch: 128, input: [28, 28], inChannels: 1, classes: 10 },
];

const wanted = opt('cases')?.split(',').map((s) => s.trim()).filter(Boolean);
const cases = wanted ? CASES.filter((c) => wanted.includes(c.name) || wanted.includes(c.bare)) : CASES;
if (wanted) {
  for (const w of wanted) if (!CASES.some((c) => c.name === w || c.bare === w)) fail(`unknown case '${w}'; valid: ${CASES.map((c) => c.name).join(', ')} (or ${[...new Set(CASES.map((c) => c.bare))].join(', ')})`);
}
const precisions = (opt('precision') ?? 'fp32,bf16').split(',').map((s) => s.trim());
for (const p of precisions) if (p !== 'fp32' && p !== 'bf16') fail(`--precision takes fp32 and/or bf16, got '${p}'`);
const precisionExplicit = opt('precision') !== undefined;

// ---- the bare binary: build if missing or older than its source, then probe.
const bin = join(root, 'build', 'bare_net');
const src = join(root, 'bench', 'bare', 'bare_net.cc');
if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
  say('# building build/bare_net (bench/bare/build.sh)');
  try {
    execFileSync(join(root, 'bench', 'bare', 'build.sh'), [bin], { stdio: ['ignore', process.stderr, process.stderr] });
  } catch {
    fail('bench/bare/build.sh failed (needs g++ and libdnnl-dev 2.6)');
  }
}

// bare runs with the OpenMP environment ours ended up with: loading ours' addon sets
// OMP_WAIT_POLICY=PASSIVE unless the user chose a policy (src/backend/native.ts), and with
// libgomp's default spinning bare was 10x slower beside another busy process (460 vs 42 ms,
// resnet50 batch 1). Filled in once ours is loaded, before any timed run.
let env: NodeJS.ProcessEnv = { ...process.env };

interface Probe { isa: string; bf16: boolean; bf16_impl: string; winograd: boolean; threads: number; onednn: string }
function runBare(args: string[]): string {
  try {
    return execFileSync(bin, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error((err.stderr ?? '').trim().split('\n').pop() || err.message);
  }
}
const lastJson = <T>(out: string): T => JSON.parse(out.trim().split('\n').pop() ?? '');
let probe: Probe;
try {
  probe = lastJson<Probe>(runBare(['--probe']));
} catch (e) {
  fail(`bare_net --probe failed: ${(e as Error).message}`);
}

// ---- ours, loaded after the thread variables are set.
const { benchModel, median } = await import('../src/bench/model_bench.js');
const { getBackend } = await import('../src/backend/index.js');
const backendInfo = getBackend().info();
env = { ...process.env };
const waitPolicy = env.OMP_WAIT_POLICY ?? (env.GOMP_SPINCOUNT ? `GOMP_SPINCOUNT=${env.GOMP_SPINCOUNT}` : 'libgomp default');

function lscpu(): { model: string; flags: string } {
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8' });
    const field = (k: string) => out.match(new RegExp(`^${k}:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? 'unknown';
    return { model: field('Model name'), flags: field('Flags') };
  } catch {
    return { model: 'unknown', flags: '' };
  }
}
const cpu = lscpu();
const isaFlags = ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile'].filter((f) => cpu.flags.split(/\s+/).includes(f));

say(`# ours vs bare oneDNN, ${new Date().toISOString()}`);
say(`# CPU: ${cpu.model}; ISA flags: ${isaFlags.join(' ') || 'none of avx2/avx512/amx'}; threads ${threads}, OpenMP wait policy ${waitPolicy} (both sides)`);
say(`# oneDNN: ours ${backendInfo.onednn ?? '(not loaded)'} on ${backendInfo.isa} (${backendInfo.backend} backend), bare ${probe.onednn} on ${probe.isa}; bf16 ${probe.bf16 ? `available (${probe.bf16_impl})` : `unavailable: ${probe.bf16_impl}`}`);
const wino = (on: boolean | undefined) => (on ? 'winograd' : 'direct');
say(`# fp32 3x3 convolutions (inference; training from 64 channels): ours ${wino(backendInfo.winograd)}, bare ${wino(probe.winograd)}${!!backendInfo.winograd !== probe.winograd ? ' (the sides differ: not a like-for-like comparison)' : ''}`);
say(`# method: ${rounds} rounds alternating ours (in process) / bare (child process), each ${warmup} warm-up + ${runs} timed iterations; medians over all timed runs`);

interface Row {
  case: string;
  precision: 'fp32' | 'bf16';
  ours_ips: number | null;
  bare_ips: number | null;
  ratio: number | null;
  isa: string;
  batch: number;
  ours_ms: number | null;
  bare_ms: number | null;
  ours_runs_ms: number[];
  bare_runs_ms: number[];
  bare_impls?: Record<string, number>;
  bare_ref_impls?: string[];
  bare_hot_reorders?: string[];
  bare_loss?: [number, number] | null;
  load: number[];
  notes: string[];
}

interface BareOut { runs_ms: number[]; impls: Record<string, number>; ref_impls: string[]; hot_reorders: string[]; loss_first: number | null; loss_last: number | null }

const results: Row[] = [];
for (const c of cases) {
  for (const precision of precisions as ('fp32' | 'bf16')[]) {
    if (precision === 'bf16' && !probe.bf16) {
      say(`${c.name} bf16: skipped, bf16 unavailable on this CPU (${probe.bf16_impl})`);
      if (precisionExplicit) results.push({ case: c.name, precision, ours_ips: null, bare_ips: null, ratio: null, isa: probe.isa, batch: c.batch, ours_ms: null, bare_ms: null, ours_runs_ms: [], bare_runs_ms: [], load: [], notes: [`bf16 unavailable: ${probe.bf16_impl}`] });
      continue;
    }
    const row: Row = { case: c.name, precision, ours_ips: null, bare_ips: null, ratio: null, isa: probe.isa, batch: c.batch, ours_ms: null, bare_ms: null, ours_runs_ms: [], bare_runs_ms: [], load: [], notes: [] };
    const ours = (n: number, w: number) => benchModel({ arch: c.arch, batch: c.batch, mode: c.mode, input: c.input, inChannels: c.inChannels, classes: c.classes, runs: n, warmup: w, precision });
    let oursOk = true;
    if (precision === 'bf16') {
      // Ours must say it ran bf16; a tree that ignores the option would time fp32.
      try {
        const r = ours(1, 0) as { precision?: string };
        if (r.precision !== 'bf16') { oursOk = false; row.notes.push('ours: benchModel does not report running bf16 (option ignored in this tree)'); }
      } catch (e) {
        oursOk = false;
        row.notes.push(`ours: ${(e as Error).message}`);
      }
    }
    let bareOk = true;
    for (let r = 0; r < rounds; r++) {
      row.load.push(+loadavg()[0].toFixed(2));
      if (oursOk) {
        try {
          row.ours_runs_ms.push(...ours(runs, warmup).runs_ms);
        } catch (e) {
          oursOk = false;
          row.notes.push(`ours: ${(e as Error).message}`);
        }
      }
      if (bareOk) {
        try {
          const b = lastJson<BareOut>(runBare(['--case', c.bare, '--batch', String(c.batch), '--precision', precision, '--warmup', String(warmup), '--iters', String(runs), '--json']));
          row.bare_runs_ms.push(...b.runs_ms);
          row.bare_impls = b.impls;
          row.bare_ref_impls = b.ref_impls;
          row.bare_hot_reorders = b.hot_reorders;
          row.bare_loss = b.loss_first === null || b.loss_last === null ? null : [b.loss_first, b.loss_last];
        } catch (e) {
          bareOk = false;
          row.notes.push(`bare: ${(e as Error).message}`);
        }
      }
    }
    if (row.ours_runs_ms.length) { row.ours_ms = median(row.ours_runs_ms); row.ours_ips = (c.batch * 1000) / row.ours_ms; }
    if (row.bare_runs_ms.length) { row.bare_ms = median(row.bare_runs_ms); row.bare_ips = (c.batch * 1000) / row.bare_ms; }
    if (row.ours_ips !== null && row.bare_ips !== null) row.ratio = row.ours_ips / row.bare_ips;
    for (const r of row.bare_ref_impls ?? []) row.notes.push(`bare on a reference kernel: ${r}`);
    const side = (ms: number | null) => (ms === null ? 'n/a'.padStart(22) : `${ms.toFixed(1).padStart(8)} ms ${((c.batch * 1000) / ms).toFixed(1).padStart(7)} img/s`);
    say(`${c.name.padEnd(20)} ${precision}  ours ${side(row.ours_ms)} | bare ${side(row.bare_ms)} | ours/bare ${row.ratio === null ? 'n/a' : row.ratio.toFixed(2)}  (load ${row.load.join('/')})${row.notes.length ? `\n    ${row.notes.join('\n    ')}` : ''}`);
    results.push(row);
  }
}

if (jsonOut) {
  process.stdout.write(`${JSON.stringify(results.map((r) => ({ case: r.case, precision: r.precision, ours_ips: r.ours_ips, bare_ips: r.bare_ips, ratio: r.ratio, isa: r.isa })))}\n`);
}

const out = opt('out');
if (out) {
  const file = out.includes('/') ? out : join(root, 'bench', 'results', out);
  mkdirSync(dirname(file), { recursive: true });
  const doc = {
    date: new Date().toISOString(),
    command: `npm run bench:net -- ${argv.join(' ')}`,
    cpu: { model: cpu.model, flags: cpu.flags, isa_flags: isaFlags },
    node: process.version,
    onednn: { ours: backendInfo.onednn, ours_isa: backendInfo.isa, bare: probe.onednn, bare_isa: probe.isa },
    bf16: { available: probe.bf16, impl: probe.bf16_impl },
    winograd: { ours: !!backendInfo.winograd, bare: probe.winograd },
    threads: Number(threads),
    omp_wait_policy: waitPolicy,
    method: { rounds, runs, warmup, order: 'ours (in process, benchModel) then bare (child process) each round', statistic: 'median of all timed runs per side; ratio = ours_ips / bare_ips' },
    results,
  };
  writeFileSync(file, `${JSON.stringify(doc, null, 1)}\n`);
  say(`# wrote ${file}`);
}
