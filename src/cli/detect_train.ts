// `resnet detect train`: flags to a DetectTrainConfig, Ctrl-C to a graceful stop (graceful_stop.ts), progress
// through the classifier trainer's renderer (cli/train.ts). The work is in src/detect/train/.

import { trainDetector, type DetectTrainConfig } from '../detect/train/trainer.js';
import { InvalidArgumentError } from '../errors.js';
import { intFlag, num, numberInRange } from './flags.js';
import { withGracefulStop } from './graceful_stop.js';
import { progressPrinter } from './train.js';

/** @example const f: DetectTrainFlags = { data: 'synth/train', valData: 'synth/test', epochs: '6', out: 'runs/det' }; */
export interface DetectTrainFlags {
  data?: string; valData?: string; arch?: string; weights?: string; pretrainedBackbone?: boolean; epochs?: string; batch?: string; lr?: string;
  momentum?: string; weightDecay?: string; warmup?: string; milestones?: string; schedule?: string; trainableLayers?: string; bn?: string;
  minSize?: string; maxSize?: string; fpnChannels?: string; hflip?: string; rpnPostNms?: string; boxBatch?: string; boxPositiveFraction?: string; representationSize?: string; roiCanonicalScale?: string; roiOutputSize?: string; valSubset?: string; precision?: string;
  seed?: string; out?: string; checkpointEvery?: string; resume?: boolean; force?: boolean; json?: boolean;
}

/**
 * Runs `resnet detect train` with the flags; prints one line (or JSON) at the end.
 * @example await detectTrainCommand({ data: 'synth/train', valData: 'synth/test', epochs: '6', minSize: '320', maxSize: '320', out: 'runs/det' });
 */
export async function detectTrainCommand(flags: DetectTrainFlags): Promise<void> {
  let milestones: number[] | undefined;
  if (flags.milestones !== undefined) {
    milestones = flags.milestones.split(',').map((m) => Number(m.trim()));
    if (milestones.some((m) => !Number.isInteger(m) || m < 1)) throw new InvalidArgumentError(`--milestones must be epochs (integers >= 1) separated by commas, got '${flags.milestones}'`);
  }
  const config: Partial<DetectTrainConfig> = {
    data: flags.data, valData: flags.valData, arch: flags.arch, weights: flags.weights, pretrainedBackbone: flags.pretrainedBackbone,
    epochs: intFlag(flags.epochs, 'epochs', 1), batchSize: intFlag(flags.batch, 'batch', 1), lr: num(flags.lr, 'lr'),
    momentum: num(flags.momentum, 'momentum'), weightDecay: num(flags.weightDecay, 'weight-decay'), warmup: num(flags.warmup, 'warmup'),
    milestones, schedule: flags.schedule as DetectTrainConfig['schedule'], trainableLayers: intFlag(flags.trainableLayers, 'trainable-layers', 0), bn: flags.bn as DetectTrainConfig['bn'],
    minSize: intFlag(flags.minSize, 'min-size', 16), maxSize: intFlag(flags.maxSize, 'max-size', 16), hflip: numberInRange(flags.hflip, 'hflip', 0, 1), fpnChannels: intFlag(flags.fpnChannels, 'fpn-channels', 8),
    rpnPostNmsTopNTrain: intFlag(flags.rpnPostNms, 'rpn-post-nms', 1), boxBatchSizePerImage: intFlag(flags.boxBatch, 'box-batch', 1),
    boxPositiveFraction: numberInRange(flags.boxPositiveFraction, 'box-positive-fraction', 0, 1),
    representationSize: intFlag(flags.representationSize, 'representation-size', 1), roiCanonicalScale: intFlag(flags.roiCanonicalScale, 'roi-canonical-scale', 1),
    roiOutputSize: intFlag(flags.roiOutputSize, 'roi-output-size', 1),
    valSubset: intFlag(flags.valSubset, 'val-subset', 1), precision: flags.precision as DetectTrainConfig['precision'], seed: intFlag(flags.seed, 'seed', 0), out: flags.out,
    checkpointEvery: intFlag(flags.checkpointEvery, 'checkpoint-every', 0),
  };
  await withGracefulStop(async (signal) => {
    const r = await trainDetector(config, { resume: flags.resume, force: flags.force, signal, onProgress: progressPrinter() });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ epochs: r.epochs, AP: r.AP, AP50: r.AP50, bestAP50: r.bestAP50, seconds: r.seconds, images_per_sec: r.imagesPerSec })}\n`);
    } else {
      process.stdout.write(`${r.interrupted ? 'interrupted' : 'done'}: ${r.epochs} epochs, held-out COCO AP ${r.AP.toFixed(3)} AP50 ${r.AP50.toFixed(3)} (best AP50 ${r.bestAP50.toFixed(3)}), ` +
        `${r.seconds.toFixed(1)} s, ${r.imagesPerSec.toFixed(2)} img/s; run in ${r.runDir}\n`);
    }
    if (r.interrupted) process.exitCode = 130;
  });
}
