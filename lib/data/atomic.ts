// Atomic file writes: readers see either the old file or the complete new one, never a partial
// write, even when the process dies mid-write or two processes write the same path at once.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** Writes the chunks, in order, to a temporary file beside `path`, flushes it, then renames it over `path`. */
export function writeFileAtomic(path: string, chunks: readonly ArrayBufferView[]): void {
  // a unique name per writer, in the same directory so that rename() stays on one file system
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    for (const chunk of chunks) {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}
