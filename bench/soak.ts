// Soak and overload of `resnet serve` (issue 17). Serves a small random-init net through the
// compiled CLI on loopback and:
//   1. soak: --requests (default 20000) requests at --concurrency (default 16), a tenth of
//      them bad (truncated JPEG, empty body, a PNG whose header says 20000x20000, wrong
//      content type, malformed v2 JSON), the rest good JPEG/PNG classify and v2 JSON infer
//      requests. Every request must be answered: good ones 200, bad ones 4xx naming why,
//      never a 5xx or a dropped connection; the server's resident memory (VmRSS) is sampled
//      every 500 requests and must stay flat (the last quarter's mean within --rss-slack MB
//      of the second quarter's).
//   2. overload: a server with --max-queue 2 and --max-batch 1 gets 64 concurrent requests:
//      some must be refused with 503 + Retry-After, and every accepted one must carry the
//      same top class as the quiet server gave for that image.
// Prints one summary and writes bench/results/soak_<cpu>.json; exits 1 if a check fails.
//   npm run -s bench:soak -- [--requests 20000] [--concurrency 16] [--arch resnet20] [--rss-slack 64]

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { setBackend } from '../src/backend/index.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'dist', 'cli', 'main.js');
const argv = process.argv.slice(2);
const opt = (name: string, def: string) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const total = Number(opt('requests', '20000'));
const concurrency = Number(opt('concurrency', '16'));
const arch = opt('arch', 'resnet20');
const rssSlackMb = Number(opt('rss-slack', '64'));
const cpu = cpus()[0]?.model ?? 'unknown cpu';
const slug = cpu.toLowerCase().replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '').trim().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');

interface Server { url: string; child: ChildProcess; stderr: () => string; stop: () => Promise<number | string | null> }

async function startServe(file: string, extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--model', `m=${file}`, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err = (err + d).slice(-2000); });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => { out += d; const m = /at (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
    child.on('exit', (c) => reject(new Error(`resnet serve exited with ${c}`)));
  });
  return { url, child, stderr: () => err, stop: () => new Promise((r) => { child.on('exit', (c, sig) => r(c ?? sig)); child.kill('SIGTERM'); }) };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A valid small PNG whose IHDR is rewritten to say width x height (CRC fixed): a pixel bomb in ~70 bytes. */
