// Helpers for tests of the document readers.
import type { DocumentPiece } from '../../lib/data/documents';

/** Every piece a reader gives. */
export async function collect(gen: AsyncGenerator<DocumentPiece>): Promise<DocumentPiece[]> {
  const out: DocumentPiece[] = [];
  for await (const p of gen) out.push(p);
  return out;
}

/** The documents that pieces make up (each ends with an `eot` piece). */
export function documentsOf(ps: DocumentPiece[]): string[] {
  const docs: string[] = [];
  let current = '';
  for (const p of ps) {
    current += p.text;
    if (p.eot) [docs[docs.length], current] = [current, ''];
  }
  expect(current).toBe(''); // (no text after the last document)
  return docs;
}
