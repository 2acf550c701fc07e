// Reading an input file's bytes, decompressed by its name: Brotli (`.br`, the shared Gutenberg
// shards) or gzip (`.gz`, as most published corpora: C4's and Dolma's JSON lines), a chunk at a time
// or whole. Errors name the file.
import { createReadStream, readFileSync } from 'node:fs';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync } from 'node:zlib';

export type Compression = 'brotli' | 'gzip' | null;

const UNSUPPORTED: Record<string, string> = { '.zst': 'Zstandard', '.xz': 'xz', '.bz2': 'bzip2', '.zip': 'zip', '.7z': '7-Zip' };

/** The compression a file's name says it has; a compression this reader lacks is refused by name. */
export function compressionOf(file: string): Compression {
  const name = file.toLowerCase();
  if (name.endsWith('.br')) return 'brotli';
  if (name.endsWith('.gz')) return 'gzip';
  const other = Object.keys(UNSUPPORTED).find((ext) => name.endsWith(ext));
  if (other !== undefined)
    throw new Error(
      `${file}: ${UNSUPPORTED[other]}-compressed (${other}), which is not read here: decompress it, or recompress it with gzip or Brotli`,
    );
  return null;
}

/** The file's name without its compression suffix (what says the format of its contents). */
export function withoutCompression(file: string): string {
  return compressionOf(file) === null ? file : file.slice(0, -3); // (.br and .gz: three characters)
}

const STREAM_NAME = { brotli: 'Brotli', gzip: 'gzip' } as const;

/** A file's bytes, decompressed by its name, a chunk at a time; `read`: the file's bytes read for it. */
export async function* byteChunks(file: string, chunkBytes: number): AsyncGenerator<{ bytes: Uint8Array; read: number }> {
  const source = createReadStream(file, { highWaterMark: chunkBytes });
  let ioError: unknown;
  source.on('error', (e) => (ioError = e));
  const compression = compressionOf(file);
  const chunkSize = Math.max(64, chunkBytes);
  const stream =
    compression === 'brotli'
      ? source.pipe(createBrotliDecompress({ chunkSize }))
      : compression === 'gzip'
        ? source.pipe(createGunzip({ chunkSize }))
        : source;
  if (compression !== null) source.on('error', (e) => stream.destroy(e)); // (pipe() does not pass errors on)
  let counted = 0;
  try {
    for await (const bytes of stream as AsyncIterable<Buffer>) {
      // counted before the yield: the stream reads on while the consumer holds the chunk
      const read = source.bytesRead - counted;
      counted = source.bytesRead;
      yield { bytes, read };
    }
  } catch (e) {
    if (compression === null || e === ioError) throw readError(file, e);
    throw new Error(`${file}: not a valid ${STREAM_NAME[compression]} stream (${e instanceof Error ? e.message : String(e)})`);
  } finally {
    source.destroy();
    stream.destroy();
  }
}

/** A file's bytes, decompressed by its name, whole. */
export function readBytes(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw readError(file, e);
  }
  const compression = compressionOf(file);
  if (compression === null) return bytes;
  try {
    return compression === 'brotli' ? brotliDecompressSync(bytes) : gunzipSync(bytes);
  } catch (e) {
    throw new Error(`${file}: not a valid ${STREAM_NAME[compression]} stream (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** An I/O error reading an input, as an Error that names the file. */
export function readError(file: string, e: unknown): Error {
  const code = (e as { code?: string }).code;
  const what =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EISDIR'
        ? 'is a directory, not a text file (give the files in it)'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : `cannot read it (${e instanceof Error ? e.message : String(e)})`;
  return new Error(`${file}: ${what}`);
}
