// One training process per run directory: the lock refuses a live owner by name, takes over a
// dead one's (or a copied directory's) lock, and the trainer refuses a second run into a directory
// another one is training in before it writes anything.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE, lockRunDirectory } from '../../lib/train/run-lock';
import { Trainer } from '../../lib/train/trainer';

let dir: string;
beforeEach(() => (dir = realpathSync(mkdtempSync(join(tmpdir(), 'slm-lock-')))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const writeLock = (run: string, record: object) => {
  mkdirSync(run, { recursive: true });
  writeFileSync(join(run, LOCK_FILE), JSON.stringify(record));
};

describe('lockRunDirectory', () => {
  it('refuses a second holder while the first holds it, and is free again once released', () => {
    const run = join(dir, 'run');
    const release = lockRunDirectory(run);
    expect(() => lockRunDirectory(run)).toThrow(`this process already trains in ${run}`);
    release();
    expect(existsSync(join(run, LOCK_FILE))).toBe(false);
    lockRunDirectory(run)();
  });

  it("takes over the lock of a process that has ended, one naming another directory (a copy's), and our own pid's from before (pid reuse)", () => {
    const run = join(dir, 'run');
    for (const stale of [
      { pid: deadPid(), host: hostname(), dir: run },
      { pid: process.pid, host: hostname(), dir: join(dir, 'original') },
      { pid: process.pid, host: hostname(), dir: run },
    ]) {
      writeLock(run, stale);
      const release = lockRunDirectory(run);
      expect(JSON.parse(readFileSync(join(run, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, dir: run });
      release();
    }
  });

  it("refuses a live process's lock (naming the file to remove if no run is going on), and takes over one whose pid a later process reuses", () => {
    const run = join(dir, 'run');
    const parent = process.ppid; // (alive, and started before this test wrote anything)
    writeLock(run, { pid: parent, host: hostname(), dir: run, started: new Date().toISOString() });
    expect(() => lockRunDirectory(run)).toThrow(
      new RegExp(
        `another staged-lm process \\(pid ${parent} since .*\\) trains in ${run}: wait for it to end, or choose another --out \\(if no such run is going on, remove ${join(run, LOCK_FILE)}\\)`,
      ),
    );
    // the same pid in a lock written long before that process started: a dead owner's number, reused
    writeLock(run, { pid: parent, host: hostname(), dir: run, started: '2001-01-01T00:00:00.000Z' });
    lockRunDirectory(run)();
  });

  it("leaves another host's lock alone and says which file to remove", () => {
    const run = join(dir, 'run');
    writeLock(run, { pid: 1, host: 'node-7', dir: run, started: '2026-11-29T10:00:00.000Z' });
    expect(() => lockRunDirectory(run)).toThrow(
      `another staged-lm process (pid 1 on host node-7 since 2026-11-29T10:00:00.000Z) trains in ${run}: wait for it, or remove ${join(run, LOCK_FILE)} if that run is gone`,
    );
  });
});

describe('the trainer', () => {
  const small = {
    model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 16 },
    batchSize: 2,
    seqLen: 16,
    steps: 400,
    eval: { interval: 0 },
    logInterval: 1,
  };

  it('refuses a second run into a directory a run is training in, and leaves that run alone', async () => {
    const out = join(dir, 'run');
    const first = Trainer.create(small);
    const second = Trainer.create({ ...small, seed: 2 });
    const controller = new AbortController();
    const running = first.train({ out, progress: false, signal: controller.signal });
    await expect(second.train({ out, progress: false })).rejects.toThrow(/this process already trains in /);
    controller.abort();
    const r = await running;
    expect(r.interrupted).toBe(true);
    // the first run's log only: steps 1, 2, … once each
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; event?: string })
      .filter((m) => m.event === undefined)
      .map((m) => m.step);
    expect(steps).toEqual(steps.map((_, i) => i + 1));
    expect(existsSync(join(out, LOCK_FILE))).toBe(false); // released at the end
    // free again: the second one trains there now
    const again = await second.train({ out: join(dir, 'other'), progress: false, steps: 2 });
    expect(again.step).toBe(2);
    first.dispose();
    second.dispose();
  });
});
