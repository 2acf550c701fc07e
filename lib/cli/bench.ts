// `staged-lm bench`: training throughput (tokens/s, ms/step, MFU, peak memory) as one JSON line.
import { Option, type Command } from 'commander';
import { runBench, type BenchOptions } from '../train/bench';
import { device, nonNegativeInt, positiveInt, positiveNumber } from './common';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('training throughput on random tokens: tokens/s, ms/step, MFU, peak memory (JSON)')
    .option('--model <name>', 'micro (4×32), tiny (4×256), 124M, 350M, or a preset', '124M')
    .option('--vocab <n>', 'vocabulary size', positiveInt('--vocab'), 50304)
    .option('--threads <n>', 'CPU threads for libtorch (0: leave as is)', nonNegativeInt('--threads'), 0)
    .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu')
    .option('--batch <n>', 'sequences per step', positiveInt('--batch'), 16)
    .option('--seq <n>', 'tokens per sequence', positiveInt('--seq'), 1024)
    .option('--steps <n>', 'timed steps', positiveInt('--steps'), 30)
    .option('--warmup <n>', 'untimed steps first', nonNegativeInt('--warmup'), 5)
    .option('--peak-tflops <x>', 'dense bf16 peak of the card for MFU', positiveNumber('--peak-tflops'), 989)
    .option('--cuda-graph', 'capture the whole step as a CUDA graph after the warm-up and replay it (CUDA, static shapes)')
    .addOption(
      new Option(
        '--precision <p>',
        "the step's precision: bf16 autocast (CUDA's default, the reference's), fp16 autocast with dynamic loss scaling, or fp32 (the CPU's only one)",
      ).choices(['bf16', 'fp16', 'fp32']),
    )
    .addOption(
      new Option(
        '--loss-kernel <kernel>',
        "the loss's kernel: libtorch's, or staged-lm's fused CUDA cross-entropy (default: STAGED_LM_LOSS_KERNEL's, where it applies)",
      ).choices(['aten', 'fused']),
    )
    .addOption(
      new Option(
        '--norm-kernel <kernel>',
        "the residual add + LayerNorm's kernel: libtorch's, or staged-lm's fused CUDA one (default: STAGED_LM_NORM_KERNEL's, where it applies)",
      ).choices(['aten', 'fused']),
    )
    .option('--activation-checkpointing', "recompute each block's forward in the backward (less memory, about a third more compute)")
    .option('--count-ops', 'count the ATen operators of one more step after the timed ones (ops_per_step)')
    .option(
      '--profile <file>',
      "record one more step after the timed ones with libtorch's profiler: a Chrome trace to <file>, its time by kind in `profile`",
    )
    .option('--json', 'print one JSON object (the default output is JSON too)')
    .action((f: BenchOptions) => {
      process.stdout.write(
        JSON.stringify(
          runBench({
            ...f,
            cudaGraph: f.cudaGraph === true,
            countOps: f.countOps === true,
            activationCheckpointing: f.activationCheckpointing === true,
          }),
        ) + '\n',
      );
    });
}
