// Atomic file writes: readers see either the old file or the complete new one, never a partial
// write, even when the process dies mid-write or two processes write the same path at once. The
// data is flushed before the rename and the directory after it, so that a machine that loses power
// (or a node that crashes) keeps the old file or the new one, not an empty one.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';

/**
 * `mkdir -p`, one level at a time. Node's recursive mkdir says ENOENT ("no such file or
 * directory") where a parent is read-only (not EROFS), and loops for ever, deaf to signals, where
 * making a child of an existing parent fails with ENOENT (`/proc/x`); made alone, each level
 * fails at once with its own reason. A file in the way is an error (EEXIST or ENOTDIR).
 */
export function makeDirectory(path: string): void {
  // (the path as given, level by level: the kernel resolves each `..` after any symlink before
  // it, as mkdir -p does; resolve() would collapse `link/..` as text)
  const missing: string[] = [];
  for (let p = path; !existsSync(p); p = dirname(p)) {
    missing.push(p);
    if (dirname(p) === p) break;
  }
  if (missing.length === 0 && !isDirectory(path)) mkdirSync(path); // (throws EEXIST, naming it)
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p);
    } catch (e) {
      // (another process made it meanwhile; a dangling symlink is EEXIST too, and stays an error)
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !isDirectory(p)) throw e;
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Whether the process `pid` (the writer named in a temporary file's or directory's name) still
 * runs on this machine, so that what it left is not yet abandoned. Someone else's process (EPERM)
 * counts as running: its files are left alone.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0); // (signal 0: only asks whether the process exists)
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes what writers that have ended left in `dir`: the entries whose name `pattern` matches with
 * the writer's pid as its first group. `ownPidEnded`: an entry with this process's pid is an earlier
 * process's (one that writes and removes its own synchronously, never while it cleans up).
 */
export function removeAbandoned(dir: string, pattern: RegExp, opts: { ownPidEnded?: boolean } = {}): void {
  for (const name of readdirSync(dir)) {
    const m = pattern.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if ((opts.ownPidEnded === true && pid === process.pid) || !processAlive(pid)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** Writes the chunks to `path` (created or replaced in place) and flushes them to the disk. */
export function writeFileDurable(path: string, chunks: readonly ArrayBufferView[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of chunks) {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Flushes a directory's entries (a rename into it, a new file) to the disk. Where a directory
 * cannot be opened for that (some file systems, Windows), this does nothing: it is durability on
 * power loss, not correctness while running.
 */
export function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // (EINVAL/EISDIR on file systems that do not sync directories)
  } finally {
    closeSync(fd);
  }
}

/** Writes the chunks, in order, to a temporary file beside `path`, flushes it, then renames it over `path`. */
export function writeFileAtomic(path: string, chunks: readonly ArrayBufferView[]): void {
  // a unique name per writer, in the same directory so that rename() stays on one file system
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileDurable(tmp, chunks);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirectory(dirname(path));
}
