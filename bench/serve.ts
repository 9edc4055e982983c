// Load on `resnet serve` (issue 17): for each arch, the compiled CLI serves random-init
// weights (speed does not depend on the values) on loopback, and autocannon (closed loop,
// bounded in time and count) sends v2 binary tensor requests (one preprocessed image, [1, 3, 224, 224] for ImageNet nets)
// and JPEG requests (/v1 classify, a 640x480 photo-sized JPEG) at each concurrency, with
// batching (--max-batch B) and without (--max-batch 1). Per row: images/s, p50/p99 latency,
// non-2xx, and from /metrics the time split between decoding and compute; beside it
// `resnet bench` at batch B (the served images/s over that ratio is the issue's goal >= 0.9),
// measured right before and right after each batched row (the mean is the row's reference:
// this shared host's speed drifts by +-10% over minutes, so a single measurement at the
// start of an arch's rows biased the ratio by whatever the host did in between).
//   npm run -s bench:serve -- [--archs resnet18,resnet50] [--concurrency 1,8,32] [--duration 10]
//                             [--amount 5000] [--max-batch 16] [--kinds tensor,jpeg] [--out FILE]
//                             [--warmup S] [--streams 1,2] [--max-delay-ms 5] [--batches 16,1]
//                             [--helper-priority normal,idle]
// --streams runs the servers with each of those `resnet serve --streams` (engine threads each
// running its own batch on cores / streams threads); 'engine busy' is then stream-seconds of
// forwards per second (up to the streams).
// Latency is given twice: autocannon's over the whole row, and over the requests that ended
// after a warm-up (steady state: every row starts with all its connections sending at once,
// a burst whose first batch leaves short after the max delay, so the burst's last requests
// wait up to three batch times). The warm-up is --warmup seconds, by default the longer of
// 2 s and four of `resnet bench`'s batch times.
// --helper-priority runs the servers with each of those `resnet serve --helper-priority`.
// --out writes FILE under bench/results/ (default serve_<cpu>.json and .txt), rewritten after
// every row, so a run stopped early keeps the rows it measured.

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { setBackend } from '../src/backend/index.js';
import { writeFilesAtomic } from '../src/io/atomic.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'cli', 'main.js');
const argv = process.argv.slice(2);
const opt = (name: string, def: string) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const list = (name: string, def: string) => opt(name, def).split(',').map((s) => s.trim()).filter(Boolean);
const archs = list('archs', 'resnet18,resnet50');
const concurrency = list('concurrency', '1,8,32').map(Number);
const duration = Number(opt('duration', '10'));
const amount = Number(opt('amount', '5000'));
const maxBatch = Number(opt('max-batch', '16'));
const kinds = list('kinds', 'tensor,jpeg');
const warmupOpt = opt('warmup', '');
const streamsList = list('streams', '1').map(Number);
const helperPriorities = list('helper-priority', 'normal');
const batches = list('batches', `${maxBatch},1`).map(Number); // --max-batch of the servers: batched, and one at a time
const MAX_DELAY_MS = Number(opt('max-delay-ms', '5')); // resnet serve's --max-delay-ms (its default 5)
const cpu = cpus()[0]?.model ?? 'unknown cpu';
const slug = cpu.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '').trim().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
const outBase = opt('out', `serve_${slug}`).replace(/\.(json|txt)$/, '');

interface Row {
  arch: string; kind: string; max_batch: number; streams: number; helper_priority: string; concurrency: number; images_per_sec: number; p50_ms: number; p99_ms: number;
  /** p50 and p99 of the requests that ended after the first `warmup` seconds of the row. */
  p50_steady_ms: number; p99_steady_ms: number; warmup_s: number;
  /** The issue's bound on p99: 2 x (max delay + one batch's forward), with `resnet bench`'s batch time. */
  p99_bound_ms: number | null;
  requests: number; non2xx: number; errors: number; decode_s: number; compute_s: number; mean_batch: number;
  /** `resnet bench` at --max-batch: the mean of the runs right before and right after the row
   *  (batched rows only), and the two. */
  bench_images_per_sec: number | null; bench_before_ips: number | null; bench_after_ips: number | null;
  /** Share of the row's wall time the engine spent in forwards. */
  engine_busy: number;
  /** Mean wall time of one served batch's forward, and `resnet bench`'s at the same batch. */
  batch_ms: number; bench_batch_ms: number | null;
  /** CPU cores used on average by the server process (all its threads) and by this load generator. */
  server_cores: number; client_cores: number;
}

/** User + system CPU seconds of a process so far (/proc/PID/stat, Linux). */
function processCpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

