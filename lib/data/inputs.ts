// Text inputs by format: plain text (documents separated by "\n\f\n", documents.ts) or JSON lines
// (one object per line, json-lines.ts), each possibly compressed (byte-chunks.ts). The format is
// what the name says unless given: `.jsonl`, `.ndjson` and `.json` (before any `.gz` / `.br`) are
// JSON lines — C4 and Dolma ship theirs as `.json.gz` — anything else is text.
import { withoutCompression } from './byte-chunks';
import { readDocumentPieces, type DocumentPiece } from './documents';
import { readJsonLinesPieces } from './json-lines';

export type InputFormat = 'text' | 'jsonl';
export const INPUT_FORMATS: readonly InputFormat[] = ['text', 'jsonl'];

export interface InputOptions {
  /** 'text' or 'jsonl' (default: by the file's name). */
  format?: InputFormat;
  /** JSON lines: the field holding the text (default "text"). */
  textField?: string;
}

/** The format of an input: the one given, else what its name says. */
export function inputFormat(file: string, format?: InputFormat): InputFormat {
  if (format !== undefined) return format;
  return /\.(jsonl|ndjson|json)$/i.test(withoutCompression(file)) ? 'jsonl' : 'text';
}

/** A note when a text field is given but no input is JSON lines (it would be ignored), else null. */
export function textFieldNote(files: string[], opts: InputOptions): string | null {
  if (opts.textField === undefined || files.some((f) => inputFormat(f, opts.format) === 'jsonl')) return null;
  return `staged-lm: note: --text-field applies to JSON lines; ${files.length === 1 ? `${files[0]} is` : 'these inputs are'} read as text (--format jsonl reads ${files.length === 1 ? 'it' : 'them'} as JSON lines)`;
}

/** The documents of an input file, in pieces, as they are read. */
export function readInputPieces(file: string, opts: InputOptions = {}): AsyncGenerator<DocumentPiece> {
  return inputFormat(file, opts.format) === 'jsonl' ? readJsonLinesPieces(file, { field: opts.textField }) : readDocumentPieces(file);
}
