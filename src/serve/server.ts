// The HTTP server of `resnet serve` (fastify 5): the Open Inference Protocol (KServe v2)
// routes, the convenience classify/embed/detect routes, /metrics and the page. Requests are read
// here, images decoded in the decode threads, rows batched per model (engine.ts) and run in
// the engine thread. Not here: flags and signals (src/cli/serve.ts). No path from a request
// ever reaches the file system: the page is a string. Every error is `{"error": "..."}`.

import { timingSafeEqual, createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_LIMIT_INPUT_PIXELS } from '../data/image_folder.js';
import type { ImageFormat } from '../data/image_format.js';
import type { PreprocessOptions } from '../infer/preprocess.js';
import { softmax } from '../tensor/ops/softmax.js';
import { VERSION } from '../version.js';
import { BodyPool, readBody } from './body_pool.js';
import { DecodePool } from './decode_pool.js';
import { HELPER_PRIORITIES, idleHelperThreads, type HelperPriority } from './priority.js';
import { Engine } from './engine.js';
import type { DetectorInfo, ModelInfo, ModelSpec, ServedModel } from './engine_messages.js';
import { HttpError, statusOf } from './http_error.js';
import { ServeMetrics } from './metrics.js';
import { PAGE_HTML, PAGE_JS } from './page.js';
import { encodeInferResponse, numel, parseInferRequest, type OutputTensor } from './protocol.js';

/**
 * Options of startServer; the limits are the CLI's flags.
 * @example const o: ServeOptions = { models: [{ name: 'r18', options: { arch: 'resnet18', pretrained: true } }], port: 0 };
 */
export interface ServeOptions {
  models: ModelSpec[];
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  timeoutMs?: number;
  /** With a token every route but health and the page needs `Authorization: Bearer TOKEN`. */
  token?: string;
  /** An origin allowed cross-origin requests ('*' for any); none by default. */
  cors?: string;
  /** auto | fp32 | bf16 (default auto). */
  precision?: string;
  /** Largest request body in bytes (default 32 MiB). */
  bodyLimit?: number;
  /** Largest image in pixels (default 64 Mpx). */
  maxPixels?: number;
  /** Image formats accepted (default jpeg, png, webp). */
  formats?: ImageFormat[];
  /** Decode threads (default: half the cores, at least 1, at most 4). */
  decodeThreads?: number;
  /** The engine's compute threads (oneDNN's OpenMP; default RESNET_NUM_THREADS, else every core), split between the streams. */
  threads?: number;
  /** Engine threads each running its own batch on threads / streams cores (default 1: one batch at a time on every thread; see engine.ts). */
  streams?: number;
  /** 'idle': every thread of this process except the one calling startServer (HTTP) and the
   *  engine's compute threads gets SCHED_IDLE (Linux; see priority.ts): V8's GC, decoding,
   *  libuv's pool, and in an app of your own your other threads too. Default 'normal'. */
  helperPriority?: HelperPriority;
}

/** A running server. */
export interface RunningServer {
  /** http://host:port */
  url: string;
  app: FastifyInstance;
  engine: Engine;
  metrics: ServeMetrics;
  /** Where request bodies are read (its `stats` say how many were reused). */
  bodies: BodyPool;
  /** Stops accepting (new requests get 503), answers what is in flight, stops the threads. */
  close(): Promise<void>;
}

const OUTPUTS = ['logits', 'probabilities', 'embedding'] as const;
const CORS_HEADERS = 'Authorization, Content-Type, Inference-Header-Content-Length';
/** The routes whose requests end in a model's queue. */
const INFER_ROUTES = new Set(['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer', '/v1/models/:name/classify', '/v1/models/:name/embed', '/v1/models/:name/detect']);

function intParam(v: unknown, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new HttpError(400, `'${name}' must be an integer from ${min} to ${max}, got '${s.slice(0, 40)}'`);
  return Number(s);
}

function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** The routes a model answers, for the message of a request to a route it does not. */
function routesOf(m: ServedModel): string {
  const base = `/v1/models/${m.name}`;
  return m.kind === 'detector'
    ? `POST ${base}/detect (an image; ?score=0.5)`
    : `POST ${base}/classify, POST ${base}/embed, POST /v2/models/${m.name}/infer`;
}

