// `staged-lm eval` as a user runs it (the built dist/lib/cli/main.js in child processes), on very
// small untrained checkpoints made here: bits per byte counts the text's bytes and no bytes for
// end-of-text tokens; text is read and tokenized as `prepare` reads it (Brotli, strict UTF-8, BOM,
// "\n\f\n" documents with EOT between them); ids outside the model's vocabulary are refused clearly.
// Needs `npm run build:ts` after changes to lib/.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { textBytes } from '../../lib/data/eval';
import { writeShard } from '../../lib/data/shards';
import { EOT, decode, encode, encodeDocuments } from '../../lib/data/tokenizer';
import { GPT } from '../../lib/nn/gpt';
import { parseGPTConfig } from '../../lib/nn/config';
import { AdamW } from '../../lib/optim/adamw';
import { manualSeed } from '../../lib/runtime';
import { CHECKPOINT_FORMAT, loadCheckpoint, loadParameters, saveCheckpoint } from '../../lib/train/checkpoint';
import { noGrad } from '../../lib/autograd';
import { fromTypedArray } from '../../lib/factories';
import type { EvalReport } from '../../lib/cli/eval';

const CLI = resolve(__dirname, '../../dist/lib/cli/main.js');
const TIMEOUT_MS = 60000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  args: string[];
}

/** Runs the CLI to completion (one libtorch thread: jest runs two workers). */
function cli(args: string[]): Promise<Run> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      res({ code: null, stdout, stderr: `${stderr}\nspawn failed: ${e.message}`, args });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr, args });
    });
  });
}

type Report = EvalReport;

