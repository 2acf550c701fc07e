// Scaling laws for stage scheduling (../shared/spec/schedule.md): the Kaplan law, the optimal growth
// point, the multi-stage planner, fitting one's own law, and the online growth trigger.
export {
  PF_DAY,
  KAPLAN,
  KAPLAN_FRONTIER,
  ScalingLawSchema,
  parseScalingLaw,
  lawFromJson,
  lossFloor,
  criticalBatch,
  lossAt,
  lossAtBatch,
  stepsToLoss,
  stepsToLossAtBatch,
  trainingFlops,
  toPfDays,
  computeToLoss,
  minimalCompute,
  frontierLoss,
  frontierCompute,
  logComputePerLogLoss,
  curveSlope,
  optimalSizeClosedForm,
  smallestSizeFor,
  singleStageOptimum,
  singleStageAt,
  type ScalingLaw,
  type ScalingLawInput,
  type Frontier,
  type BatchAccounting,
  type SingleStageOptimum,
} from './kaplan';
export { OP_PARAM_FACTOR, optimalGrowthPoint, type GrowthPoint, type GrowthPointOptions } from './growth-point';
export {
  PlanOptionsSchema,
  planStages,
  planFlops,
  optimiseGrowthLosses,
  type Plan,
  type PlanStage,
  type PlanOptions,
  type PlanOptionsInput,
  type GrowthLossOptions,
} from './planner';
export { fitScalingLaw, type FitPoint, type FitOptions, type FitResult } from './fit';
export {
  TRIGGER_THRESHOLDS,
  STEP_RATIO_C_OP,
  TriggerOptionsSchema,
  findGrowthPoint,
  measureSlopes,
  lawFinalStepRatio,
  type TriggerOp,
  type ValPoint,
  type SlopePoint,
  type TriggerOptionsInput,
  type TriggerResult,
  type TriggerReached,
  type TriggerNotReached,
} from './trigger';
export { parseValidationLog, fitPointsFromMetrics, parseFitPoints, type ValidationLogOptions } from './logs';
export { goldenSection, minimize1d, bisectRoot, solveLinear, type Minimum, type ScanOptions } from './optimize';