function modelMetadata(m: ServedModel): Record<string, unknown> {
  if (m.kind === 'detector') {
    // NOTE: the protocol's metadata has no place for "not via infer": the inputs and outputs
    // are what POST /v1/models/{name}/detect takes and gives (infer answers 400 saying so).
    return {
      name: m.name, versions: ['1'], platform: 'resnet-ts_onednn', kind: 'detector', arch: m.arch,
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }],
      outputs: [
        { name: 'boxes', datatype: 'FP32', shape: [-1, 4] },
        { name: 'scores', datatype: 'FP32', shape: [-1] },
        { name: 'labels', datatype: 'INT32', shape: [-1] },
      ],
      parameters: { route: `/v1/models/${m.name}/detect`, classes: m.numClasses, min_size: m.minSize, max_size: m.maxSize, precision: m.precision },
    };
  }
  return {
    name: m.name, versions: ['1'], platform: 'resnet-ts_onednn', kind: 'classifier', arch: m.arch,
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [-1, m.channels, m.height, m.width] },
      { name: 'image', datatype: 'BYTES', shape: [-1] },
    ],
    outputs: [
      { name: 'logits', datatype: 'FP32', shape: [-1, m.numClasses] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, m.numClasses] },
      { name: 'embedding', datatype: 'FP32', shape: [-1, m.numFeatures] },
    ],
  };
}

function softmaxRows(logits: Float32Array, K: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / K; r++) out.set(softmax(logits.subarray(r * K, (r + 1) * K)), r * K);
  return out;
}

