// The training layer: the task-independent loop (runTrainLoop), the classifier's Trainer, evaluation, checkpoints, metrics, dataset recipes.

export { Trainer, evaluate, checkConfig, DEFAULT_CONFIG, SCHEDULES, OPTIMIZERS, type OptimizerKind, type TrainConfig, type TrainOptions, type TrainResult, type EvalResult, type EvaluateOptions } from './trainer.js';
export {
  runTrainLoop, TrainingError, nonFiniteEntry,
  type TrainLoopSpec, type TrainLoopResult, type TrainStep, type TrainEvaluation, type TrainPosition, type TrainPlot, type PartialSums, type ProgressEvent,
} from './loop.js';
export { evaluateCheckpoint, type EvalCheckpointOptions } from './eval.js';
export { saveCheckpoint, loadCheckpoint, checkpointInfo, loadRunCheckpoint, CHECKPOINT_FORMAT, LAST, BEST, type CheckpointMeta, type LoadedCheckpoint } from './checkpoint.js';
export { appendMetrics, readMetrics, truncateMetrics, METRICS, type EpochMetrics, type ClassifierMetrics } from './metrics.js';
export { loadSplits, trainTransforms, evalTransforms, DATASETS, AUGMENTATIONS } from './data.js';
export { errorPlotSvg } from './plot.js';
export {
  applyFreeze, fineTuneGroups, fitWeights, frozenModules, readWeightsSource, FREEZE_POINTS, BN_MODES,
  type BnMode, type FitReport, type FreezeSpec, type WeightsSource, type WeightsSpec,
} from './finetune.js';
