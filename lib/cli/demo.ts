// `staged-lm demo` (npm run demo): the main job on the embedded default — train the tiny preset on
// the embedded corpus on the CPU, print a step/loss table, end with a text sample.
import { join } from 'node:path';
import type { Command } from 'commander';
import { decode, encode, EOT } from '../data/tokenizer';
import { generate } from '../train/sample';
import { describeModel, Trainer } from '../train/trainer';
import type { StepRecord } from '../train/metrics';
import { positiveInt } from './common';

interface DemoFlags {
  steps: number;
  out: string;
  prompt: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train the tiny preset on the embedded corpus (CPU, a few minutes), then sample')
    .option('--steps <n>', 'optimizer steps', positiveInt('--steps'), 600)
    .option('--out <dir>', 'run directory', join('runs', 'demo'))
    .option('--prompt <text>', 'prompt of the closing sample', 'The whale')
    .action(async (f: DemoFlags) => {
      const trainer = Trainer.create({
        model: 'tiny',
        data: 'embedded',
        steps: f.steps,
        batchSize: 8,
        seqLen: 64,
        lr: { peak: 3e-3, kind: 'cosine', warmup: 30, finalFraction: 0.1 },
        eval: { interval: 100, batches: 8 },
        logInterval: 25,
        seed: 1337,
      });
      const out = f.out;
      process.stdout.write(`staged-lm demo: ${describeModel(trainer.modelConfig)}\n`);
      process.stdout.write(
        `data: ${trainer.data.name} (${trainer.data.train.length} train / ${trainer.data.val.length} val tokens), ${f.steps} steps of 8×64 tokens, run dir ${out}\n\n`,
      );
      const rows: string[] = [];
      const header = ' step    loss   val loss        lr   tok/s';
      process.stdout.write(header + '\n');
      const onRecord = (r: StepRecord) => {
        if (r.tokensPerSec === undefined) return; // only the read-back points
        const row = `${String(r.step).padStart(5)}  ${r.loss.toFixed(3).padStart(6)}  ${(r.valLoss === undefined ? '' : r.valLoss.toFixed(3)).padStart(9)}  ${r.lr.toExponential(2).padStart(8)}  ${Math.round(r.tokensPerSec).toString().padStart(6)}`;
        rows.push(row);
        process.stdout.write(row + '\n');
      };
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.on('SIGINT', onSigint);
      try {
        const r = await trainer.train({ out, progress: false, onRecord, signal: controller.signal });
        process.stdout.write(
          `\n${r.interrupted ? 'interrupted' : 'trained'}: ${r.step} steps, ${r.tokens} tokens in ${r.seconds.toFixed(0)} s; checkpoint ${r.checkpoint}\n`,
        );
        const ids = generate(trainer.model, encode(f.prompt), { maxNewTokens: 60, temperature: 0.8, topK: 40, seed: 7, stopToken: EOT });
        process.stdout.write(`\nsample: ${f.prompt}${decode(ids)}\n`);
      } finally {
        process.off('SIGINT', onSigint);
        trainer.dispose();
      }
    });
}
