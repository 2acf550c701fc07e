import { spawnSync } from 'node:child_process';
import fs, { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { Command } from 'commander';
import { formatPrepare, registerPrepare } from '../../lib/cli/prepare';
import {
  EOT,
  decode,
  encode,
  encodeDocuments,
  embeddedDocuments,
  loadTokenData,
  prepare,
  readShard,
  tokenizeDocuments,
} from '../../lib/data';
import { safeCuts, tokenizePieces } from '../../lib/data/parallel';
import { PrepareInterruptedError, ShardSink, validationEnd } from '../../lib/data/prepare';
import * as shards from '../../lib/data/shards';
import { tempDirs } from './tmp';
import { itWhen } from '../helpers';

const tmp = tempDirs('prepare');

const TEXT = 'It was the best of times, it was the worst of times.\nCall me Ishmael.\n';

describe('prepare', () => {
  test('a small text file becomes a validation shard and a training shard that read back to the text', async () => {
    const dir = tmp();
    const input = join(dir, 'a.txt');
    writeFileSync(input, TEXT);
    const out = join(dir, 'out');
    const s = await prepare({ inputs: [input], outDir: out });
    const ids = [...encode(TEXT), EOT];
    expect(s.documents).toBe(1);
    expect(s.tokens).toEqual({ val: Math.round(ids.length * 0.1), train: ids.length - Math.round(ids.length * 0.1) });
    expect(s.workers).toBe(1);
    expect(readdirSync(out).sort()).toEqual(['train_000001.bin', 'val_000000.bin']);
    const val = readShard(join(out, 'val_000000.bin'));
    const train = readShard(join(out, 'train_000001.bin'));
    expect([...val, ...train]).toEqual(ids);
    expect(decode([...val, ...train])).toBe(TEXT + '<|endoftext|>');
    const data = loadTokenData(out);
    expect([data.val.length, data.train.length]).toEqual([val.length, train.length]);
  });

  test('characters are code points: an emoji counts one, as does an accented letter', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'e.txt'), 'Whale 🐋, naïve café, 世界.\n'.repeat(50));
    const s = await prepare({ inputs: [join(dir, 'e.txt')], outDir: join(dir, 'out') });
    expect(s.characters).toBe([...'Whale 🐋, naïve café, 世界.\n'].length * 50);
    expect(s.characters).toBe(25 * 50);
  });

  test('"\\n\\f\\n" separates documents; EOT follows each; several inputs in order; .br input', async () => {
    const dir = tmp();
    const docs = ['First document.\n', 'Second one,\n\nwith a blank line.\n', 'Third.\n'];
    writeFileSync(join(dir, 'multi.txt'), docs.join('\n\f\n'));
    writeFileSync(join(dir, 'more.txt.br'), brotliCompressSync(Buffer.from('Fourth, compressed.\n')));
    const s = await prepare({ inputs: [join(dir, 'multi.txt'), join(dir, 'more.txt.br')], outDir: join(dir, 'out'), valTokens: 3 });
    expect(s.documents).toBe(4);
    expect(s.characters).toBe(docs.join('').length + 'Fourth, compressed.\n'.length);
    const d = loadTokenData(join(dir, 'out'));
    const all = [...d.val.subarray(0, d.val.length), ...d.train.subarray(0, d.train.length)];
    expect(all).toEqual(Array.from(encodeDocuments([...docs, 'Fourth, compressed.\n'])));
    expect(all.filter((t) => t === EOT)).toHaveLength(4);
    // 3 validation tokens asked for: the split ends with the first document, which holds them
    expect(d.val.length).toBe(encode(docs[0]).length + 1);
  });

  test('shardTokens splits training data; a rerun removes shards it no longer writes', async () => {
    const dir = tmp();
    const input = join(dir, 'a.txt');
    writeFileSync(input, TEXT.repeat(20));
    const out = join(dir, 'out');
    const many = await prepare({ inputs: [input], outDir: out, shardTokens: 100, valTokens: 50 });
    const sizes = many.files.map((f) => f.tokens);
    expect(sizes.length).toBeGreaterThan(3);
    expect(sizes[0]).toBe(50);
    expect(sizes.slice(1, -1).every((n) => n === 100)).toBe(true);
    expect(sizes[sizes.length - 1]).toBeLessThanOrEqual(100);
    expect(sizes.reduce((a, b) => a + b)).toBe(encode(TEXT.repeat(20)).length + 1);
    writeFileSync(join(out, 'keep-me.txt'), 'not a shard');
    const few = await prepare({ inputs: [input], outDir: out, shardTokens: 100_000, valTokens: 50 });
    expect(few.files).toHaveLength(2);
    expect(readdirSync(out).sort()).toEqual(['keep-me.txt', 'train_000001.bin', 'val_000000.bin']);
  });

  test('bad inputs are clear errors', async () => {
    const dir = tmp();
    const tiny = join(dir, 'empty.txt');
    writeFileSync(tiny, '');
    const bin = join(dir, 'binary.txt');
    writeFileSync(bin, Buffer.from([0xff, 0xfe, 0xfd]));
    const badBr = join(dir, 'bad.br');
    writeFileSync(badBr, 'not brotli');
    await expect(prepare({ inputs: [tiny], outDir: join(dir, 'o') })).rejects.toThrow(/the inputs hold 0 tokens, too few/);
    await expect(prepare({ inputs: [bin], outDir: join(dir, 'o') })).rejects.toThrow(`${bin}: not UTF-8 text`);
    await expect(prepare({ inputs: [badBr], outDir: join(dir, 'o') })).rejects.toThrow(`${badBr}: not a valid Brotli stream`);
    await expect(prepare({ inputs: [join(dir, 'missing.txt')], outDir: join(dir, 'o') })).rejects.toThrow(/missing\.txt/);
    await expect(prepare({ inputs: [dir], outDir: join(dir, 'o') })).rejects.toThrow(`${dir}: is a directory, not a text file`);
    // every input is checked before any is tokenized
    await expect(prepare({ inputs: [bin, join(dir, 'missing.txt')], outDir: join(dir, 'o') })).rejects.toThrow(
      /missing\.txt: no such file/,
    );
    expect(existsSync(join(dir, 'o'))).toBe(false);
    await expect(prepare({ inputs: [], outDir: join(dir, 'o') })).rejects.toThrow(/no input files/);
    await expect(prepare({ inputs: [tiny], outDir: join(dir, 'o'), shardTokens: 0 })).rejects.toThrow(/shardTokens but received 0/);
    await expect(prepare({ inputs: [tiny], outDir: join(dir, 'o'), shardTokens: 5, valTokens: 6 })).rejects.toThrow(/exceeds shardTokens/);
  });
});

