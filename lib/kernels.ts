// Which implementation runs the ops staged-lm has its own CUDA kernels for: libtorch's ('aten', the
// default) or staged-lm's fused ones ('fused': native/kernels/, built where the host has a CUDA
// libtorch and nvcc). Each op also takes a per-call `kernel`; these are the process-wide choices
// for calls that name none, the model's among them. 'fused' applies wherever those kernels can
// take the inputs (CUDA tensors of the types they support) and leaves the rest to libtorch.
import { native } from './native';

/** The loss (float32CrossEntropy): libtorch's kernels, or staged-lm's fused CUDA cross-entropy. */
export type LossKernel = 'aten' | 'fused';
/** The residual add + LayerNorm (addLayerNorm): libtorch's add, LayerNorm and cast, or one fused CUDA kernel each way. */
export type NormKernel = 'aten' | 'fused';

/** What a kernel choice reports: the process-wide default, and whether this build has the fused CUDA kernels at all. */
export interface KernelInfo<K extends string> {
  default: K;
  available: boolean;
}

/** Throws unless kernel is 'aten' or 'fused' (where: the function, for the message). */
export function checkKernel<K extends 'aten' | 'fused'>(kernel: K, where: string): K {
  if (kernel !== 'aten' && kernel !== 'fused') throw new TypeError(`${where}: kernel must be 'aten' or 'fused', got ${String(kernel)}`);
  return kernel;
}

/**
 * The process-wide choice for float32CrossEntropy calls that name no kernel — the model's loss
 * among them. The process starts with STAGED_LM_LOSS_KERNEL's value ('aten' unset).
 */
export function setLossKernel(kernel: LossKernel): void {
  native.setLossKernel(checkKernel(kernel, 'setLossKernel'));
}

/** The process-wide loss kernel, and whether this build has the fused CUDA kernels. */
export function lossKernelInfo(): KernelInfo<LossKernel> {
  return native.lossKernelInfo();
}

/**
 * The process-wide choice for addLayerNorm calls that name no kernel — the model's blocks and
 * final LayerNorm among them. The process starts with STAGED_LM_NORM_KERNEL's value ('aten' unset).
 */
export function setNormKernel(kernel: NormKernel): void {
  native.setNormKernel(checkKernel(kernel, 'setNormKernel'));
}

/** The process-wide add + LayerNorm kernel, and whether this build has the fused CUDA kernels. */
export function normKernelInfo(): KernelInfo<NormKernel> {
  return native.normKernelInfo();
}

/**
 * Makes the choices named process-wide (absent ones stay as they are) and returns what restores
 * the previous ones. 'fused' is refused, naming `where`.loss / .norm, off CUDA or without the
 * kernels in this build: a run that asked for them must not silently run without.
 */
export function useKernels(choice: { loss?: LossKernel; norm?: NormKernel }, device: string, where = 'kernels'): () => void {
  const ops = [
    { name: 'loss', want: choice.loss, set: setLossKernel, info: lossKernelInfo },
    { name: 'norm', want: choice.norm, set: setNormKernel, info: normKernelInfo },
  ];
  for (const op of ops) {
    if (op.want === undefined) continue;
    checkKernel(op.want, `${where}.${op.name}`);
    if (op.want === 'fused' && !device.startsWith('cuda')) throw new Error(`${where}.${op.name}: 'fused' runs on CUDA only, not ${device}`);
    if (op.want === 'fused' && !op.info().available)
      throw new Error(`${where}.${op.name}: 'fused' needs a build with staged-lm's CUDA kernels (a CUDA libtorch and nvcc at build time)`);
  }
  const before = ops.map((op) => op.info().default);
  for (const op of ops) if (op.want !== undefined) op.set(op.want);
  return () => ops.forEach((op, i) => op.set(before[i]));
}

// the variables are read by the addon at load; a value it does not know means 'aten'
for (const name of ['STAGED_LM_LOSS_KERNEL', 'STAGED_LM_NORM_KERNEL']) {
  const v = process.env[name];
  if (v !== undefined && v !== '' && v !== 'aten' && v !== 'fused')
    process.emitWarning(`${name}=${v} is neither 'aten' nor 'fused': libtorch's kernels are used`);
}
