// Reading text inputs as documents. A file is UTF-8 text, or Brotli-compressed UTF-8 text when its
// name ends in `.br` (the shared Gutenberg shards). Documents inside a file are separated by a blank
// line followed by a line holding only a form feed ("\n\f\n"; with Windows line ends "\r\n\f\r\n",
// which an editor on Windows makes of it: read as one document, such a file silently lost every
// boundary); a file without that separator is one document. Empty documents are dropped. A leading
// byte-order mark is dropped.
//
// `prepare` reads with readDocumentPieces: the file is read, decompressed and decoded a chunk at a
// time, and documents are split off as they come, so no file is ever one string (V8 caps a string
// at ~512 M characters) and the text in memory stays about a chunk and a document long. A document
// longer than `pieceChars` comes out in pieces cut where its tokens do not change (see safeCuts).
import { statSync } from 'node:fs';
import { byteChunks, compressionOf, readBytes, readError } from './byte-chunks';
import { nextSafeCut } from './tokenizer';

export const DOCUMENT_SEPARATOR = '\n\f\n';

/** The separator with either line end: "\n\f\n", "\r\n\f\r\n" (or a mix). */
const SEPARATOR = /\r?\n\f\r?\n/g;

/** The longest separator's length: one that straddles two chunks starts in the last length − 1 characters of the first. */
const SEPARATOR_MAX = 5;

/** A piece of a document's text; `eot`: the document ends with it. */
export interface DocumentPiece {
  text: string;
  eot: boolean;
  /** Bytes of the input file (as stored: compressed for `.br`) read since the previous piece. */
  bytes: number;
}

export interface ReadDocumentsOptions {
  /** Bytes read and decoded at a time (default 4 MiB). */
  chunkBytes?: number;
  /** A document longer than this many characters comes out in pieces of about this size (default 4 M). */
  pieceChars?: number;
}

/**
 * The size of an input file in bytes; throws an Error naming the file when it cannot be read as
 * one (missing, a directory, no permission), before any work is done on it.
 */
export function inputSize(file: string): number {
  let stat;
  try {
    stat = statSync(file);
  } catch (e) {
    throw readError(file, e);
  }
  if (stat.isDirectory()) throw new Error(`${file}: is a directory, not a text file (give the files in it)`);
  compressionOf(file); // (a compression this reader lacks is refused before any work)
  return stat.size;
}

/** The documents of a file, in pieces, as they are read (see the top of this file). */
export async function* readDocumentPieces(file: string, opts: ReadDocumentsOptions = {}): AsyncGenerator<DocumentPiece> {
  const splitter = new DocumentSplitter(opts.pieceChars ?? 4_000_000);
  let bytes = 0; // input bytes read and not yet counted in a piece
  const out = (pieces: DocumentPiece[]): DocumentPiece[] => {
    if (pieces.length > 0) [pieces[0].bytes, bytes] = [bytes, 0];
    return pieces;
  };
  for await (const chunk of textChunks(file, opts.chunkBytes ?? 4 << 20)) {
    bytes += chunk.read;
    yield* out(splitter.push(chunk.text, file));
  }
  const last = splitter.end();
  // the last bytes read count even when no piece is left to carry them (a file of empty documents)
  yield* out(last.length > 0 || bytes === 0 ? last : [{ text: '', eot: false, bytes: 0 }]);
}

/**
 * A file's text (decompressed by its name, strict UTF-8), a chunk at a time; `read`: the file's
 * bytes read for it. Invalid UTF-8 is an error naming the byte where it starts.
 */
export async function* textChunks(file: string, chunkBytes: number): AsyncGenerator<{ text: string; read: number }> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1)
    throw new TypeError(`Expected a positive integer for chunkBytes but received ${chunkBytes}`);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let offset = 0; // bytes of (decompressed) UTF-8 decoded so far
  let tail: Uint8Array = new Uint8Array(0); // the last bytes of the previous chunk: where an error's character may start
  for await (const chunk of byteChunks(file, chunkBytes)) {
    let text: string;
    try {
      text = decoder.decode(chunk.bytes, { stream: true });
    } catch {
      const at = offset + invalidUtf8At(tail, chunk.bytes);
      throw new Error(
        `${file}: not UTF-8 text (${Number.isNaN(at) ? 'an invalid byte sequence' : `an invalid byte sequence at byte ${at}`})`,
      );
    }
    offset += chunk.bytes.length;
    tail = lastBytes(tail, chunk.bytes, 3);
    yield { text, read: chunk.read };
  }
  try {
    decoder.decode();
  } catch {
    throw new Error(`${file}: not UTF-8 text (it ends inside a multi-byte character, at byte ${offset})`);
  }
}

/**
 * Documents split off a text that arrives in chunks, as splitDocuments splits the whole (at
 * "\n\f\n" or "\r\n\f\r\n"), empty documents dropped.
 */
export class DocumentSplitter {
  /** The text of the current document not yet given out. */
  private pending = '';
  /** Whether a piece of the current document was given out (then it is not empty). */
  private started = false;
  /** No safe cut lies in `pending` before this position (the search resumes there). */
  private searched = 0;

