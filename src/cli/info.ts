// `resnet info`: what this installation will run on.

import { getBackend } from '../backend/index.js';
import { resolvePrecision } from '../backend/precision.js';
import { VERSION } from '../version.js';

export interface InfoReport {
  version: string;
  backend: string;
  onednn: string | null;
  threads: number;
  isa: string;
  /** What --precision auto (the default) runs here, and why. */
  precision: string;
  precisionReason: string;
  /** The kernel a bf16 convolution gets here, or null where --precision bf16 cannot run. */
  bf16Conv: string | null;
  node: string;
}

export function collectInfo(): InfoReport {
  const be = getBackend();
  const b = be.info();
  const p = resolvePrecision('auto', be);
  return {
    version: VERSION, backend: b.backend, onednn: b.onednn, threads: b.threads, isa: b.isa,
    precision: p.precision, precisionReason: p.reason, bf16Conv: b.backend === 'reference' ? 'reference (rounded, float64 sums)' : b.bf16ConvImpl ?? null,
    node: process.version,
  };
}

export function infoCommand(opts: { json?: boolean }): void {
  const r = collectInfo();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['resnet-ts', r.version],
    ['backend', r.backend],
    ['oneDNN', r.onednn ?? '(not loaded)'],
    ['threads', String(r.threads)],
    ['isa', r.isa],
    ['precision', `${r.precision} (${r.precisionReason}); --precision bf16: ${r.bf16Conv ?? 'unavailable (no AVX-512)'}`],
    ['node', r.node],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(10)} ${v}\n`);
}