function topOf(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => row[b] - row[a] || a - b);
  return idx.slice(0, k);
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** ?score= of detect: a number from 0 to 1 (default 0.5). */
function scoreParam(v: unknown): number {
  if (v === undefined) return 0.5;
  const s = String(v);
  const n = Number(s);
  if (!/^(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i.test(s) || !(n >= 0 && n <= 1)) throw new HttpError(400, `'score' must be a number from 0 to 1, got '${s.slice(0, 40)}'`);
  return n;
}

/**
 * Loads the models (in each engine thread: `streams`, default 1) and starts listening. The
 * native backend gives every JS thread its own stream, cache and OpenMP team, so the process
 * may also run models on its main thread (both then share the cores).
 * @example
 * const server = await startServer({ models: [{ name: 'resnet18', options: { arch: 'resnet18', pretrained: true } }], port: 0 });
 * console.log(server.url);  // http://127.0.0.1:PORT
 * await server.close();
 */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  if (opts.models.length === 0) throw new InvalidArgumentError('serve: no models to serve; give --arch A (--weights W | --pretrained) or --model NAME=WEIGHTS');
  const names = opts.models.map((m) => m.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new InvalidArgumentError(`serve: model name '${dup}' given twice; each --model needs its own NAME`);
  const helperPriority = opts.helperPriority ?? 'normal';
  if (!(HELPER_PRIORITIES as readonly string[]).includes(helperPriority)) {
    throw new InvalidArgumentError(`serve: --helper-priority must be one of ${HELPER_PRIORITIES.join(', ')}, got '${helperPriority}'`);
  }
  const timeoutMs = opts.timeoutMs ?? 10000;
  const bodyLimit = opts.bodyLimit ?? 32 * 1024 * 1024;
  const maxPixels = opts.maxPixels ?? DEFAULT_LIMIT_INPUT_PIXELS;
  const engine = await Engine.start({ models: opts.models, precision: opts.precision ?? 'auto', threads: opts.threads }, {
    maxBatch: opts.maxBatch ?? 16, maxDelayMs: opts.maxDelayMs ?? 5, maxQueue: opts.maxQueue ?? 256, timeoutMs,
  }, opts.streams ?? 1);
  const metrics = new ServeMetrics(() => [...engine.models.keys()].map((model) => ({ model, depth: engine.depth(model), arriving: engine.onTheWay(model) })));
  engine.onBatch = (model, rows, ms) => metrics.batch(model, rows, ms);
  const pool = new DecodePool(opts.decodeThreads ?? Math.min(4, Math.max(1, Math.floor(availableParallelism() / 2))));
  if (helperPriority === 'idle') {
    try {
      idleHelperThreads(engine.computeThreadIds);
    } catch (e) {
      await Promise.all([engine.close(), pool.close()]);
      throw e;
    }
  }

  const app = Fastify({
    bodyLimit, logger: false, return503OnClosing: true, forceCloseConnections: 'idle',
    // A slow client cannot hold a connection forever (fastify's advice without a proxy).
    requestTimeout: Math.max(30000, 2 * timeoutMs),
  });
  const preprocessOf = (m: ModelInfo): PreprocessOptions => ({ ...m.preprocess, limitInputPixels: maxPixels, formats: opts.formats });
  const modelOf = (name: string): ServedModel => {
    const m = engine.models.get(name);
    if (!m) throw new HttpError(404, `unknown model '${name.slice(0, 100)}'; loaded: ${[...engine.models.keys()].join(', ')}`);
    return m;
  };
  /** A classifier, or 400 naming what the model is and the routes it has. */
  const classifierOf = (name: string, what: string): ModelInfo => {
    const m = modelOf(name);
    if (m.kind !== 'classifier') throw new HttpError(400, `model '${m.name}' is a detector (${m.arch}): it has no ${what}; use ${routesOf(m)}`);
    return m;
  };
  const detectorOf = (name: string): DetectorInfo => {
    const m = modelOf(name);
    if (m.kind !== 'detector') throw new HttpError(400, `model '${m.name}' is a classifier (${m.arch}): it does not detect; use ${routesOf(m)}`);
    return m;
  };
  const checkVersion = (v: string | undefined) => {
    if (v !== undefined && v !== '1') throw new HttpError(404, `unknown model version '${v.slice(0, 40)}'; this server has version 1 of each model`);
  };

  // Bodies are read as bytes (images, binary tensors, JSON): handlers parse them, so a
  // malformed JSON body is the protocol's `{"error"}`, not fastify's.
  // Bodies with a length are read into pooled memory and handed back once the response is
  // sent (body_pool.ts); at most 64 MiB kept (64 tensor requests of one 224x224 image).
  /** Inference requests counted in Engine.arriving and not yet submitted, by their model. */
  const arriving = new WeakMap<FastifyRequest, string>();
  const arrived = (req: FastifyRequest) => {
    const name = arriving.get(req);
    if (name === undefined) return;
    arriving.delete(req);
    engine.arriving(name, -1);
  };

  app.removeAllContentTypeParsers();
  const bodies = new BodyPool(64 * 1024 * 1024);
  const pooledBody = new WeakMap<FastifyRequest, Buffer>();
  app.addContentTypeParser('*', (req, payload, done) => {
    readBody(payload, Number(req.headers['content-length'] ?? NaN), bodyLimit, bodies).then(({ body, pooled }) => {
      if (pooled) pooledBody.set(req, body);
      done(null, body);
    }, (e: Error) => done(e, undefined));
  });
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1, parts: 16, fields: 8 } });

  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (opts.cors !== undefined && origin !== undefined && (opts.cors === '*' || origin === opts.cors)) {
      reply.header('Access-Control-Allow-Origin', opts.cors === '*' ? '*' : origin);
      reply.header('Vary', 'Origin');
      reply.header('Access-Control-Expose-Headers', 'Inference-Header-Content-Length, Retry-After');
      if (req.method === 'OPTIONS') {
        reply.header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        reply.header('Access-Control-Allow-Headers', CORS_HEADERS);
        reply.header('Access-Control-Max-Age', '600');
        return reply.code(204).send();
      }
    }
    const path = req.url.split('?')[0];
    const open = path.startsWith('/v2/health/') || path === '/' || path === '/app.js';
    if (opts.token !== undefined && !open) {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer (.+)$/.exec(auth);
      if (!m || !sameSecret(m[1], opts.token)) {
        reply.header('WWW-Authenticate', 'Bearer');
        throw new HttpError(401, auth ? 'the bearer token is not the server\'s (--token)' : 'this server needs "Authorization: Bearer TOKEN" (started with --token)');
      }
    }
    // An inference request on its way: its model's short batches wait for it (Engine.arriving).
    const name = (req.params as { name?: unknown } | undefined)?.name;
    if (req.method === 'POST' && INFER_ROUTES.has(req.routeOptions.url ?? '') && typeof name === 'string' && engine.models.has(name)) {
      arriving.set(req, name);
      engine.arriving(name, 1);
    }
  });
  app.addHook('onRequestAbort', async (req) => arrived(req));
  app.addHook('onResponse', async (req, reply) => {
    arrived(req);
    const body = pooledBody.get(req);
    if (body) { pooledBody.delete(req); bodies.give(body); }
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics.total.observe({ route }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, _req, reply) => {
    let status = statusOf(err);
    let message = err.message;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.code === 'FST_REQ_FILE_TOO_LARGE') {
      status = 413;
      message = `request body over the limit of ${bodyLimit} bytes (--max-body)`;
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') {
      status = 415;
    } else if (status === 500) {
      message = `internal error: ${err.message}`;
    }
    if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    reply.code(status).type('application/json; charset=utf-8').send({ error: message.replace(/[\r\n]+/g, ' ') });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0].slice(0, 200)}; see GET /v2/models, POST /v2/models/{name}/infer, POST /v1/models/{name}/classify, POST /v1/models/{name}/detect` });
  });

  // --- the page (from memory) ---
  const csp = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; form-action 'none'";
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('Content-Security-Policy', csp).header('X-Content-Type-Options', 'nosniff').send(PAGE_HTML));
  app.get('/app.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('X-Content-Type-Options', 'nosniff').send(PAGE_JS));

  // --- Open Inference Protocol: health and metadata ---
  let closing = false;
  app.get('/v2/health/live', async (_req, reply) => reply.code(200).send());
  app.get('/v2/health/ready', async (_req, reply) => {
    if (closing || !engine.ready) throw new HttpError(400, closing ? 'shutting down' : 'the engine thread is down');
    return reply.code(200).send();
  });
  app.get('/v2', async () => ({ name: 'resnet-ts', version: VERSION, extensions: ['binary_tensor_data', 'classification', 'model_configuration'] }));
  app.get('/v2/models', async () => ({ models: [...engine.models.values()].map((m) => ({ name: m.name, versions: ['1'], platform: 'resnet-ts_onednn', ready: engine.ready, arch: m.arch, kind: m.kind })) }));
  const meta = async (req: FastifyRequest<{ Params: { name: string; version?: string } }>) => {
    checkVersion(req.params.version);
    return modelMetadata(modelOf(req.params.name));
  };
  app.get('/v2/models/:name', meta);
  app.get('/v2/models/:name/versions/:version', meta);
  const ready = async (req: FastifyRequest<{ Params: { name: string; version?: string } }>, reply: FastifyReply) => {
    checkVersion(req.params.version);
    modelOf(req.params.name);
    if (closing || !engine.ready) throw new HttpError(400, `model '${req.params.name}' is not ready`);
    return reply.code(200).send();
  };
  app.get('/v2/models/:name/ready', ready);
  app.get('/v2/models/:name/versions/:version/ready', ready);
  // Triton's model configuration extension (what perf_analyzer reads: max_batch_size, dims).
  app.get('/v2/models/:name/config', async (req: FastifyRequest<{ Params: { name: string } }>) => {
    const m = classifierOf(req.params.name, 'Triton model configuration (it is not served through infer)');
    return {
      name: m.name, platform: 'resnet-ts_onednn', max_batch_size: opts.maxBatch ?? 16,
      input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [m.channels, m.height, m.width] }, { name: 'image', data_type: 'TYPE_STRING', dims: [1] }],
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [m.numClasses] }, { name: 'probabilities', data_type: 'TYPE_FP32', dims: [m.numClasses] }, { name: 'embedding', data_type: 'TYPE_FP32', dims: [m.numFeatures] }],
      dynamic_batching: { max_queue_delay_microseconds: Math.round((opts.maxDelayMs ?? 5) * 1000) },
      parameters: { arch: { string_value: m.arch }, precision: { string_value: m.precision }, preprocessing: { string_value: m.preprocessNote } },
    };
  });

  /** Decodes encoded images in the decode threads into one [n, C, H, W] array. */
  const decodeAll = async (m: ModelInfo, images: Uint8Array[], what: (i: number) => string): Promise<{ x: Float32Array; ms: number }> => {
    const t0 = performance.now();
    const rows = await Promise.all(images.map((b, i) => pool.decode(b, preprocessOf(m), what(i))));
    const per = m.channels * m.height * m.width;
    const x = new Float32Array(rows.length * per);
    rows.forEach((r, i) => {
      if (r.data.length !== per) throw new HttpError(400, `${what(i)}: preprocessed to [${r.shape.join(', ')}], model '${m.name}' takes [${m.channels}, ${m.height}, ${m.width}]`);
      x.set(r.data, i * per);
      metrics.decode.observe({ model: m.name }, r.ms / 1000);
    });
    return { x, ms: performance.now() - t0 };
  };

  // --- Open Inference Protocol: infer ---
  const infer = async (req: FastifyRequest<{ Params: { name: string; version?: string } }>, reply: FastifyReply) => {
    checkVersion(req.params.version);
    const m = classifierOf(req.params.name, 'v2 infer (it takes whole images of any size, one per request)');
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const hl = req.headers['inference-header-content-length'];
    const headerLength = hl === undefined ? undefined : intParam(Array.isArray(hl) ? hl[0] : hl, 'Inference-Header-Content-Length', 0, body.length);
    const r = parseInferRequest(body, headerLength);
    const valid = `model '${m.name}' takes one input: 'input' FP32 [-1, ${m.channels}, ${m.height}, ${m.width}] (preprocessed) or 'image' BYTES [-1] (encoded images)`;
    if (r.inputs.length !== 1) throw new HttpError(400, `${r.inputs.length} inputs given; ${valid}`);
    const input = r.inputs[0];
    let x: Float32Array | Uint8Array;
    let n: number;
    if (input.name === 'input') {
      if (input.datatype !== 'FP32') throw new HttpError(400, `input 'input' must be FP32, got ${input.datatype}; ${valid}`);
      const s = input.shape;
      if (s.length !== 4 || s[1] !== m.channels || s[2] !== m.height || s[3] !== m.width || s[0] < 1) {
        throw new HttpError(400, `input 'input' has shape [${s.join(', ')}], model '${m.name}' takes [N, ${m.channels}, ${m.height}, ${m.width}] with N >= 1`);
      }
      n = s[0];
      x = input.bytes ?? (input.data as Float32Array);
    } else if (input.name === 'image') {
      if (input.datatype !== 'BYTES') throw new HttpError(400, `input 'image' must be BYTES (encoded images), got ${input.datatype}; ${valid}`);
      const count = numel(input.shape);
      if (count < 1 || input.shape.length > 2 || (input.shape.length === 2 && input.shape[1] !== 1)) throw new HttpError(400, `input 'image' has shape [${input.shape.join(', ')}]; expected [N] or [N, 1], N >= 1`);
      n = count;
      x = (await decodeAll(m, input.data as Uint8Array[], (i) => `input 'image' element ${i}`)).x;
    } else {
      throw new HttpError(400, `unknown input '${input.name.slice(0, 60)}'; ${valid}`);
    }
    const wanted = r.outputs ?? OUTPUTS.map((name) => ({ name, binary: r.binaryOutput, classification: 0 }));
    for (const o of wanted) {
      if (!(OUTPUTS as readonly string[]).includes(o.name)) throw new HttpError(400, `unknown output '${o.name.slice(0, 60)}'; model '${m.name}' has ${OUTPUTS.join(', ')}`);
      if (o.classification && o.name === 'embedding') throw new HttpError(400, "output 'embedding': 'classification' applies to logits and probabilities only");
    }
    const kind = wanted.some((o) => o.name === 'embedding') ? 'features' : 'logits';
    arrived(req);
    const done = await engine.submit(m.name, kind, x, n);
    metrics.queueWait.observe({ model: m.name }, done.queueMs / 1000);
    const K = m.numClasses;
    const { logits, embedding } = done.result;
    let probs: Float32Array | null = null;
    const outputs: OutputTensor[] = wanted.map((o) => {
      const values = o.name === 'logits' ? logits : o.name === 'probabilities' ? (probs ??= softmaxRows(logits, K)) : embedding!;
      if (o.classification) {
        const k = Math.min(o.classification, K);
        const data: string[] = [];
        for (let i = 0; i < n; i++) {
          const row = values.subarray(i * K, (i + 1) * K);
          for (const c of topOf(row, k)) data.push(`${row[c]}:${c}:${m.labels[c] ?? ''}`);
        }
        return { name: o.name, datatype: 'BYTES', shape: [n, k], data, binary: o.binary };
      }
      return { name: o.name, datatype: 'FP32', shape: [n, o.name === 'embedding' ? m.numFeatures : K], data: values, binary: o.binary };
    });
    const enc = encodeInferResponse({ model_name: m.name, model_version: '1', id: r.id, outputs });
    if (enc.headerLength !== undefined) reply.header('Inference-Header-Content-Length', String(enc.headerLength));
    return reply.type(enc.contentType).send(enc.body);
  };
  app.post('/v2/models/:name/infer', infer);
  app.post('/v2/models/:name/versions/:version/infer', infer);

  // --- convenience: classify and embed one image ---
  const imageOf = async (req: FastifyRequest): Promise<Uint8Array> => {
    if (req.isMultipart()) {
      const file = await req.file();
      if (!file) throw new HttpError(400, 'the multipart body holds no file; send the image as a file part (e.g. curl -F image=@cat.jpg)');
      return new Uint8Array(await file.toBuffer());
    }
    return Buffer.isBuffer(req.body) ? new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.length) : new Uint8Array(0);
  };
  app.post('/v1/models/:name/classify', async (req: FastifyRequest<{ Params: { name: string }; Querystring: { top?: string } }>) => {
    const t0 = performance.now();
    const m = classifierOf(req.params.name, 'classify');
    const k = intParam(req.query.top, 'top', 1, m.numClasses) ?? Math.min(5, m.numClasses);
    const bytes = await imageOf(req);
    const { x, ms: decode } = await decodeAll(m, [bytes], () => 'image');
    arrived(req);
    const done = await engine.submit(m.name, 'logits', x, 1);
    metrics.queueWait.observe({ model: m.name }, done.queueMs / 1000);
    const row = done.result.logits;
    const prob = softmax(row);
    const top = topOf(row, k).map((index) => ({ index, label: m.labels[index] ?? `class ${index}`, prob: prob[index] }));
    return { model: m.name, top, ms: { decode: round(decode), queue: round(done.queueMs), compute: round(done.computeMs), total: round(performance.now() - t0) }, batch: done.batchRows };
  });
  app.post('/v1/models/:name/embed', async (req: FastifyRequest<{ Params: { name: string } }>) => {
    const t0 = performance.now();
    const m = classifierOf(req.params.name, 'embed');
    const bytes = await imageOf(req);
    const { x, ms: decode } = await decodeAll(m, [bytes], () => 'image');
    arrived(req);
    const done = await engine.submit(m.name, 'features', x, 1);
    metrics.queueWait.observe({ model: m.name }, done.queueMs / 1000);
    return { model: m.name, shape: [m.numFeatures], embedding: Array.from(done.result.embedding!), ms: { decode: round(decode), queue: round(done.queueMs), compute: round(done.computeMs), total: round(performance.now() - t0) } };
  });

  // --- convenience: detect in one image ---
  app.post('/v1/models/:name/detect', async (req: FastifyRequest<{ Params: { name: string }; Querystring: { score?: string } }>) => {
    const t0 = performance.now();
    const m = detectorOf(req.params.name);
    const score = scoreParam(req.query.score);
    const bytes = await imageOf(req);
    const t1 = performance.now();
    const img = await pool.decodeImage(bytes, { limitInputPixels: maxPixels, formats: opts.formats }, 'image');
    metrics.decode.observe({ model: m.name }, img.ms / 1000);
    const [, H, W] = img.shape;
    // The detector's resize must leave a pixel on each side: floor(side * scale), the scale
    // in float32 as GeneralizedRCNNTransform.scale computes it.
    const f = Math.fround;
    const scale = Math.min(f(m.minSize / f(Math.min(H, W))), f(m.maxSize / f(Math.max(H, W))));
    if (Math.floor(H * scale) < 1 || Math.floor(W * scale) < 1) {
      throw new HttpError(400, `image: ${W}x${H} is too elongated for model '${m.name}' (resized to min side ${m.minSize}, max side ${m.maxSize}, one side would be 0 pixels)`);
    }
    const decode = performance.now() - t1;
    arrived(req);
    const done = await engine.detect(m.name, { data: img.data, channels: 3, height: H, width: W });
    metrics.queueWait.observe({ model: m.name }, done.queueMs / 1000);
    const d = done.result;
    const detections: { box: number[]; score: number; label: number; name: string }[] = [];
    for (let i = 0; i < d.scores.length; i++) {
      if (d.scores[i] < score) continue;
      detections.push({ box: Array.from(d.boxes.subarray(4 * i, 4 * i + 4)), score: d.scores[i], label: d.labels[i], name: m.labels[d.labels[i]] ?? String(d.labels[i]) });
    }
    return { model: m.name, detections, width: W, height: H, ms: { decode: round(decode), queue: round(done.queueMs), compute: round(done.computeMs), total: round(performance.now() - t0) } };
  });

  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  try {
    await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
  } catch (e) {
    await engine.close();
    await pool.close();
    throw new InvalidArgumentError(`serve: cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 8080}: ${(e as Error).message}`);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port ?? 8080;
  const host = opts.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closed: Promise<void> | null = null;
  return {
    url, app, engine, metrics, bodies,
    close() {
      closing = true;
      closed ??= (async () => {
        await app.close();
        await engine.close();
        await pool.close();
      })();
      return closed;
    },
  };
}
