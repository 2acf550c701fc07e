// `staged-lm sample`: text from a checkpoint.
import type { Command } from 'commander';
import { decode, encode, EOT } from '../data/tokenizer';
import { generate } from '../train/sample';
import { device, nonNegativeInt, nonNegativeNumber, output, positiveInt } from './common';
import { loadModel } from './model-io';

interface SampleFlags {
  checkpoint: string;
  prompt: string;
  tokens: number;
  temperature: number;
  topK: number;
  seed: number;
  device: string;
  json?: boolean;
}

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('continue a prompt with a trained checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory')
    .option('--prompt <text>', 'the text to continue', '\n')
    .option('--tokens <n>', 'new tokens to generate', positiveInt('--tokens'), 100)
    .option('--temperature <t>', 'softmax temperature (0: greedy)', nonNegativeNumber('--temperature'), 0.8)
    .option('--top-k <k>', 'sample among the k most likely tokens (0: all)', nonNegativeInt('--top-k'), 40)
    .option('--seed <n>', 'sampling seed', nonNegativeInt('--seed'), 0)
    .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu')
    .option('--json', 'print one JSON object')
    .action((f: SampleFlags) => {
      const model = loadModel(f.checkpoint, f.device);
      try {
        const prompt = encode(f.prompt);
        if (prompt.length === 0) throw new Error('--prompt must not be empty');
        const ids = generate(model, prompt, {
          maxNewTokens: f.tokens,
          temperature: f.temperature,
          topK: f.topK,
          seed: f.seed,
          stopToken: EOT,
        });
        const text = decode(ids);
        output(f.json, { prompt: f.prompt, text, tokens: ids.length }, () => f.prompt + text);
      } finally {
        model.dispose();
      }
    });
}
