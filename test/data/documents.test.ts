import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { encode, encodeDocuments } from '../../lib/data';
import {
  DocumentSplitter,
  firstInvalidUtf8,
  inputSize,
  readDocumentPieces,
  readDocuments,
  readText,
  splitDocuments,
  type DocumentPiece,
} from '../../lib/data/documents';
import { tokenizePieces } from '../../lib/data/parallel';
import { collect, documentsOf } from './pieces';
import { tempDirs } from './tmp';

const tmp = tempDirs('documents');

async function pieces(file: string, chunkBytes?: number, pieceChars?: number): Promise<DocumentPiece[]> {
  return collect(readDocumentPieces(file, { chunkBytes, pieceChars }));
}

async function readError(file: string, chunkBytes?: number): Promise<string> {
  try {
    await pieces(file, chunkBytes);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`${file}: read without an error`);
}

// A BOM, 2-, 3- and 4-byte characters, separators (one straddling another's form feed), empty
// documents at the start, the middle and the end, and a long run of words to cut into pieces.
const TEXT =
  '\ufeff\n\f\nCafé 世界 🐋 one two three four five six seven\n\f\n\n\f\n\f\nsecond, naïve\n\f\n\n\f\n' +
  'a b c d e f g h i j k l m n o p q r s t u v w x y z\n\f\nlast 🐋\n\f\n';

