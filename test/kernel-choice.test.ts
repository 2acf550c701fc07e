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
import { parseRunConfig } from '../lib/train/config';
import { Trainer } from '../lib/train/trainer';
import { useKernels } from '../lib/kernels';
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

describe("a run's kernels (run config `kernels`, train --loss-kernel / --norm-kernel)", () => {
  it("are validated by name: 'fused' only on CUDA, nothing but 'aten' or 'fused', no other keys", () => {
    expect(() => parseRunConfig({ steps: 1, kernels: { loss: 'fused' } })).toThrow(/kernels\.loss: 'fused' runs on CUDA only/);
    expect(() => parseRunConfig({ steps: 1, kernels: { norm: 'triton' } })).toThrow(/kernels\.norm: /);
    expect(() => parseRunConfig({ steps: 1, kernels: { gelu: 'fused' } })).toThrow(/kernels: .*gelu/);
    expect(parseRunConfig({ steps: 1 }).kernels).toEqual({});
    expect(parseRunConfig({ steps: 1, device: 'cuda', kernels: { loss: 'fused', norm: 'aten' } }).kernels).toEqual({
      loss: 'fused',
      norm: 'aten',
    });
  });

  it("hold for the trainer's lifetime and are put back at dispose; absent ones leave the process choice alone", () => {
    const before = [lossKernelInfo().default, normKernelInfo().default];
    try {
      setLossKernel('fused');
      setNormKernel('fused');
      const t = Trainer.create(
        { model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 8 }, steps: 1, batchSize: 1, kernels: { loss: 'aten' } },
        { name: 'ones', train: new Uint16Array(64).fill(1), val: new Uint16Array(64).fill(1) },
      );
      try {
        expect([lossKernelInfo().default, normKernelInfo().default]).toEqual(['aten', 'fused']);
      } finally {
        t.dispose();
      }
      expect([lossKernelInfo().default, normKernelInfo().default]).toEqual(['fused', 'fused']);
    } finally {
      setLossKernel(before[0]);
      setNormKernel(before[1]);
    }
  });

  it("useKernels refuses 'fused' off CUDA, naming the field, and changes nothing then", () => {
    const before = [lossKernelInfo().default, normKernelInfo().default];
    expect(() => useKernels({ loss: 'aten', norm: 'fused' }, 'cpu', 'run.kernels')).toThrow(
      /run\.kernels\.norm: 'fused' runs on CUDA only, not cpu/,
    );
    expect([lossKernelInfo().default, normKernelInfo().default]).toEqual(before);
  });
});
