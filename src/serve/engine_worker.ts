// The engine thread: loads every model once (loadModel) and runs forwards one at a time, so
// the HTTP thread never waits on a kernel. 'logits' batches run through the BN-folded net
// (fuseForInference) where the arch has one; 'features' batches through model.features,
// returning the pooled embedding and the head's logits. Inputs and outputs cross as
// transferred Float32Arrays. Errors go back as messages; it never prints.

import { parentPort, workerData } from 'node:worker_threads';
import { getBackend } from '../backend/index.js';
import { resolvePrecision, type PrecisionChoice } from '../backend/precision.js';
import type { Precision } from '../backend/backend.js';
import { loadModel } from '../infer/load.js';
import { fuseForInference, type FusedResNet } from '../models/fused.js';
import type { ResNet } from '../models/resnet.js';
import { noGrad } from '../tensor/autograd.js';
import { autocast } from '../tensor/precision.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/tensor.js';
import type { EngineInit, ModelInfo, WorkerReply, WorkerRequest } from './engine_messages.js';

const init = workerData as EngineInit;
const port = parentPort!;
const nets = new Map<string, { model: ResNet; fused: FusedResNet | null; precision: Precision }>();

function errorOf(e: unknown): { message: string; name: string; code?: string } {
  const err = e as Error & { code?: string };
  return { message: err?.message ?? String(e), name: err?.name ?? 'Error', code: err?.code };
}

async function start(): Promise<void> {
  const precision = resolvePrecision(init.precision as PrecisionChoice, getBackend()).precision;
  const infos: ModelInfo[] = [];
  for (const spec of init.models) {
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
    for (const kind of ['logits', 'features'] as const) run({ type: 'run', id: 0, model: spec.name, kind, x: new Float32Array(loaded.channels * H * W), n: 1, shape: [loaded.channels, H, W] });
    infos.push({
      name: spec.name, arch: loaded.arch, source: loaded.source, labels: loaded.labels, numClasses: m.numClasses, numFeatures: m.numFeatures,
      channels: loaded.channels, height: H, width: W, preprocess: { ...loaded.preprocess, formats: undefined }, precision, fused: fused !== null,
      notes: loaded.notes, preprocessNote: loaded.preprocessNote,
    });
  }
  port.postMessage({ type: 'ready', models: infos } satisfies WorkerReply);
}

function run(req: Extract<WorkerRequest, { type: 'run' }>): WorkerReply {
  const net = nets.get(req.model);
  if (!net) throw new Error(`engine: no model '${req.model}'`);
  const shape = [req.n, ...req.shape];
  const t0 = performance.now();
  if (req.kind === 'logits') {
    const logits = tidy(() => noGrad(() => {
      const x = tensor(req.x, shape);
      const y = net.fused ? net.fused.forward(x) : autocast(net.precision, () => net.model.forward(x));
      return new Float32Array(y.toArray() as Float32Array);
    }));
    return { type: 'result', id: req.id, logits, embedding: null, ms: performance.now() - t0 };
  }
  const { logits, embedding } = tidy(() => noGrad(() => {
    const f = autocast(net.precision, () => net.model.features(tensor(req.x, shape)));
    return { embedding: new Float32Array(f.embedding.toArray() as Float32Array), logits: new Float32Array(net.model.head.forward(f.embedding).toArray() as Float32Array) };
  }));
  return { type: 'result', id: req.id, logits, embedding, ms: performance.now() - t0 };
}

port.on('message', (req: WorkerRequest) => {
  if (req.type === 'close') {
    for (const n of nets.values()) { n.fused?.dispose(); n.model.dispose(); }
    nets.clear();
    port.close();
    return;
  }
  try {
    const reply = run(req);
    const transfer = reply.type === 'result' ? [reply.logits.buffer as ArrayBuffer, ...(reply.embedding ? [reply.embedding.buffer as ArrayBuffer] : [])] : [];
    port.postMessage(reply, transfer);
  } catch (e) {
    port.postMessage({ type: 'error', id: req.id, error: errorOf(e) } satisfies WorkerReply);
  }
});

start().catch((e) => port.postMessage({ type: 'init-error', error: errorOf(e) } satisfies WorkerReply));
