// Documents from JSON lines (`.jsonl`, `.ndjson`; `.gz` or `.br` compressed): one JSON object per
// line with the document's text in a string field ("text" by default), the form most published
// corpora ship in (C4, Dolma, The Pile, FineWeb's JSON exports). Read a chunk at a time like plain
// text (documents.ts): a line is held until its newline arrives, then parsed; blank lines and empty
// texts are skipped, and a document longer than `pieceChars` comes out in pieces cut where its
// tokens do not change.
import { textChunks, type DocumentPiece, type ReadDocumentsOptions } from './documents';
import { safeCuts } from './tokenizer';

export interface JsonLinesOptions extends ReadDocumentsOptions {
  /**
   * The field that holds each document's text (default "text"): a top-level name, or a dotted path
   * into nested objects ("meta.body"); a top-level name that itself holds a dot is taken first.
   */
  field?: string;
}

/**
 * The value at `field` in a JSON object: its own key of that name, else the dotted path. Where the
 * path stops, `at` names the object it stopped in ('' for the line's own) and `keys` its keys.
 */
function fieldValue(obj: object, field: string): { value: unknown } | { missing: true; at: string; keys: string[]; kind?: string } {
  if (Object.hasOwn(obj, field)) return { value: (obj as Record<string, unknown>)[field] };
  const parts = field.split('.');
  let v: object = obj;
  for (let i = 0; i < parts.length; i++) {
    if (!Object.hasOwn(v, parts[i])) return { missing: true, at: parts.slice(0, i).join('.'), keys: Object.keys(v) };
    const next: unknown = (v as Record<string, unknown>)[parts[i]];
    if (i === parts.length - 1) return { value: next };
    // (a path through a value that is not an object: that value has no such field)
    if (typeof next !== 'object' || next === null || Array.isArray(next))
      return {
        missing: true,
        at: parts.slice(0, i + 1).join('.'),
        keys: [],
        kind: next === null ? 'null' : Array.isArray(next) ? 'an array' : `a ${typeof next}`,
      };
    v = next;
  }
  return { missing: true, at: '', keys: Object.keys(obj) }; // (not reached: parts is never empty)
}

/** The documents of a JSON-lines file, in pieces, as they are read. */
export async function* readJsonLinesPieces(file: string, opts: JsonLinesOptions = {}): AsyncGenerator<DocumentPiece> {
  const field = opts.field ?? 'text';
  const pieceChars = opts.pieceChars ?? 4_000_000;
  if (!Number.isInteger(pieceChars) || pieceChars < 1)
    throw new TypeError(`Expected a positive integer for pieceChars but received ${pieceChars}`);
  let pending = ''; // the current line, up to the chunk's end
  let line = 0; // lines completed
  let bytes = 0; // input bytes read and not yet counted in a piece
  const documents = (text: string): DocumentPiece[] => {
    const out: DocumentPiece[] = [];
    for (const l of text.split('\n')) for (const p of documentOf(l, file, ++line, field, pieceChars)) out.push(p);
    if (out.length > 0) [out[0].bytes, bytes] = [bytes, 0];
    return out;
  };
  for await (const chunk of textChunks(file, opts.chunkBytes ?? 4 << 20)) {
    bytes += chunk.read;
    const end = chunk.text.lastIndexOf('\n');
    if (end === -1) {
      pending = grow(pending, chunk.text, file, line);
      continue;
    }
    const complete = grow(pending, chunk.text.slice(0, end), file, line);
    pending = chunk.text.slice(end + 1);
    yield* documents(complete);
  }
  const last = pending.length > 0 ? documents(pending) : [];
  // the last bytes read count even when no piece is left to carry them
  yield* last.length > 0 || bytes === 0 ? last : [{ text: '', eot: false, bytes }];
}

/** `a + b`, or an error naming the line when it is longer than a string can be. */
function grow(a: string, b: string, file: string, line: number): string {
  try {
    return a + b;
  } catch {
    throw new Error(`${file}: line ${line + 1} is longer than ${a.length.toLocaleString('en-US')} characters, more than one string holds`);
  }
}

/** The pieces of the document one line holds (none for a blank line or an empty text). */
function documentOf(raw: string, file: string, line: number, field: string, pieceChars: number): DocumentPiece[] {
  const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (l.trim() === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(l);
  } catch (e) {
    throw new Error(
      `${file}:${line}: not JSON (${(e as Error).message}); JSON lines hold one object per line (--format text reads a file as text)`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(
      `${file}:${line}: a JSON line must be an object with a "${field}" field, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
    );
  const found = fieldValue(value, field);
  if ('missing' in found) {
    const fields =
      found.keys
        .slice(0, 8)
        .map((k) => JSON.stringify(k))
        .join(', ') || 'none';
    const where =
      found.at === ''
        ? `it has ${fields}`
        : found.kind !== undefined
          ? `its "${found.at}" is ${found.kind}, not an object`
          : `its "${found.at}" has ${found.keys.length === 0 ? 'no fields' : fields}`;
    throw new Error(
      `${file}:${line}: no "${field}" field (${where}; choose one with --text-field: a name, or a dotted path such as meta.text)`,
    );
  }
  const text = found.value;
  if (typeof text !== 'string')
    throw new Error(
      `${file}:${line}: the "${field}" field is ${text === null ? 'null' : Array.isArray(text) ? 'an array' : typeof text}, not text`,
    );
  if (text.length === 0) return [];
  const parts = text.length > pieceChars ? safeCuts(text, pieceChars) : [text];
  return parts.map((t, i) => ({ text: t, eot: i === parts.length - 1, bytes: 0 }));
}
