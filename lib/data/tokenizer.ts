// GPT-2 byte-pair encoding (r50k_base), from the `gpt-tokenizer` package, which ships its merge
// ranks, so encoding works offline. Text is encoded as ordinary text: a literal "<|endoftext|>" in a
// document becomes the tokens of those characters, never the end-of-text id, so only the separators
// this module inserts produce EOT.
//
// The CommonJS path is imported because this project compiles with `moduleResolution: node`, which
// does not read package.json "exports"; it is the same module as 'gpt-tokenizer/encoding/r50k_base'.
import bpeRanks from 'gpt-tokenizer/cjs/bpeRanks/r50k_base';
import { encode as bpeEncode } from 'gpt-tokenizer/cjs/encoding/r50k_base';

/** The end-of-text id; it separates documents. */
export const EOT = 50256;
/** GPT-2's vocabulary size (ids 0..50256); every id fits in uint16. */
export const GPT2_VOCAB = 50257;

/** Special tokens are not recognised in text (tiktoken's encode_ordinary). */
export const ORDINARY = { disallowedSpecial: new Set<string>() };

/**
 * The most UTF-8 bytes of a run of one character class (letters, digits, other symbols,
 * whitespace) that is byte-pair encoded as one piece; see splitLongRuns.
 */
export const MAX_RUN_BYTES = 1024;

/**
 * The GPT-2 ids of a text. encode('hello world') is [31373, 995]. Runs of one character class of
 * more than MAX_RUN_BYTES are encoded in pieces (see splitLongRuns), so the time is linear in the
 * text's length.
 */
export function encode(text: string): number[] {
  const parts = splitLongRuns(text);
  if (parts.length === 1) return bpeEncode(text, ORDINARY);
  const ids: number[] = [];
  for (const part of parts) for (const id of bpeEncode(part, ORDINARY)) ids.push(id);
  return ids;
}

let byteTable: Uint8Array[] | undefined;

/**
 * The bytes of each ordinary id (0 … 50255): its entry in the r50k_base rank table is a string
 * (valid UTF-8 on its own) or the raw bytes of a token that splits a character. Built on first use.
 */
function tokenByteTable(): readonly Uint8Array[] {
  byteTable ??= (bpeRanks as readonly (string | number[])[]).map((r) =>
    typeof r === 'string' ? Buffer.from(r, 'utf8') : Uint8Array.from(r),
  );
  return byteTable;
}

/** UTF-8 bytes of each ordinary id (0 … 50255), a new array. */
export function tokenByteLengths(): Uint16Array {
  return Uint16Array.from(tokenByteTable(), (b) => b.length);
}

const EOT_TEXT = '<|endoftext|>';

/**
 * Text from ids as they come: push() returns the text each id completes, holding back the bytes of a
 * character split across tokens until its last byte arrives, so it can be printed token by token.
 * Linear in the text's length (gpt-tokenizer's decode is quadratic on long runs of byte tokens).
 */
export class TextStream {
  // (ignoreBOM: a U+FEFF the ids encode is text, at the start or after an EOT)
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  push(id: number): string {
    if (id === EOT) return this.decoder.decode() + EOT_TEXT; // (a character cut short before it: U+FFFD)
    const table = tokenByteTable();
    if (!Number.isInteger(id) || id < 0 || id >= table.length) throw new RangeError(`decode: ${id} is not a GPT-2 token id (0 … ${EOT})`);
    return this.decoder.decode(table[id], { stream: true });
  }

  /** The bytes held back, if any: a character cut short at the end shows as U+FFFD. */
  end(): string {
    return this.decoder.decode();
  }
}

/**
 * The text of a sequence of ids (EOT decodes to "<|endoftext|>"). Bytes that do not form a
 * character show as U+FFFD, as tiktoken's decode with errors='replace' (gpt-tokenizer drops them).
 */
