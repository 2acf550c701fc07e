// The built command line (dist/lib/cli/main.js) as a user runs it, in child processes: --help of
// every command, usage errors without stack traces, --json output of every command (one JSON line on
// stdout), train → eval → sample → resume on a very small model, Ctrl-C during training, bad inputs.
// Needs `npx tsc -p tsconfig.build.json` after changes to lib/ (npm test's set-up does it).
import { spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { profilerAvailable } from '../../lib/profile';

const CLI = resolve(__dirname, '../../dist/lib/cli/main.js');
/** Per process: generous, for a loaded machine (a run here takes one to three seconds). */
const TIMEOUT_MS = 60000;

interface Run {
  /** Exit status; null when killed by a signal or when the process did not start or timed out. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  args: string[];
}

/** Starts the CLI; `done` never rejects (a spawn error or a timeout reads as code null, in stderr). */
function start(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): { child: ChildProcess; done: Promise<Run> } {
  // one libtorch thread per process: jest runs two workers on two cores
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? dir,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<Run>((res) => {
    const timer = setTimeout(() => {
      stderr += `\n[test] timed out after ${opts.timeoutMs ?? TIMEOUT_MS} ms: staged-lm ${args.join(' ')}`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      res({ code: null, signal: null, stdout, stderr: stderr + `\n[test] spawn failed: ${e.message}`, args });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, args });
    });
  });
  return { child, done };
}

// At most this many CLI processes at once (each loads libtorch, about a second of CPU): on two
// busy cores, more only stretch every process's wall time towards its timeout.
const MAX_CONCURRENT = 4;
let running = 0;
const waiting: (() => void)[] = [];

/** Runs the CLI to completion, queued behind MAX_CONCURRENT others. */
async function cli(args: string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<Run> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((r) => waiting.push(r));
  else running++;
  try {
    return await start(args, opts).done;
  } finally {
    const next = waiting.shift(); // hand the slot over
    if (next) next();
    else running--;
  }
}

