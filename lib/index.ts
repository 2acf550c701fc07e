// The public API of staged-lm.
export { Tensor, type TypedArrayOut, type NestedArray, type ToOptions } from './tensor';
export { DTYPES, FLOAT_DTYPES, DTYPE_BYTES, type Dtype, type Device } from './dtype';
export * from './factories';
export * from './functional';
export { tidy, keep, dispose } from './scope';
export { noGrad, enableGrad, isGradEnabled } from './autograd';
export * from './runtime';
export type { BuildInfo } from './native';