async function startServe(model: string, file: string, batch: number, streams: number, helperPriority: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--model', `${model}=${file}`, '--port', '0', '--max-batch', String(batch), '--max-queue', '1024', '--streams', String(streams), '--max-delay-ms', String(MAX_DELAY_MS), '--helper-priority', helperPriority], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => { out += d; const m = /at (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
    child.on('exit', (c) => reject(new Error(`resnet serve exited with ${c}`)));
  });
  return { url, pid: child.pid!, stop: () => new Promise((r) => { child.on('exit', () => r()); child.kill('SIGTERM'); }) };
}

async function metricSums(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sums: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(resnet_(?:decode_seconds|batch_compute_seconds|batch_size)_(?:sum|count))\{[^}]*\} (\S+)$/.exec(line);
    if (m) sums[m[1]] = (sums[m[1]] ?? 0) + Number(m[2]);
  }
  return sums;
}

/** Runs autocannon; `onResponse` sees each response's latency in ms as it ends. */
function run(opts: autocannon.Options, onResponse?: (ms: number) => void): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    if (onResponse) instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => onResponse(ms));
  });
}

/** The q-quantile (0..1) of `xs` by nearest rank, rounded to 0.1 ms. */
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(10 * s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]) / 10;
}

function benchIps(arch: string, batch: number): number | null {
  try {
    const out = execFileSync(process.execPath, [BIN, 'bench', '--arch', arch, '--batch', String(batch), '--runs', '5', '--json'], { encoding: 'utf8' });
    return (JSON.parse(out.trim().split('\n').pop()!) as { images_per_sec: number }).images_per_sec;
  } catch {
    return null;
  }
}

