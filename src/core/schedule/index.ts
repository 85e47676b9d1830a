/**
 * Noise schedules: the shared interface, discrete (beta-table), continuous VP, EDM and rectified-flow schedules, and the
 * diffusers `scheduler_config.json` loader.
 * @packageDocumentation
 */
export { CLEAN_TIME, veSigma, timeOfVeSigma, hasCleanEnd, type NoiseSchedule } from './noise-schedule.js';
export {
  discreteSchedule,
  scheduleFromBetas,
  makeBetas,
  rescaleZeroTerminalSnr,
  linspace,
  type BetaScheduleName,
  type DiscreteSchedule,
  type DiscreteScheduleOptions,
  type FractionalTimeOptions,
} from './discrete.js';
export { continuousVpSchedule, type ContinuousVpOptions } from './continuous.js';
export { edmSchedule, type EdmSchedule, type EdmScheduleOptions } from './edm.js';
export {
  flowSchedule,
  isFlowSchedule,
  flowShift,
  flowTimeShift,
  flowDynamicShiftMu,
  flowMatchSigmas,
  flowSigmasDpm,
  type DynamicShiftOptions,
  type FlowMatchSigmaOptions,
  type FlowModelTimes,
  type FlowSchedule,
  type FlowScheduleOptions,
  type FlowTimeShiftType,
} from './flow.js';
export {
  fromSchedulerConfig,
  SUPPORTED_SCHEDULER_CLASSES,
  type SchedulerClassName,
  type ConfigSampleOptions,
  type FlowGridRequest,
  type SchedulerConfig,
  type ThresholdingConfig,
} from './config.js';
export { resolveSamplerName, type ResolvedSampler } from './sampler-names.js';
