// Reading text inputs as documents. A file is UTF-8 text, or Brotli-compressed UTF-8 text when its
// name ends in `.br` (the shared Gutenberg shards). Documents inside a file are separated by a blank
// line followed by a line holding only a form feed ("\n\f\n"); a file without that separator is one
// document. Empty documents are dropped.
import { readFileSync } from 'node:fs';
import { brotliDecompressSync } from 'node:zlib';

export const DOCUMENT_SEPARATOR = '\n\f\n';

/** The text of a file: decompressed if `.br`, decoded as strict UTF-8 (a leading byte-order mark is dropped). */
export function readText(file: string): string {
  let bytes: Buffer = readFileSync(file);
  if (file.toLowerCase().endsWith('.br')) {
    try {
      bytes = brotliDecompressSync(bytes);
    } catch (e) {
      throw new Error(`${file}: not a valid Brotli stream (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new Error(`${file}: not UTF-8 text`);
  }
}

/** The documents of a text. */
export function splitDocuments(text: string): string[] {
  const docs = text.includes(DOCUMENT_SEPARATOR) ? text.split(DOCUMENT_SEPARATOR) : [text];
  return docs.filter((d) => d.length > 0);
}

/** The documents of a file. */
export function readDocuments(file: string): string[] {
  return splitDocuments(readText(file));
}
