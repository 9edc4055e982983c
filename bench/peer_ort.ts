// The onnxruntime-node peer (a devDependency): our network exported to ONNX (opset 17, our
// exporter, same He-initialised weights as `resnet bench`), run by ONNX Runtime's CPU
// provider with all graph optimisations on (it folds BN and fuses Conv+Add+ReLU itself),
// intra-op threads = the machine's cores; median of warm runs. Prints one JSON line.
//   node --import tsx bench/peer_ort.ts --arch resnet50 --batch 16 [--runs 10] [--threads 2]

import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { archInfo, createModel, exportOnnx } from '../src/index.js';
import { median } from '../src/bench/model_bench.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const arch = arg('arch', 'resnet50');
const batch = Number(arg('batch', '1'));
const runs = Number(arg('runs', '10'));
const warmup = Number(arg('warmup', '2'));
const threads = Number(arg('threads', String(availableParallelism())));
const cin = Number(arg('in-channels', '3'));
const [H, W] = arg('input', archInfo(arch).family === 'imagenet' ? '224x224' : '32x32').split('x').map(Number);

const model = createModel(arch, { inChannels: cin, seed: 0 }).eval();
const bytes = exportOnnx(model, { inputShape: [cin, H, W] });
model.dispose();
const session = await ort.InferenceSession.create(bytes, {
  intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
});
const x = new Float32Array(batch * cin * H * W);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 12.9898) * 0.5;
const feeds = { input: new ort.Tensor('float32', x, [batch, cin, H, W]) };
const times: number[] = [];
for (let i = 0; i < warmup + runs; i++) {
  const t0 = performance.now();
  const out = await session.run(feeds);
  void (out.logits.data as Float32Array)[0];
  if (i >= warmup) times.push(performance.now() - t0);
}
await session.release();
const ms = median(times);
process.stdout.write(`${JSON.stringify({ arch, batch, mode: 'infer', backend: 'onnxruntime-node', ms_per_batch: ms, images_per_sec: (batch * 1000) / ms, runs_ms: times, threads, ort: ort.env.versions?.common ?? 'unknown' })}\n`);
