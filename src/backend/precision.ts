// Which compute precision a run gets: 'fp32', 'bf16' (mixed precision), or 'auto' = bf16
// where oneDNN has AMX (bf16 convolutions several times faster than fp32) and a bf16
// convolution gets an optimised (not ref) implementation, fp32 elsewhere. Without AVX-512 oneDNN 2.6 has no bf16 at all, so asking
// for it there is an error naming the ISA. The reference backend computes bf16 by rounding
// (the judge), so it accepts it anywhere.

import type { Backend, Precision } from './backend.js';
import { InvalidArgumentError } from '../errors.js';

/** @example const choice: PrecisionChoice = 'auto';  // bf16 where oneDNN has AMX, else fp32 */
export type PrecisionChoice = Precision | 'auto';
/** @example PRECISION_CHOICES.join(', ')  // 'auto, fp32, bf16' */
export const PRECISION_CHOICES: readonly PrecisionChoice[] = ['auto', 'fp32', 'bf16'];

/** oneDNN ISAs with AVX-512 (bf16 runs; natively from avx512_core_bf16, emulated below it). */
const BF16_ISAS = new Set(['avx512_core', 'avx512_core_vnni', 'avx512_core_bf16', 'avx512_core_amx']);
/** oneDNN ISAs where bf16 is the fast path ('auto' picks it). */
const BF16_FAST_ISAS = new Set(['avx512_core_amx']);

/** @example const { precision, reason }: PrecisionInfo = resolvePrecision('auto', getBackend()); */
export interface PrecisionInfo {
  precision: Precision;
  /** oneDNN's effective ISA ("none" on the reference backend). */
  isa: string;
  /** Why this precision, in a few words (for `resnet info` and run configs). */
  reason: string;
}

/**
 * Whether `backend` can run bf16 convolutions.
 * @example const p = bf16Supported(getBackend()) ? 'bf16' : 'fp32';
 */
export function bf16Supported(backend: Backend): boolean {
  return backend.name === 'reference' || BF16_ISAS.has(backend.info().isa);
}

/**
 * The precision a run gets on `backend` for `choice` ('auto' by default); throws an
 * InvalidArgumentError for bf16 where the CPU has no AVX-512.
 * @example resolvePrecision('auto', getBackend()).precision // 'bf16' on an AMX machine
 */
export function resolvePrecision(choice: PrecisionChoice | undefined, backend: Backend): PrecisionInfo {
  const want = choice ?? 'auto';
  if (!PRECISION_CHOICES.includes(want)) {
    throw new InvalidArgumentError(`precision: unknown precision '${String(want)}'; valid: ${PRECISION_CHOICES.join(', ')}`);
  }
  const isa = backend.info().isa;
  if (want === 'fp32') return { precision: 'fp32', isa, reason: 'asked for' };
  if (want === 'bf16') {
    if (!bf16Supported(backend)) {
      throw new InvalidArgumentError(
        `precision bf16: this CPU's oneDNN ISA is ${isa} (no AVX-512), where oneDNN 2.6 has no bf16 kernels; ` +
        'use --precision fp32 (or auto, which picks fp32 here)');
    }
    return { precision: 'bf16', isa, reason: 'asked for' };
  }
  if (backend.name !== 'native') return { precision: 'fp32', isa, reason: 'auto: reference backend' };
  if (!BF16_FAST_ISAS.has(isa)) return { precision: 'fp32', isa, reason: `auto: ${isa} has no AMX` };
  const impl = backend.info().bf16ConvImpl;
  if (!impl || impl.startsWith('ref') || impl.includes('gemm')) {
    return { precision: 'fp32', isa, reason: `auto: ${isa}, but a bf16 convolution gets ${impl ?? 'no kernel'}` };
  }
  return { precision: 'bf16', isa, reason: `auto: ${isa} (AMX, ${impl})` };
}
