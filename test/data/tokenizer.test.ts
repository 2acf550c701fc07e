import bpeRanks from 'gpt-tokenizer/cjs/bpeRanks/r50k_base';
import { decode as bpeDecode, encode as bpeEncode } from 'gpt-tokenizer/cjs/encoding/r50k_base';
import { EOT, GPT2_VOCAB, TextStream, concatTokens, decode, embeddedDocuments, encode, encodeDocuments } from '../../lib/data';
import { MAX_RUN_BYTES, ORDINARY, splitLongRuns } from '../../lib/data/tokenizer';

describe('GPT-2 tokenizer (r50k_base)', () => {
  test('constants', () => {
    expect(EOT).toBe(50256);
    expect(GPT2_VOCAB).toBe(50257);
  });

  test('"hello world" is [31373, 995]', () => {
    expect(encode('hello world')).toEqual([31373, 995]);
    expect(decode([31373, 995])).toBe('hello world');
  });

  test('round trip of unicode, whitespace and punctuation', () => {
    const text = 'Call me Ishmael.\n\n  Some years ago—never mind how long 🐋 naïve café, 1851!\t"Whale" \r\n';
    expect(decode(encode(text))).toBe(text);
  });

  test('a literal <|endoftext|> in text is ordinary text, never the EOT id', () => {
    const ids = encode('end<|endoftext|>start');
    expect(ids).not.toContain(EOT);
    expect(decode(ids)).toBe('end<|endoftext|>start');
  });

  test('encodeDocuments puts EOT after each document', () => {
    const docs = ['The whale.', 'Ahab', '<|endoftext|>'];
    const ids = encodeDocuments(docs);
    expect(Object.prototype.toString.call(ids)).toBe('[object Uint16Array]');
    const expected = docs.flatMap((d) => [...encode(d), EOT]);
    expect(Array.from(ids)).toEqual(expected);
    expect(ids.filter((t) => t === EOT).length).toBe(docs.length);
    expect(ids[ids.length - 1]).toBe(EOT);
    expect(encodeDocuments([]).length).toBe(0);
  });

  test("decode gives gpt-tokenizer's text for any ordinary ids, and EOT as <|endoftext|>", () => {
    const book = embeddedDocuments().train.slice(0, 5).join('\n');
    expect(decode(encode(book))).toBe(bpeDecode(encode(book)));
    let seed = 3;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    let whole = 0;
    for (let trial = 0; trial < 300; trial++) {
      // random ids split characters anywhere: bytes that do not form a character show as U+FFFD (as
      // tiktoken's and Hugging Face's decode with errors='replace'), where gpt-tokenizer drops them
      const ids = Array.from({ length: 1 + (next() % 20) }, () => next() % EOT);
      const bytes = Buffer.concat(
        ids.map((id) => (typeof bpeRanks[id] === 'string' ? Buffer.from(bpeRanks[id] as string) : Buffer.from(bpeRanks[id] as number[]))),
      );
      const text = decode(ids);
      expect(text).toBe(bytes.toString('utf8'));
      if (!text.includes('\ufffd')) {
        expect(text).toBe(bpeDecode(ids));
        whole++;
      }
    }
    expect(whole).toBeGreaterThan(100);
    expect(decode([40, EOT, 40])).toBe('I<|endoftext|>I');
    // a byte-order mark the ids encode is text, at the start and after an EOT
    expect(decode(encode('\ufeffhi'))).toBe('\ufeffhi');
    expect(decode([40, EOT, ...encode('\ufeffhi')])).toBe('I<|endoftext|>\ufeffhi');
    expect(() => decode([EOT + 1])).toThrow(/50257 is not a GPT-2 token id/);
    expect(() => decode([-1])).toThrow(/-1 is not a GPT-2 token id/);
  });

  test('TextStream gives the text token by token, holding back a character split across tokens', () => {
    const text = 'Whales 🐋 and 𝐀𝐁, naïve — ok.';
    const ids = encode(text);
    const stream = new TextStream();
    const pieces = ids.map((id) => stream.push(id));
    expect(pieces.join('') + stream.end()).toBe(text);
    expect(pieces.some((p) => p === '')).toBe(true); // the whale's 4 bytes span tokens
    expect(pieces.every((p) => !p.includes('\ufffd'))).toBe(true);
    const cut = new TextStream();
    const whale = encode('🐋');
    expect(whale.length).toBeGreaterThan(1);
    expect(cut.push(whale[0])).toBe('');
    expect(cut.end()).toBe('\ufffd'); // cut short at the end
    expect(new TextStream().push(EOT)).toBe('<|endoftext|>');
  });

  test('concatTokens joins in order', () => {
    expect(Array.from(concatTokens([Uint16Array.of(1, 2), Uint16Array.of(), Uint16Array.of(3)]))).toEqual([1, 2, 3]);
    expect(concatTokens([]).length).toBe(0);
  });
});