describe('reading documents as a stream', () => {
  test('any chunk size and piece size gives the documents of the whole text, with their tokens', async () => {
    const file = join(tmp(), 'docs.txt');
    writeFileSync(file, TEXT);
    const whole = splitDocuments(TEXT.slice(1)); // (the reference: the text split at once, BOM dropped)
    expect(whole.length).toBe(4);
    expect(readDocuments(file)).toEqual(whole);
    const bytes = Buffer.byteLength(TEXT);
    // chunk sizes 1 … 13 put a chunk boundary inside every multi-byte character, the BOM and every separator
    for (let chunkBytes = 1; chunkBytes <= 13; chunkBytes++) {
      for (const pieceChars of [1, 7, 1000]) {
        const ps = await pieces(file, chunkBytes, pieceChars);
        expect(documentsOf(ps)).toEqual(whole);
        expect(ps.reduce((n, p) => n + p.bytes, 0)).toBe(bytes);
        if (pieceChars === 7) expect(ps.length).toBeGreaterThan(10); // (long documents came in pieces)
        // pieces are cut where the tokens do not change
        const ids = await tokenizePieces(ps, bytes, { workers: 1 });
        expect(Array.from(ids.tokens)).toEqual(Array.from(encodeDocuments(whole)));
      }
    }
  });

  test('a generated file of many chunks reads as the whole text does, plain and Brotli-compressed', async () => {
    const dir = tmp();
    const words = ['whale', 'Ahab', 'sea', 'naïve', '世界', '🐋', 'ship,', 'line\n', '\n\f\n'];
    let seed = 1;
    const parts: string[] = [];
    for (let i = 0; i < 60_000; i++) parts.push(words[(seed = (seed * 48271) % 2147483647) % words.length]);
    const text = parts.join(' ');
    writeFileSync(join(dir, 'big.txt'), text);
    writeFileSync(join(dir, 'big.txt.br'), brotliCompressSync(Buffer.from(text)));
    const whole = splitDocuments(text);
    expect(whole.length).toBeGreaterThan(1000);
    for (const file of ['big.txt', 'big.txt.br']) {
      const ps = await pieces(join(dir, file), 4096, 2000);
      expect(documentsOf(ps)).toEqual(whole);
      expect(ps.reduce((n, p) => n + p.bytes, 0)).toBe(inputSize(join(dir, file)));
    }
  });

  test('Windows line ends: "\\r\\n\\f\\r\\n" separates documents too, whatever the chunks (it was read as one document)', async () => {
    const crlf = TEXT.replace(/\n/g, '\r\n');
    const file = join(tmp(), 'crlf.txt');
    writeFileSync(file, crlf);
    // the same documents as with "\n", each with its own line ends
    const whole = splitDocuments(crlf.slice(1));
    expect(whole).toEqual(splitDocuments(TEXT.slice(1)).map((d) => d.replace(/\n/g, '\r\n')));
    expect(whole.length).toBe(4);
    for (let chunkBytes = 1; chunkBytes <= 13; chunkBytes++) expect(documentsOf(await pieces(file, chunkBytes, 7))).toEqual(whole);
    // a mix, one straddling two pushes
    const s = new DocumentSplitter(100);
    const out = [...s.push('one\r\n\f'), ...s.push('\ntwo\n\f\r'), ...s.push('\nthree\r\n\f\n'), ...s.end()];
    expect(out.map((p) => p.text)).toEqual(['one', 'two', 'three']);
    expect(splitDocuments('one\r\n\f\ntwo\n\f\r\nthree\r\n\f\r\n')).toEqual(['one', 'two', 'three']);
  });

  test('the splitter: a separator split across pushes, empty documents dropped', () => {
    const s = new DocumentSplitter(100);
    const out = [...s.push('one\n'), ...s.push('\f'), ...s.push('\ntwo\n\f'), ...s.push('\n\n\f\n'), ...s.end()];
    expect(out.map((p) => [p.text, p.eot])).toEqual([
      ['one', true],
      ['two', true],
    ]);
    expect(new DocumentSplitter(100).end()).toEqual([]);
  });

  test('invalid UTF-8 is reported with the file and the byte offset, whatever the chunks', async () => {
    const dir = tmp();
    const cases: [string, Buffer, string][] = [
      ['bad-byte.txt', Buffer.concat([Buffer.from('abcé'), Buffer.from([0xff]), Buffer.from('x')]), 'an invalid byte sequence at byte 5'],
      ['cut-char.txt', Buffer.concat([Buffer.from('ab世'), Buffer.from([0xe4, 0xb8]), Buffer.from('xyz')]), 'at byte 5'],
      ['overlong.txt', Buffer.concat([Buffer.from('abcdef'), Buffer.from([0xc0, 0x80])]), 'at byte 6'],
      ['surrogate.txt', Buffer.concat([Buffer.from('🐋'), Buffer.from([0xed, 0xa0, 0x80])]), 'at byte 4'],
      [
        'ends-inside.txt',
        Buffer.concat([Buffer.from('abc'), Buffer.from([0xf0, 0x9f, 0x90])]),
        'it ends inside a multi-byte character, at byte 6',
      ],
    ];
    for (const [name, bytes, where] of cases) {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      for (const chunkBytes of [1, 2, 3, 4, 5, 64]) expect(await readError(file, chunkBytes)).toContain(`${file}: not UTF-8 text (`);
      for (const chunkBytes of [1, 2, 3, 4, 5, 64]) expect(await readError(file, chunkBytes)).toContain(where);
      expect(() => readText(file)).toThrow(`${file}: not UTF-8 text (`);
    }
    expect(firstInvalidUtf8(Buffer.from('valid: é世🐋'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xf4, 0x90, 0x80, 0x80]))).toBe(1); // (past U+10FFFF)
  });

  test('I/O errors name the file', async () => {
    const dir = tmp();
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expect(() => inputSize(sub)).toThrow(`${sub}: is a directory, not a text file`);
    expect(await readError(sub)).toBe(`${sub}: is a directory, not a text file (give the files in it)`);
    expect(() => readText(sub)).toThrow(`${sub}: is a directory`);
    const missing = join(dir, 'missing.txt');
    expect(() => inputSize(missing)).toThrow(`${missing}: no such file`);
    expect(await readError(missing)).toBe(`${missing}: no such file`);
    const badBr = join(dir, 'bad.txt.br');
    writeFileSync(badBr, 'not brotli at all');
    expect(await readError(badBr)).toMatch(`${badBr}: not a valid Brotli stream`);
    const cutBr = join(dir, 'cut.txt.br');
    writeFileSync(cutBr, brotliCompressSync(Buffer.from('some text '.repeat(1000))).subarray(0, 20));
    expect(await readError(cutBr)).toMatch(`${cutBr}: not a valid Brotli stream`);
  });

  test('the pieces of a long document tokenize as the document does', () => {
    const doc = 'Call me Ishmael. Some years ago, never mind how long precisely '.repeat(50);
    const s = new DocumentSplitter(100);
    const ps = [...s.push(doc.slice(0, 1234)), ...s.push(doc.slice(1234)), ...s.end()];
    expect(ps.length).toBeGreaterThan(20);
    expect(ps.map((p) => p.text).join('')).toBe(doc);
    expect(ps.flatMap((p) => encode(p.text))).toEqual(encode(doc));
  });
});
