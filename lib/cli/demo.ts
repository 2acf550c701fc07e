// `staged-lm demo` (npm run demo): the main job on the embedded default — a staged run on the
// embedded corpus on the CPU: a 2×64 model grows in depth (→ 4×64) and then in width (→ 4×128,
// the tiny preset), with its optimizer state and schedule carried through each growth. Prints a
// step/loss table with the growths, the stage table, where the plot is, and a text sample.
import { join } from 'node:path';
import type { Command } from 'commander';
import { decode, encode, EOT } from '../data/tokenizer';
import { generate } from '../train/sample';
import { describeModel, Trainer } from '../train/trainer';
import type { StepRecord } from '../train/metrics';
import { fmtFlops, positiveInt } from './common';

interface DemoFlags {
  steps: number;
  out: string;
  prompt: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('a staged run on the embedded corpus (CPU, a few minutes): grow 2×64 → 4×64 → 4×128, then sample')
    .option('--steps <n>', 'optimizer steps in total', positiveInt('--steps'), 600)
    .option('--out <dir>', 'run directory', join('runs', 'demo'))
    .option('--prompt <text>', 'prompt of the closing sample', 'The whale')
    .action(async (f: DemoFlags) => {
      // two growths, each at its own step, with training before, between and after them
      if (f.steps < 12) throw new Error(`demo needs --steps of at least 12 (two growths and training around them), got ${f.steps}`);
      const depthAt = Math.round(f.steps / 3);
      const widthAt = Math.round((7 * f.steps) / 12);
      const trainer = Trainer.create({
        model: { preset: 'tiny', nLayer: 2, nEmbd: 64, nHead: 2 },
        data: 'embedded',
        steps: f.steps,
        batchSize: 8,
        seqLen: 64,
        lr: { peak: 'kaplan', kind: 'cosine', warmup: 30, finalFraction: 0.1 },
        eval: { interval: 50, batches: 8 },
        logInterval: 25,
        seed: 1337,
        stages: [
          { until: { steps: depthAt }, grow: { op: 'depth', rewarmup: 20 } },
          { until: { steps: widthAt }, grow: { op: 'width', dropout: 0.1, rewarmup: 20 } },
        ],
      });
      const out = f.out;
      process.stdout.write(`staged-lm demo: ${describeModel(trainer.modelConfig)}\n`);
      process.stdout.write(
        `data: ${trainer.data.name} (${trainer.data.train.length} train / ${trainer.data.val.length} val tokens), ${f.steps} steps of 8×64 tokens, run dir ${out}\n`,
      );
      process.stdout.write(
        `stages: grow depth ×2 at step ${depthAt}, then width ×2 at step ${widthAt}; optimizer state and LR schedule carried through each growth\n\n`,
      );
      const header = ' step    loss   val loss        lr   tok/s';
      process.stdout.write(header + '\n');
      const onRecord = (r: StepRecord) => {
        if (r.tokensPerSec === undefined) return; // only the read-back points
        const row = `${String(r.step).padStart(5)}  ${r.loss.toFixed(3).padStart(6)}  ${(r.valLoss === undefined ? '' : r.valLoss.toFixed(3)).padStart(9)}  ${r.lr.toExponential(2).padStart(8)}  ${Math.round(r.tokensPerSec).toString().padStart(6)}`;
        process.stdout.write(row + '\n');
      };
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.on('SIGINT', onSigint);
      try {
        const r = await trainer.train({
          out,
          progress: false,
          onRecord,
          onGrowth: (g) =>
            process.stdout.write(
              `  ---- step ${g.step}: grew ${g.op} → ${g.to.nLayer} layers × ${g.to.nEmbd}; val loss on 2 batches ${g.lossBefore.toFixed(4)} → ${g.lossAfter.toFixed(4)}, peak LR ${g.peakLr.toExponential(2)}\n`,
            ),
          signal: controller.signal,
        });
        process.stdout.write(
          `\n${r.interrupted ? 'interrupted' : 'trained'}: ${r.step} steps, ${r.tokens} tokens, ${fmtFlops(r.flops)} in ${r.seconds.toFixed(0)} s; checkpoint ${r.checkpoint}\n`,
        );
        if (r.report !== null) process.stdout.write(`\n${r.report.table}\nplot (loss vs FLOPs, growths marked): ${r.report.svg}\n`);
        const ids = generate(trainer.model, encode(f.prompt), { maxNewTokens: 60, temperature: 0.8, topK: 40, seed: 7, stopToken: EOT });
        process.stdout.write(`\nsample: ${f.prompt}${decode(ids)}\n`);
      } finally {
        process.off('SIGINT', onSigint);
        trainer.dispose();
      }
    });
}
