// The public API of staged-lm.
export { Tensor, type TypedArrayOut, type NestedArray, type ToOptions } from './tensor';
export { DTYPES, FLOAT_DTYPES, DTYPE_BYTES, type Dtype, type Device } from './dtype';
export * from './factories';
export * from './functional';
export * from './kernels';
export { tidy, keep, dispose } from './scope';
export { noGrad, enableGrad, isGradEnabled } from './autograd';
export * from './runtime';
export { countOps, type OpCounts } from './op-count';
export { Profiler, profileToFile, profilerAvailable } from './profile';
export type { BuildInfo, CpuBlockStats } from './native';
export * from './nn';
export { AdamW, type AdamWOptionsInput, type NamedParameter, type Moments, type ParamKind } from './optim/adamw';
export { GradScaler, type GradScalerState, type LossScaleOptionsInput } from './optim/grad-scaler';
export {
  learningRate,
  kaplanPeakLr,
  parseSchedule,
  pastHorizon,
  rewarmupPastHorizonNote,
  type Schedule,
  type ScheduleInput,
} from './optim/schedule';
export * from './growth';
// scaling laws, the planner, the growth trigger, fitting a law (what plan, slope and fit run)
export * from './scaling';
export { CudaGraph, cudaGraphsAvailable } from './cuda-graph';
export { CapturedTrainStep, type CapturedStepOptions } from './train/captured-step';
export { Trainer, TrainingDivergedError, type TrainOptions, type TrainResult, type GrowthEvent, type StepResult } from './train/trainer';
export type { StepRecord, MetricsRecord } from './train/metrics';
export { autoPrecision } from './train/precision';
export { parseRunConfig, type RunConfig, type RunConfigInput } from './train/config';
export {
  saveCheckpoint,
  loadCheckpoint,
  captureRng,
  restoreRng,
  type CheckpointState,
  type LoadedCheckpoint,
  type RngState,
} from './train/checkpoint';
export { loadWeights, adoptWeights, checkpointDir, type Weights } from './train/weights';
export { loadHfGpt2, isHfDir } from './io/hf-gpt2';
export { generate, generateSamples, type SampleOptions } from './train/sample';
export { chooseToken, type TokenChoice } from './train/next-token';
export { encode, decode, TextStream, EOT, GPT2_VOCAB } from './data/tokenizer';
export { BatchLoader, loadEmbeddedCorpus, loadTokenData } from './data';
export { prepare, type PrepareOptions, type PrepareSummary } from './data/prepare';
export { readInputPieces, inputFormat, type InputFormat, type InputOptions } from './data/inputs';
