export {
  Optimizer, trainableGroups, type OptimizerState, type ParamStateDict, type ParamGroup, type BaseGroup,
} from './optimizer.js';
export { SGD, type SgdOptions, type SgdGroup, type SgdState } from './sgd.js';
export { AdamW, ADAMW_DEFAULTS, type AdamwOptions, type AdamwGroup, type AdamwState } from './adamw.js';
export { lrAt, ReduceOnPlateau, SCHEDULE_KINDS, type ScheduleSpec } from './schedule.js';
