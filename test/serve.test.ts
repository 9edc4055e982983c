// `resnet serve`: the batcher and the protocol reader/writer without HTTP; then one server in
// this process (token, CORS, small limits) for every endpoint, the Open Inference Protocol's
// JSON and binary forms (the spec's examples, and a round trip through a small v2 client
// written here from the spec, checked against the model run directly), bad requests of each
// kind, batching and a full queue; then the compiled CLI as a child on --port 0 for the URL
// it prints, two --model flags, no CORS by default, and a SIGTERM drain (a request in flight is answered, exit 0).
// Model: a random-init resnet20 saved with its metadata (32x32 input, 10 named classes).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { setBackend } from '../src/backend/index.js';
import { loadModel } from '../src/infer/load.js';
import { preprocessImage } from '../src/infer/preprocess.js';
import { saveWeights } from '../src/io/weights.js';
import { createModel } from '../src/models/index.js';
import { noGrad } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/scope.js';
import { tensor } from '../src/tensor/tensor.js';
import { Batcher } from '../src/serve/batcher.js';
import { HttpError } from '../src/serve/http_error.js';
import { encodeInferResponse, parseInferRequest } from '../src/serve/protocol.js';
import { startServer, type RunningServer } from '../src/serve/server.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const TOKEN = 'sekrit-token';
const ORIGIN = 'http://app.example';
const LABELS = Array.from({ length: 10 }, (_, i) => `class-${i}`);
const ROW = 3 * 32 * 32;

let dir: string;
let weights: string;
let jpeg: Buffer;
let png: Buffer;
let server: RunningServer;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function noise(w: number, h: number, seed: number): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) { s = (s * 1103515245 + 12345) >>> 0; px[i] = s >>> 24; }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

// ---- a v2 client written from the spec (kserve required_api.md, Triton binary extension) ----

interface V2Tensor { name: string; shape: number[]; datatype: string; data: number[] | string[] }

/** POSTs an infer request; inputs given as Float32Array go in the binary part. */
async function v2Infer(base: string, model: string, inputs: { name: string; shape: number[]; datatype: string; data: Float32Array | number[] | Buffer[] | string[] }[],
  outputs: { name: string; binary?: boolean; classification?: number }[] | undefined, id?: string): Promise<{ status: number; id?: string; outputs: V2Tensor[]; error?: string }> {
  const blobs: Buffer[] = [];
  const head: Record<string, unknown> = {
    inputs: inputs.map((t) => {
      if (t.data instanceof Float32Array) {
        const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        blobs.push(b);
        return { name: t.name, shape: t.shape, datatype: t.datatype, parameters: { binary_data_size: b.length } };
      }
      if (t.datatype === 'BYTES' && Buffer.isBuffer(t.data[0])) {
        // Each element: its length as uint32 little-endian, then its bytes.
        const b = Buffer.concat((t.data as Buffer[]).flatMap((e) => { const l = Buffer.alloc(4); l.writeUInt32LE(e.length); return [l, e]; }));
        blobs.push(b);
        return { name: t.name, shape: t.shape, datatype: t.datatype, parameters: { binary_data_size: b.length } };
      }
      return { name: t.name, shape: t.shape, datatype: t.datatype, data: t.data };
    }),
  };
  if (id !== undefined) head.id = id;
  if (outputs) head.outputs = outputs.map((o) => ({ name: o.name, parameters: { binary_data: o.binary === true, ...(o.classification ? { classification: o.classification } : {}) } }));
  const json = Buffer.from(JSON.stringify(head));
  const headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` };
  let body: Buffer = json;
  if (blobs.length) {
    body = Buffer.concat([json, ...blobs]);
    headers['Content-Type'] = 'application/octet-stream';
    headers['Inference-Header-Content-Length'] = String(json.length);
  } else {
    headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${base}/v2/models/${model}/infer`, { method: 'POST', headers, body });
  const raw = Buffer.from(await res.arrayBuffer());
  const hl = res.headers.get('inference-header-content-length');
  const jsonEnd = hl === null ? raw.length : Number(hl);
  const doc = JSON.parse(raw.subarray(0, jsonEnd).toString('utf8'));
  if (res.status !== 200) return { status: res.status, outputs: [], error: doc.error };
  let at = jsonEnd;
  const outs = (doc.outputs as { name: string; shape: number[]; datatype: string; data?: number[]; parameters?: { binary_data_size?: number } }[]).map((o) => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return { name: o.name, shape: o.shape, datatype: o.datatype, data: o.data! };
    const chunk = raw.subarray(at, at + size);
    at += size;
    if (o.datatype === 'FP32') {
      const f: number[] = [];
      for (let i = 0; i < size; i += 4) f.push(chunk.readFloatLE(i));
      return { name: o.name, shape: o.shape, datatype: o.datatype, data: f };
    }
    const strings: string[] = [];
    for (let p = 0; p < chunk.length;) { const l = chunk.readUInt32LE(p); strings.push(chunk.subarray(p + 4, p + 4 + l).toString('utf8')); p += 4 + l; }
    return { name: o.name, shape: o.shape, datatype: o.datatype, data: strings };
  });
  assert.equal(at, raw.length, 'binary outputs cover the body exactly');
  return { status: res.status, id: doc.id, outputs: outs };
}

const auth = { Authorization: `Bearer ${TOKEN}` };

async function post(path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { ...auth, ...headers }, body });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}

