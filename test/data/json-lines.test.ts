// JSON-lines inputs and gzip: the same documents, pieces and shards as the equivalent plain text,
// at any chunk size, compressed or not; errors name the file, the line and the fix.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { DOCUMENT_SEPARATOR, inputSize, readDocumentPieces } from '../../lib/data/documents';
import { inputFormat, readInputPieces, textFieldNote, type InputOptions } from '../../lib/data/inputs';
import { readJsonLinesPieces } from '../../lib/data/json-lines';
import { prepare } from '../../lib/data/prepare';
import { collect, documentsOf } from './pieces';
import { tempDirs } from './tmp';

const tmp = tempDirs('jsonl');

const DOCS = ['Call me Ishmael.', 'naïve café 🐋 — “quoted”\nsecond line', 'x'.repeat(50) + ' the end', 'Ahab'];

/** The documents as JSON lines, with what real files have: a blank line, an empty text, CRLF, other fields. */
function jsonLines(docs: string[]): string {
  const lines = docs.map((text, i) => JSON.stringify({ id: i, text, meta: { url: `u${i}` } }));
  lines.splice(2, 0, '', JSON.stringify({ id: 'empty', text: '' }));
  return lines.join('\n').replace(/\n$/, '') + '\r\n';
}

async function error(file: string, opts: InputOptions = {}): Promise<string> {
  try {
    await collect(readInputPieces(file, opts));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('JSON lines', () => {
  it('the format follows the name unless given', () => {
    expect(inputFormat('a/b.jsonl')).toBe('jsonl');
    expect(inputFormat('b.NDJSON.gz')).toBe('jsonl');
    expect(inputFormat('b.jsonl.br')).toBe('jsonl');
    expect(inputFormat('c4-train.00000-of-01024.json.gz')).toBe('jsonl'); // (C4's and Dolma's names)
    expect(inputFormat('notes.json', 'text')).toBe('text');
    expect(inputFormat('book.txt.gz')).toBe('text');
    // a text field given where nothing is JSON lines is noted, not silently ignored
    expect(textFieldNote(['book.txt'], { textField: 'body' })).toMatch(/--text-field applies to JSON lines; book\.txt is read as text/);
    expect(textFieldNote(['book.txt', 'c4.json.gz'], { textField: 'body' })).toBeNull();
    expect(textFieldNote(['book.txt'], { textField: 'body', format: 'jsonl' })).toBeNull();
    expect(textFieldNote(['book.txt'], {})).toBeNull();
  });

  it('give each line’s text as one document, at any chunk size; the pieces carry every byte of the file', async () => {
    const dir = tmp();
    const file = join(dir, 'docs.jsonl');
    writeFileSync(file, '\ufeff' + jsonLines(DOCS));
    for (const chunkBytes of [3, 7, 64, 1 << 20]) {
      const ps = await collect(readJsonLinesPieces(file, { chunkBytes }));
      expect(documentsOf(ps)).toEqual(DOCS);
      expect(ps.reduce((n, p) => n + p.bytes, 0)).toBe(statSync(file).size);
    }
    // a document longer than pieceChars comes in pieces cut between words, eot on the last
    const ps = await collect(readJsonLinesPieces(file, { pieceChars: 20 }));
    expect(documentsOf(ps)).toEqual(DOCS);
    expect(ps.length).toBeGreaterThan(DOCS.length);
  });

  it('every byte of the input is counted once, however slowly the pieces are taken (the progress of prepare)', async () => {
    const dir = tmp();
    const docs = Array.from({ length: 300 }, (_, i) => `document ${i} ` + 'word '.repeat(20));
    const lines = docs.map((text) => JSON.stringify({ text })).join('\n') + '\n';
    writeFileSync(join(dir, 'slow.jsonl'), lines);
    writeFileSync(join(dir, 'slow.txt.gz'), gzipSync(docs.join(DOCUMENT_SEPARATOR)));
    for (const file of ['slow.jsonl', 'slow.txt.gz']) {
      let bytes = 0;
      const reader = file.endsWith('.jsonl')
        ? readJsonLinesPieces(join(dir, file), { chunkBytes: 256 })
        : readDocumentPieces(join(dir, file), { chunkBytes: 256 });
      for await (const p of reader) {
        bytes += p.bytes;
        await new Promise((r) => setTimeout(r, 1)); // the stream reads on meanwhile
      }
      expect(bytes).toBe(statSync(join(dir, file)).size);
    }
  });

  it('compressed (gzip, Brotli) or not, JSON lines and the same documents as plain text make the same shards', async () => {
    const dir = tmp();
    const lines = jsonLines(DOCS);
    writeFileSync(join(dir, 'plain.txt'), DOCS.join(DOCUMENT_SEPARATOR));
    writeFileSync(join(dir, 'plain.txt.gz'), gzipSync(DOCS.join(DOCUMENT_SEPARATOR)));
    writeFileSync(join(dir, 'a.jsonl'), lines);
    writeFileSync(join(dir, 'a.jsonl.gz'), gzipSync(lines));
    writeFileSync(join(dir, 'a.jsonl.br'), brotliCompressSync(lines));
    writeFileSync(join(dir, 'c4.json.gz'), gzipSync(lines.replace(/"text"/g, '"body"')));
    writeFileSync(join(dir, 'nested.jsonl'), DOCS.map((body) => JSON.stringify({ id: 1, doc: { body, lang: 'en' } })).join('\n'));
    writeFileSync(
      join(dir, 'dotted.jsonl'),
      DOCS.map((body) => JSON.stringify({ 'doc.body': body, doc: { body: 'not this' } })).join('\n'),
    );
    const shards = async (name: string, inputs: string[], opts = {}) => {
      const s = await prepare({ inputs: inputs.map((f) => join(dir, f)), outDir: join(dir, name), valTokens: 5, ...opts });
      expect(s.documents).toBe(DOCS.length);
      return s.files.map((f) => readFileSync(f.path).toString('hex'));
    };
    const reference = await shards('ref', ['plain.txt']);
    expect(await shards('gz', ['plain.txt.gz'])).toEqual(reference);
    expect(await shards('jsonl', ['a.jsonl'])).toEqual(reference);
    expect(await shards('jsonl-gz', ['a.jsonl.gz'])).toEqual(reference);
    expect(await shards('jsonl-br', ['a.jsonl.br'])).toEqual(reference);
    expect(await shards('field', ['c4.json.gz'], { textField: 'body' })).toEqual(reference);
    // a nested field, by its dotted path (a top-level name with a dot in it comes first)
    expect(await shards('nested', ['nested.jsonl'], { textField: 'doc.body' })).toEqual(reference);
    expect(await shards('dotted', ['dotted.jsonl'], { textField: 'doc.body' })).toEqual(reference);
  });

  it('errors name the file and line, and what to do', async () => {
    const dir = tmp();
    const write = (name: string, text: string | Buffer) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    expect(await error(write('bad.jsonl', '{"text": "a"}\n{"text": oops}\n'))).toMatch(/bad\.jsonl:2: not JSON/);
    expect(await error(write('field.jsonl', '{"text": "a"}\n\n{"content": "b", "id": 3}\n'))).toMatch(
      /field\.jsonl:3: no "text" field \(it has "content", "id"; choose one with --text-field: a name, or a dotted path such as meta\.text\)/,
    );
    // a dotted path names where it stopped
    const nested = write('nested.jsonl', '{"meta": {"body": "a", "url": "u"}, "id": 1}\n');
    expect(await error(nested, { textField: 'meta.text' })).toMatch(
      /nested\.jsonl:1: no "meta\.text" field \(its "meta" has "body", "url";/,
    );
    expect(await error(nested, { textField: 'id.text' })).toMatch(
      /nested\.jsonl:1: no "id\.text" field \(its "id" is a number, not an object;/,
    );
    expect(await error(nested, { textField: 'meta' })).toMatch(/nested\.jsonl:1: the "meta" field is object, not text/);
    expect(await error(write('null.jsonl', '{"text": null}\n'))).toMatch(/null\.jsonl:1: the "text" field is null, not text/);
    expect(await error(write('array.jsonl', '["a"]\n'))).toMatch(
      /array\.jsonl:1: a JSON line must be an object with a "text" field, not an array/,
    );
    expect(await error(write('latin1.jsonl', Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d, 0x0a])))).toMatch(
      /latin1\.jsonl: not UTF-8 text/,
    );
    expect(await error(write('broken.jsonl.gz', Buffer.from('not gzip at all')))).toMatch(/broken\.jsonl\.gz: not a valid gzip stream/);
    expect(await error(write('plain.txt.gz', Buffer.from('nope')))).toMatch(/plain\.txt\.gz: not a valid gzip stream/);
    expect(await error(join(dir, 'missing.jsonl'))).toMatch(/missing\.jsonl: no such file/);
    expect(await error(write('pile.jsonl.zst', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])))).toMatch(
      /pile\.jsonl\.zst: Zstandard-compressed \(\.zst\), which is not read here: decompress it, or recompress it with gzip or Brotli/,
    );
    expect(() => inputSize(join(dir, 'pile.jsonl.zst'))).toThrow(/Zstandard-compressed/);
    // only the object's own fields: not what every object inherits
    expect(await error(write('proto.jsonl', '{"text": "a"}\n'), { textField: 'toString' })).toMatch(
      /proto\.jsonl:1: no "toString" field \(it has "text"/,
    );
    expect(await error(write('pretty.json', '{\n  "text": "a"\n}\n'))).toMatch(
      /pretty\.json:1: not JSON .*--format text reads a file as text/,
    );
  });
});
