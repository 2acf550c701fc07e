// `staged-lm sample`: text from a checkpoint, printed as it is drawn.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { decode, encode, EOT, GPT2_VOCAB, TextStream } from '../data/tokenizer';
import { generateSamples } from '../train/sample';
import { device, launchedRank, nonNegativeInt, nonNegativeNumber, output, positiveInt } from './common';
import { loadModel, trainedSeqLen } from './model-io';

interface SampleFlags {
  checkpoint: string;
  prompt: string;
  promptFile?: string;
  tokens: number;
  samples: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  context?: number;
  device: string;
  precision: 'fp32' | 'bf16' | 'fp16';
  json?: boolean;
}

function probability(v: string): number {
  const p = Number(v);
  if (!(p > 0 && p <= 1)) throw new InvalidArgumentError(`--top-p must be in (0, 1] (got '${v}')`);
  return p;
}

/** A prompt file's text (UTF-8, a BOM dropped; '-': standard input), refused when it is not UTF-8. */
function readPrompt(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file === '-' ? 0 : file);
  } catch (e) {
    throw new Error(`--prompt-file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`--prompt-file ${file}: not UTF-8 text`);
  }
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('continue a prompt with a trained checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory')
    .option('--prompt <text>', 'the text to continue', '\n')
    .option('--prompt-file <file>', "the text to continue, read from a UTF-8 file ('-': standard input)")
    .option('--tokens <n>', 'new tokens to generate (each sample ends early at end-of-text)', positiveInt('--tokens'), 100)
    .option('--samples <n>', 'continuations to draw, side by side in one batch (sample i uses seed + i)', positiveInt('--samples'), 1)
    .option('--temperature <t>', 'softmax temperature (0: greedy)', nonNegativeNumber('--temperature'), 0.8)
    .option('--top-k <k>', 'sample among the k most likely tokens (0: all)', nonNegativeInt('--top-k'), 40)
    .option('--top-p <p>', 'then among the most likely tokens holding probability p (nucleus; 1: all)', probability, 1)
    .option('--seed <n>', 'sampling seed', nonNegativeInt('--seed'), 0)
    .option(
      '--context <n>',
      "positions the model reads at most; past them the window slides (default: the run's training --seq-len where shorter than the model's context, else the context)",
      positiveInt('--context'),
    )
    .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu')
    .addOption(
      new Option('--precision <p>', 'fp32, or the forward in bf16 / fp16 autocast (CUDA; the weights stay as loaded)')
        .choices(['fp32', 'bf16', 'fp16'])
        .default('fp32'),
    )
    .option('--json', 'print one JSON object')
    .action((f: SampleFlags, cmd: Command) => {
      if (f.promptFile !== undefined) {
        if (cmd.getOptionValueSource('prompt') === 'cli') throw new Error('give --prompt or --prompt-file, not both');
        f.prompt = readPrompt(f.promptFile);
      }
      if (f.precision !== 'fp32' && !f.device.startsWith('cuda'))
        throw new Error(`--precision ${f.precision} needs a CUDA device (autocast is CUDA-only here)`);
      const model = loadModel(f.checkpoint, f.device);
      try {
        const prompt = encode(f.prompt);
        if (prompt.length === 0)
          throw new Error(f.promptFile !== undefined ? `--prompt-file ${f.promptFile} is empty` : '--prompt must not be empty');
        const ctx = model.config.contextLength;
        if (f.context !== undefined && f.context > ctx)
          throw new Error(`--context ${f.context} is longer than the model's context (${ctx} positions)`);
        const trained = f.context === undefined ? trainedSeqLen(f.checkpoint, ctx) : null;
        const window = f.context ?? trained ?? ctx;
        if (prompt.length > window)
          process.stderr.write(
            `staged-lm: note: the prompt is ${prompt.length} tokens and the model reads ${window}: it continues from the prompt's last ${window} tokens\n`,
          );
        if (trained !== null && prompt.length + f.tokens > trained)
          process.stderr.write(
            `staged-lm: note: the run trained on sequences of ${trained} tokens (its context is ${ctx}): the window slides at ${trained}, past which positions were never trained (--context ${ctx} reads them)\n`,
          );
        // one sample is printed token by token as it is drawn; several, each when all are done
        const streaming = !f.json && f.samples === 1 && launchedRank() === 0;
        const text = new TextStream();
        // a reader that stops early (`sample … | head`) closes the pipe: stop drawing, and end quietly
        const closed = new AbortController();
        const onPipeError = (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EPIPE') throw e;
          closed.abort();
        };
        process.stdout.on('error', onPipeError);
        if (streaming) process.stdout.write(f.prompt);
        const t0 = performance.now();
        const samples = generateSamples(model, prompt, f.samples, {
          maxNewTokens: f.tokens,
          temperature: f.temperature,
          topK: f.topK,
          topP: f.topP,
          seed: f.seed,
          context: window,
          stopToken: EOT,
          // (only ids the GPT-2 tokenizer decodes: a Hugging Face config may keep a padded vocabulary)
          vocab: Math.min(model.config.vocabSize, GPT2_VOCAB),
          autocast: f.precision === 'bf16' ? 'bfloat16' : f.precision === 'fp16' ? 'float16' : null,
          onToken: streaming ? (id) => process.stdout.write(text.push(id)) : undefined,
          signal: closed.signal,
        });
        const seconds = (performance.now() - t0) / 1000;
        if (closed.signal.aborted) return;
        if (streaming) {
          process.stdout.write(text.end() + '\n');
          return;
        }
        const texts = samples.map((ids) => ({ text: decode(ids), tokens: ids.length }));
        output(f.json, { prompt: f.prompt, text: texts[0].text, tokens: texts[0].tokens, samples: texts, seconds }, () =>
          texts.map((s) => f.prompt + s.text).join('\n' + '-'.repeat(40) + '\n'),
        );
      } finally {
        model.dispose();
      }
    });
}
