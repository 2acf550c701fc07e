import { EOT, GPT2_VOCAB, concatTokens, decode, encode, encodeDocuments } from '../../lib/data';

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

  test('concatTokens joins in order', () => {
    expect(Array.from(concatTokens([Uint16Array.of(1, 2), Uint16Array.of(), Uint16Array.of(3)]))).toEqual([1, 2, 3]);
    expect(concatTokens([]).length).toBe(0);
  });
});
