// A small GPT trained 8 bf16-autocast AdamW steps on one CUDA batch, with the kernels asked for
// (lib/kernels.ts, put back afterwards): the losses, for tests comparing kernels or eager against
// a replayed CUDA graph.
import { manualSeed, randint, tidy, withAutocast } from '../../lib';
import { CudaGraph } from '../../lib/cuda-graph';
import { useKernels, type LossKernel, type NormKernel } from '../../lib/kernels';
import { parseGPTConfig } from '../../lib/nn/config';
import { GPT } from '../../lib/nn/gpt';
import { AdamW } from '../../lib/optim/adamw';
import { CapturedTrainStep } from '../../lib/train/captured-step';

/** graph: two eager steps (the last on the capture stream), then the captured step replayed 6 times. */
export function bf16TrainLosses(kernels: { loss?: LossKernel; norm?: NormKernel }, graph = false): number[] {
  const restore = useKernels(kernels, 'cuda');
  manualSeed(21);
  const model = new GPT(parseGPTConfig({ nLayer: 2, nHead: 2, nEmbd: 64, contextLength: 32, vocabSize: 200 }), { device: 'cuda' });
  const opt = new AdamW(model.namedParameters(), { weightDecay: 0.1 });
  const x = randint(0, 200, [4, 32], { device: 'cuda' });
  const y = randint(0, 200, [4, 32], { device: 'cuda' });
  try {
    const step = () =>
      tidy(() => {
        const loss = withAutocast('bfloat16', () => model.loss(x, y));
        loss.backward();
        opt.clipGradNorm(1.0);
        opt.update(3e-3);
        opt.zeroGrad();
        return loss.item();
      });
    if (!graph) return Array.from({ length: 8 }, step);
    const losses = [step(), CudaGraph.warmup('cuda', step)];
    const captured = CapturedTrainStep.capture(model, opt, x, y, { clip: 1.0, autocast: 'bfloat16' });
    try {
      for (let i = 2; i < 8; i++) losses.push(captured.run(3e-3).item());
    } finally {
      captured.dispose();
    }
    return losses;
  } finally {
    for (const t of [x, y]) t.dispose();
    model.dispose();
    opt.dispose();
    restore();
  }
}
