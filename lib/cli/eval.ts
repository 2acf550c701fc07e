// `staged-lm eval`: held-out loss of a checkpoint on a text or token file, with bits per byte and
// per-token perplexity (bits per byte = total NLL / (ln 2 · UTF-8 bytes of the scored text)).
import { statSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { inputSize } from '../data/documents';
import { INPUT_FORMATS, readInputPieces, textFieldNote, type InputFormat, type InputOptions } from '../data/inputs';
import { evalBatchCount, evalTailTokens, evalWindowCount, textBytes } from '../data/eval';
import { loadTokenData } from '../data/source';
import { loadEmbeddedCorpus } from '../data/corpus';
import { tokenizePieces } from '../data/parallel';
import { FileTokens, detectTokenFile, type Tokens } from '../data/file-tokens';
import { EOT, GPT2_VOCAB } from '../data/tokenizer';
import { evaluate } from '../train/evaluate';
import { device, output, positiveInt } from './common';
import { loadModel, trainedSeqLen } from './model-io';

interface EvalFlags {
  checkpoint: string;
  data: string;
  batchSize: number;
  seqLen?: number;
  stride?: number;
  maxBatches?: number;
  tail: boolean;
  format?: InputFormat;
  textField?: string;
  device: string;
  precision: 'fp32' | 'bf16' | 'fp16';
  json?: boolean;
}

export interface EvalReport {
  loss: number;
  tokens: number;
  /**
   * null when the scored tokens stand for no text (only end-of-text tokens), or for a model whose
   * vocabulary is not GPT-2's (its ids' bytes are unknown: `bytes` is null too).
   */
  bitsPerByte: number | null;
  perplexity: number;
  bytes: number | null;
  seqLen: number;
  /** Tokens between window starts (seqLen: windows do not overlap). */
  stride: number;
  /**
   * Targets after the last whole window, scored by one more window that ends with the data (0:
   * none, or --no-tail, or --max-batches stopped before it).
   */
  tail: number;
}

/**
 * Token ids of the file: llm.c shards and .bin token files as they are; any other file is text read
 * and tokenized exactly as `prepare` does (UTF-8 text, documents split at "\n\f\n" or
 * "\r\n\f\r\n", or JSON lines;
 * .gz or .br compressed; EOT after each document), so a text file and the shard prepared from it
 * score the same tokens.
 */
async function fileTokens(
  path: string,
  vocabSize: number,
  input: InputOptions = {},
): Promise<{ tokens: Tokens; text: false; what?: string } | { tokens: Uint16Array; text: true }> {
  // the corpus runs train on by default: its validation split, as training evaluates it
  if (path === 'embedded') {
    const c = loadEmbeddedCorpus();
    const top = c.val.reduce((a, b) => Math.max(a, b), 0);
    if (top >= vocabSize)
      throw new Error(
        `--data embedded: the embedded corpus holds GPT-2 token ids up to ${top}: this model's vocabulary (vocabSize ${vocabSize}) has no rows for them`,
      );
    return { tokens: c.val, text: false, what: `the validation split of the embedded corpus (${c.name})` };
  }
  let directory = false;
  try {
    directory = statSync(path).isDirectory();
  } catch {
    // (named below, when it is read)
  }
  // a directory of token files (as prepare writes): its validation split, as training evaluates it
  if (directory) {
    let data: ReturnType<typeof loadTokenData>;
    try {
      data = loadTokenData(path, { vocabSize });
    } catch (e) {
      throw new Error(
        `--data ${path}: a directory, read as prepared token shards (its validation split), but ${(e as Error).message.replace(/^.*?: /, '')}`,
      );
    }
    return {
      tokens: data.val,
      text: false,
      what: `the validation split of ${path} (${data.files.val.length} file${data.files.val.length === 1 ? '' : 's'})`,
    };
  }
  try {
    // a token file is read window by window as it is scored (it may be larger than memory), its ids
    // checked against the model's vocabulary as they are read; text is checked after encoding
    if (/\.bin$/i.test(path)) return { tokens: new FileTokens([detectTokenFile(path)], vocabSize), text: false };
    // streamed: a text of any size (the tokens are held, 2 bytes each)
    const pieces = async function* () {
      for await (const p of readInputPieces(path, input)) yield { text: p.text, eot: p.eot, units: p.bytes };
    };
    return { tokens: (await tokenizePieces(pieces(), inputSize(path))).tokens, text: true };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined) throw e; // (the readers' own errors name the file)
    throw new Error(`--data ${path}: ${code === 'EISDIR' ? 'a directory, not a text or token file' : (e as Error).message}`);
  }
}

