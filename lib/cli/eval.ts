// `staged-lm eval`: held-out loss of a checkpoint on a text or token file, with bits per byte and
// per-token perplexity (bits per byte = total NLL / (ln 2 · UTF-8 bytes of the scored text)).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { evalWindowCount } from '../data/eval';
import { readTokens } from '../data/shards';
import { decode, encode } from '../data/tokenizer';
import { evaluate } from '../train/evaluate';
import { device, output, positiveInt } from './common';
import { loadModel } from './model-io';

interface EvalFlags {
  checkpoint: string;
  data: string;
  batchSize: number;
  seqLen?: number;
  maxBatches?: number;
  device: string;
  json?: boolean;
}

export interface EvalReport {
  loss: number;
  tokens: number;
  bitsPerByte: number;
  perplexity: number;
  bytes: number;
  seqLen: number;
}

/** Token ids of the file: llm.c shards and .bin token files as they are, anything else as UTF-8 text. */
function fileTokens(path: string, vocabSize: number): Uint16Array {
  if (/\.bin$/i.test(path)) return readTokens(path, { vocabSize });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--data ${path}: ${code === 'EISDIR' ? 'a directory, not a text or token file' : (e as Error).message}`);
  }
  return Uint16Array.from(encode(text));
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('loss, bits per byte and perplexity of a checkpoint on held-out data')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory')
    .requiredOption('--data <file>', 'a text file, or a token file (.bin: llm.c shard or raw uint16)')
    .option('--batch-size <n>', 'sequences per batch', positiveInt('--batch-size'), 8)
    .option('--seq-len <n>', 'window length (default: the context length); windows do not overlap', positiveInt('--seq-len'))
    .option('--max-batches <n>', 'score at most this many batches', positiveInt('--max-batches'))
    .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu')
    .option('--json', 'print one JSON object')
    .action((f: EvalFlags) => {
      const model = loadModel(f.checkpoint, f.device);
      try {
        const tokens = fileTokens(f.data, model.config.vocabSize);
        const seqLen = f.seqLen ?? model.config.contextLength;
        const r = evaluate(model, tokens, {
          batchSize: f.batchSize,
          seqLen,
          maxBatches: f.maxBatches,
          device: model.parameters()[0].device,
          autocast: null,
        });
        // the scored targets are tokens[1 .. 1 + r.tokens]; count the bytes they decode to
        const windows = Math.min(evalWindowCount(tokens.length, seqLen), Math.ceil(r.tokens / seqLen));
        const bytes = Buffer.byteLength(decode(tokens.subarray(1, 1 + Math.min(r.tokens, windows * seqLen))), 'utf8');
        const report: EvalReport = {
          loss: r.loss,
          tokens: r.tokens,
          bitsPerByte: (r.loss * r.tokens) / (Math.LN2 * bytes),
          perplexity: Math.exp(r.loss),
          bytes,
          seqLen,
        };
        output(
          f.json,
          report,
          () =>
            `loss ${report.loss.toFixed(4)} nats/token over ${report.tokens} tokens (${bytes} bytes, windows of ${seqLen})\nbits per byte ${report.bitsPerByte.toFixed(4)}\nperplexity ${report.perplexity.toFixed(2)}`,
        );
      } finally {
        model.dispose();
      }
    });
}
