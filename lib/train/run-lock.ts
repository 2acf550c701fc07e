// One training process per run directory. Two runs writing one directory interleave their records
// in metrics.jsonl and overwrite each other's checkpoint, with no error from either; the lock file
// makes the second one stop before it writes anything.
//
// The lock is <run>/.staged-lm.lock, created exclusively, holding the owner's pid, host and the
// directory it locks. It is stale (taken over) when its process has ended on this host, or when it
// names another directory (a copy of a run directory, lock and all); a lock from another host is
// left alone, and the error says which file to remove once that run is gone.
import { existsSync, linkSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { makeDirectory, processAlive } from '../data/atomic';

export const LOCK_FILE = '.staged-lm.lock';

interface LockRecord {
  pid: number;
  host: string;
  dir: string;
  started: string;
}

/** Locks this process holds (a lock naming our own pid but absent here is a dead process's: pid reuse). */
const held = new Set<string>();

function readLock(path: string): LockRecord | null {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockRecord> | null;
    if (r === null || typeof r !== 'object' || typeof r.pid !== 'number' || typeof r.host !== 'string') return null;
    return { pid: r.pid, host: r.host, dir: String(r.dir ?? ''), started: String(r.started ?? '') };
  } catch {
    return null; // (being written, or unreadable: treated as stale below only if it stays so)
  }
}

/**
 * When process `pid` started (ms since the epoch), from /proc (Linux); null where unknown. A pid
 * that started after a lock was written is another process that reuses a dead owner's number.
 */
function processStart(pid: number): number | null {
  try {
    const boot = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // (after the command's name)
    const ticks = Number(fields[19]); // field 22, starttime: clock ticks after boot (USER_HZ, 100)
    return boot === null || !Number.isFinite(ticks) ? null : Number(boot[1]) * 1000 + ticks * 10;
  } catch {
    return null;
  }
}

/** Why `lock` keeps this process out of `dir`, or null when it is stale. */
function liveOwner(lock: LockRecord, dir: string, path: string): string | null {
  if (lock.dir !== '' && lock.dir !== dir) return null; // copied along with its run directory
  const since = lock.started === '' ? '' : ` since ${lock.started}`;
  if (lock.host !== hostname())
    return `another staged-lm process (pid ${lock.pid} on host ${lock.host}${since}) trains in ${dir}: wait for it, or remove ${path} if that run is gone`;
  if (lock.pid === process.pid) return held.has(path) ? `this process already trains in ${dir}` : null;
  if (!processAlive(lock.pid)) return null;
  // (a second's slack: btime and the tick count are coarse)
  const started = processStart(lock.pid);
  const written = Date.parse(lock.started);
  if (started !== null && Number.isFinite(written) && started > written + 1000) return null; // pid reused
  return `another staged-lm process (pid ${lock.pid}${since}) trains in ${dir}: wait for it to end, or choose another --out (if no such run is going on, remove ${path})`;
}

/** Why `out` cannot be trained in now (a live process holds its lock), or null; nothing is written. */
export function runDirectoryOwner(out: string): string | null {
  let dir: string;
  try {
    dir = realpathSync(out);
  } catch {
    return null; // (no directory: nobody trains there)
  }
  const path = join(dir, LOCK_FILE);
  const lock = readLock(path);
  return lock === null ? null : liveOwner(lock, dir, path);
}

/**
 * Takes the lock of run directory `out` (created if missing) for this process; throws, naming the
 * owner, when a live process holds it. Returns the release function.
 */
export function lockRunDirectory(out: string): () => void {
  const created = !existsSync(out);
  makeDirectory(out);
  const dir = realpathSync(out);
  const path = join(dir, LOCK_FILE);
  const record: LockRecord = { pid: process.pid, host: hostname(), dir, started: new Date().toISOString() };
  // the record is written to a file of our own, then linked into place: the lock appears whole
  // or not at all (an empty one, being written, would look stale to a second process)
  const mine = `${path}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(mine, JSON.stringify(record) + '\n');
  try {
    return takeLock(mine, path, dir, record, created);
  } finally {
    rmSync(mine, { force: true });
  }
}

/** Puts `mine` at `path`, failing with EEXIST when one is there: a hard link, or (where the file system has none) an exclusive write. */
function create(mine: string, path: string): void {
  try {
    linkSync(mine, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || !['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code ?? '')) throw e;
    writeFileSync(path, readFileSync(mine), { flag: 'wx' });
  }
}

function takeLock(mine: string, path: string, dir: string, record: LockRecord, created: boolean): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      create(mine, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const lock = readLock(path);
      if (lock !== null) {
        const owner = liveOwner(lock, dir, path);
        if (owner !== null) throw new Error(owner);
      } else if (attempt === 0) {
        // an unreadable lock may be one being written this instant: look again once
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        continue;
      }
      // stale: moved aside under a name of its own, then looked at again — what was moved may be
      // the live lock of a process that took the stale one over meanwhile: then it goes back
      const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        renameSync(path, aside);
      } catch {
        continue; // (another process moved it first)
      }
      const moved = readLock(aside);
      if (moved !== null && liveOwner(moved, dir, path) !== null) renameSync(aside, path);
      else rmSync(aside, { force: true });
      continue;
    }
    held.add(path);
    return () => {
      held.delete(path);
      // only our own lock is removed (never one a later process took over)
      const now = readLock(path);
      if (now !== null && now.pid === record.pid && now.started === record.started && now.host === record.host)
        rmSync(path, { force: true });
      // a run refused before it wrote anything leaves no directory behind
      if (created)
        try {
          rmdirSync(dir); // (fails, and keeps it, when not empty)
        } catch {
          // (kept)
        }
    };
  }
  throw new Error(`could not take the lock ${path} (other processes keep taking it): try again`);
}