const SHARD = /^(val|train)_\d{6}\.bin$/;
const shardNames = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => SHARD.test(n))
    .sort();
/** Each shard's bytes, by name. */
const shardContents = (dir: string): Record<string, string> =>
  Object.fromEntries(shardNames(dir).map((n) => [n, readFileSync(join(dir, n)).toString('base64')]));

describe('a prepare replaces the shard set as a whole', () => {
  afterEach(() => jest.restoreAllMocks());

  /** A directory prepared from one text (val and 4+ train shards, and a file that is not a shard), and a second text. */
  async function prepared(): Promise<{ out: string; second: string; before: Record<string, string> }> {
    const dir = tmp();
    const out = join(dir, 'out');
    const first = join(dir, 'first.txt');
    writeFileSync(first, TEXT.repeat(40));
    const second = join(dir, 'second.txt');
    writeFileSync(second, 'A different text, with other words in it.\n'.repeat(60));
    await prepare({ inputs: [first], outDir: out, shardTokens: 200, valTokens: 100 });
    writeFileSync(join(out, 'notes.txt'), 'not a shard');
    const before = shardContents(out);
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(5);
    return { out, second, before };
  }

  test('a write that fails mid-way leaves the old set whole (no new shard, no staging directory)', async () => {
    const { out, second, before } = await prepared();
    const write = shards.writeShard;
    let calls = 0;
    jest.spyOn(shards, 'writeShard').mockImplementation((path, tokens) => {
      if (++calls === 3) throw new Error(`ENOSPC: no space left on device, write '${path}'`);
      write(path, tokens);
    });
    await expect(prepare({ inputs: [second], outDir: out, shardTokens: 100, valTokens: 50 })).rejects.toThrow(/ENOSPC/);
    expect(calls).toBe(3);
    expect(shardContents(out)).toEqual(before);
    expect(readdirSync(out).sort()).toEqual([...Object.keys(before), 'notes.txt'].sort());
  });

  test('a failure while the sets are swapped leaves no shard set, never a part of one', async () => {
    const { out, second } = await prepared();
    const rename = fs.renameSync;
    let into = 0;
    jest.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (dirname(String(to)) === out && ++into === 2) throw new Error(`EIO: i/o error, rename '${String(from)}'`);
      rename(from, to);
    });
    await expect(prepare({ inputs: [second], outDir: out, shardTokens: 100, valTokens: 50 })).rejects.toThrow(/EIO/);
    expect(into).toBe(2);
    expect(readdirSync(out)).toEqual(['notes.txt']);
    expect(() => loadTokenData(out)).toThrow(/no \.bin token files/);
  });

  test('refuses a directory holding token files of another kind (a run would read them with the new shards)', async () => {
    const dir = tmp();
    const input = join(dir, 'a.txt');
    writeFileSync(input, TEXT);
    const out = join(dir, 'out');
    await prepare({ inputs: [input], outDir: out });
    writeFileSync(join(out, 'train.bin'), 'nanoGPT tokens');
    const before = readdirSync(out).sort();
    await expect(prepare({ inputs: [input], outDir: out })).rejects.toThrow(
      /out holds token files prepare does not write \(train\.bin\): a run reads every \.bin file there, so they would be mixed with the new shards/,
    );
    expect(readdirSync(out).sort()).toEqual(before);
  });

  test('a failed prepare into a new directory leaves no directory', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'a.txt'), TEXT);
    jest.spyOn(shards, 'writeShard').mockImplementation(() => {
      throw new Error('ENOSPC: no space left on device, write');
    });
    await expect(prepare({ inputs: [join(dir, 'a.txt')], outDir: join(dir, 'new', 'out') })).rejects.toThrow(/ENOSPC/);
    expect(readdirSync(join(dir, 'new'))).toEqual([]);
  });

  test('an interrupted prepare (its signal aborted) leaves the old set whole and no staging directory', async () => {
    const dir = tmp();
    const out = join(dir, 'out');
    writeFileSync(join(dir, 'a.txt'), TEXT);
    writeFileSync(join(dir, 'b.txt'), TEXT.toUpperCase());
    await prepare({ inputs: [join(dir, 'a.txt')], outDir: out });
    const before = readdirSync(out).map((f) => [f, readFileSync(join(out, f)).toString('hex')]);
    const stop = new AbortController();
    // aborted as the second file is read: the first one's tokens are staged already
    let done = 0;
    const interrupted = prepare({
      inputs: [join(dir, 'a.txt'), join(dir, 'b.txt')],
      outDir: out,
      workers: 1,
      onProgress: (n) => {
        done = n;
        if (n > 0) stop.abort();
      },
      signal: stop.signal,
    });
    await expect(interrupted).rejects.toThrow(PrepareInterruptedError);
    await expect(interrupted).rejects.toThrow(/prepare interrupted: .*out is as it was/);
    expect(done).toBeGreaterThan(0);
    expect(readdirSync(out).map((f) => [f, readFileSync(join(out, f)).toString('hex')])).toEqual(before);
    // into a directory it created: removed again
    const fresh = new AbortController();
    fresh.abort();
    await expect(prepare({ inputs: [join(dir, 'a.txt')], outDir: join(dir, 'fresh'), signal: fresh.signal })).rejects.toThrow(
      PrepareInterruptedError,
    );
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.txt', 'out']);
  });

  test("a killed prepare's staging directory is removed by the next prepare; a running one's is kept", async () => {
    const dir = tmp();
    const out = join(dir, 'out');
    mkdirSync(out);
    const gone = spawnSync(process.execPath, ['-e', '']).pid; // (a process that has exited)
    const abandoned = join(out, `.staged-lm-prepare-${gone}-0badc0de`);
    mkdirSync(abandoned);
    writeFileSync(join(abandoned, 'val_000000.bin'), 'half a shard');
    const running = `.staged-lm-prepare-${process.ppid}-0badc0de`;
    mkdirSync(join(out, running));
    writeFileSync(join(dir, 'a.txt'), TEXT);
    await prepare({ inputs: [join(dir, 'a.txt')], outDir: out });
    expect(readdirSync(out).sort()).toEqual([running, 'train_000001.bin', 'val_000000.bin']);
    expect(loadTokenData(out).files.val.map((f) => basename(f))).toEqual(['val_000000.bin']);
  });
});