async function metric(base: string, name: string, headers: Record<string, string> = auth): Promise<string[]> {
  const text = await (await fetch(`${base}/metrics`, { headers })).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

/**
 * Sends `bodies` to `path` as concurrent requests whose headers all reach the server (counted
 * as on their way to `model`'s queue) before any body is sent, so they must meet in the queue
 * even on a loaded machine; resolves with each response's status and parsed JSON body.
 */
async function headersFirst(base: string, model: string, path: string, bodies: Buffer[], headers: Record<string, string>, expect = bodies.length): Promise<{ status: number; json: any }[]> {
  const u = new URL(base);
  const onTheWay = async () => Number((await metric(base, `resnet_requests_arriving{model="${model}"}`, headers))[0]?.split(' ')[1] ?? NaN);
  const requests = bodies.map((body) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'POST', headers: { ...headers, 'Content-Length': String(body.length) } });
    const answer = new Promise<{ status: number; json: any }>((resolve, reject) => {
      req.on('response', (res) => {
        let t = '';
        res.setEncoding('latin1');
        res.on('data', (d) => { t += d; });
        res.on('end', () => { let json: unknown = null; try { json = JSON.parse(t); } catch { /* binary */ } resolve({ status: res.statusCode!, json }); });
      });
      req.on('error', reject);
    });
    req.flushHeaders();
    return { req, answer };
  });
  for (const deadline = Date.now() + 10_000; (await onTheWay()) < expect;) {
    assert.ok(Date.now() < deadline, `the server counted ${await onTheWay()} of ${expect} requests on their way after 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  requests.forEach(({ req }, i) => req.end(bodies[i]));
  const answers = await Promise.all(requests.map((r) => r.answer));
  assert.equal(await onTheWay(), 0, 'no request is left counted as on its way');
  return answers;
}

before(async () => {
  // NOTE: the native backend lives on one thread per process, here the server's engine
  // thread; this thread computes the expected values on the reference backend.
  setBackend('reference');
  dir = mkdtempSync(join(tmpdir(), 'resnet-serve-'));
  weights = join(dir, 'r20.safetensors');
  const m = createModel('resnet20', { numClasses: 10, seed: 3 });
  saveWeights(weights, m.stateDict(), { arch: 'resnet20', labels: LABELS, inputSize: [32, 32] });
  m.dispose();
  png = await noise(48, 40, 1);
  jpeg = await sharp(await noise(64, 48, 2)).jpeg().toBuffer();
  server = await startServer({
    models: [{ name: 'r20', options: { weights } }], port: 0, token: TOKEN, cors: ORIGIN, precision: 'fp32',
    maxBatch: 8, maxDelayMs: 40, maxQueue: 4, timeoutMs: 10000, bodyLimit: 256 * 1024, maxPixels: 100_000, decodeThreads: 1,
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Batcher', () => {
  const opts = { maxBatch: 4, maxDelayMs: 20, maxQueue: 8, timeoutMs: 1000, name: 'm' };

  test('takes up to maxBatch rows per batch, in order; a larger request runs alone', async () => {
    const seen: number[][] = [];
    const b = new Batcher<number, number>(opts, async (xs) => { seen.push(xs); return xs.map((x) => x * 10); });
    const r = await Promise.all([1, 2, 3, 4, 5].map((x) => b.submit(x)));
    assert.deepEqual(r.map((d) => d.result), [10, 20, 30, 40, 50]);
    assert.deepEqual(seen, [[1, 2, 3, 4], [5]]);
    assert.equal(r[0].batchRows, 4);
    const big = await b.submit(9, 6);
    assert.equal(big.batchRows, 6);
    await b.drained();
  });

  test('a full queue refuses with 503 and Retry-After; a request past its deadline is dropped uncomputed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const ran: number[] = [];
    const b = new Batcher<number, number>({ ...opts, maxBatch: 1, maxDelayMs: 0, maxQueue: 1, timeoutMs: 50 }, async (xs) => { ran.push(...xs); await gate; return xs; });
    const first = b.submit(1);          // runs (and waits on the gate)
    await new Promise((r) => setImmediate(r));
    const second = b.submit(2);         // queued
    await assert.rejects(b.submit(3), (e: unknown) => e instanceof HttpError && e.status === 503 && e.headers['Retry-After'] === '1' && /queue full .*--max-queue 1/.test(e.message));
    await assert.rejects(second, (e: unknown) => e instanceof HttpError && e.status === 503 && /dropped uncomputed/.test(e.message));
    release();
    assert.equal((await first).result, 1);
    await b.drained();
    assert.deepEqual(ran, [1], 'the timed-out request never ran');
  });

  test('concurrency 2 runs two batches at once, a third waits for one of them', async () => {
    const gates: (() => void)[] = [];
    const started: number[][] = [];
    const b = new Batcher<number, number>({ ...opts, maxBatch: 2, concurrency: 2 }, async (xs) => {
      started.push(xs);
      await new Promise<void>((r) => gates.push(r));
      return xs;
    });
    const all = [1, 2, 3, 4, 5, 6].map((x) => b.submit(x));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [[1, 2], [3, 4]], 'two batches running, the rest queued');
    assert.equal(b.depth, 2);
    gates.shift()!();
    await all[0];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [[1, 2], [3, 4], [5, 6]], 'the third leaves when a batch ends');
    while (gates.length) gates.shift()!();
    assert.deepEqual((await Promise.all(all)).map((d) => d.result), [1, 2, 3, 4, 5, 6]);
    await b.drained();
    assert.throws(() => new Batcher({ ...opts, concurrency: 0 }, async () => []), /concurrency/);
  });

  test('with arrivals, a short batch waits only while requests are on their way', async () => {
    let coming = 1;
    const seen: number[][] = [];
    const b = new Batcher<number, number>({ ...opts, maxDelayMs: 60_000, arrivals: () => coming }, async (xs) => { seen.push(xs); return xs; });
    const first = b.submit(1);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, [], 'one more is on its way: the batch waits');
    coming = 0;
    const second = b.submit(2);  // the one that was coming: nothing else is, so both leave now
    assert.deepEqual((await Promise.all([first, second])).map((d) => d.result), [1, 2]);
    assert.deepEqual(seen, [[1, 2]]);
    coming = 1;
    const third = b.submit(3);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.length, 1);
    coming = 0;
    b.nudge();  // the request that was coming failed before it was submitted
    assert.equal((await third).result, 3);
    await b.drained();
  });

  test('lookahead 1: a full batch is handed over while one runs, a short one waits for a free slot; queue time ends when run says compute began', async () => {
    const gates: (() => void)[] = [];
    const started: number[][] = [];
    const b = new Batcher<number, number>({ ...opts, maxBatch: 2, lookahead: 1 }, async (xs) => {
      started.push(xs);
      await new Promise<void>((r) => gates.push(r));
      // As an engine thread does: the batch's own compute time, shorter than the time it was held.
      return { results: xs.map((x) => x * 10), computeMs: 0.5 };
    });
    const all = [1, 2, 3, 4, 5].map((x) => b.submit(x));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [[1, 2], [3, 4]], 'the second (full) batch is handed over at once; [5] is short and waits');
    assert.equal(b.depth, 1);
    await new Promise((r) => setTimeout(r, 30));
    gates.shift()!();
    const first = await all[0];
    assert.equal(first.computeMs, 0.5, "run's own compute time");
    assert.ok(first.queueMs >= 25, `queue time runs until compute began (${first.queueMs} ms)`);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [[1, 2], [3, 4]], 'past its delay, the short batch still waits while the handed-over one holds the slot');
    gates.shift()!();
    await all[2];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [[1, 2], [3, 4], [5]], 'then it goes');
    gates.shift()!();
    assert.deepEqual((await Promise.all(all)).map((d) => d.result), [10, 20, 30, 40, 50]);
    await b.drained();
    assert.throws(() => new Batcher({ ...opts, lookahead: -1 }, async () => []), /'lookahead' must be an integer >= 0, got -1/);
    assert.throws(() => new Batcher({ ...opts, lookahead: 0.5 }, async () => []), /lookahead/);
  });

  test('rejects bad limits', () => {
    assert.throws(() => new Batcher({ ...opts, maxBatch: 0 }, async () => []), /maxBatch/);
    assert.throws(() => new Batcher({ ...opts, maxDelayMs: -1 }, async () => []), /maxDelayMs/);
  });
});

describe('protocol (no HTTP)', () => {
  test("the spec's JSON request example is read; its UINT32/BOOL inputs are refused naming what is served", () => {
    const spec = { id: '42', inputs: [{ name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] }, { name: 'input1', shape: [3], datatype: 'BOOL', data: [true] }], outputs: [{ name: 'output0' }] };
    assert.throws(() => parseInferRequest(Buffer.from(JSON.stringify(spec))), (e: unknown) => e instanceof HttpError && e.status === 400 && /input 'input0'.*UINT32.*FP32 tensors and BYTES/.test(e.message));
    const fp32 = { ...spec, inputs: [{ name: 'input0', shape: [2, 2], datatype: 'FP32', data: [[1, 2], [3, 4]] }] };
    const r = parseInferRequest(Buffer.from(JSON.stringify(fp32)));
    assert.equal(r.id, '42');
    assert.deepEqual(Array.from(r.inputs[0].data as Float32Array), [1, 2, 3, 4]);
    assert.deepEqual(r.outputs, [{ name: 'output0', binary: false, classification: 0 }]);
  });

  test("the binary extension example: JSON header, then input0's 16 bytes; outputs binary where asked", () => {
    const head = Buffer.from(JSON.stringify({
      model_name: 'mymodel',
      inputs: [{ name: 'input0', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: 16 } }],
      outputs: [{ name: 'output0', parameters: { binary_data: true } }, { name: 'output1' }],
    }));
    const data = Buffer.from(new Float32Array([1.5, -2, 3.25, 4]).buffer);
    const body = Buffer.concat([head, data]);
    const r = parseInferRequest(body, head.length);
    assert.deepEqual(Array.from(r.inputs[0].data as Float32Array), [1.5, -2, 3.25, 4]);
    // The bytes as sent, a view into the body (the engine copies them once, into its batch).
    assert.equal(r.inputs[0].bytes!.buffer, body.buffer);
    assert.deepEqual(Buffer.from(r.inputs[0].bytes!), data);
    assert.deepEqual(r.outputs!.map((o) => o.binary), [true, false]);
    // The response example: output0 binary (16 bytes... here 24 for [3, 2]), output1 as JSON.
    const enc = encodeInferResponse({ model_name: 'mymodel', outputs: [
      { name: 'output0', datatype: 'FP32', shape: [3, 2], data: new Float32Array([1, 1.1, 2, 2.1, 3, 3.1]), binary: true },
      { name: 'output1', datatype: 'FP32', shape: [2, 2], data: new Float32Array([0, 1, 2, 3]), binary: false },
    ] });
    assert.equal(enc.contentType, 'application/octet-stream');
    const json = JSON.parse(enc.body.subarray(0, enc.headerLength).toString());
    assert.deepEqual(json.outputs[0], { name: 'output0', datatype: 'FP32', shape: [3, 2], parameters: { binary_data_size: 24 } });
    assert.deepEqual(json.outputs[1].data, [0, 1, 2, 3]);
    assert.equal(enc.body.length, enc.headerLength! + 24);
    assert.ok(Math.abs(enc.body.readFloatLE(enc.headerLength! + 4) - 1.1) < 1e-6);
  });

  test('refusals name the input and what was expected', () => {
    const p = (o: unknown, hl?: number) => () => parseInferRequest(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)), hl);
    assert.throws(p('{"inputs": ['), /malformed JSON/);
    assert.throws(p({ inputs: [] }), /non-empty array/);
    assert.throws(p({ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1] }] }), /'data' has 1 elements, its shape needs 2/);
    assert.throws(p({ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1, 'a'] }] }), /must hold numbers/);
    assert.throws(p({ inputs: [{ name: 'x', shape: [-1], datatype: 'FP32', data: [] }] }), /non-negative integers/);
    assert.throws(p({ inputs: [{ name: 'x', shape: [1], datatype: 'FP33', data: [1] }] }), /'datatype' must be one of/);
    assert.throws(p({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }), /needs the binary extension/);
    assert.throws(p({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, 60), /./);
    assert.throws(p({ inputs: [{ name: 'x', shape: [100000, 100000], datatype: 'FP32', data: [1] }] }), /more than the \d+-byte JSON can hold/);
    // Deep nesting is walked without recursion.
    const deep = `${'['.repeat(20000)}1${']'.repeat(20000)}`;
    assert.throws(p(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":${deep}}]}`), /has 1 elements|JSON/);
  });
});

