// Building and running our CUDA kernels' source on the CPU (test/kernels/simt.h): the harnesses in
// this folder are compiled by the host's g++ and talk over stdin/stdout.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { itWhen } from '../helpers';

/** g++ with what simt.h needs (C++20 <barrier>, _Float16: GCC 12 on x86-64), tried on a tiny program. */
function compilerWorks(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'slm-cxx-'));
  try {
    const src = join(dir, 'probe.cc');
    writeFileSync(
      src,
      '#include <barrier>\nint main() { std::barrier<> b(1); b.arrive_and_wait(); _Float16 h = 1; return static_cast<int>(h) - 1; }\n',
    );
    execFileSync('g++', ['-std=c++20', '-pthread', '-o', join(dir, 'probe'), src], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const emulationWorks = compilerWorks();
export const itEmulated = itWhen(emulationWorks, 'no g++ with C++20 <barrier> and _Float16 (GCC 12+) to build the emulated kernels');

/**
 * A harness (test/kernels/NAME.cc) built once per test file: call build() in beforeAll and
 * remove() in afterAll; run(input) → its stdout, throwing with its stderr when it fails.
 */
export function emulatedHarness(name: string): { build(): void; remove(): void; run(input: string): string } {
  let dir = '';
  let binary = '';
  return {
    build() {
      if (!emulationWorks) return;
      dir = mkdtempSync(join(tmpdir(), 'slm-kernels-'));
      binary = join(dir, name);
      execFileSync('g++', ['-std=c++20', '-O1', '-pthread', '-Wall', '-Wno-unknown-pragmas', '-o', binary, join(__dirname, `${name}.cc`)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    },
    remove() {
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    },
    run(input: string): string {
      const r = spawnSync(binary, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
      if (r.status !== 0) throw new Error(`emulated kernels failed (${r.status}): ${r.stderr}`);
      return r.stdout;
    },
  };
}

/** Numbers as the harnesses read them (strtof: inf, -inf, nan). */
export function formatValues(values: number[]): string {
  return values.map((v) => (Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : String(v))).join(' ');
}

/** The harnesses' "name v v …" lines (printf's inf, -inf, nan) by name. */
export function parseLines(stdout: string): Record<string, number[]> {
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => {
        const [name, ...values] = l.split(' ');
        return [name, values.map((v) => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v)))];
      }),
  );
}