describe('the validation split ends at the end of a document', () => {
  test('the document its last asked-for token is in goes to validation whole', async () => {
    const dir = tmp();
    const docs = ['First document, short.\n', 'Second document, a little longer than the first.\n', 'Third.\n', 'Fourth and last.\n'];
    writeFileSync(join(dir, 'docs.txt'), docs.join('\n\f\n'));
    const lengths = docs.map((d) => encode(d).length + 1);
    const out = join(dir, 'out');
    const s = await prepare({ inputs: [join(dir, 'docs.txt')], outDir: out, valTokens: lengths[0] + lengths[1] - 2 });
    expect(s.tokens.val).toBe(lengths[0] + lengths[1]);
    const val = readShard(join(out, 'val_000000.bin'));
    expect(decode(val)).toBe(`${docs[0]}<|endoftext|>${docs[1]}<|endoftext|>`);
    expect(decode(readShard(join(out, 'train_000001.bin')))).toBe(`${docs[2]}<|endoftext|>${docs[3]}<|endoftext|>`);
    // a count that ends a document already is kept
    expect((await prepare({ inputs: [join(dir, 'docs.txt')], outDir: out, valTokens: lengths[0] })).tokens.val).toBe(lengths[0]);
  });

  test('it stays inside a document when no document ends near the count, within one shard and before the last token', () => {
    const tokens = Uint16Array.of(1, 2, 3, EOT, 4, 5, 6, 7, 8, EOT);
    expect(validationEnd(tokens, 2, 100)).toBe(4);
    expect(validationEnd(tokens, 4, 100)).toBe(4);
    expect(validationEnd(tokens, 2, 3)).toBe(2); // (4 tokens would not fit one shard of 3)
    // the next end is the last token (no training split): the end before, which keeps over half
    expect(validationEnd(tokens, 5, 100)).toBe(4);
    expect(validationEnd(tokens, 9, 100)).toBe(9); // (4 is less than half of 9)
  });

  test('a long first document is cut, not taken whole: the split stays within twice the count', () => {
    // one document of 1000 tokens, then short ones: asked for 100, validation is 100 tokens, not 1001
    const long = Uint16Array.from([...Array.from({ length: 1000 }, (_, i) => i % 50), EOT, 1, 2, EOT, 3, 4, EOT]);
    expect(validationEnd(long, 100, 1e6)).toBe(100);
    // a document end up to twice the count away is still taken, and one before it that keeps half
    const ends = Uint16Array.from([...Array(59).fill(1), EOT, ...Array(139).fill(2), EOT, ...Array(50).fill(3), EOT]);
    expect(validationEnd(ends, 90, 1e6)).toBe(60); // 200 is past 2 × 90; 60 ≥ 45
    expect(validationEnd(ends, 100, 1e6)).toBe(200); // 200 ≤ 2 × 100
    expect(validationEnd(ends, 130, 1e6)).toBe(200);
    expect(validationEnd(ends, 130, 150)).toBe(130); // (200 would not fit a shard of 150; 60 < 65)
  });
});

