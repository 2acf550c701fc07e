// makeDirectory: `mkdir -p` that fails at once with the reason. Node's recursive mkdir looped for
// ever (deaf to SIGTERM) on `prepare --out /proc/foo`, and said ENOENT for a read-only parent.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDirectory } from '../../lib/data/atomic';
import { itWhen } from '../helpers';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-mkdir-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('makeDirectory', () => {
  it('makes every missing level, and is a no-op where the directory exists', () => {
    const deep = join(dir, 'a', 'b', 'c');
    makeDirectory(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    makeDirectory(deep);
    makeDirectory(`${deep}/`);
    expect(statSync(deep).isDirectory()).toBe(true);
  });

  it('follows a symlink before a `..`, as the kernel (and mkdir -p) do', () => {
    mkdirSync(join(dir, 'elsewhere', 'deep'), { recursive: true });
    symlinkSync(join(dir, 'elsewhere', 'deep'), join(dir, 'link'));
    makeDirectory(`${dir}/link/../made`); // (not join(): it collapses link/.. as text)
    expect(statSync(join(dir, 'elsewhere', 'made')).isDirectory()).toBe(true);
    expect(existsSync(join(dir, 'made'))).toBe(false);
    // a dangling symlink in the way stays an error
    symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
    expect(() => makeDirectory(join(dir, 'dangling'))).toThrow(/EEXIST/);
  });

  it('refuses a file in the way, as mkdir does', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    expect(() => makeDirectory(file)).toThrow(/EEXIST: file already exists, mkdir '.*f'/);
    expect(() => makeDirectory(join(file, 'sub', 'x'))).toThrow(/ENOTDIR: not a directory, mkdir '.*f\/sub'/);
    expect(existsSync(join(dir, 'f'))).toBe(true);
  });

  // (Linux's /proc refuses new entries with ENOENT; run in a child so that a regression fails by
  // its timeout rather than hanging the suite)
  itWhen(existsSync('/proc/self'), 'no /proc here')('fails at once where a child of an existing directory cannot be made (/proc)', () => {
    // (the built module, as the CLI runs it)
    const atomic = join(__dirname, '..', '..', 'dist', 'lib', 'data', 'atomic.js');
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(atomic)}).makeDirectory('/proc/staged-lm-test/x')`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/ENOENT: no such file or directory, mkdir '\/proc\/staged-lm-test'/);
  });
});
