// An engine thread (one per stream, engine.ts): loads every model once (loadModel) and runs
// forwards one at a time, so the HTTP thread never waits on a kernel. 'logits' batches run through the BN-folded net
// (fuseForInference) where the arch has one; 'features' batches through model.features,
// returning the pooled embedding and the head's logits. Inputs and outputs cross as
// transferred Float32Arrays. Detectors (detector.ts) run one image per forward and send back
// its boxes, scores and labels (every detection the model keeps; the server filters by score).
// Errors go back as messages; it never prints.

import { parentPort, workerData } from 'node:worker_threads';
import { getBackend } from '../backend/index.js';
import { loadNativeAddon } from '../backend/native.js';
import { resolvePrecision, type PrecisionChoice } from '../backend/precision.js';
import type { Precision } from '../backend/backend.js';
import { loadModel } from '../infer/load.js';
import { fuseForInference, type FusedResNet } from '../models/fused.js';
import type { ResNet } from '../models/resnet.js';
import { noGrad } from '../tensor/autograd.js';
import type { FasterRCNN } from '../detect/faster_rcnn.js';
import { toFloatImage } from '../detect/predict.js';
import { autocast } from '../tensor/precision.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import { openServedDetector } from './detector.js';
import type { DetectImage, EngineInit, RawImageDetections, ServedModel, WorkerReply, WorkerRequest } from './engine_messages.js';

const init = workerData as EngineInit;
const port = parentPort!;
const nets = new Map<string, { model: ResNet; fused: FusedResNet | null; precision: Precision }>();
const detectors = new Map<string, { model: FasterRCNN; precision: Precision }>();
/** The input slots the server writes batches into (see engine.ts). */
const slots = new Map<number, SharedArrayBuffer>();

function errorOf(e: unknown): { message: string; name: string; code?: string } {
  const err = e as Error & { code?: string };
  return { message: err?.message ?? String(e), name: err?.name ?? 'Error', code: err?.code };
}

async function start(): Promise<void> {
  // This thread's OpenMP team (the addon gives each JS thread its own: native/engine.cc).
  if (init.threads !== undefined && getBackend().info().backend === 'native') loadNativeAddon().setThreads(init.threads);
  const precision = resolvePrecision(init.precision as PrecisionChoice, getBackend()).precision;
  const infos: ServedModel[] = [];
  for (const spec of init.models) {
    if (spec.kind === 'detector') {
      const { model, info } = openServedDetector(spec.name, spec.detector, undefined, precision);
      // The server's precision, as for classifiers: bf16 convolutions where chosen (autocast),
      // boxes and scores in f32.
      detectors.set(spec.name, { model, precision });
      // One forward first (a blank image of the served size): it checks the model runs and
      // creates the backbone's primitives for the most common input size.
      runDetect({ type: 'detect', id: 0, model: spec.name, images: [{ data: new Uint8Array(3 * info.minSize * info.minSize), channels: 3, height: info.minSize, width: info.minSize }] });
      infos.push(info);
      continue;
    }
    const loaded = await loadModel(spec.options);
    const m = loaded.model;
    let fused: FusedResNet | null = null;
    try { fused = fuseForInference(m, { precision }); } catch { fused = null; }
    nets.set(spec.name, { model: m, fused, precision });
    const crop = loaded.crop;
    // NOTE: loadModel always gives a crop; a whole-image model could not batch requests anyway.
    if (crop === 0) throw new Error(`${spec.name}: serving needs a fixed input size (a crop); this model has none`);
    const [H, W] = typeof crop === 'number' ? [crop, crop] : crop;
    // One forward of each kind first, so the first request does not pay for creating primitives.
    for (const kind of ['logits', 'features'] as const) run({ type: 'run', id: 0, model: spec.name, kind, slot: -1, buffer: new SharedArrayBuffer(4 * loaded.channels * H * W), n: 1, shape: [loaded.channels, H, W] });
    infos.push({
      kind: 'classifier', name: spec.name, arch: loaded.arch, source: loaded.source, labels: loaded.labels, numClasses: m.numClasses, numFeatures: m.numFeatures,
      channels: loaded.channels, height: H, width: W, preprocess: { ...loaded.preprocess, formats: undefined }, precision, fused: fused !== null,
      notes: loaded.notes, preprocessNote: loaded.preprocessNote,
    });
  }
  // The threads that run this engine's kernels (the server may lower every other thread's priority).
  const info = getBackend().info();
  const threadIds = info.backend === 'native' ? loadNativeAddon().threadIds() : [];
  port.postMessage({ type: 'ready', models: infos, threads: info.threads, threadIds } satisfies WorkerReply);
}