describe('server (in process)', () => {
  test('health, server and model metadata, model list, config, ready', async () => {
    const live = await fetch(`${server.url}/v2/health/live`);
    assert.equal(live.status, 200);
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200, 'health needs no token');
    const meta = await (await fetch(`${server.url}/v2`, { headers: auth })).json();
    assert.equal(meta.name, 'resnet-ts');
    assert.ok(meta.extensions.includes('binary_tensor_data'));
    const models = await (await fetch(`${server.url}/v2/models`, { headers: auth })).json();
    assert.deepEqual(models.models.map((m: { name: string }) => m.name), ['r20']);
    const m = await (await fetch(`${server.url}/v2/models/r20`, { headers: auth })).json();
    assert.deepEqual(m.inputs[0], { name: 'input', datatype: 'FP32', shape: [-1, 3, 32, 32] });
    assert.deepEqual(m.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape]), [['logits', [-1, 10]], ['probabilities', [-1, 10]], ['embedding', [-1, 64]]]);
    assert.deepEqual(await (await fetch(`${server.url}/v2/models/r20/versions/1`, { headers: auth })).json(), m);
    assert.equal((await fetch(`${server.url}/v2/models/r20/ready`, { headers: auth })).status, 200);
    assert.equal((await fetch(`${server.url}/v2/models/r20/versions/2/ready`, { headers: auth })).status, 404);
    const cfg = await (await fetch(`${server.url}/v2/models/r20/config`, { headers: auth })).json();
    assert.equal(cfg.max_batch_size, 8);
    const nf = await fetch(`${server.url}/v2/models/nope`, { headers: auth });
    assert.equal(nf.status, 404);
    assert.match((await nf.json()).error, /unknown model 'nope'; loaded: r20/);
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/app.js"><\/script>/);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.equal((await fetch(`${server.url}/app.js`)).status, 200);
    const missing = await fetch(`${server.url}/../../etc/passwd`, { headers: auth });
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).error, /no route/);
  });

  test('v2 round trip (binary and JSON) matches the model run directly; BYTES images match /v1 classify and embed', async () => {
    const loaded = await loadModel({ weights });
    const x = new Float32Array(2 * ROW);
    x.set((await preprocessImage(png, loaded.preprocess)).data, 0);
    x.set((await preprocessImage(jpeg, loaded.preprocess)).data, ROW);
    const want = tidy(() => noGrad(() => loaded.model.forward(tensor(x, [2, 3, 32, 32])).toArray() as Float32Array));
    const wantEmb = tidy(() => noGrad(() => loaded.model.features(tensor(x, [2, 3, 32, 32])).embedding.toArray() as Float32Array));
    loaded.model.dispose();

    const bin = await v2Infer(server.url, 'r20', [{ name: 'input', shape: [2, 3, 32, 32], datatype: 'FP32', data: x }],
      [{ name: 'logits', binary: true }, { name: 'probabilities', classification: 3 }, { name: 'embedding', binary: true }], 'req-7');
    assert.equal(bin.status, 200, bin.error);
    assert.equal(bin.id, 'req-7');
    const [logits, cls, emb] = bin.outputs;
    assert.deepEqual(logits.shape, [2, 10]);
    assert.ok(maxDiff(logits.data as number[], want) < 1e-3, `logits differ by ${maxDiff(logits.data as number[], want)}`);
    assert.ok(maxDiff(emb.data as number[], wantEmb) < 1e-3);
    assert.deepEqual(cls.shape, [2, 3]);
    assert.equal(cls.datatype, 'BYTES');
    const best = (cls.data as string[])[0].split(':');
    const argmax = Array.from(want.subarray(0, 10)).indexOf(Math.max(...want.subarray(0, 10)));
    assert.equal(Number(best[1]), argmax);
    assert.equal(best[2], LABELS[argmax]);

    const js = await v2Infer(server.url, 'r20', [{ name: 'input', shape: [1, 3, 32, 32], datatype: 'FP32', data: Array.from(x.subarray(0, ROW)) }], undefined);
    assert.equal(js.status, 200, js.error);
    assert.deepEqual(js.outputs.map((o) => o.name), ['logits', 'probabilities', 'embedding'], 'outputs omitted: all of them');
    assert.ok(maxDiff(js.outputs[0].data as number[], want.subarray(0, 10)) < 1e-3);
    const probs = js.outputs[1].data as number[];
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);

    const img = await v2Infer(server.url, 'r20', [{ name: 'image', shape: [2], datatype: 'BYTES', data: [png, jpeg] }], [{ name: 'logits' }]);
    assert.equal(img.status, 200, img.error);
    assert.ok(maxDiff(img.outputs[0].data as number[], want) < 1e-3, 'encoded images are preprocessed as preprocessImage does');
    const imgJson = await v2Infer(server.url, 'r20', [{ name: 'image', shape: [1], datatype: 'BYTES', data: [png.toString('base64')] }], [{ name: 'logits' }]);
    assert.equal(imgJson.status, 200, imgJson.error);
    assert.ok(maxDiff(imgJson.outputs[0].data as number[], want.subarray(0, 10)) < 1e-3);

    const c = await post('/v1/models/r20/classify?top=3', png, { 'Content-Type': 'image/png' });
    assert.equal(c.status, 200, JSON.stringify(c.json));
    assert.equal(c.json.top.length, 3);
    assert.equal(c.json.top[0].index, argmax);
    assert.equal(c.json.top[0].label, LABELS[argmax]);
    for (const k of ['decode', 'queue', 'compute', 'total']) assert.equal(typeof c.json.ms[k], 'number', k);
    const form = new FormData();
    form.append('image', new Blob([jpeg], { type: 'image/jpeg' }), 'x.jpg');
    const mp = await fetch(`${server.url}/v1/models/r20/embed`, { method: 'POST', headers: auth, body: form });
    const e = await mp.json();
    assert.equal(mp.status, 200, JSON.stringify(e));
    assert.deepEqual(e.shape, [64]);
    assert.ok(maxDiff(e.embedding, wantEmb.subarray(64, 128)) < 1e-3, 'multipart embed is the model\'s pooled features');
  });

  test('bad requests get the right status and a message', async () => {
    const json = { 'Content-Type': 'application/json' };
    const cases: [string, Buffer | string, Record<string, string>, number, RegExp][] = [
      ['/v2/models/r20/infer', '{"inputs": [', json, 400, /malformed JSON/],
      ['/v2/models/r20/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 16, 16], datatype: 'FP32', data: new Array(768).fill(0) }] }), json, 400, /shape \[1, 3, 16, 16\].*takes \[N, 3, 32, 32\]/],
      ['/v2/models/r20/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1], datatype: 'INT32', data: [1] }] }), json, 400, /INT32 is not served/],
      ['/v2/models/r20/infer', JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'FP32', data: [1] }] }), json, 400, /'image' must be BYTES/],
      ['/v2/models/r20/infer', JSON.stringify({ inputs: [{ name: 'pixels', shape: [1], datatype: 'FP32', data: [1] }] }), json, 400, /unknown input 'pixels'/],
      ['/v2/models/r20/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 32, 32], datatype: 'FP32', data: new Array(ROW).fill(0) }], outputs: [{ name: 'softmax' }] }), json, 400, /unknown output 'softmax'.*logits, probabilities, embedding/],
      ['/v2/models/r20/infer', '{"inputs":[]}', { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': '999' }, 400, /Inference-Header-Content-Length/],
      ['/v2/models/nope/infer', '{}', json, 404, /unknown model 'nope'/],
      ['/v1/models/r20/classify', Buffer.from('definitely not an image'), {}, 400, /image: cannot decode image/],
      ['/v1/models/r20/classify', jpeg.subarray(0, 200), { 'Content-Type': 'image/jpeg' }, 400, /image: cannot decode image/],
      ['/v1/models/r20/classify', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), {}, 400, /GIF.*accepted formats: jpeg, png, webp|gif/i],
      ['/v1/models/r20/classify', Buffer.alloc(0), {}, 400, /empty body/],
      ['/v1/models/r20/classify?top=0', png, {}, 400, /'top' must be an integer from 1 to 10/],
      ['/v1/models/r20/classify', Buffer.alloc(300 * 1024, 1), {}, 413, /over the limit of 262144 bytes/],
    ];
    for (const [path, body, headers, status, re] of cases) {
      const r = await post(path, body, headers);
      assert.equal(r.status, status, `${path} ${String(body).slice(0, 60)}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error, re);
    }
    const big = await sharp(await noise(400, 300, 5)).png().toBuffer(); // 120000 px > --max-pixels 100000
    const r = await post('/v1/models/r20/classify', big);
    assert.equal(r.status, 400);
    assert.match(r.json.error, /400x300.*larger than limitInputPixels = 100000/);
    const form = new FormData();
    form.append('image', new Blob([Buffer.alloc(300 * 1024, 2)]), 'big.jpg');
    const mp = await fetch(`${server.url}/v1/models/r20/classify`, { method: 'POST', headers: auth, body: form });
    assert.equal(mp.status, 413);
    const none = new FormData();
    none.append('note', 'no file');
    const nf = await fetch(`${server.url}/v1/models/r20/classify`, { method: 'POST', headers: auth, body: none });
    assert.equal(nf.status, 400);
    assert.match((await nf.json()).error, /no file/);
  });

  test('token: 401 without or with a wrong bearer token; health and the page are open', async () => {
    const no = await fetch(`${server.url}/v2/models`);
    assert.equal(no.status, 401);
    assert.equal(no.headers.get('www-authenticate'), 'Bearer');
    assert.match((await no.json()).error, /Authorization: Bearer/);
    const wrong = await fetch(`${server.url}/v1/models/r20/classify`, { method: 'POST', headers: { Authorization: 'Bearer nope' }, body: png });
    assert.equal(wrong.status, 401);
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.url}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${server.url}/`)).status, 200);
  });

  test('CORS: the allowed origin gets the headers (and a preflight without token); another origin gets none', async () => {
    const pre = await fetch(`${server.url}/v1/models/r20/classify`, { method: 'OPTIONS', headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(pre.headers.get('access-control-allow-headers')!, /Authorization/);
    const ok = await fetch(`${server.url}/v2/models`, { headers: { ...auth, Origin: ORIGIN } });
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
    const other = await fetch(`${server.url}/v2/models`, { headers: { ...auth, Origin: 'http://evil.example' } });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('concurrent requests are batched (batch-size histogram shows a batch of more than one)', async () => {
    // Four requests whose headers reach the server before any body: a short batch waits for
    // requests on their way, so the four must share batches. (Sent with fetch they could
    // reach a loaded machine one by one, each run alone before the next arrives.)
    const x = new Float32Array(ROW).fill(0.5);
    const counts = async () => ({
      one: Number((await metric(server.url, 'resnet_batch_size_bucket{le="1",model="r20"}'))[0]?.split(' ')[1] ?? 0),
      all: Number((await metric(server.url, 'resnet_batch_size_count{model="r20"}'))[0]?.split(' ')[1] ?? 0),
    });
    const before = await counts();
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 32, 32], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', binary: true }] }));
    const body = Buffer.concat([head, Buffer.from(x.buffer)]);
    const answers = await headersFirst(server.url, 'r20', '/v2/models/r20/infer', [body, body, body, body],
      { ...auth, 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) });
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
    const now = await counts();
    const batches = now.all - before.all;
    const single = now.one - before.one;
    assert.ok(batches < 4 && batches > single, `4 single-row requests (--max-queue 4) ran in ${batches} batches, ${single} of one row`);
    const text = await (await fetch(`${server.url}/metrics`, { headers: auth })).text();
    for (const name of ['resnet_http_requests_total{route="/v2/models/:name/infer",method="POST",status="200"}', 'resnet_queue_wait_seconds_bucket', 'resnet_batch_compute_seconds_bucket',
      'resnet_request_duration_seconds_bucket', 'resnet_decode_seconds_bucket', 'resnet_queue_depth{model="r20"}', 'resnet_requests_arriving{model="r20"}', 'resnet_images_total{model="r20"}']) {
      assert.ok(text.includes(name), `metrics have ${name}`);
    }
  });

  test('bodies read into reused memory never mix: concurrent binary requests of distinct inputs, round after round, each get their own logits', async () => {
    const n = 8; // 8 rows of 3x32x32 floats: a 98 KB body, pooled
    const loaded = await loadModel({ weights });
    const reusedBefore = server.bodies.stats.reused;
    try {
      for (let round = 0; round < 3; round++) {
        const xs = Array.from({ length: 3 }, (_, k) => Float32Array.from({ length: n * ROW }, (_, i) => Math.sin(i * (0.37 + 0.11 * k) + round)));
        const got = await Promise.all(xs.map((x) => inferLogits(server.url, x, n, auth)));
        xs.forEach((x, k) => {
          const want = tidy(() => noGrad(() => loaded.model.forward(tensor(x, [n, 3, 32, 32])).toArray() as Float32Array));
          assert.ok(maxDiff(got[k], want) < 1e-3, `round ${round} request ${k}: logits differ by ${maxDiff(got[k], want)}`);
        });
      }
    } finally {
      loaded.model.dispose();
    }
    assert.ok(server.bodies.stats.reused > reusedBefore, 'later rounds read into the memory of earlier ones');

    // A chunked body (no Content-Length) is gathered instead, with the same answer; a client
    // that stops mid-body and hangs up leaves the server serving.
    const x = Float32Array.from({ length: n * ROW }, (_, i) => Math.cos(i * 0.05));
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [n, 3, 32, 32], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits' }] }));
    const body = Buffer.concat([head, Buffer.from(x.buffer)]);
    const u = new URL(server.url);
    const headers = { ...auth, 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) };
    const chunked = await new Promise<{ status: number; json: { outputs: { data: number[] }[]; error?: string } }>((resolve, reject) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: '/v2/models/r20/infer', method: 'POST', headers: { ...headers, 'Transfer-Encoding': 'chunked' } }, (res) => {
        let t = '';
        res.on('data', (d) => { t += d; });
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(t) }));
      });
      req.on('error', reject);
      for (let at = 0; at < body.length; at += 40_000) req.write(body.subarray(at, at + 40_000));
      req.end();
    });
    assert.equal(chunked.status, 200, chunked.json.error);
    const loaded2 = await loadModel({ weights });
    const want = tidy(() => noGrad(() => loaded2.model.forward(tensor(x, [n, 3, 32, 32])).toArray() as Float32Array));
    loaded2.model.dispose();
    assert.ok(maxDiff(chunked.json.outputs[0].data, want) < 1e-3);
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: '/v2/models/r20/infer', method: 'POST', headers: { ...headers, 'Content-Length': String(body.length) } });
      req.on('error', () => resolve());
      req.write(body.subarray(0, 30_000), () => setTimeout(() => { req.destroy(); resolve(); }, 50));
    });
    const after = await fetch(`${server.url}/v2/health/ready`);
    assert.equal(after.status, 200, 'still serving after a client hung up mid-body');
  });

  test('a lone request does not wait out the max delay; concurrent ones still batch', async () => {
    const slow = await startServer({ models: [{ name: 'r20', options: { weights } }], port: 0, precision: 'fp32', maxBatch: 8, maxDelayMs: 5000, decodeThreads: 1 });
    try {
      const one = await (await fetch(`${slow.url}/v1/models/r20/classify`, { method: 'POST', body: png })).json();
      assert.ok(one.ms.queue < 2500, `queued ${one.ms.queue} ms with nothing else on its way (max delay 5000)`);
      const many = (await headersFirst(slow.url, 'r20', '/v1/models/r20/classify', Array.from({ length: 6 }, () => png), {})).map((a) => a.json);
      assert.ok(many.some((r) => r.batch > 1), `batches of ${many.map((r) => r.batch).join(', ')}`);
      assert.ok(many.every((r) => r.ms.queue < 2500), `queued ${many.map((r) => r.ms.queue).join(', ')} ms`);
      // A request that fails before its queue (a body that is no image) is no longer waited for.
      const bad = await fetch(`${slow.url}/v1/models/r20/classify`, { method: 'POST', body: Buffer.from('not an image') });
      assert.equal(bad.status, 400);
      const after = await (await fetch(`${slow.url}/v1/models/r20/classify`, { method: 'POST', body: png })).json();
      assert.ok(after.ms.queue < 2500, `queued ${after.ms.queue} ms after a failed request`);
    } finally {
      await slow.close();
    }
  });

  test('streams: two engine threads of one OpenMP thread each answer concurrent requests as the model does', async () => {
    const two = await startServer({ models: [{ name: 'r20', options: { weights } }], port: 0, precision: 'fp32', maxBatch: 2, maxDelayMs: 1, decodeThreads: 1, threads: 2, streams: 2 });
    const loaded = await loadModel({ weights });
    try {
      assert.equal(two.engine.streams, 2);
      assert.equal(two.engine.threads, 1, 'two threads split between two streams');
      const n = 2;
      const xs = Array.from({ length: 8 }, (_, k) => Float32Array.from({ length: n * ROW }, (_, i) => Math.sin(i * (0.21 + 0.07 * k))));
      const got = await Promise.all(xs.map((x) => inferLogits(two.url, x, n)));
      xs.forEach((x, k) => {
        const want = tidy(() => noGrad(() => loaded.model.forward(tensor(x, [n, 3, 32, 32])).toArray() as Float32Array));
        assert.ok(maxDiff(got[k], want) < 1e-3, `request ${k}: logits differ by ${maxDiff(got[k], want)}`);
      });
      const res = await fetch(`${two.url}/v1/models/r20/classify`, { method: 'POST', body: png });
      assert.equal(res.status, 200);
    } finally {
      loaded.model.dispose();
      await two.close();
    }
    await assert.rejects(startServer({ models: [{ name: 'r20', options: { weights } }], port: 0, streams: 0 }), /'streams' must be an integer >= 1, got 0/);
  });

  test('a full queue answers 503 with Retry-After; every accepted request is answered correctly', async () => {
    const n = 16; // rows per request: more than --max-batch 8, so each runs alone and the queue (4) fills
    const x = new Float32Array(n * ROW).fill(0.25);
    const rs = await Promise.all(Array.from({ length: 24 }, () => fetchBinary(x, n)));
    const codes = rs.map((r) => r.status);
    assert.ok(codes.includes(503), `some 503 in ${codes.join(',')}`);
    assert.ok(codes.includes(200));
    assert.ok(codes.every((c) => c === 200 || c === 503), codes.join(','));
    for (const r of rs) if (r.status === 503) { assert.equal(r.retryAfter, '1'); assert.match(r.error!, /queue full/); }
  });
});

