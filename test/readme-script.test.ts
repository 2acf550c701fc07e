// The README's scripted run (the TypeScript block under "Training") as a user copies it: it
// typechecks against the package's entry point under strict settings, and it runs (shortened:
// fewer steps, a temporary run directory) with the built package, growing once.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(__dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const opening = "import { Trainer, type RunConfigInput } from 'staged-lm';";
const block = /```ts\n([\s\S]*?)```/g;
const script = [...readme.matchAll(block)].map((m) => m[1]).find((code) => code.startsWith(opening));

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-readme-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the README's scripted run", () => {
  it('is there', () => {
    expect(script).toBeDefined();
  });

  it('typechecks under strict settings against the entry point', () => {
    const file = join(dir, 'script.ts');
    writeFileSync(file, script!);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ES2022,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      baseUrl: root,
      paths: { 'staged-lm': ['lib/index.ts'] },
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
      skipLibCheck: true,
      esModuleInterop: true,
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === file)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  }, 120_000);

  it('runs, grows once and writes its run directory (shortened)', () => {
    const out = join(dir, 'run');
    const shorter: [string, string][] = [
      ['steps: 200', 'steps: 8'],
      ['{ steps: 100 }', '{ steps: 4 }'],
      ['interval: 50', 'interval: 4'],
      ["'runs/scripted'", JSON.stringify(out)],
    ];
    // (each must be there: a README edit that drops one would otherwise run the script at full length)
    for (const [from] of shorter) expect(script).toContain(from);
    const short = shorter.reduce((s, [from, to]) => s.replace(from, to), script!).replace(/^\/\/ later:.*$/m, '');
    const js = ts
      .transpileModule(short, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } })
      .outputText.replace('require("staged-lm")', `require(${JSON.stringify(join(root, 'dist', 'lib', 'index.js'))})`);
    const file = join(dir, 'script.js');
    // (CommonJS has no top-level await: the script runs in an async function)
    writeFileSync(file, `(async () => {\n${js}\n})().catch((e) => { console.error(e); process.exit(1); });\n`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    // (the function is kept: equal losses up to float32 rounding, spec/growth.md's 1e-4)
    const [, before, after] = /^grew width at step 4: loss (\S+) → (\S+)$/m.exec(r.stdout) ?? [];
    expect(Math.abs(Number(before) - Number(after))).toBeLessThan(1e-4);
    expect(r.stdout).toMatch(/^step 8: val loss \d/m);
    expect(existsSync(join(out, 'checkpoint', 'state.json'))).toBe(true);
  });
});