function pngClaiming(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

interface Req { name: string; path: string; body: Buffer | string; type: string; good: boolean; image?: number }

async function send(url: string, r: Req): Promise<{ status: number; body: string; retryAfter: string | null }> {
  const res = await fetch(url + r.path, { method: 'POST', body: typeof r.body === 'string' ? r.body : new Uint8Array(r.body), headers: { 'content-type': r.type } });
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

function topIndex(body: string): number {
  const j = JSON.parse(body) as { top: { index: number }[] };
  return j.top[0].index;
}

async function main(): Promise<void> {
  setBackend('reference');
  const tmp = mkdtempSync(join(tmpdir(), 'resnet-soak-'));
  const file = join(tmp, `${arch}.safetensors`);
  saveWeights(file, createModel(arch, { numClasses: 10, seed: 0 }).stateDict(), { arch });

  const images: Buffer[] = [];
  for (const [w, h, seed] of [[320, 240, 1], [200, 300, 2], [160, 120, 3], [96, 96, 4]]) {
    const px = Buffer.alloc(w * h * 3);
    let s = seed;
    for (let i = 0; i < px.length; i++) { s = (s * 1103515245 + 12345) >>> 0; px[i] = (s >>> 16) & 255; }
    const img = sharp(px, { raw: { width: w, height: h, channels: 3 } }).blur(2);
    images.push(seed % 2 ? await img.jpeg({ quality: 85 }).toBuffer() : await img.png().toBuffer());
  }
  const tinyPng = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).png().toBuffer();
  const jsonInfer = (img: Buffer) => JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [img.toString('base64')] }], outputs: [{ name: 'probabilities', parameters: { classification: 1 } }] });

  const good: Req[] = [
    ...images.map((b, i) => ({ name: `classify image ${i}`, path: '/v1/models/m/classify?top=1', body: b, type: i % 2 ? 'image/png' : 'image/jpeg', good: true, image: i })),
    { name: 'v2 json infer', path: '/v2/models/m/infer', body: jsonInfer(images[3]), type: 'application/json', good: true },
  ];
  const bad: Req[] = [
    { name: 'truncated JPEG', path: '/v1/models/m/classify', body: images[0].subarray(0, images[0].length >> 1), type: 'image/jpeg', good: false },
    { name: 'empty body', path: '/v1/models/m/classify', body: Buffer.alloc(0), type: 'image/jpeg', good: false },
    { name: '20000x20000 PNG', path: '/v1/models/m/classify', body: pngClaiming(tinyPng, 20000, 20000), type: 'image/png', good: false },
    { name: 'wrong content type', path: '/v1/models/m/classify', body: 'hello', type: 'text/plain', good: false },
    { name: 'malformed JSON', path: '/v2/models/m/infer', body: '{"inputs": [', type: 'application/json', good: false },
  ];

  const failures: string[] = [];
  const counts = { sent: 0, ok: 0, rejected: 0 };
  const byStatus = new Map<string, number>();
  const rss: number[] = [];
  const server = await startServe(file, ['--max-batch', '16', '--max-queue', '1024']);
  const expected = new Map<number, number>();
  for (const r of good) if (r.image !== undefined) expected.set(r.image, topIndex((await send(server.url, r)).body));
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const r = i % 10 === 9 ? bad[(i / 10 | 0) % bad.length] : good[i % good.length];
      let res;
      try { res = await send(server.url, r); } catch (e) {
        failures.push(`request ${i} (${r.name}): no answer: ${(e as Error).message}`);
        continue;
      }
      counts.sent++;
      byStatus.set(`${r.name} ${res.status}`, (byStatus.get(`${r.name} ${res.status}`) ?? 0) + 1);
      if (r.good && res.status === 200) {
        counts.ok++;
        if (r.image !== undefined && topIndex(res.body) !== expected.get(r.image)) failures.push(`request ${i} (${r.name}): top class changed`);
      } else if (!r.good && res.status >= 400 && res.status < 500 && /"error"/.test(res.body)) counts.rejected++;
      else failures.push(`request ${i} (${r.name}): status ${res.status}: ${res.body.slice(0, 200)}`);
      if (i % 500 === 0) rss.push(rssMb(server.child.pid!));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  rss.push(rssMb(server.child.pid!));
  const q = Math.floor(rss.length / 4);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
  const rssQ2 = mean(rss.slice(q, 2 * q));
  const rssQ4 = mean(rss.slice(3 * q));
  if (!(rssQ4 - rssQ2 <= rssSlackMb)) failures.push(`resident memory grew: second quarter ${rssQ2.toFixed(0)} MB, last quarter ${rssQ4.toFixed(0)} MB (slack ${rssSlackMb} MB)`);
  const exit = await server.stop();
  if (exit !== 0) failures.push(`soak server exited with ${exit} on SIGTERM; its stderr ends: ${server.stderr().slice(-600)}`);

  // Overload: a queue of 2, one request per batch, 64 at once.
  const small = await startServe(file, ['--max-batch', '1', '--max-queue', '2']);
  const burst = await Promise.all(Array.from({ length: 64 }, (_, i) => send(small.url, good[i % 4]).then((r) => ({ r, i }))));
  let accepted = 0, refused = 0;
  for (const { r, i } of burst) {
    if (r.status === 200) {
      accepted++;
      if (topIndex(r.body) !== expected.get(i % 4)) failures.push(`overload request ${i}: top class changed`);
    } else if (r.status === 503 && r.retryAfter !== null) refused++;
    else failures.push(`overload request ${i}: status ${r.status} (retry-after ${r.retryAfter}): ${r.body.slice(0, 200)}`);
  }
  if (refused === 0) failures.push('overload: no request was refused with 503 + Retry-After');
  await small.stop();
  rmSync(tmp, { recursive: true, force: true });

  const result = {
    cpu, arch, requests: total, concurrency, seconds: Number(seconds.toFixed(1)), requests_per_sec: Number((counts.sent / seconds).toFixed(1)),
    answered: counts.sent, good_ok: counts.ok, bad_rejected: counts.rejected,
    rss_mb: { first: Number(rss[0].toFixed(0)), second_quarter_mean: Number(rssQ2.toFixed(0)), last_quarter_mean: Number(rssQ4.toFixed(0)), max: Number(Math.max(...rss).toFixed(0)) },
    statuses: Object.fromEntries([...byStatus].sort()), overload: { sent: 64, accepted, refused_503: refused },
    failures: failures.slice(0, 20), failure_count: failures.length,
  };
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `soak_${slug}.json`), `${JSON.stringify(result, null, 1)}\n`);
  console.log(JSON.stringify(result, null, 1));
  console.log(failures.length === 0 ? 'soak: all checks passed' : `soak: ${failures.length} checks failed`);
  process.exit(failures.length === 0 ? 0 : 1);
}

await main();
