// How far bf16 inference moves a trained net's answers (issue 13's accuracy check): the
// BN-folded fused net of a `resnet train` run in fp32 and in bf16 over its whole test set;
// prints {"n","same_class","top1_fp32","top1_bf16","max_logit_diff"} (the last relative to
// the batch's largest fp32 logit).
//   node --import tsx bench/bf16_agreement.ts RUN_DIR_OR_CHECKPOINT
import { createModel, fuseForInference, tensor, tidy } from '../src/index.js';
import { statSync } from 'node:fs';
import { DataLoader } from '../src/data/index.js';
import { loadSplits, transformsFor } from '../src/train/data.js';
import { loadCheckpoint, loadRunCheckpoint } from '../src/train/index.js';
const path = process.argv[2];
if (!path) { process.stderr.write('usage: bench/bf16_agreement.ts RUN_DIR_OR_CHECKPOINT\n'); process.exit(2); }
const ck = statSync(path).isDirectory() ? loadRunCheckpoint(path, undefined, 'best') : loadCheckpoint(path);
const cfg = ck.meta.config as unknown as { dataset: string; data?: string };
const m = createModel(ck.meta.arch, ck.meta.modelOptions); m.loadStateDict(ck.model); m.eval();
const { test } = await loadSplits(cfg.dataset, cfg.data);
const loader = new DataLoader(test, { batchSize: 500, shuffle: false, workers: 1, transforms: transformsFor(test, false, 'none', { ...ck.meta.input, ...ck.meta.norm }) });
const nets = [fuseForInference(m), fuseForInference(m, { precision: 'bf16' })];
let same = 0, n = 0, r32 = 0, r16 = 0, maxd = 0;
const K = m.numClasses;
const am = (a: Float32Array, i: number) => { let b = 0; for (let k = 1; k < K; k++) if (a[i * K + k] > a[i * K + b]) b = k; return b; };
for await (const { x, y, shape } of loader.epoch(0)) {
  const [a, b] = nets.map((net) => tidy(() => net.forward(tensor(x, shape)).toFloat32Array()));
  let scale = 0, d = 0; for (let i = 0; i < a.length; i++) { scale = Math.max(scale, Math.abs(a[i])); d = Math.max(d, Math.abs(a[i]-b[i])); } maxd = Math.max(maxd, d/scale);
  for (let i = 0; i < y.length; i++) { const p = am(a, i), q = am(b, i); if (p === q) same++; if (p === y[i]) r32++; if (q === y[i]) r16++; n++; }
}
await loader.close();
console.log(JSON.stringify({ n, same_class: same / n, top1_fp32: r32/n, top1_bf16: r16/n, max_logit_diff: maxd }));
