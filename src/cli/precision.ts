// The --precision flag every computing command takes (train, study, eval, bench, predict,
// features): one help text, one way to turn it into the precision this machine runs.

import type { Precision } from '../backend/backend.js';
import { getBackend } from '../backend/index.js';
import { resolvePrecision, type PrecisionChoice } from '../backend/precision.js';

export const PRECISION_HELP = 'auto | fp32 | bf16: bf16 mixed precision (bf16 convolutions, fp32 weights, statistics and loss); ' +
  'auto = bf16 where oneDNN has AMX, else fp32';

/** The precision `flag` gives on this machine ('auto' when absent); a clear error where it cannot run. */
export function precisionOf(flag: string | undefined): Precision {
  return resolvePrecision((flag ?? 'auto') as PrecisionChoice, getBackend()).precision;
}