/** The report of `eval --json`: exit 0 and one JSON line. */
function reportOf(r: Run): Report {
  if (r.code !== 0) throw new Error(`exit ${r.code}; stderr:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

/** `s` matched literally in a RegExp (temporary paths). */
function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A clean refusal: exit 1, one `staged-lm: …` line matching `message`, no stack trace. */
function expectRefused(r: Run, message: RegExp): void {
  expect(r.code).toBe(1);
  if (r.args.includes('--json')) {
    // the error's one object, with the message stderr has
    const { error } = JSON.parse(r.stdout) as { error: { message: string; exitCode: number } };
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(error.exitCode).toBe(1);
    expect(r.stderr).toBe(`staged-lm: ${error.message}\n`);
  } else expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^staged-lm: /);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let dir: string;
/** GPT-2 vocabulary, context 256. */
let gpt2: string;
/** vocabSize 1000. */
let small: string;

/** Saves an untrained model of this config as a checkpoint. */
function makeCheckpoint(path: string, config: Parameters<typeof parseGPTConfig>[0]): string {
  manualSeed(1);
  const model = new GPT(parseGPTConfig(config));
  try {
    const state = { library: 'test', step: 0, tokens: 0, flops: 0, stage: 0, optimizerStep: 0, rng: { cpu: '' }, extra: {} };
    saveCheckpoint(path, model, new AdamW(model.namedParameters()), state);
  } finally {
    model.dispose();
  }
  return path;
}

// Short documents (many EOTs per window), with multi-byte characters, one of them split across tokens.
const DOCS = [
  'The whale surfaced.',
  'Ishmael watched the sea.',
  'Café au lait — 世界 🦀.',
  'Call me Ishmael. Some years ago, never mind how long precisely.',
  'It was the best of times.',
  'Naïve résumé, ½ and ¾.',
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'staged-lm-eval-'));
  gpt2 = makeCheckpoint(join(dir, 'gpt2'), { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 256 });
  small = makeCheckpoint(join(dir, 'small'), { vocabSize: 1000, nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 32 });
  expect(CHECKPOINT_FORMAT).toBe('staged-lm-checkpoint');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('textBytes', () => {
  it('is the UTF-8 byte count of the documents, EOT and ids past the ordinary vocabulary counting none', () => {
    const docs = [...DOCS, 'a literal <|endoftext|> is text', '\u{1F600}\u{1F980}'];
    expect(textBytes(encodeDocuments(docs))).toBe(docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0));
    expect(textBytes([EOT])).toBe(0);
    expect(textBytes([50300, 65535])).toBe(0); // a padded vocabulary's spare rows
    expect(Buffer.byteLength(decode([EOT]))).toBe(13); // what the old count added per EOT
  });

  it('counts each token exactly, also where a cut splits a multi-byte character', () => {
    const ids = encode('世界和平。🦀🦀 naïve');
    const total = Buffer.byteLength('世界和平。🦀🦀 naïve', 'utf8');
    for (let cut = 0; cut <= ids.length; cut++) expect(textBytes(ids.slice(0, cut)) + textBytes(ids.slice(cut))).toBe(total);
  });
});

describe('staged-lm eval', () => {
  it('bits per byte divides by the bytes of the scored documents, not by EOT rendered as "<|endoftext|>"', async () => {
    // [EOT, doc0, EOT, doc1, EOT, …] as llm.c shards start; one window of every token after the first,
    // so the scored targets are exactly the documents and their EOTs
    const scored = encodeDocuments(DOCS);
    const path = join(dir, 'docs.bin');
    writeShard(path, Uint16Array.from([EOT, ...scored]));
    const e = reportOf(await cli(['eval', '--checkpoint', gpt2, '--data', path, '--seq-len', String(scored.length), '--json']));
    const expectedBytes = DOCS.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
    expect(e.tokens).toBe(scored.length);
    expect(e.bytes).toBe(expectedBytes);
    expect(e.bitsPerByte).toBeCloseTo((e.loss * e.tokens) / (Math.LN2 * expectedBytes), 10);
  });

  it('reports no bits per byte when the scored tokens hold no text', async () => {
    const path = join(dir, 'eots.bin');
    writeShard(path, new Uint16Array(17).fill(EOT));
    const r = await cli(['eval', '--checkpoint', gpt2, '--data', path, '--seq-len', '16', '--json']);
    expect(reportOf(r)).toMatchObject({ tokens: 16, bytes: 0, bitsPerByte: null });
  });

  it('reads text as prepare does: .br, .gz, a BOM, JSON lines (plain or gzip, another field) score as the plain text; non-UTF-8 is refused', async () => {
    const text = DOCS.join('\n\f\n');
    const lines = DOCS.map((d, i) => JSON.stringify({ id: i, text: d, body: d })).join('\n');
    writeFileSync(join(dir, 'plain.txt'), text);
    writeFileSync(join(dir, 'plain.txt.br'), brotliCompressSync(Buffer.from(text)));
    writeFileSync(join(dir, 'plain.txt.gz'), gzipSync(Buffer.from(text)));
    writeFileSync(join(dir, 'bom.txt'), '\uFEFF' + text);
    writeFileSync(join(dir, 'docs.jsonl'), lines);
    writeFileSync(join(dir, 'docs.json.gz'), gzipSync(Buffer.from(lines)));
    writeFileSync(join(dir, 'docs.lines'), lines);
    writeFileSync(join(dir, 'latin1.txt'), Buffer.from('Caf\xe9 au lait, na\xefve r\xe9sum\xe9. '.repeat(20), 'latin1'));
    const args = ['--checkpoint', gpt2, '--seq-len', '16', '--json'];
    const files = ['plain.txt', 'plain.txt.br', 'plain.txt.gz', 'bom.txt', 'docs.jsonl', 'docs.json.gz', 'latin1.txt'];
    const [plain, ...same] = await Promise.all(files.map((f) => cli(['eval', '--data', join(dir, f), ...args])));
    const latin1 = same.pop()!;
    const p = reportOf(plain);
    expect(p.tokens).toBeGreaterThan(0);
    for (const r of same) expect(reportOf(r)).toEqual(p);
    const field = await cli(['eval', '--data', join(dir, 'docs.lines'), '--format', 'jsonl', '--text-field', 'body', ...args]);
    expect(reportOf(field)).toEqual(p);
    expectRefused(latin1, new RegExp(`${esc(join(dir, 'latin1.txt'))}: not UTF-8 text`));
  });

  it('scores a text file and the shard prepare makes from it alike (EOT between documents, no separator text)', async () => {
    const text = DOCS.join('\n\f\n');
    const path = join(dir, 'docs.txt');
    writeFileSync(path, text);
    // prepared with more text after it (prepare keeps training tokens), and a validation split of
    // exactly its n tokens (they end a document): the shard holds the same ids as the text
    writeFileSync(join(dir, 'more.txt'), 'The rest of the corpus, which trains. '.repeat(20));
    const n = encodeDocuments(DOCS).length;
    const prep = await cli([
      'prepare',
      '--text',
      path,
      join(dir, 'more.txt'),
      '--out',
      join(dir, 'prepared'),
      '--val-tokens',
      String(n),
      '--json',
    ]);
    expect(prep.code).toBe(0);
    // a window length that does not divide n − 1: whole windows, and a tail
    const seqLen = (n - 1) % 16 === 0 ? 15 : 16;
    const args = ['--checkpoint', gpt2, '--seq-len', String(seqLen), '--json'];
    const shard = join(dir, 'prepared', 'val_000000.bin');
    const [fromText, fromShard, wholeText, wholeShard] = await Promise.all([
      cli(['eval', '--data', path, ...args]),
      cli(['eval', '--data', shard, ...args]),
      cli(['eval', '--data', path, ...args, '--no-tail']),
      cli(['eval', '--data', shard, ...args, '--no-tail']),
    ]);
    // every target of the text: its n tokens' n − 1
    const t = reportOf(fromText);
    expect(t).toMatchObject({ tokens: n - 1, tail: (n - 1) % seqLen });
    expect(reportOf(fromShard)).toEqual(t);
    const w = reportOf(wholeText);
    expect(w.tokens).toBe(Math.floor((n - 1) / seqLen) * seqLen);
    expect(reportOf(wholeShard)).toEqual(w);
  });

  it('refuses ids outside the model vocabulary, naming the file and the id, for text and token files', async () => {
    const text = join(dir, 'for-small.txt');
    writeFileSync(text, 'The whale surfaced and dived again. '.repeat(10));
    const bad = join(dir, 'bad-ids.bin');
    writeShard(
      bad,
      Uint16Array.from({ length: 64 }, (_, i) => (i === 20 ? 1000 : i)), // (inside the one window scored: ids are checked as read)
    );
    const good = join(dir, 'good-ids.bin');
    writeShard(
      good,
      Uint16Array.from({ length: 64 }, (_, i) => (i * 37) % 1000),
    );
    const [fromText, fromBad, fromGood] = await Promise.all(
      [text, bad, good].map((f) => cli(['eval', '--checkpoint', small, '--data', f, '--json'])),
    );
    const firstOutside = encode('The whale surfaced and dived again. ').find((id) => id >= 1000);
    expectRefused(
      fromText,
      new RegExp(
        `--data ${esc(text)}: token id ${firstOutside} at position \\d+ is outside the model's vocabulary \\(vocabSize 1000\\).*not GPT-2's`,
      ),
    );
    expect(fromText.stderr).not.toMatch(/index out of range/);
    expectRefused(fromBad, new RegExp(`${esc(bad)}: token id 1000 at position 20 is outside the vocabulary \\(size 1000\\)`));
    expect(reportOf(fromGood)).toMatchObject({ tokens: 63, seqLen: 32, tail: 31 }); // every target of the 64 ids
  });

  it('--stride: windows S apart, each scoring its last S targets, and a last window for the tail — each target once, with the context before it', async () => {
    const [T, S] = [16, 5];
    const all = Uint16Array.from([EOT, ...encodeDocuments([...DOCS, ...DOCS])]);
    // a length that leaves targets after the last whole window (L − 1 − T not a multiple of S)
    const ids = all.subarray(0, (all.length - 1 - T) % S === 0 ? all.length - 1 : all.length);
    const path = join(dir, 'stride.bin');
    writeShard(path, ids);
    const args = [
      'eval',
      '--checkpoint',
      gpt2,
      '--data',
      path,
      '--seq-len',
      String(T),
      '--stride',
      String(S),
      '--batch-size',
      '3',
      '--json',
    ];
    const [e, noTail] = await Promise.all([cli(args), cli([...args, '--no-tail'])]).then((rs) => rs.map(reportOf));
    // independently: each window's logits, and −log softmax at the positions it scores
    const loaded = loadCheckpoint(gpt2);
    const model = new GPT(loaded.config);
    loadParameters(model, loaded.params, gpt2);
    model.eval();
    let nats = 0;
    let scored = 0;
    /** Scores positions from … T − 1 of the window at `start`. */
    const score = (start: number, from: number) => {
      const window = Array.from(ids.subarray(start, start + T + 1));
      const logits = noGrad(() => model.logits(fromTypedArray(Int32Array.from(window.slice(0, T)), [1, T], { dtype: 'int64' })));
      const rows = logits.to({ dtype: 'float64' }).toArray() as Float64Array;
      const V = logits.shape[2];
      logits.dispose();
      for (let p = from; p < T; p++) {
        const row = rows.subarray(p * V, p * V + V);
        const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
        const lse = max + Math.log(row.reduce((a, b) => a + Math.exp(b - max), 0));
        nats += lse - row[window[p + 1]];
        scored++;
      }
    };
    for (let w = 0; w * S + T + 1 <= ids.length; w++) score(w * S, w === 0 ? 0 : T - S);
    const whole = { nats, scored };
    // the targets left: the last window ends with the data
    const left = ids.length - 1 - scored;
    expect(left).toBeGreaterThan(0);
    score(ids.length - 1 - T, T - left);
    model.dispose();
    expect(scored).toBe(ids.length - 1); // every target
    expect(e).toMatchObject({ tokens: scored, seqLen: T, stride: S, tail: left, bytes: textBytes(ids.subarray(1)) });
    expect(e.loss).toBeCloseTo(nats / scored, 5);
    // --no-tail: whole windows only, as training evaluates
    expect(noTail).toMatchObject({ tokens: whole.scored, tail: 0, bytes: textBytes(ids.subarray(1, 1 + whole.scored)) });
    expect(noTail.loss).toBeCloseTo(whole.nats / whole.scored, 5);
    // --max-batches that stops before the tail window scores none of it
    const windows = Math.floor((ids.length - 1 - T) / S) + 1;
    const stopped = reportOf(await cli([...args, '--max-batches', String(Math.ceil(windows / 3))]));
    expect(stopped.tail).toBe(windows % 3 === 0 ? 0 : left);
    // stride = the window length is the default, non-overlapping count
    const plain = reportOf(await cli(['eval', '--checkpoint', gpt2, '--data', path, '--seq-len', String(T), '--json']));
    expect(
      reportOf(await cli(['eval', '--checkpoint', gpt2, '--data', path, '--seq-len', String(T), '--stride', String(T), '--json'])),
    ).toEqual(plain);
    expectRefused(
      await cli(['eval', '--checkpoint', gpt2, '--data', path, '--seq-len', String(T), '--stride', '17']),
      /--stride 17 is longer than the window \(16 tokens\)/,
    );
  });

  it("a prepared directory: its validation split; one --data only; no bits per byte for a vocabulary not GPT-2's", async () => {
    const text = join(dir, 'dir-docs.txt');
    writeFileSync(text, DOCS.join('\n\f\n'));
    const n = encodeDocuments(DOCS).length;
    expect((await cli(['prepare', '--text', text, '--out', join(dir, 'prepared-dir'), '--val-tokens', String(n - 1)])).code).toBe(0);
    const args = ['--checkpoint', gpt2, '--seq-len', '8', '--json'];
    const [fromDir, fromShard, twice] = await Promise.all([
      cli(['eval', '--data', join(dir, 'prepared-dir'), ...args]),
      cli(['eval', '--data', join(dir, 'prepared-dir', 'val_000000.bin'), ...args]),
      cli(['eval', '--data', text, '--data', join(dir, 'prepared-dir'), ...args]),
    ]);
    expect(reportOf(fromDir)).toEqual(reportOf(fromShard));
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/give one --data \(eval scores one file or directory; got .*dir-docs\.txt and .*prepared-dir\)/);
    // a model of 1000 ids scores a file of its ids; what bytes they stand for is unknown
    const own = join(dir, 'own-ids.bin');
    writeShard(
      own,
      Uint16Array.from({ length: 100 }, (_, i) => (i * 7) % 1000),
    );
    const r = await cli(['eval', '--checkpoint', small, '--data', own]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/bytes unknown/);
    expect(r.stdout).toMatch(/bits per byte n\/a \(the model's vocabulary, 1000 ids, is not GPT-2's/);
    expect(reportOf(await cli(['eval', '--checkpoint', small, '--data', own, '--json']))).toMatchObject({ bitsPerByte: null, bytes: null });
  });

  it('--data embedded: the validation split of the corpus runs train on by default; refused for a vocabulary without its ids', async () => {
    const [gpt2Run, smallRun] = await Promise.all([
      cli(['eval', '--checkpoint', gpt2, '--data', 'embedded', '--seq-len', '32', '--max-batches', '1', '--json']),
      cli(['eval', '--checkpoint', small, '--data', 'embedded', '--json']),
    ]);
    expect(reportOf(gpt2Run)).toMatchObject({ tokens: 8 * 32, seqLen: 32 });
    expectRefused(
      smallRun,
      /--data embedded: the embedded corpus holds GPT-2 token ids up to \d+: this model's vocabulary \(vocabSize 1000\) has no rows for them/,
    );
  });

  it('--precision bf16 and fp16 need a CUDA device', async () => {
    for (const p of ['bf16', 'fp16'])
      expectRefused(
        await cli(['eval', '--checkpoint', gpt2, '--data', join(dir, 'dir-docs.txt'), '--precision', p]),
        new RegExp(`--precision ${p} needs a CUDA device`),
      );
  });

  it('refuses data too short for one window, naming the file', async () => {
    const path = join(dir, 'short.txt');
    writeFileSync(path, 'Too short.');
    expectRefused(
      await cli(['eval', '--checkpoint', gpt2, '--data', path]),
      new RegExp(`--data ${esc(path)}: \\d+ tokens, too few for one window`),
    );
  });

  it('--help describes the text format and the byte count', async () => {
    const r = await cli(['eval', '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/JSON lines: \.jsonl, \.ndjson, \.json; plain, \.gz or \.br/);
    expect(help).toMatch(/"\\n\\f\\n"/);
    expect(help).toMatch(/end-of-text tokens count none/);
  });
});