/** The one JSON object a --json command prints: exit 0 and exactly one line on stdout. */
function jsonOf(r: Run): Record<string, unknown> {
  if (r.code !== 0) throw new Error(`exit ${r.code ?? r.signal}; stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
  return jsonLine(r.stdout);
}

/** stdout that is exactly one JSON object and its newline. */
function jsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n');
  expect(lines).toHaveLength(2); // one line and its newline
  expect(lines[1]).toBe('');
  const obj: unknown = JSON.parse(lines[0]);
  expect(typeof obj === 'object' && obj !== null && !Array.isArray(obj)).toBe(true);
  return obj as Record<string, unknown>;
}

/** A failure the user can act on: non-zero status, a message naming `mention`, no stack trace. */
function expectCleanFailure(r: Run, mention: string | RegExp): void {
  expect(r.signal).toBeNull();
  expect(r.code).not.toBeNull();
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(typeof mention === 'string' ? new RegExp(mention.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : mention);
  expect(r.stderr).not.toMatch(/^\s+at\s/m); // a stack frame
  expect(r.stderr).not.toMatch(/\b(Type|Range|Reference|Syntax)?Error: /); // an uncaught error's header
  const own = r.args.includes('--') ? r.args.slice(0, r.args.indexOf('--')) : r.args;
  if (own.includes('--json') && (own[0] !== 'launch' || r.args.includes('--'))) {
    // --json: the error's one object on stdout, with stderr's message and the exit status
    const { error } = jsonLine(r.stdout) as { error: { message: string; exitCode: number } };
    expect(error.exitCode).toBe(r.code);
    expect(error.message).toMatch(typeof mention === 'string' ? new RegExp(mention.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : mention);
  } else expect(r.stdout).toBe('');
}

function metricsLines(runDir: string): Record<string, unknown>[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function expectCheckpoint(ckDir: string): { step: number } {
  for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'state.json']) {
    expect(existsSync(join(ckDir, f))).toBe(true);
    expect(statSync(join(ckDir, f)).size).toBeGreaterThan(0);
  }
  const state = JSON.parse(readFileSync(join(ckDir, 'state.json'), 'utf8')) as { step: number };
  expect(Number.isInteger(state.step)).toBe(true);
  return state;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
const smallRun = {
  model: { nLayer: 1, nHead: 2, nEmbd: 32, contextLength: 32 },
  batchSize: 2,
  seqLen: 32,
  steps: 4,
  eval: { interval: 0 },
};
const EVAL_TEXT =
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing ' +
  'particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.\n';

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it with npx tsc -p tsconfig.build.json`);
  dir = mkdtempSync(join(tmpdir(), 'staged-lm-cli-'));
  writeFileSync(join(dir, 'run.json'), JSON.stringify(smallRun));
  writeFileSync(join(dir, 'long.json'), JSON.stringify({ ...smallRun, steps: 2000 }));
  writeFileSync(join(dir, 'bad.json'), '{"model": {"nLayer": 1,');
  writeFileSync(join(dir, 'zero-batch.json'), JSON.stringify({ ...smallRun, batchSize: 0 }));
  writeFileSync(join(dir, 'eval.txt'), EVAL_TEXT.repeat(3));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--help and usage errors', () => {
  const OPTIONS: Record<string, string[]> = {
    train: [
      '--config',
      '--preset',
      '--init-from',
      '--steps',
      '--end-at',
      '--seed',
      '--batch-size',
      '--seq-len',
      '--device',
      '--out',
      '--resume',
      '--loss-kernel',
      '--norm-kernel',
      '--tf32',
      '--no-tf32',
      '--profile',
      '--profile-steps',
      '--profile-after',
      '--no-progress',
      '--json',
    ],
    eval: [
      '--checkpoint',
      '--data',
      '--batch-size',
      '--seq-len',
      '--stride',
      '--max-batches',
      '--no-tail',
      '--format',
      '--text-field',
      '--device',
      '--json',
    ],
    sample: [
      '--checkpoint',
      '--prompt',
      '--prompt-file',
      '--tokens',
      '--samples',
      '--temperature',
      '--top-k',
      '--top-p',
      '--seed',
      '--context',
      '--device',
      '--json',
    ],
    prepare: ['--text', '--format', '--text-field', '--out', '--shard-tokens', '--val-tokens', '--workers', '--json'],
    bench: [
      '--model',
      '--device',
      '--batch',
      '--seq',
      '--steps',
      '--warmup',
      '--peak-tflops',
      '--loss-kernel',
      '--norm-kernel',
      '--count-ops',
      '--profile',
      '--json',
    ],
    doctor: ['--json'],
    demo: ['--steps', '--out', '--prompt'],
    launch: ['-n, --nproc', '--master-port', '--grace', '--no-tag', '--json'],
  };
  const BAD: [string, string[], string | RegExp][] = [
    ['an unknown command', ['frobnicate'], "unknown command 'frobnicate'"],
    ['an unknown option', ['train', '--bogus'], "unknown option '--bogus'"],
    ['train --steps -3', ['train', '--steps', '-3'], /--steps.*-3/],
    ['train --steps 1.5', ['train', '--steps', '1.5'], /--steps.*1\.5/],
    // with --json, also the error's object on stdout (expectCleanFailure checks it)
    ['train --steps 1.5 --json', ['train', '--json', '--steps', '1.5'], /--steps.*1\.5/],
    ['eval --json without --checkpoint', ['eval', '--data', 'x.txt', '--json'], '--checkpoint'],
    ['bench --device tpu', ['bench', '--device', 'tpu'], /--device.*tpu/],
    [
      'train --profile-steps without --profile',
      ['train', '--preset', 'tiny', '--profile-steps', '2'],
      /--profile-steps and --profile-after go with --profile FILE/,
    ],
    ['train --norm-kernel triton', ['train', '--norm-kernel', 'triton'], /--norm-kernel.*triton.*Allowed choices are aten, fused/],
    [
      'train --loss-kernel fused on the CPU',
      ['train', '--preset', 'tiny', '--steps', '1', '--loss-kernel', 'fused'],
      /kernels\.loss: 'fused' runs on CUDA only/,
    ],
    ['sample --temperature -1', ['sample', '--checkpoint', 'x', '--temperature', '-1'], /--temperature.*-1/],
    ['sample --top-p 0', ['sample', '--checkpoint', 'x', '--top-p', '0'], /--top-p must be in \(0, 1\] \(got '0'\)/],
    ['sample --samples 0', ['sample', '--checkpoint', 'x', '--samples', '0'], /--samples must be a positive integer/],
    ['prepare --workers 0', ['prepare', '--text', 'a.txt', '--out', 'o', '--workers', '0'], /--workers.*0/],
    ['eval without --checkpoint', ['eval', '--data', 'x.txt'], '--checkpoint'],
    ['launch -n 0', ['launch', '-n', '0', '--', 'staged-lm', 'doctor'], /--nproc.*0/],
    ['launch -n 0 --json', ['launch', '-n', '0', '--json', '--', 'staged-lm', 'doctor', '--json'], /--nproc.*0/],
    ['launch without a command', ['launch', '-n', '2'], /missing required argument 'command'/],
    // the tiny sizes keep the run short should the check ever regress
    [
      'bench --peak-tflops abc',
      ['bench', '--model', 'tiny', '--batch', '1', '--seq', '8', '--steps', '1', '--warmup', '0', '--peak-tflops', 'abc'],
      /--peak-tflops.*abc/,
    ],
  ];
  // all of these start at once: each is a second of loading libtorch, not of work
  const runs = new Map<string, Promise<Run>>();
  beforeAll(() => {
    runs.set('', cli(['--help']));
    for (const cmd of Object.keys(OPTIONS)) runs.set(cmd, cli([cmd, '--help']));
    for (const [name, args] of BAD) runs.set(name, cli(args));
  });

  it('the top-level --help lists every command', async () => {
    const r = await runs.get('')!;
    expect(r.code).toBe(0);
    for (const cmd of Object.keys(OPTIONS)) expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
  });

  it.each(Object.keys(OPTIONS))('%s --help exits 0 and lists its options', async (cmd) => {
    const r = await runs.get(cmd)!;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: staged-lm ${cmd} [options]`);
    for (const opt of OPTIONS[cmd]) expect(r.stdout).toMatch(new RegExp(`^\\s+${opt}\\b`, 'm'));
  });

  it.each(BAD.map(([name, , mention]) => [name, mention] as const))('%s: non-zero exit, a message naming it', async (name, mention) => {
    expectCleanFailure(await runs.get(name)!, mention);
  });
});

describe('--json output and a small run: train → eval, sample → resume', () => {
  it('doctor --json: libtorch and CUDA facts', async () => {
    const r = jsonOf(await cli(['doctor', '--json']));
    expect(r.stagedLm).toMatch(/^\d+\.\d+\.\d+/);
    expect((r.libtorch as { version: string }).version).toMatch(/^\d+\.\d+/);
    expect(typeof (r.cuda as { available: boolean }).available).toBe('boolean');
    expect(r.cpuThreads).toBeGreaterThanOrEqual(1);
    expect(r.cpuAllocator).toBe(process.env.STAGED_LM_DEFAULT_MALLOC === undefined ? 'block-cache' : 'malloc');
    expect(r.profiler).toBe(profilerAvailable());
  });

  it('bench --json on the CPU: tokens_per_s and ms_per_step', async () => {
    const r = jsonOf(await cli(['bench', '--model', 'tiny', '--batch', '1', '--seq', '16', '--steps', '2', '--warmup', '1', '--json']));
    expect(r).toMatchObject({ impl: 'staged-lm', device: 'cpu', model: 'tiny', batch: 1, seq: 16 });
    for (const k of ['tokens_per_s', 'ms_per_step', 'final_loss']) {
      expect(typeof r[k]).toBe('number');
      expect(Number.isFinite(r[k])).toBe(true);
      expect(r[k] as number).toBeGreaterThan(0);
    }
    expect(r.activation_checkpointing).toBe(false);
    // the same steps with the blocks recomputed in the backward: the same loss
    const a = jsonOf(
      await cli(['bench', '--model', 'tiny', '--batch', '1', '--seq', '16', '--steps', '2', '--warmup', '1', '--activation-checkpointing']),
    );
    expect(a).toMatchObject({ activation_checkpointing: true, final_loss: r.final_loss });
  });

  it('bench --model micro --vocab --threads: the shapes of the reference script (its parameter count), the libtorch version', async () => {
    const r = jsonOf(
      await cli([
        'bench',
        '--model',
        'micro',
        '--vocab',
        '64',
        '--threads',
        '1',
        '--batch',
        '1',
        '--seq',
        '8',
        '--steps',
        '2',
        '--warmup',
        '1',
      ]),
    );
    // torch_reference.py's GPT(L=4, d=32, vocab 64, positions = seq 8): V·d + T·d + L(12d² + 13d) + 2d
    const [L, d, V, T] = [4, 32, 64, 8];
    expect(r).toMatchObject({ impl: 'staged-lm', model: 'micro', params: V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d });
    expect(r.torch).toMatch(/^\d+\.\d+/);
  });

  it('train --config --out --json --no-progress: 4 steps, a checkpoint, 4 metrics lines', async () => {
    const r = await cli(['train', '--config', 'run.json', '--out', 'run', '--json', '--no-progress']);
    const out = jsonOf(r);
    expect(r.stderr).toBe(''); // --no-progress
    expect(out).toMatchObject({ step: 4, tokens: 4 * 2 * 32, interrupted: false, valLoss: null });
    expect(Number.isFinite(out.finalLoss)).toBe(true);
    expect(resolve(dir, out.checkpoint as string)).toBe(join(dir, 'run', 'checkpoint'));
    expect(expectCheckpoint(join(dir, 'run', 'checkpoint')).step).toBe(4);
    expect(metricsLines(join(dir, 'run')).map((m) => m.step)).toEqual([1, 2, 3, 4]);
  });

  it('train --activation-checkpointing: the same losses as the plain run; --resume may switch it off', async () => {
    const r = jsonOf(
      await cli(['train', '--config', 'run.json', '--out', 'recomputed', '--activation-checkpointing', '--json', '--no-progress']),
    );
    expect(r).toMatchObject({ step: 4 });
    const losses = (run: string) => metricsLines(join(dir, run)).map((m) => (m as { loss?: number }).loss);
    expect(losses('recomputed')).toEqual(losses('run').slice(0, 4));
    const state = () =>
      expectCheckpoint(join(dir, 'recomputed', 'checkpoint')) as unknown as { extra: { run: { activationCheckpointing: boolean } } };
    expect(state().extra.run.activationCheckpointing).toBe(true);
    jsonOf(await cli(['train', '--resume', 'recomputed', '--steps', '5', '--no-activation-checkpointing', '--json', '--no-progress']));
    expect(state().extra.run.activationCheckpointing).toBe(false);
  });

  it('train --no-progress still prints a growth and its notes (not the per-interval lines)', async () => {
    const r = await cli([
      'train',
      '--config',
      'run.json',
      '--set',
      'stages=[{"until":{"steps":2},"grow":{"op":"depth"}}]',
      '--out',
      'quiet-staged',
      '--json',
      '--no-progress',
    ]);
    expect(jsonOf(r)).toMatchObject({ step: 4, interrupted: false });
    expect(r.stderr).toMatch(/^step 2: grew depth → 2×32 \(stage 1\); val loss on 2 batches /m);
    expect(r.stderr).not.toMatch(/^step \d+\/\d+/m); // no progress lines
    expect(r.stderr).not.toMatch(/^staged-lm: tiny|on cpu, data/m); // nor the run's header
  });

  it('a stage whose end the run has already passed when it begins is noted: it trains no steps', async () => {
    // stage 0 ends at 128 tokens (step 2, 64 tokens a step); stage 1 at step 1, already passed
    const r = await cli([
      'train',
      '--config',
      'run.json',
      '--set',
      'stages=[{"until":{"tokens":128},"grow":{"op":"depth"}},{"until":{"steps":1},"grow":{"op":"depth"}}]',
      '--out',
      'passed',
      '--json',
      '--no-progress',
    ]);
    expect(jsonOf(r)).toMatchObject({ step: 4, interrupted: false });
    expect(r.stderr).toMatch(
      /^staged-lm: note: stages\[1\] ends at step 1, which the run has already passed \(the counters run over the whole run\): it trains no steps and grows at once$/m,
    );
    expect(r.stderr).toMatch(/^step 2: grew depth → 2×32 \(stage 1\)/m);
    expect(r.stderr).toMatch(/^step 2: grew depth → 4×32 \(stage 2\)/m);
  });

  it('train --set PATH=VALUE and --data change the run config; a bad one names the field or the file', async () => {
    const [ok, badValue, badData, onResume] = await Promise.all([
      cli([
        'train',
        '--config',
        'run.json',
        '--set',
        'model.nLayer=2',
        '--set',
        'lr={"peak":1e-3,"kind":"constant"}',
        '--set',
        'steps=2',
        '--data',
        'embedded',
        '--out',
        'set',
        '--no-progress',
      ]),
      cli(['train', '--config', 'run.json', '--set', 'lr.peak=fast', '--out', 'set2', '--no-progress']),
      cli(['train', '--config', 'run.json', '--data', 'no-such-tokens.bin', '--out', 'set3', '--no-progress']),
      cli(['train', '--resume', 'run', '--set', 'lr.peak=1e-3', '--steps', '9', '--no-progress']),
    ]);
    expect(ok.code).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'set', 'checkpoint', 'state.json'), 'utf8')) as {
      step: number;
      extra: { run: { model: { nLayer: number }; lr: { peak: number; kind: string }; data: string } };
    };
    expect(state.step).toBe(2);
    expect(state.extra.run).toMatchObject({ model: { nLayer: 2 }, lr: { peak: 1e-3, kind: 'constant' }, data: 'embedded' });
    expectCleanFailure(
      badValue,
      /invalid run config run\.json with its --set fields: lr\.peak: Invalid input: expected number, received string, or expected "kaplan"/,
    );
    expectCleanFailure(badData, /no-such-tokens\.bin/);
    expectCleanFailure(
      onResume,
      /--set lr\.peak=1e-3: --resume continues the saved run as it was configured; --set may change only its bookkeeping there \(logInterval, checkpointInterval, checkpointMinutes, snapshots, eval\.patience\)/,
    );
    expect(existsSync(join(dir, 'set2'))).toBe(false);
  });

  it('train --resume --set changes what the run logs and saves, and a bad value names the field', async () => {
    const [ok, bad] = await Promise.all([
      cli([
        'train',
        '--resume',
        'run',
        '--out',
        'booked',
        '--steps',
        '9',
        '--set',
        'logInterval=1',
        '--set',
        'checkpointInterval=2',
        '--no-progress',
      ]),
      cli(['train', '--resume', 'run', '--out', 'booked2', '--steps', '9', '--set', 'snapshots.best=true', '--no-progress']),
    ]);
    expect(ok.code).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'booked', 'checkpoint', 'state.json'), 'utf8')) as { extra: { run: unknown } };
    expect(state.extra.run).toMatchObject({ logInterval: 1, checkpointInterval: 2 });
    expect(metricsLines(join(dir, 'booked')).length).toBeGreaterThan(0);
    expectCleanFailure(bad, /snapshots\.best: the best snapshot is chosen at evaluations: it needs eval\.interval > 0/);
  });

  it('eval --json: loss, tokens, bits per byte, perplexity = exp(loss); sample: text (seeded), streamed, several side by side', async () => {
    const sample = (...more: string[]) =>
      cli(['sample', '--checkpoint', 'run/checkpoint', '--prompt', 'The whale', '--tokens', '8', '--seed', '3', ...more]);
    const [ev, s1, s2, s3] = await Promise.all([
      cli(['eval', '--checkpoint', join(dir, 'run', 'checkpoint'), '--data', join(dir, 'eval.txt'), '--json']),
      sample('--json'),
      sample(), // streamed as drawn
      sample('--samples', '3', '--top-p', '0.9', '--json'),
    ]);
    const e = jsonOf(ev);
    for (const k of ['loss', 'tokens', 'bitsPerByte', 'perplexity']) {
      expect(typeof e[k]).toBe('number');
      expect(Number.isFinite(e[k])).toBe(true);
      expect(e[k] as number).toBeGreaterThan(0);
    }
    expect(e.perplexity as number).toBeCloseTo(Math.exp(e.loss as number), 6);
    expect(e.perplexity as number).toBeLessThan(2 * 50304); // an untrained model is near uniform over the vocabulary
    expect(e.seqLen).toBe(32); // the checkpoint's context length
    expect(Number.isInteger(e.tokens)).toBe(true);

    const a = jsonOf(s1);
    expect(typeof a.text).toBe('string');
    expect(a.prompt).toBe('The whale');
    expect(a.tokens).toBeGreaterThanOrEqual(1);
    expect(a.tokens).toBeLessThanOrEqual(8);
    expect(a.samples).toEqual([{ text: a.text, tokens: a.tokens }]);
    expect(s2.code).toBe(0);
    expect(s2.stdout).toBe(`The whale${a.text}\n`);
    const several = jsonOf(s3).samples as { text: string; tokens: number }[];
    expect(several).toHaveLength(3);
    expect(new Set(several.map((x) => x.text)).size).toBeGreaterThan(1); // seeds 3, 4, 5
  });

  it('eval and sample read no further than a run trained (its seqLen, where shorter than the context), with a note', async () => {
    writeFileSync(join(dir, 'short-seq.json'), JSON.stringify({ ...smallRun, seqLen: 16, steps: 2 }));
    expect((await cli(['train', '--config', 'short-seq.json', '--out', 'short-seq', '--no-progress'])).code).toBe(0);
    const args = ['eval', '--checkpoint', 'short-seq', '--data', join(dir, 'eval.txt'), '--json'];
    const [byRun, whole, drawn, wide, tooWide] = await Promise.all([
      cli(args),
      cli([...args, '--seq-len', '32']),
      cli(['sample', '--checkpoint', 'short-seq', '--prompt', 'The whale', '--tokens', '20', '--json']),
      cli(['sample', '--checkpoint', 'short-seq', '--prompt', 'The whale', '--tokens', '20', '--context', '32', '--json']),
      cli(['sample', '--checkpoint', 'short-seq', '--prompt', 'The whale', '--context', '33']),
    ]);
    expect(jsonOf(byRun).seqLen).toBe(16);
    expect(byRun.stderr).toMatch(
      /note: windows of 16 tokens, the run's training --seq-len \(its context is 32, positions past 16 were never trained; --seq-len 32 reads them\)/,
    );
    expect(jsonOf(whole).seqLen).toBe(32);
    expect(whole.stderr).toBe('');
    expect(drawn.stderr).toMatch(/note: the run trained on sequences of 16 tokens \(its context is 32\): the window slides at 16/);
    expect(jsonOf(wide).tokens).toBeGreaterThan(0);
    expect(wide.stderr).toBe('');
    expectCleanFailure(tooWide, /--context 33 is longer than the model's context \(32 positions\)/);
  });

  it('sample --prompt-file reads the prompt from a file (as --prompt of its text); errors name the file', async () => {
    writeFileSync(join(dir, 'prompt.txt'), '\uFEFFThe whale, café');
    writeFileSync(join(dir, 'empty-prompt.txt'), '');
    writeFileSync(join(dir, 'latin1-prompt.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const base = ['sample', '--checkpoint', 'short-seq', '--tokens', '4', '--seed', '2', '--json'];
    const [fromFile, inline, both, empty, latin1, missing] = await Promise.all([
      cli([...base, '--prompt-file', 'prompt.txt']),
      cli([...base, '--prompt', 'The whale, café']),
      cli([...base, '--prompt', 'x', '--prompt-file', 'prompt.txt']),
      cli([...base, '--prompt-file', 'empty-prompt.txt']),
      cli([...base, '--prompt-file', 'latin1-prompt.txt']),
      cli([...base, '--prompt-file', 'nope.txt']),
    ]);
    const a = jsonOf(fromFile);
    const b = jsonOf(inline);
    expect({ ...a, seconds: 0 }).toEqual({ ...b, seconds: 0 });
    expectCleanFailure(both, /give --prompt or --prompt-file, not both/);
    expectCleanFailure(empty, /--prompt-file empty-prompt\.txt is empty/);
    expectCleanFailure(latin1, /--prompt-file latin1-prompt\.txt: not UTF-8 text/);
    expectCleanFailure(missing, /--prompt-file nope\.txt: no such file/);
  });
  it("train --init-from: a note when the rate is left at the from-scratch 'kaplan'; its log begins with an init event", async () => {
    expect((await cli(['train', '--config', 'run.json', '--steps', '2', '--out', 'ft-base', '--no-progress'])).code).toBe(0);
    const [plain, tuned] = await Promise.all([
      cli(['train', '--init-from', 'ft-base', '--steps', '1', '--out', 'ft-plain', '--no-progress']),
      cli(['train', '--init-from', 'ft-base', '--steps', '1', '--set', 'lr.peak=1e-4', '--out', 'ft-tuned', '--no-progress']),
    ]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toMatch(
      /note: lr\.peak is 'kaplan' \([\d.e-]+\), a from-scratch rate for this size; fine-tuning usually takes 10–100× less/,
    );
    expect(tuned.code).toBe(0);
    expect(tuned.stderr).not.toMatch(/from-scratch rate/);
    expect(metricsLines(join(dir, 'ft-tuned'))[0]).toEqual({ event: 'init', step: 0, from: join(dir, 'ft-base') });
  });

  it("--resume of a checkpoint that is not a run directory's checkpoint/ (a snapshot, a copy) needs --out", async () => {
    cpSync(join(dir, 'run', 'checkpoint'), join(dir, 'copied'), { recursive: true });
    expectCleanFailure(
      await cli(['train', '--resume', 'copied', '--steps', '7', '--no-progress']),
      /copied is not a run's checkpoint\/ \(a snapshot, or a copy\): resume it into a run directory with --out DIR/,
    );
    expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(false); // nothing written beside it
  });

  it('sample | head: a reader that closes the pipe early ends the sampling quietly (exit 0, no EPIPE)', async () => {
    const child = spawn(process.execPath, [CLI, 'sample', '--checkpoint', 'run/checkpoint', '--tokens', '400', '--top-k', '0'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.once('data', () => child.stdout!.destroy()); // as `head -c 1` does
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  });

  it('train --resume DIR --steps 6 --tf32 --json continues to step 6, with the run config changed as asked', async () => {
    const r = await cli(['train', '--resume', 'run', '--steps', '6', '--tf32', '--json', '--no-progress']);
    expect(jsonOf(r)).toMatchObject({ step: 6, tokens: 6 * 2 * 32, interrupted: false });
    // the schedule is the run's own: it ended at step 4, the run's first length
    expect(r.stderr).toMatch(
      /note: the learning-rate schedule reaches its end \(lr\.total 4\) before step 6: the last 2 steps train at its final rate/,
    );
    const state = expectCheckpoint(join(dir, 'run', 'checkpoint')) as { step: number; extra: { run: { tf32?: boolean } } };
    expect(state.step).toBe(6);
    expect(state.extra.run.tf32).toBe(true);
    expect(metricsLines(join(dir, 'run')).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('train --resume --steps past a pending growth: the schedule notes count each schedule to its own end', async () => {
    await cli([
      'train',
      '--config',
      'run.json',
      '--set',
      'stages=[{"until":{"steps":5},"grow":{"op":"depth","rewarmup":1}}]',
      '--out',
      'pending',
      '--no-progress',
    ]);
    const r = await cli(['train', '--resume', 'pending', '--steps', '8', '--no-progress']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/step 5: grew depth/);
    // the current schedule governs step 5 only (the growth sets its own) …
    expect(r.stderr).toMatch(/reaches its end \(lr\.total 4\) before step 5: the last 1 steps before the growth train at its final rate/);
    expect(r.stderr).not.toMatch(/before step 8: the last 4 steps/);
    // … and the grown one, resumed at R = round(5 / 1.412) = 4 of its 4, the 3 steps after it
    expect(r.stderr).toMatch(
      /note: the schedule resumes at position 4 and reaches its end \(lr\.total 4\) before step 8: the last 3 steps train at its final rate/,
    );
  });

  it('grow --op width --json doubles the width at the same loss; train --resume continues the grown run', async () => {
    const grown = await cli(['grow', '--checkpoint', 'run', '--op', 'width', '--out', 'grown', '--json']);
    const g = jsonOf(grown);
    expect(g).toMatchObject({ event: 'growth', step: 6, op: 'width', from: { nEmbd: 32 }, to: { nEmbd: 64 } });
    // the run has no dropout and no noise was asked for: said before the compute is spent
    expect(grown.stderr).toMatch(
      /note: this width growth has nothing to break the symmetry of its copies \(no --dropout, --noise or --split-noise\): they stay identical/,
    );
    expect(Math.abs((g.lossAfter as number) - (g.lossBefore as number))).toBeLessThan(1e-4);
    const r = jsonOf(await cli(['train', '--resume', 'grown', '--steps', '8', '--json', '--no-progress']));
    expect(r).toMatchObject({ step: 8, interrupted: false });
    expect(Number.isFinite(r.finalLoss)).toBe(true);
  });

  it('grow --op mlp --split-noise: copies split apart, the loss moved only slightly', async () => {
    const g = jsonOf(await cli(['grow', '--checkpoint', 'run', '--op', 'mlp', '--split-noise', '0.01', '--out', 'mlp', '--json']));
    expect(g).toMatchObject({ event: 'growth', op: 'mlp', from: { nEmbd: 32, mlpWidth: 128 }, to: { nEmbd: 32, mlpWidth: 256 } });
    const human = await cli(['grow', '--checkpoint', 'run', '--op', 'mlp', '--out', 'mlp-human']);
    expect(human.stdout).toMatch(/grew mlp at step 6: 1×32 \(2 heads, MLP 128\) → 1×32 \(2 heads, MLP 256\)/);
    expect(human.stderr).toMatch(/note: this mlp growth has no --split-noise: its copied units get equal gradients and stay identical/);
    const moved = Math.abs((g.lossAfter as number) - (g.lossBefore as number));
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(1e-2);
  });

  it('grow refuses an --out holding the checkpoint it grows, and flags its operator does not use', async () => {
    const [same, depthDropout, factorOne, depthSplit] = await Promise.all([
      cli(['grow', '--checkpoint', 'run', '--op', 'width', '--out', 'run']),
      cli(['grow', '--checkpoint', 'run', '--op', 'depth', '--dropout', '0.1', '--out', 'g2']),
      cli(['grow', '--checkpoint', 'run', '--op', 'width', '--factor', '1', '--out', 'g3']),
      cli(['grow', '--checkpoint', 'run', '--op', 'depth', '--split-noise', '0.01', '--out', 'g2']),
    ]);
    expectCleanFailure(same, /--out run is the checkpoint being grown/);
    expectCleanFailure(depthDropout, /--dropout applies to --op width \/ both, not depth/);
    expectCleanFailure(depthSplit, /--split-noise applies to --op width \/ both \/ mlp \/ heads, not depth/);
    expectCleanFailure(factorOne, /width growth: factor: Too small/);
    expect((expectCheckpoint(join(dir, 'run', 'checkpoint')) as { step: number }).step).toBe(6);
    expect(existsSync(join(dir, 'g2'))).toBe(false);
    // --factor for both (width and depth ×2 each, c_op 2.455), a dropout of 1, another run's log in --out
    mkdirSync(join(dir, 'foreign'));
    cpSync(join(dir, 'run', 'metrics.jsonl'), join(dir, 'foreign', 'metrics.jsonl'));
    const [bothFactor, dropoutOne, foreign] = await Promise.all([
      cli(['grow', '--checkpoint', 'run', '--op', 'both', '--factor', '3', '--out', 'g4']),
      cli(['grow', '--checkpoint', 'run', '--op', 'width', '--dropout', '1', '--out', 'g4']),
      cli(['grow', '--checkpoint', 'run', '--op', 'depth', '--out', 'foreign']),
    ]);
    expectCleanFailure(bothFactor, /--factor applies to --op width \/ depth \/ mlp \/ heads, not both/);
    expectCleanFailure(dropoutOne, /--dropout must be a probability in \[0, 1\) \(got '1'\)/);
    expectCleanFailure(foreign, /foreign.metrics\.jsonl belongs to another run: choose another --out/);
    expect(existsSync(join(dir, 'g4'))).toBe(false);
    expect(existsSync(join(dir, 'foreign', 'checkpoint'))).toBe(false);
  });

  it("grow keeps the run's fixed lr.peak (--peak-lr kaplan asks for lr(N)); a re-warmup past the horizon is noted", async () => {
    await cli([
      'train',
      '--config',
      'run.json',
      '--set',
      'lr.peak=6e-4',
      '--set',
      'lr.hiddenWidthBase=16',
      '--out',
      'fixed-peak',
      '--no-progress',
    ]);
    // (the width-scaled rates do not cover mlp growth: refused as a run config's stage would be)
    expectCleanFailure(
      await cli(['grow', '--checkpoint', 'fixed-peak', '--op', 'mlp', '--out', 'hw-mlp']),
      /lr\.hiddenWidthBase scales by nEmbd: it does not cover the mlp operator/,
    );
    const kept = await cli(['grow', '--checkpoint', 'fixed-peak', '--op', 'depth', '--out', 'fixed-grown', '--json']);
    expect(jsonOf(kept).peakLr).toBe(6e-4);
    // smallRun's horizon is its 4 steps: the default 150-step re-warmup runs past it
    expect(kept.stderr).toMatch(
      /note: the re-warmup \(150 steps from position 3\) ends at or past the schedule's horizon 4: the rate never decays/,
    );
    const kaplan = jsonOf(
      await cli(['grow', '--checkpoint', 'fixed-peak', '--op', 'depth', '--peak-lr', 'kaplan', '--out', 'kaplan-grown', '--json']),
    );
    const n = 12 * 2 * 32 ** 2; // 2 layers × 32 after the growth
    expect(kaplan.peakLr).toBeCloseTo(0.003239 - 0.0001395 * Math.log10(n), 12);
    const r = await cli(['train', '--resume', 'fixed-grown', '--steps', '8', '--no-progress']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /note: the re-warmup after the growth \(150 steps from position 3\) runs past the schedule's horizon \(lr\.total 4\): 3 of these steps still rise/,
    );
    expect(r.stderr).not.toMatch(/train at its final rate/);
  });

  it('grow --c-op places the grown model on its schedule at S_pre / c; a factor other than 2 without it is noted', async () => {
    const [guessed, given, mlp] = await Promise.all([
      cli(['grow', '--checkpoint', 'run', '--op', 'depth', '--factor', '3', '--out', 'cop-guess', '--json']),
      cli(['grow', '--checkpoint', 'run', '--op', 'depth', '--factor', '3', '--c-op', '2', '--out', 'cop-given', '--json']),
      // mlp keeps the schedule unless given a c_op (then --rewarmup applies to it too)
      cli(['grow', '--checkpoint', 'run', '--op', 'mlp', '--c-op', '1.5', '--rewarmup', '2', '--out', 'cop-mlp', '--json']),
    ]);
    // the run's checkpoint is at step (and schedule position) 6
    expect(jsonOf(guessed)).toMatchObject({ step: 6, schedulePos: Math.round(6 / 1.412) });
    expect(guessed.stderr).toMatch(
      /note: c_op 1\.412 is the reference constant of depth growth ×2: for ×3 the grown model's place on its schedule \(R = S_pre \/ 1\.412\) is a guess \(give --c-op\)/,
    );
    expect(jsonOf(given)).toMatchObject({ step: 6, schedulePos: 3 });
    expect(given.stderr).not.toMatch(/c_op/);
    expect(jsonOf(mlp)).toMatchObject({ step: 6, schedulePos: 4 });
    expect(expectCheckpoint(join(dir, 'cop-mlp', 'checkpoint'))).toMatchObject({
      extra: { schedule: { restart: { at: 4, rewarmup: 2 } } },
    });
    expectCleanFailure(
      await cli(['grow', '--checkpoint', 'run', '--op', 'mlp', '--rewarmup', '2', '--out', 'cop-none']),
      /--rewarmup applies to --op width \/ depth \/ both, not mlp/,
    );
  });
});

describe('Ctrl-C', () => {
  // SIGTERM: how Slurm, Kubernetes and torchrun stop (preempt) a job
  it.each([
    ['SIGINT', 130, /interrupted — saving a checkpoint/],
    ['SIGTERM', 143, /asked to stop \(SIGTERM\) — saving a checkpoint/],
  ] as const)(
    '%s during training: exit %s, a complete checkpoint at the last logged step, an interrupt event',
    async (signal, exitCode, said) => {
      const runDir = join(dir, `interrupted-${signal}`);
      const { child, done } = start(['train', '--config', 'long.json', '--out', `interrupted-${signal}`, '--json', '--no-progress'], {
        timeoutMs: 100000,
      });
      let exited = false;
      void done.then(() => (exited = true));
      let r: Run;
      try {
        const metrics = join(runDir, 'metrics.jsonl');
        const t0 = Date.now();
        while (!exited && !(existsSync(metrics) && readFileSync(metrics, 'utf8').includes('\n'))) {
          if (Date.now() - t0 > 60000) break;
          await sleep(50);
        }
        expect(exited).toBe(false);
        expect(existsSync(metrics)).toBe(true);
        if (signal === 'SIGINT') {
          // while it trains (no checkpoint yet): another run there, or a resume, is told so by name
          const owner = new RegExp(`another staged-lm process \\(pid ${child.pid} since .*\\) trains in .*interrupted-SIGINT`);
          const [fresh, resume] = await Promise.all([
            cli(['train', '--config', 'run.json', '--out', `interrupted-${signal}`, '--no-progress']),
            cli(['train', '--resume', `interrupted-${signal}`, '--no-progress']),
          ]);
          expectCleanFailure(fresh, owner);
          expectCleanFailure(resume, owner);
        }
        const sent = Date.now();
        child.kill(signal);
        r = await done;
        const seconds = (Date.now() - sent) / 1000;
        if (r.signal !== null || r.code === null) throw new Error(`the process did not exit by itself: ${r.signal}\n${r.stderr}`);
        expect(seconds).toBeLessThan(5);
      } finally {
        if (!exited) child.kill('SIGKILL'); // a failed expectation must not leave a 2000-step run behind
      }

      const state = expectCheckpoint(join(runDir, 'checkpoint'));
      expect(state.step).toBeGreaterThanOrEqual(1);
      expect(state.step).toBeLessThan(2000);
      const lines = metricsLines(runDir);
      const steps = lines.filter((m) => m.event === undefined).map((m) => m.step);
      expect(steps[steps.length - 1]).toBe(state.step);
      expect(lines[lines.length - 1]).toEqual({ event: 'interrupt', step: state.step });
      // the checkpoint was written under a temporary name and renamed: no temporary directory is left behind
      expect(readdirSync(runDir).filter((f) => f.startsWith('.') || f.includes('.tmp'))).toEqual([]);
      expect(r.stderr).toMatch(said);
      expect(jsonLine(r.stdout)).toMatchObject({ step: state.step, interrupted: true });
      expect(r.code).toBe(exitCode);
    },
  );
});

describe('bad inputs fail cleanly', () => {
  it('train --config FILE with invalid JSON names the file', async () => {
    const r = await cli(['train', '--config', 'bad.json', '--out', 'bad', '--no-progress']);
    expectCleanFailure(r, /bad\.json.*not valid JSON/);
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });

  it('train --config with batchSize 0 names the field', async () => {
    const r = await cli(['train', '--config', 'zero-batch.json', '--out', 'zero', '--no-progress', '--json']);
    expectCleanFailure(r, /batchSize/);
    expect(existsSync(join(dir, 'zero'))).toBe(false);
  });

  it('train --precision fp16 needs a CUDA device, and loss scaling is not captured in a CUDA graph', async () => {
    const [cpu, graph] = await Promise.all([
      cli(['train', '--preset', 'tiny', '--steps', '2', '--precision', 'fp16', '--out', 'half', '--no-progress']),
      cli(['train', '--preset', 'tiny', '--steps', '2', '--device', 'cuda', '--cuda-graph', '--precision', 'fp16', '--out', 'graph']),
    ]);
    expectCleanFailure(cpu, /precision fp16 needs a CUDA device/);
    expectCleanFailure(await cli(['sample', '--checkpoint', 'run', '--precision', 'bf16']), /--precision bf16 needs a CUDA device/);
    expectCleanFailure(graph, /cudaGraph does not capture loss scaling \(precision fp16, lossScale\.enabled\)/);
    expect(existsSync(join(dir, 'half'))).toBe(false);
  });

  it('train --config of a missing file, --resume of a directory without a checkpoint', async () => {
    const [missing, resume] = await Promise.all([
      cli(['train', '--config', 'nope.json', '--no-progress']),
      cli(['train', '--resume', '/nonexistent', '--no-progress']),
    ]);
    expectCleanFailure(missing, /nope\.json/);
    // a config whose data path is beside it, not in the working directory: named so
    mkdirSync(join(dir, 'configs', 'tokens'), { recursive: true });
    writeFileSync(join(dir, 'configs', 'beside.json'), JSON.stringify({ ...smallRun, data: 'tokens' }));
    expectCleanFailure(
      await cli(['train', '--config', 'configs/beside.json', '--out', 'beside', '--no-progress']),
      /data 'tokens' \(run config configs\/beside\.json\) is not in the working directory .*: paths in a run config resolve against the working directory, as on the command line; it is at configs\/tokens/,
    );
    // a --set of it replaces the file's path: nothing to name
    const replaced = await cli([
      'train',
      '--config',
      'configs/beside.json',
      '--set',
      'data=embedded',
      '--steps',
      '1',
      '--out',
      'beside-set',
      '--no-progress',
    ]);
    expect(replaced.code).toBe(0);
    expectCleanFailure(resume, /\/nonexistent: no such checkpoint or run directory/);
    // a directory that is not one: named as such
    mkdirSync(join(dir, 'not-a-run'), { recursive: true });
    expectCleanFailure(
      await cli(['train', '--resume', 'not-a-run', '--no-progress']),
      /not-a-run is not a staged-lm checkpoint: state\.json is missing/,
    );
  });

  it('train into a directory that holds a run refuses and leaves the run as it was', async () => {
    const before = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8');
    const r = await cli(['train', '--config', 'run.json', '--out', 'run', '--no-progress']);
    expectCleanFailure(r, /run already holds a run \(metrics\.jsonl, checkpoint\): continue it with --resume run/);
    expect(readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')).toBe(before);
    expect((expectCheckpoint(join(dir, 'run', 'checkpoint')) as { step: number }).step).toBe(6);
    // a run that stopped before its first checkpoint left only its log: not one to --resume
    mkdirSync(join(dir, 'no-checkpoint'));
    writeFileSync(join(dir, 'no-checkpoint', 'metrics.jsonl'), '{"step":1,"loss":5}\n');
    expectCleanFailure(
      await cli(['train', '--config', 'run.json', '--out', 'no-checkpoint', '--no-progress']),
      /no-checkpoint holds the metrics\.jsonl of a run that saved no checkpoint \(it stopped before its first save: there is nothing to resume\): remove /,
    );
    // a run killed between its save's two renames: its checkpoint waits under a temporary name (a
    // dead process's), put back and named as a run to resume — not a log to remove, whose fresh
    // run's first save would then have deleted it
    cpSync(join(dir, 'run'), join(dir, 'cut'), { recursive: true });
    renameSync(join(dir, 'cut', 'checkpoint'), join(dir, 'cut', '.checkpoint.tmp-99999999-dead.old'));
    const cut = await cli(['train', '--config', 'run.json', '--out', 'cut', '--no-progress']);
    expectCleanFailure(cut, /cut already holds a run \(metrics\.jsonl, checkpoint\): continue it with --resume cut/);
    expect((expectCheckpoint(join(dir, 'cut', 'checkpoint')) as { step: number }).step).toBe(6);
  });

  it('train --resume refuses the flags it cannot honour, and steps the run has already taken', async () => {
    const [fixed, done] = await Promise.all([
      cli(['train', '--resume', 'run', '--steps', '9', '--batch-size', '4', '--seed', '3', '--precision', 'fp32', '--no-progress']),
      // (a trailing slash, as tab completion leaves it, names the checkpoint all the same)
      cli(['train', '--resume', 'run/checkpoint/', '--steps', '6', '--no-progress']),
    ]);
    expectCleanFailure(fixed, /--resume continues the saved run as it was configured: --seed, --batch-size cannot change it/);
    expectCleanFailure(done, /the run is already at step 6: nothing to train up to step 6/);
    expect(metricsLines(join(dir, 'run')).map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('train --resume --device moves a run to another device (--precision where that device lacks its own), with a note', async () => {
    expect((await cli(['train', '--config', 'run.json', '--steps', '2', '--out', 'gpu-run', '--no-progress'])).code).toBe(0);
    // as if it had trained on a second GPU in bf16
    const statePath = join(dir, 'gpu-run', 'checkpoint', 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { extra: { run: Record<string, unknown> } };
    state.extra.run = { ...state.extra.run, device: 'cuda:1', precision: 'bf16' };
    writeFileSync(statePath, JSON.stringify(state));
    const [noPrecision, moved] = await Promise.all([
      cli(['train', '--resume', 'gpu-run', '--steps', '3', '--device', 'cpu', '--out', 'gpu-run-a', '--no-progress']),
      cli([
        'train',
        '--resume',
        'gpu-run',
        '--steps',
        '3',
        '--device',
        'cpu',
        '--precision',
        'fp32',
        '--out',
        'gpu-run-b',
        '--no-progress',
        '--json',
      ]),
    ]);
    expectCleanFailure(noPrecision, /precision bf16 needs a CUDA device .*: resume it with --precision fp32/);
    // without --device: the run's device is not here, and the message says how to go on
    expectCleanFailure(
      await cli(['train', '--resume', 'gpu-run', '--steps', '3', '--out', 'gpu-run-c', '--no-progress']),
      /run\.device\): resume it on another with --device \(the CPU: --device cpu, with --precision fp32 for a bf16 or fp16 run\)/,
    );
    expect(moved.code).toBe(0);
    expect(jsonOf(moved)).toMatchObject({ step: 3 });
    expect(moved.stderr).toMatch(
      /note: the run trained on cuda:1 and goes on on cpu \(fp32\): from here its random streams \(dropout\) are this device's/,
    );
    expect(moved.stderr).toMatch(/note: the run trained in precision bf16 and goes on in fp32: its numerics change from here/);
  });

  it('a run whose loss turns NaN exits with code 3 before a checkpoint of NaN weights is written', async () => {
    // step 3 diverges; the checkpoint due at step 4 would have held its NaN weights
    writeFileSync(
      join(dir, 'nan.json'),
      JSON.stringify({
        ...smallRun,
        steps: 30,
        lr: { peak: 1e4, warmup: 1, kind: 'constant' },
        clipGradNorm: null,
        checkpointInterval: 4,
        logInterval: 10,
      }),
    );
    const r = await cli(['train', '--config', 'nan.json', '--out', 'nan', '--no-progress', '--json']);
    expect(r.code).toBe(3);
    const diverged = Number(/training diverged: the loss is NaN at step (\d+)/.exec(r.stderr)?.[1]);
    expect(diverged).toBeGreaterThan(0);
    // --json: why, in one object on stdout (NaN, which JSON has no number for, as a string)
    expect(jsonLine(r.stdout)).toEqual({
      error: {
        message: expect.stringMatching(/^training diverged: the loss is NaN/) as unknown,
        exitCode: 3,
        diverged: { step: diverged, what: 'loss', value: 'NaN' },
      },
    });
    // a checkpoint, if one was due before, is from before the divergence (here: none at all)
    const ckpt = join(dir, 'nan', 'checkpoint');
    if (existsSync(ckpt)) expect((expectCheckpoint(ckpt) as { step: number }).step).toBeLessThan(diverged);
    else expect(diverged).toBeLessThanOrEqual(4);
  });

  it('inputs that used to fail with a JavaScript error now name the problem', async () => {
    writeFileSync(join(dir, 'null.json'), 'null');
    writeFileSync(join(dir, 'small-vocab.json'), JSON.stringify({ ...smallRun, model: { ...smallRun.model, vocabSize: 100 } }));
    const [nullConfig, dataDir, vocab, benchModel, demoSteps, huge] = await Promise.all([
      cli(['train', '--config', 'null.json', '--out', 'n1', '--no-progress']),
      cli(['eval', '--checkpoint', 'run', '--data', '.', '--json']),
      cli(['train', '--config', 'small-vocab.json', '--out', 'n2', '--no-progress']),
      cli(['bench', '--model', 'nope', '--device', 'cpu']),
      cli(['demo', '--steps', '2', '--out', 'n3']),
      cli(['train', '--config', 'run.json', '--batch-size', '100000000', '--out', 'n4', '--no-progress']),
    ]);
    expectCleanFailure(nullConfig, /config null\.json must hold a JSON object \(a run config\), not null/);
    expectCleanFailure(
      dataDir,
      /--data \.: a directory, read as prepared token shards \(its validation split\), but no \.bin token files in this directory/,
    );
    expectCleanFailure(vocab, /embedded corpus holds GPT-2 token ids up to \d+: a model with vocabSize 100 cannot embed them/);
    expectCleanFailure(benchModel, /unknown model 'nope' \(expected one of micro, tiny, 124M, 350M, /);
    expectCleanFailure(demoSteps, /demo needs --steps of at least 12/);
    expectCleanFailure(huge, /a batch of 100000000 × 32 tokens is more than one batch can hold/);
    for (const d of ['n1', 'n2', 'n3', 'n4']) expect(existsSync(join(dir, d))).toBe(false);
  });

  it('eval --checkpoint /nonexistent says there is no such directory', async () => {
    const r = await cli(['eval', '--checkpoint', '/nonexistent', '--data', 'eval.txt', '--json']);
    expectCleanFailure(r, /\/nonexistent: no such checkpoint or run directory/);
  });
});