export function decode(ids: Iterable<number>): string {
  const stream = new TextStream();
  let text = '';
  for (const id of ids) text += stream.push(id);
  return text + stream.end();
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

// ---------------------------------------------------------------------------------------------
// Where a text may be cut. GPT-2 first splits text into pre-tokens with the r50k pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// and byte-pair encodes each pre-token on its own, so a cut between two pre-tokens that both halves
// pre-tokenize the same way changes no token. Every pre-token is at most one space and a run of one
// class: letters (L), digits (N), other symbols (P: [^\s\p{L}\p{N}]), or whitespace (S).

/**
 * Positions where `text` may be cut without changing its tokens: a space between two letters. The
 * pattern always ends a piece at a letter followed by a space, and starts the next piece at that
 * space (" ?\p{L}+"), so both halves split into the same pieces as the whole.
 */
const SAFE_CUT = /(?<=\p{L}) (?=\p{L})/gu;

/** The first safe cut (see SAFE_CUT) at or after `from`, or -1. */
export function nextSafeCut(text: string, from: number): number {
  SAFE_CUT.lastIndex = from;
  const m = SAFE_CUT.exec(text);
  return m === null ? -1 : m.index;
}

/** `text` in pieces of about `size` characters, each cut at a safe position; the tokens of the pieces are those of the text. */
export function safeCuts(text: string, size: number): string[] {
  const out: string[] = [];
  let start = 0;
  while (text.length - start > size) {
    const cut = nextSafeCut(text, start + size);
    if (cut === -1) break;
    out.push(text.slice(start, cut));
    start = cut;
  }
  out.push(text.slice(start));
  return out;
}

/**
 * `text` cut inside every run of one class of more than `maxBytes` UTF-8 bytes, every ~maxBytes
 * bytes, so that no piece byte-pair encoded at once is much longer (usually one part: the text).
 *
 * Why: gpt-tokenizer's byte-pair merge is quadratic in a pre-token's length ('a' × 1e5 takes ~8 s,
 * '=' × 2e5 ~25 s), and such runs (rules of '=', long whitespace, a blob of one class) occur in real
 * text; parallel.ts cannot cut inside them either. Capping the piece makes the cost linear. The
 * price: inside such a run no merge crosses a cut, so its tokens may differ from GPT-2's
 * (tiktoken's) there. That happens only for runs longer than maxBytes; all other text gets exactly
 * GPT-2's tokens.
 *
 * Why the cuts change nothing else: a cut c inside a maximal run [s, e), with s + 2 ≤ c ≤ e − 2,
 * leaves both halves pre-tokenized as the whole, except that the run's pre-token is cut at c. The
 * left half ends inside the run, so the pre-token holding the run ends at c (a whitespace run at
 * the end of a text is one pre-token, `\s+(?!\S)`). The right half starts with at least two units
 * of the run, which only the run's own class alternative can match (a contraction needs "'" and a
 * letter; the optional space precedes another class), up to where it ends in the whole text. A
 * contraction that takes the run's first letters ("'re…") ends by s + 2. Cuts never split a
 * surrogate pair.
 */
export function splitLongRuns(text: string, maxBytes = MAX_RUN_BYTES): string[] {
  if (!Number.isInteger(maxBytes) || maxBytes < 4) throw new TypeError(`Expected an integer ≥ 4 for maxBytes but received ${maxBytes}`);
  if (text.length * 3 <= maxBytes) return [text]; // (a UTF-16 unit is at most 3 UTF-8 bytes)
  const cuts = longRunCuts(text, maxBytes);
  if (cuts.length === 0) return [text];
  const parts: string[] = [];
  let start = 0;
  for (const c of cuts) {
    parts.push(text.slice(start, c));
    start = c;
  }
  parts.push(text.slice(start));
  return parts;
}

// (matched 4096 code points at a time: one match of a run of millions — a DNA sequence, a blob of
// one letter — overflowed V8's regex backtrack stack, "Maximum call stack size exceeded")
const CLASS_PIECES = [/\p{L}{1,4096}/uy, /\p{N}{1,4096}/uy, /[^\s\p{L}\p{N}]{1,4096}/uy];

/** Where the run of `piece`'s class that starts at i ends (i where none starts there). */
function runEnd(text: string, i: number, piece: RegExp): number {
  let j = i;
  for (;;) {
    piece.lastIndex = j;
    if (!piece.test(text)) return j;
    j = piece.lastIndex;
  }
}

/** The cut positions of splitLongRuns, ascending. */
function longRunCuts(text: string, maxBytes: number): number[] {
  const cuts: number[] = [];
  // A run of more than maxBytes has at least minUnits UTF-16 units, and lies inside a maximal
  // stretch of only whitespace or only non-whitespace that long, which holds one of the sample
  // points every minUnits/2 units. Ordinary text changes between the two every few characters, so
  // the scan around the samples is short and the search costs little next to the encoding.
  const minUnits = Math.ceil(maxBytes / 3);
  const step = Math.max(1, minUnits >> 1);
  let end = 0; // the text before `end` has been looked at
  for (let p = step - 1; p < text.length; p += step) {
    if (p < end) continue;
    const space = isSpace(text.charCodeAt(p));
    let a = p;
    while (a > end && isSpace(text.charCodeAt(a - 1)) === space) a--;
    let b = p + 1;
    while (b < text.length && isSpace(text.charCodeAt(b)) === space) b++;
    end = b;
    if (b - a < minUnits) continue;
    if (space) {
      cutRun(text, a, b, maxBytes, cuts);
      continue;
    }
    // a stretch without whitespace: its runs of letters, digits and other symbols, in turn
    for (let i = a; i < b;) {
      let j = i + 1;
      for (const piece of CLASS_PIECES) {
        const e = runEnd(text, i, piece);
        if (e > i) {
          j = e;
          break;
        }
      }
      if (j - i >= minUnits) cutRun(text, i, j, maxBytes, cuts);
      i = j;
    }
  }
  return cuts;
}

/** Cuts inside the run [s, e) every ~maxBytes UTF-8 bytes, none closer than 2 units to its end, none inside a surrogate pair. */
function cutRun(text: string, s: number, e: number, maxBytes: number, cuts: number[]): void {
  let bytes = 0;
  for (let i = s; i <= e - 2; i++) {
    const u = text.charCodeAt(i);
    // (a first cut comes after at least 2 units: a unit is at most 3 bytes and maxBytes ≥ 4)
    if (bytes >= maxBytes && !(u >= 0xdc00 && u <= 0xdfff)) {
      cuts.push(i);
      bytes = 0;
    }
    bytes += u < 0x80 ? 1 : u < 0x800 || (u >= 0xd800 && u <= 0xdfff) ? 2 : 3;
  }
}

/** Whether a UTF-16 unit is whitespace as the regular expression `\s` means it (WhiteSpace and LineTerminator). */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}