describe('long runs of one character class', () => {
  // gpt-tokenizer's own encode, without the cap on runs
  const uncapped = (text: string): number[] => bpeEncode(text, ORDINARY);

  test('a 2e5-character run encodes in linear time and decodes back to the text', () => {
    let seed = 7;
    const random = (n: number, base: number, span: number): string =>
      Array.from({ length: n }, () => String.fromCharCode(base + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % span))).join('');
    const runs = {
      letters: 'a'.repeat(2e5),
      equals: '='.repeat(2e5),
      spaces: ' '.repeat(2e5),
      newlines: '\n'.repeat(2e5),
      digits: '7'.repeat(2e5),
      'random letters': random(2e5, 0x61, 26),
      'random CJK': random(5e4, 0x4e00, 5000), // (3 bytes a character, and the costliest to merge)
      'astral letters': '𝐀𝐁'.repeat(5e4), // (gpt-tokenizer's decode, quadratic in such runs, took 12 s)
    };
    for (const [name, run] of Object.entries(runs)) {
      const text = `Before ${run} after.`;
      const t0 = performance.now();
      const ids = encode(text);
      const seconds = (performance.now() - t0) / 1000;
      // (the uncapped encoder takes ~8 s for 'a' × 1e5 and ~25 s for '=' × 2e5)
      if (seconds > 3) throw new Error(`${name}: ${seconds.toFixed(1)} s to encode a run of ${run.length} characters`);
      expect(decode(ids)).toBe(text);
    }
  });

  test('runs of millions of units are cut too (one regex match of such a run overflowed the stack)', () => {
    const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');
    for (const [name, run] of Object.entries({
      letters: 'x'.repeat(8e6),
      'two-byte letters': 'é'.repeat(5e6),
      digits: '7'.repeat(6e6),
      symbols: '='.repeat(6e6),
      DNA: 'ACGT'.repeat(15e5),
    })) {
      const text = `Sequence ≥ 1:\n${run}\nend`;
      const parts = splitLongRuns(text);
      expect(parts.join('')).toBe(text);
      // every part inside the run holds about the cap: none longer than it by more than a unit
      const longest = Math.max(...parts.map(byteLength));
      if (longest > MAX_RUN_BYTES + 3 + 20) throw new Error(`${name}: a part of ${longest} bytes`);
      expect(parts.length).toBeGreaterThan(byteLength(run) / (MAX_RUN_BYTES + 3));
    }
  });

  test('ordinary text gets exactly the tokens of the uncapped encoder', () => {
    const book = embeddedDocuments().train.slice(0, 20);
    for (const doc of book) expect(encode(doc)).toEqual(uncapped(doc));
    // runs up to the cap are not cut, and text around a cut run keeps its tokens
    const justUnder = 'x'.repeat(MAX_RUN_BYTES) + ' ' + '='.repeat(MAX_RUN_BYTES) + '\n' + ' '.repeat(MAX_RUN_BYTES); // (the run: '\n' and the spaces)
    expect(splitLongRuns(justUnder)).toEqual([justUnder]);
    expect(encode(justUnder)).toEqual(uncapped(justUnder));
    const [before, after] = [uncapped('Call me Ishmael.\n'), uncapped('\nSome years ago')];
    const around = encode('Call me Ishmael.\n' + '-'.repeat(10_000) + '\nSome years ago');
    expect(around.slice(0, before.length)).toEqual(before);
    expect(around.slice(-after.length)).toEqual(after);
  });

  test('cuts split only the long pre-tokens, at every ~maxBytes bytes of a run (random texts, small cap)', () => {
    // the reference: GPT-2's pre-tokenizer over the whole text, each pre-token byte-pair encoded
    // alone, except that one holding a cut is encoded in parts; cuts every maxBytes UTF-8 bytes of a
    // maximal run of one class, none within 2 units of the run's end nor inside a surrogate pair
    const PRE_TOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
    const classOf = (ch: string): string => (/\s/u.test(ch) ? 'S' : /\p{L}/u.test(ch) ? 'L' : /\p{N}/u.test(ch) ? 'N' : 'P');
    const reference = (text: string, maxBytes: number): number[] => {
      const cuts = new Set<number>();
      const chars = Array.from(text);
      for (let i = 0, at = 0; i < chars.length;) {
        let j = i;
        let end = at;
        while (j < chars.length && classOf(chars[j]) === classOf(chars[i])) end += chars[j++].length;
        let bytes = 0;
        for (let k = i, pos = at; k < j; pos += chars[k++].length) {
          if (bytes >= maxBytes && pos <= end - 2) {
            cuts.add(pos);
            bytes = 0;
          }
          bytes += Buffer.byteLength(chars[k]);
        }
        [i, at] = [j, end];
      }
      const ids: number[] = [];
      for (const m of text.matchAll(PRE_TOKEN)) {
        let a = m.index;
        const b = a + m[0].length;
        for (let c = a + 1; c < b; c++) {
          if (cuts.has(c)) {
            ids.push(...uncapped(text.slice(a, c)));
            a = c;
          }
        }
        ids.push(...uncapped(text.slice(a, b)));
      }
      return ids;
    };
    const alphabet = ['a', 'b', 's', 't', 'r', 'e', "'", ' ', '\n', '\t', '1', '2', '=', '-', 'é', '世', '𝐀', '٣', '\u3000', '\u00a0'];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let trial = 0; trial < 400; trial++) {
      let text = '';
      while (text.length < 200) text += alphabet[rand(alphabet.length)].repeat(rand(4) === 0 ? 5 + rand(20) : 1 + rand(2));
      const maxBytes = 4 + rand(8);
      const capped = splitLongRuns(text, maxBytes).flatMap(uncapped);
      if (JSON.stringify(capped) !== JSON.stringify(reference(text, maxBytes))) {
        throw new Error(
          `maxBytes ${maxBytes}, text ${JSON.stringify(text)}: ${capped.join(',')} vs ${reference(text, maxBytes).join(',')}`,
        );
      }
      expect(decode(capped)).toBe(text);
    }
  });
});