/** Detections of each image, one forward per image (see engine.ts for why not one batch). */
function runDetect(req: Extract<WorkerRequest, { type: 'detect' }>): WorkerReply {
  const served = detectors.get(req.model);
  if (!served) throw new Error(`engine: no detector '${req.model}'`);
  const { model, precision } = served;
  const t0 = performance.now();
  const detections: RawImageDetections[] = req.images.map((img: DetectImage) => {
    const [d] = autocast(precision, () => model.detect([toFloatImage({ data: img.data, channels: 3, height: img.height, width: img.width })]));
    // Copies: fresh buffers of their own, safe to transfer.
    return { boxes: d.boxes.slice(), scores: d.scores.slice(), labels: d.labels.slice() };
  });
  return { type: 'detections', id: req.id, detections, ms: performance.now() - t0 };
}

function transferOf(reply: WorkerReply): ArrayBuffer[] {
  if (reply.type === 'result') return [reply.logits.buffer as ArrayBuffer, ...(reply.embedding ? [reply.embedding.buffer as ArrayBuffer] : [])];
  if (reply.type === 'detections') return [...new Set(reply.detections.flatMap((d) => [d.boxes.buffer, d.scores.buffer, d.labels.buffer] as ArrayBuffer[]))];
  return [];
}

function run(req: Extract<WorkerRequest, { type: 'run' }>): WorkerReply {
  const net = nets.get(req.model);
  if (!net) throw new Error(`engine: no model '${req.model}'`);
  const shape = [req.n, ...req.shape];
  const t0 = performance.now();
  if (req.buffer) slots.set(req.slot, req.buffer);
  const buffer = slots.get(req.slot);
  if (!buffer) throw new Error(`engine: no input slot ${req.slot}`);
  const x = new Float32Array(buffer, 0, shape.reduce((a, b) => a * b, 1));
  if (req.kind === 'logits') {
    const logits = tidy(() => noGrad(() => {
      const xt = tensor(x, shape);
      const y = net.fused ? net.fused.forward(xt) : autocast(net.precision, () => net.model.forward(xt));
      return new Float32Array(y.toArray() as Float32Array);
    }));
    return { type: 'result', id: req.id, logits, embedding: null, ms: performance.now() - t0 };
  }
  const { logits, embedding } = tidy(() => noGrad(() => {
    const f = autocast(net.precision, () => net.model.features(tensor(x, shape)));
    return { embedding: new Float32Array(f.embedding.toArray() as Float32Array), logits: new Float32Array(net.model.head.forward(f.embedding).toArray() as Float32Array) };
  }));
  return { type: 'result', id: req.id, logits, embedding, ms: performance.now() - t0 };
}

port.on('message', (req: WorkerRequest) => {
  if (req.type === 'close') {
    for (const n of nets.values()) { n.fused?.dispose(); n.model.dispose(); }
    for (const d of detectors.values()) d.model.dispose();
    nets.clear();
    detectors.clear();
    port.close();
    return;
  }
  try {
    const reply = req.type === 'detect' ? runDetect(req) : run(req);
    port.postMessage(reply, transferOf(reply));
  } catch (e) {
    port.postMessage({ type: 'error', id: req.id, error: errorOf(e) } satisfies WorkerReply);
  }
});

start().catch((e) => port.postMessage({ type: 'init-error', error: errorOf(e) } satisfies WorkerReply));