describe('parallel tokenization', () => {
  const book = embeddedDocuments().train.slice(0, 12);

  test('safe cuts leave every token unchanged', () => {
    const text = book.join('\n');
    const pieces = safeCuts(text, 5000);
    expect(pieces.length).toBeGreaterThan(20);
    expect(pieces.join('')).toBe(text);
    expect(pieces.flatMap((p) => encode(p))).toEqual(encode(text));
    expect(safeCuts('short', 10)).toEqual(['short']);
    expect(safeCuts('x'.repeat(50), 10)).toEqual(['x'.repeat(50)]); // no safe position: one piece
  });

  test('a worker pool gives the main thread ids, in order, with progress', async () => {
    const progress: number[] = [];
    const total = book.reduce((n, d) => n + d.length, 0);
    const r = await tokenizeDocuments(book, {
      workers: 2,
      parallelThreshold: 0,
      batchChars: 20_000,
      onProgress: (done) => progress.push(done),
    });
    expect(r.workers).toBe(2);
    expect(Buffer.compare(Buffer.from(r.tokens.buffer), Buffer.from(encodeDocuments(book).buffer))).toBe(0);
    expect(progress[progress.length - 1]).toBe(total);
    expect(progress.every((v, i) => i === 0 || v >= progress[i - 1])).toBe(true);
  });

  test('pieces from an async source, with long runs of one class, give the main thread ids', async () => {
    const docs = [...book.slice(0, 3), 'A rule:\n' + '='.repeat(20_000) + '\nthen ' + 'x'.repeat(9000) + ' end', ' '.repeat(5000), ''];
    async function* source(): AsyncGenerator<{ text: string; eot: boolean }> {
      for (const text of docs) yield { text, eot: true };
    }
    const total = docs.reduce((n, d) => n + d.length, 0);
    const r = await tokenizePieces(source(), total, { workers: 2, parallelThreshold: 0, batchChars: 4096 });
    expect(r.workers).toBe(2);
    expect(Array.from(r.tokens)).toEqual(Array.from(encodeDocuments(docs)));
  });

  test('an error while reading stops the pool and comes out', async () => {
    async function* failing(): AsyncGenerator<{ text: string; eot: boolean }> {
      for (let i = 0; i < 5; i++) yield { text: book[i], eot: true };
      throw new Error('the disk went away');
    }
    await expect(tokenizePieces(failing(), 1e6, { workers: 2, parallelThreshold: 0, batchChars: 4096 })).rejects.toThrow(
      'the disk went away',
    );
  });
});

