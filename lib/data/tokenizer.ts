// GPT-2 byte-pair encoding (r50k_base), from the `gpt-tokenizer` package, which ships its merge
// ranks, so encoding works offline. Text is encoded as ordinary text: a literal "<|endoftext|>" in a
// document becomes the tokens of those characters, never the end-of-text id, so only the separators
// this module inserts produce EOT.
//
// The CommonJS path is imported because this project compiles with `moduleResolution: node`, which
// does not read package.json "exports"; it is the same module as 'gpt-tokenizer/encoding/r50k_base'.
import { decode as bpeDecode, encode as bpeEncode } from 'gpt-tokenizer/cjs/encoding/r50k_base';

/** The end-of-text id; it separates documents. */
export const EOT = 50256;
/** GPT-2's vocabulary size (ids 0..50256); every id fits in uint16. */
export const GPT2_VOCAB = 50257;

/** Special tokens are not recognised in text (tiktoken's encode_ordinary). */
export const ORDINARY = { disallowedSpecial: new Set<string>() };

/** The GPT-2 ids of a text. encode('hello world') is [31373, 995]. */
export function encode(text: string): number[] {
  return bpeEncode(text, ORDINARY);
}

/** The text of a sequence of ids (EOT decodes to "<|endoftext|>"). */
export function decode(ids: Iterable<number>): string {
  return bpeDecode(ids);
}

/** Every document's ids, each followed by EOT, in one array: [...doc0, EOT, ...doc1, EOT, …]. */
export function encodeDocuments(docs: Iterable<string>): Uint16Array {
  const parts: number[][] = [];
  let total = 0;
  for (const doc of docs) {
    const ids = encode(doc);
    parts.push(ids);
    total += ids.length + 1;
  }
  const out = new Uint16Array(total);
  let at = 0;
  for (const ids of parts) {
    out.set(ids, at);
    at += ids.length;
    out[at++] = EOT;
  }
  return out;
}

/** The arrays one after another in one array (the input itself when there is only one). */
export function concatTokens(parts: readonly Uint16Array[]): Uint16Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