setBackend('reference'); // this process only makes weights; the servers run oneDNN
const tmp = mkdtempSync(join(tmpdir(), 'resnet-bench-serve-'));
const rows: Row[] = [];
const dir = join(root, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const header = ['arch', 'kind', 'max_batch', 'streams', 'helpers', 'conc', 'img/s', 'p50 ms', 'p99 ms', 'steady p50/p99', 'p99 bound', 'mean batch', 'decode s', 'compute s', 'engine busy', 'batch ms (bench)', 'server cores', 'client cores', 'non2xx', 'vs bench'];
/** Writes every row so far (after each row, so a run stopped early keeps what it measured),
 *  each file replaced atomically. */
function writeResults(): string {
  const lines = rows.map((r) => [r.arch, r.kind, r.max_batch, r.streams, r.helper_priority, r.concurrency, r.images_per_sec.toFixed(1), r.p50_ms, r.p99_ms, `${r.p50_steady_ms}/${r.p99_steady_ms}`, r.p99_bound_ms ?? '-', r.mean_batch.toFixed(1), r.decode_s.toFixed(2), r.compute_s.toFixed(2),
    r.engine_busy.toFixed(2), `${r.batch_ms.toFixed(1)}${r.bench_batch_ms ? ` (${r.bench_batch_ms.toFixed(1)})` : ''}`, r.server_cores.toFixed(2), r.client_cores.toFixed(2), r.non2xx,
    r.bench_images_per_sec ? (r.images_per_sec / r.bench_images_per_sec).toFixed(2) : '-'].join('\t'));
  const text = `resnet serve load, ${cpu}, ${cpus().length} logical CPUs, node ${process.version}, ${new Date().toISOString()}\n` +
    `autocannon closed loop, ${duration} s or ${amount} requests per row; 'vs bench' = served img/s / resnet bench --batch ${maxBatch} img/s (the mean of a bench right before and one right after the row); ` +
    `steady = requests ending after the warm-up (${warmupOpt ? `${warmupOpt} s` : "2 s or four of resnet bench's batches"}); p99 bound = 2 x (${MAX_DELAY_MS} ms max delay + resnet bench's batch ms)\n${header.join('\t')}\n${lines.join('\n')}\n`;
  writeFilesAtomic([
    { path: join(dir, `${outBase}.txt`), chunks: [Buffer.from(text)] },
    { path: join(dir, `${outBase}.json`), chunks: [Buffer.from(`${JSON.stringify({ cpu, cpus: cpus().length, node: process.version, date: new Date().toISOString(), argv, rows }, null, 2)}\n`)] },
  ], 'bench:serve');
  return text;
}
try {
  const px = Buffer.alloc(640 * 480 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 131 + (i >> 9)) & 255;
  const jpeg = await sharp(px, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  for (const arch of archs) {
    const file = join(tmp, `${arch}.safetensors`);
    const m = createModel(arch, { numClasses: 1000, seed: 0 });
    saveWeights(file, m.stateDict(), { arch });
    m.dispose();
    let lastBench = benchIps(arch, maxBatch); // the reference before the next batched row
    const warmup = warmupOpt ? Number(warmupOpt) : Math.max(2, lastBench ? (4 * maxBatch) / lastBench : 2);
    for (const [batch, streams, helpers] of batches.flatMap((b) => streamsList.flatMap((st) => helperPriorities.map((p) => [b, st, p] as const)))) {
      const server = await startServe(arch, file, batch, streams, helpers);
      try {
        // One preprocessed image of the model's input shape (from its v2 metadata).
        const meta = await (await fetch(`${server.url}/v2/models/${arch}`)).json() as { inputs: { shape: number[] }[] };
        const shape = [1, ...meta.inputs[0].shape.slice(1)];
        const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i) * 2);
        const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape, datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
        const tensorBody = Buffer.concat([head, Buffer.from(x.buffer)]);
        for (const kind of kinds) {
          for (const c of concurrency) {
            const opts: autocannon.Options = kind === 'tensor'
              ? { url: `${server.url}/v2/models/${arch}/infer`, method: 'POST', connections: c, duration, maxOverallRequests: amount, body: tensorBody, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) } }
              : { url: `${server.url}/v1/models/${arch}/classify`, method: 'POST', connections: c, duration, maxOverallRequests: amount, body: jpeg, headers: { 'content-type': 'image/jpeg' } };
            // Untimed first: each new batch size creates its oneDNN primitives once. (`amount`
            // counts requests and ignores `duration`; a timed row ends at whichever of its
            // duration and maxOverallRequests comes first.)
            await run({ ...opts, maxOverallRequests: undefined, amount: Math.max(8, 4 * c), duration: 30 });
            const before = await metricSums(server.url);
            const [t0, server0, client0] = [performance.now(), processCpuSeconds(server.pid), process.cpuUsage()];
            const steady: number[] = [];
            const res = await run(opts, (ms) => { if (performance.now() - t0 >= warmup * 1000) steady.push(ms); });
            const wall = (performance.now() - t0) / 1000;
            const serverCpu = processCpuSeconds(server.pid) - server0;
            const clientCpu = process.cpuUsage(client0);
            const after = await metricSums(server.url);
            const d = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
            // Closed loop: c requests always outstanding, so throughput = c / mean latency (Little's
            // law); autocannon's own per-second samples round the run up to whole seconds.
            const okShare = res.requests.total ? (res.requests.total - res.non2xx) / res.requests.total : 0;
            const benchBefore = batch === maxBatch ? lastBench : null;
            const benchAfter = batch === maxBatch ? benchIps(arch, maxBatch) : null; // the server idles meanwhile
            if (benchAfter) lastBench = benchAfter;
            const ref = benchBefore && benchAfter ? (benchBefore + benchAfter) / 2 : (benchBefore ?? benchAfter);
            rows.push({
              arch, kind, max_batch: batch, streams, helper_priority: helpers, concurrency: c, images_per_sec: res.latency.mean > 0 ? (okShare * c * 1000) / res.latency.mean : 0, p50_ms: res.latency.p50, p99_ms: res.latency.p99,
              p50_steady_ms: quantile(steady, 0.5), p99_steady_ms: quantile(steady, 0.99), warmup_s: warmup,
              p99_bound_ms: ref ? Math.round(2 * (MAX_DELAY_MS + (1000 * maxBatch) / ref)) : null,
              requests: res.requests.total, non2xx: res.non2xx, errors: res.errors, decode_s: d('resnet_decode_seconds_sum'), compute_s: d('resnet_batch_compute_seconds_sum'),
              mean_batch: d('resnet_batch_size_count') ? d('resnet_batch_size_sum') / d('resnet_batch_size_count') : 0,
              bench_images_per_sec: ref, bench_before_ips: benchBefore, bench_after_ips: benchAfter,
              engine_busy: d('resnet_batch_compute_seconds_sum') / wall,
              batch_ms: d('resnet_batch_compute_seconds_count') ? (1000 * d('resnet_batch_compute_seconds_sum')) / d('resnet_batch_compute_seconds_count') : 0,
              bench_batch_ms: ref ? (1000 * maxBatch) / ref : null,
              server_cores: serverCpu / wall, client_cores: (clientCpu.user + clientCpu.system) / 1e6 / wall,
            });
            const r = rows[rows.length - 1];
            writeResults();
            process.stderr.write(`${arch} ${kind} max-batch ${batch} streams ${streams} helpers ${helpers} c=${c}: ${r.images_per_sec.toFixed(1)} img/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms (steady ${r.p50_steady_ms}/${r.p99_steady_ms}), mean batch ${r.mean_batch.toFixed(1)}, non-2xx ${r.non2xx}\n`);
          }
        }
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

process.stdout.write(writeResults());
