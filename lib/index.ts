// The public API of staged-lm.
export { Tensor, type TypedArrayOut, type NestedArray, type ToOptions } from './tensor';
export { DTYPES, FLOAT_DTYPES, DTYPE_BYTES, type Dtype, type Device } from './dtype';
export * from './factories';
export * from './functional';
export { tidy, keep, dispose } from './scope';
export { noGrad, enableGrad, isGradEnabled } from './autograd';
export * from './runtime';
export type { BuildInfo } from './native';
export * from './nn';
export { AdamW, type AdamWOptionsInput, type NamedParameter, type Moments, type ParamKind } from './optim/adamw';
export { learningRate, kaplanPeakLr, parseSchedule, type Schedule, type ScheduleInput } from './optim/schedule';
export * from './growth';
export { Trainer, TrainingDivergedError, type TrainResult, type GrowthEvent } from './train/trainer';
export { parseRunConfig, type RunConfig, type RunConfigInput } from './train/config';
export { saveCheckpoint, loadCheckpoint } from './train/checkpoint';
export { generate, type SampleOptions } from './train/sample';
export { encode, decode, EOT, GPT2_VOCAB } from './data/tokenizer';
export { BatchLoader, loadEmbeddedCorpus, loadTokenData } from './data';
