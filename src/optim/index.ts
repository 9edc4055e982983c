export { SGD, type SgdOptions, type ParamGroup, type SgdState } from './sgd.js';
export { lrAt, ReduceOnPlateau, SCHEDULE_KINDS, type ScheduleSpec } from './schedule.js';