/**
 * Refuses ids the model has no embedding row for (libtorch would fail with a bare "index out of
 * range"). Text is always encoded with GPT-2's tokenizer, so a model with a smaller vocabulary can
 * only score token files of its own ids.
 */
function checkTextIds(path: string, tokens: Uint16Array, vocabSize: number): void {
  const at = tokens.findIndex((id) => id >= vocabSize);
  if (at < 0) return;
  throw new Error(
    `--data ${path}: token id ${tokens[at]} at position ${at} is outside the model's vocabulary (vocabSize ${vocabSize}); ` +
      `text is encoded with GPT-2's tokenizer (ids 0..${EOT}, ${EOT} = end of text), and this model's vocabulary is not GPT-2's: give it a .bin token file of its own ids`,
  );
}

/** The text bytes of tokens[from … to), a million at a time (a token file may be larger than memory). */
function bytesOf(tokens: Tokens, from: number, to: number): number {
  let bytes = 0;
  for (let a = from; a < to; a += 1 << 20) bytes += textBytes(tokens.subarray(a, Math.min(to, a + (1 << 20))));
  return bytes;
}

/** --data, given once: eval scores one file or directory. */
function oneData(value: string, previous: string | undefined): string {
  if (previous !== undefined)
    throw new InvalidArgumentError(`give one --data (eval scores one file or directory; got ${previous} and ${value})`);
  return value;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'loss, bits per byte and perplexity of a checkpoint on held-out data (bits per byte counts the UTF-8 bytes of the scored text; end-of-text tokens count none)',
    )
    .requiredOption('--checkpoint <dir>', 'checkpoint directory')
    .requiredOption(
      '--data <file>',
      'embedded (the validation split of the corpus runs train on by default), a token file (.bin: llm.c shard or raw uint16, ids < the model\'s vocabSize), a directory of them (as prepare writes: its validation split), or text read and tokenized as prepare does (UTF-8 with documents separated by "\\n\\f\\n", or JSON lines: .jsonl, .ndjson, .json; plain, .gz or .br; end-of-text after each document; GPT-2 vocabulary)',
      oneData,
    )
    .option('--batch-size <n>', 'sequences per batch', positiveInt('--batch-size'), 8)
    .option(
      '--seq-len <n>',
      "window length (default: the run's training --seq-len where shorter than the model's context, else the context length)",
      positiveInt('--seq-len'),
    )
    .option(
      '--stride <n>',
      "windows n tokens apart, each scoring only its last n targets with the tokens before them as context (a sliding window, as Hugging Face's perplexity; default: the window length, no overlap)",
      positiveInt('--stride'),
    )
    .option('--max-batches <n>', 'score at most this many batches', positiveInt('--max-batches'))
    .option(
      '--no-tail',
      "score whole windows from the data's start only, as a training run's evaluation does (default: the targets after the last one too, with a window ending at the data's end: every target once)",
    )
    .addOption(
      new Option('--format <format>', "the text's format (default: by name: .jsonl, .ndjson, .json are JSON lines)").choices([
        ...INPUT_FORMATS,
      ]),
    )
    .option(
      '--text-field <name>',
      'the field holding the text, for JSON lines: a name, or a dotted path into nested objects (default: "text")',
    )
    .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu')
    .addOption(
      new Option('--precision <p>', 'fp32, or bf16 / fp16 autocast (CUDA; the loss is still summed in float32)')
        .choices(['fp32', 'bf16', 'fp16'])
        .default('fp32'),
    )
    .option('--json', 'print one JSON object')
    .action(async (f: EvalFlags) => {
      const note = textFieldNote([f.data], f);
      if (note !== null && !/\.bin$/i.test(f.data)) process.stderr.write(note + '\n');
      if (f.precision !== 'fp32' && !f.device.startsWith('cuda'))
        throw new Error(`--precision ${f.precision} needs a CUDA device (autocast is CUDA-only here)`);
      const model = loadModel(f.checkpoint, f.device);
      try {
        const input = await fileTokens(f.data, model.config.vocabSize, { format: f.format, textField: f.textField });
        if (input.text) checkTextIds(f.data, input.tokens, model.config.vocabSize);
        const tokens: Tokens = input.tokens;
        // a run trained on shorter sequences never trained the positions past them
        const trained = f.seqLen === undefined ? trainedSeqLen(f.checkpoint, model.config.contextLength) : null;
        if (trained !== null)
          process.stderr.write(
            `staged-lm: note: windows of ${trained} tokens, the run's training --seq-len (its context is ${model.config.contextLength}, positions past ${trained} were never trained; --seq-len ${model.config.contextLength} reads them)\n`,
          );
        const seqLen = f.seqLen ?? trained ?? model.config.contextLength;
        const stride = f.stride ?? seqLen;
        if (stride > seqLen)
          throw new Error(
            `--stride ${stride} is longer than the window (${seqLen} tokens${trained !== null ? ", the run's training --seq-len" : ''}): windows would skip tokens` +
              (f.seqLen === undefined ? ' (--seq-len sets the window)' : ''),
          );
        const windows = evalWindowCount(tokens.length, seqLen, stride);
        if (windows === 0) {
          throw new Error(
            `--data ${input.text ? f.data : (input.what ?? f.data)}: ` +
              (tokens.length < 2
                ? `${tokens.length} token${tokens.length === 1 ? '' : 's'}: nothing to score (a target needs a token before it)`
                : `${tokens.length} tokens, too few for one window of ${seqLen} tokens and its next-token targets (a shorter --seq-len fits more)`),
          );
        }
        const batching = { batchSize: f.batchSize, seqLen, stride, maxBatches: f.maxBatches, tail: f.tail };
        // (the tail window is the last one: --max-batches may stop before it)
        const tail =
          f.tail && evalBatchCount(tokens.length, batching) * f.batchSize > windows ? evalTailTokens(tokens.length, seqLen, stride) : 0;
        const r = evaluate(model, tokens, {
          ...batching,
          device: model.parameters()[0].device,
          autocast: f.precision === 'bf16' ? 'bfloat16' : f.precision === 'fp16' ? 'float16' : null,
        });
        // the scored targets are tokens[1 .. 1 + r.tokens] (windows from the start; with a stride each
        // scores the S after the last one's; the tail window the rest); bits per byte divides by the text they stand for
        // (end-of-text tokens are no bytes) — GPT-2's ids only: another vocabulary's bytes are unknown
        const gpt2 = model.config.vocabSize >= GPT2_VOCAB;
        const bytes = gpt2 ? bytesOf(tokens, 1, 1 + r.tokens) : null;
        const report: EvalReport = {
          loss: r.loss,
          tokens: r.tokens,
          bitsPerByte: bytes !== null && bytes > 0 ? (r.loss * r.tokens) / (Math.LN2 * bytes) : null,
          perplexity: Math.exp(r.loss),
          bytes,
          seqLen,
          stride,
          tail,
        };
        const na =
          bytes === null
            ? `n/a (the model's vocabulary, ${model.config.vocabSize} ids, is not GPT-2's: the bytes its ids stand for are unknown)`
            : 'n/a (the scored tokens hold no text)';
        output(
          f.json,
          report,
          () =>
            `loss ${report.loss.toFixed(4)} nats/token over ${report.tokens} tokens (${bytes === null ? 'bytes unknown' : `${bytes} bytes`}, windows of ${seqLen}${stride === seqLen ? '' : `, ${stride} apart`}${tail > 0 ? `; the last ${tail} by a window ending with the data` : ''})\nbits per byte ${report.bitsPerByte === null ? na : report.bitsPerByte.toFixed(4)}\nperplexity ${report.perplexity.toFixed(2)}`,
        );
      } finally {
        model.dispose();
      }
    });
}