  constructor(private readonly pieceChars: number) {
    if (!Number.isInteger(pieceChars) || pieceChars < 1)
      throw new TypeError(`Expected a positive integer for pieceChars but received ${pieceChars}`);
  }

  /** The pieces that the next chunk of text completes; `file` names the input in errors. */
  push(text: string, file = 'the text'): DocumentPiece[] {
    const out: DocumentPiece[] = [];
    // a separator may straddle chunks: look again at the last characters already held
    let from = Math.max(0, this.pending.length - (SEPARATOR_MAX - 1));
    try {
      this.pending += text;
    } catch {
      // (RangeError: invalid string length)
      throw new Error(
        `${file}: a document of more than ${this.pending.length.toLocaleString('en-US')} characters with nowhere to cut it ` +
          `(no space between two letters); separate documents with "\\n\\f\\n"`,
      );
    }
    for (;;) {
      SEPARATOR.lastIndex = from;
      const found = SEPARATOR.exec(this.pending);
      if (found === null) break;
      this.finish(this.pending.slice(0, found.index), out);
      this.pending = this.pending.slice(found.index + found[0].length);
      this.searched = 0;
      from = 0;
    }
    // a long document goes out in pieces, cut where its tokens do not change (a safe cut is a space
    // between letters, never part of a separator); the rest stays held
    while (this.pending.length > this.pieceChars) {
      const cut = nextSafeCut(this.pending, Math.max(this.pieceChars, this.searched));
      if (cut === -1) {
        // (the last character may become a cut when the letter after it comes)
        this.searched = this.pending.length - 1;
        break;
      }
      out.push({ text: this.pending.slice(0, cut), eot: false, bytes: 0 });
      this.pending = this.pending.slice(cut);
      this.started = true;
      this.searched = 0;
    }
    return out;
  }

  /** The pieces left when the text has ended. */
  end(): DocumentPiece[] {
    const out: DocumentPiece[] = [];
    this.finish(this.pending, out);
    this.pending = '';
    return out;
  }

  private finish(last: string, out: DocumentPiece[]): void {
    if (last.length > 0 || this.started) out.push({ text: last, eot: true, bytes: 0 });
    this.started = false;
  }
}

/**
 * The offset, relative to `chunk`, of the first invalid UTF-8 sequence in `chunk` (whose previous
 * bytes, the end of the chunk before, are `tail`: a character may start there), or NaN.
 */
export function invalidUtf8At(tail: Uint8Array, chunk: Uint8Array): number {
  // start at the character that straddles the two chunks, if one does: the last lead byte of the
  // tail, when the bytes after it in the tail do not complete it
  let start = tail.length;
  for (let i = tail.length - 1; i >= 0; i--) {
    if ((tail[i] & 0xc0) !== 0x80) {
      if (i + sequenceLength(tail[i]) > tail.length) start = i;
      break;
    }
  }
  const bytes = new Uint8Array(tail.length - start + chunk.length);
  bytes.set(tail.subarray(start));
  bytes.set(chunk, tail.length - start);
  const at = firstInvalidUtf8(bytes);
  return at === -1 ? NaN : at - (tail.length - start);
}

/** The last `n` bytes of `a` followed by `b`. */
function lastBytes(a: Uint8Array, b: Uint8Array, n: number): Uint8Array {
  if (b.length >= n) return b.slice(b.length - n);
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  return both.slice(Math.max(0, both.length - n));
}

/** The bytes of the UTF-8 sequence a lead byte starts (1 for a byte that cannot start one). */
function sequenceLength(lead: number): number {
  return lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 1;
}

/**
 * The index of the first byte of the first invalid UTF-8 sequence (as the WHATWG decoder sees
 * them: overlong forms, surrogates and code points past U+10FFFF are invalid), or -1; a sequence
 * cut off by the end of `bytes` is not counted invalid.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i];
    if (lead < 0x80) {
      i++;
      continue;
    }
    const n = sequenceLength(lead);
    if (n === 1) return i;
    // the second byte's range is narrower after E0 (no overlong), ED (no surrogate), F0, F4
    const lo = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const hi = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k < n; k++) {
      if (i + k >= bytes.length) return -1;
      const b = bytes[i + k];
      if (k === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return i;
    }
    i += n;
  }
  return -1;
}

/** The whole text of a file (decompressed by its name, strict UTF-8) as one string: for files under ~512 M characters. */
export function readText(file: string): string {
  inputSize(file);
  const bytes = readBytes(file);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') {
      throw new Error(
        `${file}: cannot hold its ${bytes.length} bytes of text as one string (${(e as Error).message}); readDocumentPieces reads it in pieces`,
      );
    }
    const at = firstInvalidUtf8(bytes);
    throw new Error(
      `${file}: not UTF-8 text (${at === -1 ? 'it ends inside a multi-byte character' : `an invalid byte sequence at byte ${at}`})`,
    );
  }
}

/** The documents of a text. */
export function splitDocuments(text: string): string[] {
  return text.split(SEPARATOR).filter((d) => d.length > 0);
}

/** The documents of a file, read whole (readDocumentPieces reads a file of any size). */
export function readDocuments(file: string): string[] {
  return splitDocuments(readText(file));
}