/** The logits of r20 for n rows `x` ([n, 3, 32, 32]) sent as a v2 binary tensor request; asserts a 200. */
async function inferLogits(url: string, x: Float32Array, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [n, 3, 32, 32], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits' }] }));
  const res = await fetch(`${url}/v2/models/r20/infer`, {
    method: 'POST', headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) },
    body: Buffer.concat([head, Buffer.from(x.buffer)]),
  });
  const j = await res.json();
  assert.equal(res.status, 200, j.error);
  return j.outputs[0].data as number[];
}

async function fetchBinary(x: Float32Array, n: number): Promise<{ status: number; retryAfter: string | null; error?: string }> {
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [n, 3, 32, 32], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits' }] }));
  const res = await fetch(`${server.url}/v2/models/r20/infer`, {
    method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length) },
    body: Buffer.concat([head, Buffer.from(x.buffer)]),
  });
  const j = await res.json();
  if (res.status === 200) assert.deepEqual(j.outputs[0].shape, [n, 10]);
  return { status: res.status, retryAfter: res.headers.get('retry-after'), error: j.error };
}

test('the engine thread gets passive OpenMP waits unless the user chose: set on the main thread, as libgomp reads the C environment', async () => {
  // A worker thread's process.env is a copy native code never sees, so the engine thread's
  // own preferPassiveOpenMp() cannot reach libgomp; Engine.start sets it on the main thread.
  // A child process whose main thread never loads the addon (as `resnet serve`'s does not).
  const script = `
    const { Engine } = await import(${JSON.stringify(join(ROOT, 'src', 'serve', 'engine.ts'))});
    const before = process.env.OMP_WAIT_POLICY ?? null;
    const e = await Engine.start({ models: [{ name: 'r20', options: { weights: ${JSON.stringify(weights)} } }], precision: 'fp32' },
      { maxBatch: 2, maxDelayMs: 1, maxQueue: 4, timeoutMs: 60000 });
    console.log(JSON.stringify({ before, after: process.env.OMP_WAIT_POLICY ?? null, spin: process.env.GOMP_SPINCOUNT ?? null }));
    await e.close();`;
  const run = (env: NodeJS.ProcessEnv) => new Promise<{ before: string | null; after: string | null; spin: string | null }>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => { err += d; });
    p.on('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').pop() ?? '')); } catch { reject(new Error(`exit ${code}: ${err || out}`)); }
    });
  });
  const base = { ...process.env, RESNET_NUM_THREADS: '1' };
  delete base.OMP_WAIT_POLICY;
  delete base.GOMP_SPINCOUNT;
  assert.deepEqual(await run(base), { before: null, after: 'PASSIVE', spin: null });
  assert.deepEqual(await run({ ...base, GOMP_SPINCOUNT: '10000' }), { before: null, after: null, spin: '10000' }, 'a user-set spin count is left alone');
});

