// `resnet info`: what this installation will run on.

import { backendChoice, getBackend } from '../backend/index.js';
import { loadNativeAddon } from '../backend/native.js';
import { resolvePrecision } from '../backend/precision.js';
import { VERSION } from '../version.js';

export interface InfoReport {
  version: string;
  backend: string;
  /** Why this backend: 'default', 'RESNET_BACKEND=reference', or why the native addon did not
   *  load (e.g. "native addon not built: ...; RESNET_ALLOW_REFERENCE=1"). */
  backendReason: string;
  onednn: string | null;
  threads: number;
  isa: string;
  /** The build of our own loops (training batch norm, SGD step) that runs: avx512, avx2 or baseline;
   *  null on the reference backend. */
  kernels: string | null;
  /** What --precision auto (the default) runs here, and why. */
  precision: string;
  precisionReason: string;
  /** The kernel a bf16 convolution gets here, or null where --precision bf16 cannot run. */
  bf16Conv: string | null;
  /** How fp32 runs 3x3 stride-1 convolutions: 'winograd' (inference; training from 64
   *  channels) or 'direct'. */
  fp32Conv3x3: 'winograd' | 'direct';
  node: string;
}

export function collectInfo(): InfoReport {
  const be = getBackend();
  const b = be.info();
  const why = backendChoice().reason;
  const p = resolvePrecision('auto', be);
  return {
    version: VERSION, backend: b.backend, backendReason: why,
    kernels: b.backend === 'native' ? loadNativeAddon().kernelIsa() : null, onednn: b.onednn, threads: b.threads, isa: b.isa,
    precision: p.precision, precisionReason: p.reason, bf16Conv: b.backend === 'reference' ? 'reference (rounded, float64 sums)' : b.bf16ConvImpl ?? null,
    fp32Conv3x3: b.winograd ? 'winograd' : 'direct',
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
    ['backend', r.backendReason === 'default' ? r.backend : `${r.backend} (${r.backendReason})`],
    ['oneDNN', r.onednn ?? '(not loaded)'],
    ['threads', String(r.threads)],
    ['isa', r.kernels ? `${r.isa} (oneDNN); our kernels: ${r.kernels}` : r.isa],
    ['precision', `${r.precision} (${r.precisionReason}); --precision bf16: ${r.bf16Conv ?? 'unavailable (no AVX-512)'}`],
    ['conv 3x3', `fp32 ${r.fp32Conv3x3}${r.fp32Conv3x3 === 'winograd' ? ' (inference; training from 64 channels; RESNET_WINOGRAD=0: direct)' : ''}`],
    ['node', r.node],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(10)} ${v}\n`);
}
