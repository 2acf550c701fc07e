// The choice between libtorch's kernels and staged-lm's fused CUDA ones (lib/kernels.ts), for each
// op that has both: the process-wide default and its reset, refusals by name, and the fallback to
// libtorch's kernels for inputs the fused ones cannot take (here: CPU tensors) — on every machine.
import {
  addLayerNorm,
  buildInfo,
  float32CrossEntropy,
  lossKernelInfo,
  normKernelInfo,
  setLossKernel,
  setNormKernel,
  tensor,
  tidy,
  type KernelInfo,
  type Tensor,
} from '../lib';
import { flat, itWhen } from './helpers';

const itCpuBuild = itWhen(!buildInfo().cudaBuild, 'this build has CUDA');

interface Op {
  name: string;
  set: (k: 'aten' | 'fused') => void;
  info: () => KernelInfo<'aten' | 'fused'>;
  /** The op on small CPU inputs with the given per-call kernel (undefined: the default). */
  run: (kernel?: 'aten' | 'fused') => Tensor;
}

const ops: Op[] = [
  {
    name: 'float32CrossEntropy',
    set: setLossKernel,
    info: lossKernelInfo,
    run: (kernel) =>
      float32CrossEntropy(
        tensor([
          [1, 2, 0.5],
          [3, 4, -1],
        ]),
        tensor([0, 2], { dtype: 'int64' }),
        { kernel },
      ),
  },
  {
    name: 'addLayerNorm',
    set: setNormKernel,
    info: normKernelInfo,
    run: (kernel) => addLayerNorm(tensor([[1, 2, 0.5, 3]]), tensor([[3, 4, -1, 0]]), tensor([1, 2, 3, 4]), null, { kernel })[1],
  },
];

describe.each(ops)('$name', (op) => {
  it("'fused' as the process default leaves what it cannot take (CPU tensors) on libtorch's kernels, and is reset", () => {
    const before = op.info().default;
    try {
      op.set('fused');
      expect(op.info().default).toBe('fused');
      tidy(() => expect(flat(op.run())).toEqual(flat(op.run('aten'))));
    } finally {
      op.set(before);
    }
    expect(op.info().default).toBe(before);
  });

  it("refuses an unknown kernel, and says why 'fused' cannot take CPU tensors", () => {
    tidy(() => {
      expect(() => op.run('triton' as 'fused')).toThrow(new RegExp(`${op.name}: kernel must be 'aten' or 'fused', got triton`));
      expect(() => op.run('fused')).toThrow(new RegExp(`${op.name}: the fused kernel cannot be used: (the .* on cpu|this build has no)`));
    });
    expect(() => op.set('cudnn' as 'fused')).toThrow(/kernel must be 'aten' or 'fused', got cudnn/);
  });

  itCpuBuild('a CPU-only build has no fused kernels', () => {
    expect(op.info().available).toBe(false);
  });
});

it('both start as STAGED_LM_LOSS_KERNEL / STAGED_LM_NORM_KERNEL say, libtorch unless "fused"', () => {
  expect(lossKernelInfo().default).toBe(process.env.STAGED_LM_LOSS_KERNEL === 'fused' ? 'fused' : 'aten');
  expect(normKernelInfo().default).toBe(process.env.STAGED_LM_NORM_KERNEL === 'fused' ? 'fused' : 'aten');
});