describe('resnet serve (the CLI as a child process)', () => {
  let child: ChildProcess;
  let url = '';
  let stderr = '';

  after(() => { if (child && child.exitCode === null) child.kill('SIGKILL'); });

  test('--port 0 prints the URL; --threads sets the engine\'s threads; no CORS headers unless --cors; bad flags say what is valid', async () => {
    child = spawn(process.execPath, [BIN, 'serve', '--model', `tiny=${weights}`, '--model', `second=${weights}`, '--port', '0', '--precision', 'fp32', '--decode-threads', '1', '--threads', '1'], { env: { ...process.env, RESNET_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d) => { stderr += d; });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => { out += d; const m = /serving tiny, second at (http:\/\/127\.0\.0\.1:\d+)/.exec(out); if (m) resolve(m[1]); });
      child.on('exit', (c) => reject(new Error(`exited ${c}: ${stderr}`)));
    });
    assert.match(stderr, /resnet: engine: 1 compute thread \(--threads\)/, 'the flag over RESNET_NUM_THREADS=2');
    const r = await fetch(`${url}/v2/models`, { headers: { Origin: ORIGIN } });
    assert.equal(r.status, 200, 'no token: open');
    assert.deepEqual((await r.json()).models.map((m: { name: string }) => m.name), ['tiny', 'second']);
    assert.equal((await fetch(`${url}/v1/models/second/classify`, { method: 'POST', body: png })).status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.equal((await fetch(`${url}/v2/models`, { method: 'OPTIONS', headers: { Origin: ORIGIN } })).status, 404);
    const bad = spawn(process.execPath, [BIN, 'serve', '--model', 'nameonly', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let berr = '';
    bad.stderr!.on('data', (d) => { berr += d; });
    const code = await new Promise((r) => bad.on('exit', r));
    assert.equal(code, 1);
    assert.match(berr, /resnet: --model must be NAME=WEIGHTS/);
  });

  test('--helper-priority idle: every thread but the HTTP thread and the compute threads gets SCHED_IDLE; requests are answered; a bad value says what is valid', { skip: process.platform !== 'linux' && 'SCHED_IDLE is Linux-only' }, async () => {
    const srv = spawn(process.execPath, [BIN, 'serve', '--model', `tiny=${weights}`, '--port', '0', '--precision', 'fp32', '--decode-threads', '1', '--threads', '2', '--helper-priority', 'idle'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    srv.stderr!.on('data', (d) => { err += d; });
    try {
      const u = await new Promise<string>((resolve, reject) => {
        let out = '';
        srv.stdout!.on('data', (d) => { out += d; const m = /serving tiny at (http:\/\/127\.0\.0\.1:\d+)/.exec(out); if (m) resolve(m[1]); });
        srv.on('exit', (c) => reject(new Error(`exited ${c}: ${err}`)));
      });
      assert.equal((await fetch(`${u}/v1/models/tiny/classify`, { method: 'POST', body: png })).status, 200);
      // /proc/PID/task/TID/stat: field 41 is the scheduling policy (0 SCHED_OTHER, 5 SCHED_IDLE).
      const policy = (tid: string) => { const f = readFileSync(`/proc/${srv.pid}/task/${tid}/stat`, 'utf8'); return Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[38]); };
      const tids = readdirSync(`/proc/${srv.pid}/task`);
      const normal = tids.filter((t) => policy(t) === 0);
      assert.equal(policy(String(srv.pid)), 0, 'the HTTP (main) thread keeps its priority');
      assert.ok(tids.filter((t) => policy(t) === 5).length >= 4, `helpers (V8's threads at least) are SCHED_IDLE: ${tids.map((t) => `${t}:${policy(t)}`).join(' ')}`);
      assert.equal(normal.length, 3, `normal: the main thread, the engine thread and its one other OpenMP thread (${normal.join(', ')})`);
    } finally {
      srv.kill('SIGKILL');
    }
    const bad = spawn(process.execPath, [BIN, 'serve', '--model', `tiny=${weights}`, '--port', '0', '--helper-priority', 'low'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let berr = '';
    bad.stderr!.on('data', (d) => { berr += d; });
    assert.equal(await new Promise((r) => bad.on('exit', r)), 1);
    assert.match(berr, /--helper-priority must be one of normal, idle, got 'low'/);
  });

  test('SIGTERM drains: a request in flight is answered, new ones are refused, exit 0', async () => {
    const x = new Float32Array(ROW).fill(0.1);
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 32, 32], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits' }] }));
    const body = Buffer.concat([head, Buffer.from(x.buffer)]);
    const u = new URL(`${url}/v2/models/tiny/infer`);
    // The request's headers and half its body go first; SIGTERM lands while it is in flight.
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(head.length), 'Content-Length': String(body.length) } }, (res) => {
        let s = '';
        res.on('data', (d) => { s += d; });
        res.on('end', () => resolve({ status: res.statusCode!, body: s }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, 1000));
      setTimeout(() => {
        child.kill('SIGTERM');
        setTimeout(() => req.end(body.subarray(1000)), 300);
      }, 300);
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const res = await answered;
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body).outputs[0].shape, [1, 10]);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: draining/);
    await assert.rejects(fetch(`${url}/v2/health/live`), 'nothing listens after the drain');
  });
});