describe('staged-lm prepare (CLI)', () => {
  async function run(args: string[]): Promise<string> {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
    registerPrepare(program);
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      await program.parseAsync(args, { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    return out.join('');
  }

  test('--json prints one JSON summary; the human form lists the shards', async () => {
    const dir = tmp();
    const input = join(dir, 'a.txt');
    writeFileSync(input, TEXT);
    const printed = await run(['prepare', '--text', input, '--out', join(dir, 'out'), '--json']);
    const summary = JSON.parse(printed);
    expect(summary.files.map((f: { split: string }) => f.split)).toEqual(['val', 'train']);
    expect(summary.tokens.train + summary.tokens.val).toBe(encode(TEXT).length + 1);
    expect(typeof summary.seconds).toBe('number');
    const human = formatPrepare(summary);
    expect(human).toMatch(/^prepared 1 file\(s\), 1 document\(s\)/);
    expect(human).toContain('val_000000.bin');
    expect(await run(['prepare', '--text', input, '--out', join(dir, 'out2')])).toContain('train_000001.bin');
  });

  test('--help says what --val-tokens is by default; a directory given as --text is named in the error', async () => {
    const program = new Command();
    registerPrepare(program);
    const help = program.commands
      .find((c) => c.name() === 'prepare')!
      .helpInformation()
      .replace(/\s+/g, ' ');
    expect(help).toContain('(default: 10% of all tokens, at most --shard-tokens)');
    const dir = tmp();
    await expect(run(['prepare', '--text', dir, '--out', join(dir, 'out')])).rejects.toThrow(`${dir}: is a directory, not a text file`);
  });

  test('flags are validated', async () => {
    await expect(run(['prepare', '--text', 'a.txt', '--out', 'o', '--shard-tokens', 'many'])).rejects.toThrow(
      /expected a positive integer for --shard-tokens but received 'many'/,
    );
    await expect(run(['prepare', '--out', 'o'])).rejects.toThrow(/--text/);
  });
});

// The shared corpora are optional (absent in a bare checkout); these checks run only where present.
const shared = resolve(__dirname, '../../../shared/data');
const shakespeare = join(shared, 'tinyshakespeare/input.txt');
const withShared = itWhen(existsSync(shakespeare), `no shared corpus at ${shakespeare}`);

withShared("shared data: Tiny Shakespeare matches nanoGPT's token counts (tiktoken GPT-2)", async () => {
  // nanoGPT's data/shakespeare/prepare.py: the first 90% of characters encode to 301,966 tokens, the
  // rest to 36,059; the whole file to 338,025 (the data README's 338,023 disagrees with both tools)
  const text = readFileSync(shakespeare, 'utf8');
  expect(encode(text.slice(0, 1_003_854)).length).toBe(301_966);
  expect(encode(text.slice(1_003_854)).length).toBe(36_059);
  const s = await prepare({ inputs: [shakespeare], outDir: tmp() });
  expect(s.tokens.train + s.tokens.val).toBe(338_025 + 1);
});

describe('prepare writes shards as the ids come', () => {
  // many short documents: ~2,000 ids, shards of 100
  const docs = Array.from({ length: 120 }, (_, i) => `Document ${i}: ${'the whale and the sea '.repeat(1 + (i % 3))}\n`);

  test.each([
    ['by default (10% of the ids, at most a shard)', undefined],
    ['with valTokens', 37],
  ])('%s: the same shard set as cutting the whole stream', async (_what, valTokens) => {
    const dir = tmp();
    writeFileSync(join(dir, 'docs.txt'), docs.join('\n\f\n'));
    const s = await prepare({ inputs: [join(dir, 'docs.txt')], outDir: join(dir, 'out'), shardTokens: 100, valTokens, workers: 1 });
    const all = encodeDocuments(docs);
    expect(all.length).toBeGreaterThan(10 * 100); // (past ten shards: the default decides before the end)
    const val = validationEnd(all, valTokens ?? Math.min(100, Math.round(all.length * 0.1)), 100);
    const sizes = s.files.map((f) => f.tokens);
    expect(sizes[0]).toBe(val);
    expect(sizes.slice(1, -1).every((n) => n === 100)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(all.length);
    const read = s.files.flatMap((f) => Array.from(readShard(f.path)));
    expect(read).toEqual(Array.from(all));
    expect(s.tokens).toEqual({ val, train: all.length - val });
  });

  test('with valTokens, shards are on disk before the input ends; memory holds at most about a shard', () => {
    const staging = tmp();
    const sink = new ShardSink(staging, '/out', 100, 50);
    const ids = encodeDocuments(docs);
    for (let at = 0; at < 700; at += 70) sink.push(ids.subarray(at, at + 70));
    // 700 ids in: the validation shard and the full training shards after it are written
    const written = readdirSync(staging).sort();
    expect(written).toContain('val_000000.bin');
    expect(written.length).toBeGreaterThanOrEqual(6);
    expect(sink.held).toBeLessThan(100);
    sink.push(ids.subarray(700));
    const files = sink.finish();
    expect(files.flatMap((f) => Array.from(readShard(join(staging, basename(f.path)))))).toEqual(Array.from(ids));
    expect(files.every((f) => f.path.startsWith('/out/'))).toBe(true);
  });

  test('the pool hands its ids on in input order', async () => {
    const pieces = docs.map((text) => ({ text, eot: true }));
    const chunks: Uint16Array[] = [];
    const r = await tokenizePieces(pieces, 1e9, { workers: 3, parallelThreshold: 0, batchChars: 200, onTokens: (t) => chunks.push(t) });
    expect(r.tokens.length).toBe(0); // (handed on, not collected)
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.flatMap((c) => Array.from(c))).toEqual(Array.from(encodeDocuments(docs)));
  });
});
