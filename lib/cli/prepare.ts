// `staged-lm prepare --text FILE… --out DIR`: text files → llm.c token shards (first shard
// validation). A progress bar goes to stderr when it is a terminal; the summary goes to stdout,
// human-readable or, with --json, one JSON object.
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { INPUT_FORMATS, textFieldNote, type InputFormat } from '../data/inputs';
import { handleStops } from './stop-signals';
import { DEFAULT_SHARD_TOKENS, prepare, PrepareInterruptedError, type PrepareSummary } from '../data/prepare';

interface PrepareFlags {
  text: string[];
  out: string;
  shardTokens: number;
  format?: InputFormat;
  textField?: string;
  valTokens?: number;
  workers?: number;
  json?: boolean;
}

export function registerPrepare(program: Command): Command {
  return program
    .command('prepare')
    .description(
      'tokenize text files (UTF-8, documents separated by "\\n\\f\\n") or JSON lines (.jsonl, .ndjson, .json), plain or compressed (.gz, .br), into llm.c token shards',
    )
    .requiredOption('--text <files...>', 'input files')
    .addOption(
      new Option('--format <format>', "the inputs' format (default: by name: .jsonl, .ndjson, .json are JSON lines)").choices([
        ...INPUT_FORMATS,
      ]),
    )
    .option(
      '--text-field <name>',
      'the field holding the text, for JSON lines: a name, or a dotted path into nested objects (default: "text")',
    )
    .requiredOption('--out <dir>', 'output directory for val_000000.bin, train_000001.bin, …')
    .option('--shard-tokens <n>', 'most tokens per shard', positiveInt('--shard-tokens'), DEFAULT_SHARD_TOKENS)
    .option(
      '--val-tokens <n>',
      'tokens in the validation shard, moved to a document end within half to twice that many, else cut inside the document (default: 10% of all tokens, at most --shard-tokens)',
      positiveInt('--val-tokens'),
    )
    .option('--workers <n>', 'tokenizer threads (default: available cores; small inputs use the main thread)', positiveInt('--workers'))
    .option('--json', 'print one JSON object')
    .action(async (flags: PrepareFlags) => {
      const note = textFieldNote(flags.text, flags);
      if (note !== null) process.stderr.write(note + '\n');
      const bar = process.stderr.isTTY ? progressBar() : undefined;
      // Ctrl-C (SIGTERM too): stop reading, remove the staging directory, keep the old shard set;
      // a second signal quits at once
      const controller = new AbortController();
      let stopCode = 130;
      const removeStops = handleStops(
        (signal) => {
          stopCode = signal === 'SIGINT' ? 130 : 143;
          process.stderr.write(
            `\nstaged-lm: ${signal === 'SIGINT' ? 'interrupted' : 'asked to stop (SIGTERM)'} — stopping; the old shard set stays (again to quit at once)\n`,
          );
          controller.abort();
        },
        () => process.exit(stopCode),
      );
      try {
        let summary: PrepareSummary;
        try {
          summary = await prepare({
            inputs: flags.text,
            format: flags.format,
            textField: flags.textField,
            outDir: flags.out,
            shardTokens: flags.shardTokens,
            valTokens: flags.valTokens,
            workers: flags.workers,
            onProgress: bar?.onProgress,
            signal: controller.signal,
          });
        } catch (e) {
          if (e instanceof PrepareInterruptedError) process.exitCode = stopCode;
          throw e;
        } finally {
          bar?.stop();
        }
        process.stdout.write((flags.json ? JSON.stringify(summary) : formatPrepare(summary)) + '\n');
      } finally {
        // (held until here: a signal after the new set is in place interrupts nothing, and exits 0)
        removeStops();
      }
    });
}

export function formatPrepare(s: PrepareSummary): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const width = Math.max(...s.files.map((f) => n(f.tokens).length));
  return [
    `prepared ${s.inputs.length} file(s), ${n(s.documents)} document(s), ${n(s.characters)} characters → ` +
      `${n(s.tokens.train + s.tokens.val)} tokens in ${s.seconds.toFixed(1)} s (${s.workers} thread(s))`,
    ...s.files.map((f) => `  ${f.split.padEnd(5)} ${n(f.tokens).padStart(width)} tokens  ${f.path}`),
  ].join('\n');
}

function positiveInt(flag: string): (value: string) => number {
  return (value) => {
    const v = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(v) || v < 1) {
      throw new InvalidArgumentError(`expected a positive integer for ${flag} but received '${value}'`);
    }
    return v;
  };
}

function progressBar(): { onProgress: (done: number, total: number) => void; stop: () => void } {
  const bar = new SingleBar({
    stream: process.stderr,
    format: 'tokenizing |{bar}| {percentage}% | {doneMB}/{totalMB} MB of input | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
  });
  const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
  let started = false;
  return {
    onProgress: (done, total) => {
      if (!started) bar.start(total, 0, { doneMB: mb(0), totalMB: mb(total) });
      started = true;
      bar.update(done, { doneMB: mb(done), totalMB: mb(total) });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
