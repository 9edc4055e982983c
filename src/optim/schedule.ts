// Learning-rate schedules as pure functions of the epoch (fractional epochs allowed, so a
// schedule can advance per iteration), plus the stateful reduce-on-plateau. Conventions as
// torch.optim.lr_scheduler: StepLR, MultiStepLR, CosineAnnealingLR, linear warm-up,
// ReduceLROnPlateau (mode 'min').

import { InvalidArgumentError } from '../errors.js';

/** @example const spec: ScheduleSpec = { kind: 'multistep', milestones: [82, 123], gamma: 0.1 };  // the paper's CIFAR schedule */
export type ScheduleSpec =
  | { kind: 'constant' }
  | { kind: 'step'; stepSize: number; gamma?: number }
  | { kind: 'multistep'; milestones: number[]; gamma?: number }
  | { kind: 'cosine'; epochs: number; minLr?: number };

/** @example SCHEDULE_KINDS.join(', ')  // 'constant, step, multistep, cosine, plateau' */
export const SCHEDULE_KINDS = ['constant', 'step', 'multistep', 'cosine', 'plateau'] as const;

/** The learning rate at `epoch` (0-based, may be fractional) for base rate `lr`. With
 *  `warmup` > 0 the rate ramps linearly from `warmupStart * lr` to the schedule's value over
 *  the first `warmup` epochs (PyTorch's LinearLR chained before the schedule).
 * @example optimizer.setLr(lrAt({ kind: 'cosine', epochs: 30 }, 0.1, epoch + i / 100, 1));  // fractional epochs, 1 warm-up epoch
 */
export function lrAt(spec: ScheduleSpec, lr: number, epoch: number, warmup = 0, warmupStart = 0.1): number {
  let v: number;
  switch (spec.kind) {
    case 'constant': v = lr; break;
    case 'step': v = lr * Math.pow(spec.gamma ?? 0.1, Math.floor(epoch / spec.stepSize)); break;
    case 'multistep': v = lr * Math.pow(spec.gamma ?? 0.1, spec.milestones.filter((m) => epoch >= m).length); break;
    case 'cosine': {
      const min = spec.minLr ?? 0;
      const t = Math.min(epoch, spec.epochs) / spec.epochs;
      v = min + ((lr - min) * (1 + Math.cos(Math.PI * t))) / 2;
      break;
    }
    default: throw new InvalidArgumentError(`schedule: unknown kind '${(spec as { kind: string }).kind}'; valid: ${SCHEDULE_KINDS.join(', ')}`);
  }
  if (warmup > 0 && epoch < warmup) v *= warmupStart + ((1 - warmupStart) * epoch) / warmup;
  return v;
}

/**
 * ReduceLROnPlateau (mode 'min', relative threshold as PyTorch's default 'rel').
 * @example
 * const plateau = new ReduceOnPlateau({ factor: 0.1, patience: 2 });
 * const factor = plateau.step(0.42);  // feed each epoch's test loss; multiply the base lr by it
 */
export class ReduceOnPlateau {
  private best = Infinity;
  private bad = 0;
  private cooldownLeft = 0;
  private factor = 1;
  constructor(readonly opts: { factor?: number; patience?: number; threshold?: number; cooldown?: number } = {}) {}

  /** Feed the epoch's metric (lower is better); returns the factor to apply to the base lr. */
  step(metric: number): number {
    const threshold = this.opts.threshold ?? 1e-4;
    if (metric < this.best * (1 - threshold)) { this.best = metric; this.bad = 0; } else this.bad++;
    if (this.cooldownLeft > 0) { this.cooldownLeft--; this.bad = 0; } // bad epochs in cooldown do not count
    if (this.bad > (this.opts.patience ?? 10)) {
      this.factor *= this.opts.factor ?? 0.1;
      this.cooldownLeft = this.opts.cooldown ?? 0;
      this.bad = 0;
    }
    return this.factor;
  }

  state(): { best: number; bad: number; cooldownLeft: number; factor: number } {
    return { best: this.best, bad: this.bad, cooldownLeft: this.cooldownLeft, factor: this.factor };
  }

  load(s: { best: number; bad: number; cooldownLeft: number; factor: number }): void {
    this.best = s.best; this.bad = s.bad; this.cooldownLeft = s.cooldownLeft; this.factor = s.factor;
  }
}
