// Data parallelism over c10d/Gloo on this machine: 2 ranks over loopback train exactly like one
// process with the doubled batch (20 steps, a width growth in the middle), both ranks end with
// identical states, they resume from rank 0's checkpoint, and a killed rank makes the other fail
// with a clear error instead of hanging. Skipped when the build has no Gloo backend.
// Child processes run the built library (dist/; npm test's set-up builds it).
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  distributedEnv,
  distributedSupport,
  destroyDistributed,
  GradientReducer,
  allReduce,
  initDistributed,
} from '../../lib/distributed/process-group';
import { freePort, rankArgv } from '../../lib/distributed/launch';
import { BatchLoader } from '../../lib/data/loader';
import { GPT } from '../../lib/nn/gpt';
import { presetConfig } from '../../lib/nn/config';
import { fromTypedArray, randn } from '../../lib/factories';
import { manualSeed } from '../../lib/runtime';
import { tidy } from '../../lib/scope';
import { itWhen } from '../helpers';

const CLI = resolve(__dirname, '../../dist/lib/cli/main.js');
const RANK = resolve(__dirname, '../fixtures/dp-rank.js');
const hasGloo = distributedSupport().gloo;
const itGloo = itWhen(hasGloo, 'this build has no Gloo backend');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 90000, onStdout?: (s: string) => void) {
  const child = spawn(file, args, { env: { ...process.env, OMP_NUM_THREADS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    onStdout?.(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<Run>((res) => {
    const timer = setTimeout(() => {
      stderr += `\n[test] timed out after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

const node = (args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number) => run(process.execPath, args, env, timeoutMs).done;

/** Training (or validation) losses of a metrics.jsonl, by step. */
function losses(dir: string, key: 'loss' | 'valLoss' = 'loss'): Map<number, number> {
  const m = new Map<number, number>();
  for (const line of readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as { step: number; loss?: number; valLoss?: number; event?: string };
    const v = r[key];
    if (r.event === undefined && typeof v === 'number') m.set(r.step, v);
  }
  return m;
}

function expectSameLosses(a: Map<number, number>, b: Map<number, number>, count: number): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  expect(a.size).toBe(count);
  for (const [step, l] of a) {
    const d = Math.abs(l - b.get(step)!) / Math.abs(l);
    if (d > 2e-5) throw new Error(`step ${step}: loss ${l} (one process, batch 2b) vs ${b.get(step)} (2 ranks, batch b)`);
  }
}

// a 2×64 model grown to 2×128 at step 10; no dropout, so that the ranks' masks cannot differ from
// the single process's
const config = (batchSize: number, steps = 20) => ({
  model: { preset: 'tiny', nLayer: 2, nEmbd: 64, nHead: 2, dropout: { attention: 0, residual: 0 } },
  data: 'embedded',
  steps,
  batchSize,
  seqLen: 32,
  seed: 7,
  eval: { interval: 10, batches: 2 },
  logInterval: 5,
  stages: [{ until: { steps: 10 }, grow: { op: 'width' } }],
});

/**
 * Runs `act` three seconds after rank 0 of a launched job starts training (its start line on the
 * launcher's stderr); resolves with the launcher's exit code, whether `act` ran, and its stderr.
 * After 90 s the launcher (its group, where it leads one) is killed.
 */
function afterRanksTrain(
  child: ChildProcessByStdio<null, Readable, Readable>,
  act: () => void,
): Promise<{ code: number | null; sent: boolean; stderr: string }> {
  return new Promise((res) => {
    let stderr = '';
    let sent = false;
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (!sent && /\[rank 0\] staged-lm: .* run /.test(stderr)) {
        sent = true;
        setTimeout(act, 3000);
      }
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, 90000);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, sent, stderr });
    });
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'slm-dp-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('launcher environment and sharding (no processes)', () => {
  it('reads torchrun variables and names a bad one', () => {
    expect(distributedEnv({})).toBeNull();
    expect(distributedEnv({ RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' })).toEqual({
      rank: 1,
      worldSize: 2,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: '127.0.0.1',
      masterPort: 29500,
      agentStorePrefix: null,
    });
    // torchrun 2.x: its agent serves the store; the ranks' keys go under the restart attempt's prefix
    const torchrun = { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'h', MASTER_PORT: '29500', TORCHELASTIC_USE_AGENT_STORE: 'True' };
    expect(distributedEnv(torchrun)?.agentStorePrefix).toBe('/worker/attempt_0');
    expect(distributedEnv({ ...torchrun, TORCHELASTIC_RESTART_COUNT: '3' })?.agentStorePrefix).toBe('/worker/attempt_3');
    expect(distributedEnv({ ...torchrun, TORCHELASTIC_USE_AGENT_STORE: 'False' })?.agentStorePrefix).toBeNull();
    expect(() => distributedEnv({ WORLD_SIZE: '2', MASTER_ADDR: 'x', MASTER_PORT: '1' })).toThrow(/RANK is not set/);
    expect(() => distributedEnv({ RANK: 'a', WORLD_SIZE: '2', MASTER_ADDR: 'x', MASTER_PORT: '1' })).toThrow(
      /RANK must be a non-negative integer/,
    );
    expect(() => distributedEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'x', MASTER_PORT: '1' })).toThrow(/outside WORLD_SIZE 2/);
  });

  it('rank shards of a batch, concatenated, are the one-process batch of the doubled size', () => {
    const tokens = Uint16Array.from({ length: 5000 }, (_, i) => (i * 7919) % 50257);
    const whole = new BatchLoader(tokens, { batchSize: 6, seqLen: 16, seed: 3 });
    const shards = [0, 1].map((rank) => new BatchLoader(tokens, { batchSize: 3, seqLen: 16, seed: 3, shard: { rank, worldSize: 2 } }));
    for (let i = 0; i < 3; i++) {
      tidy(() => {
        const w = whole.next();
        const parts = shards.map((s) => s.next());
        expect([...parts[0].x.toNumberArray(), ...parts[1].x.toNumberArray()]).toEqual(w.x.toNumberArray());
        expect([...parts[0].y.toNumberArray(), ...parts[1].y.toNumberArray()]).toEqual(w.y.toNumberArray());
      });
    }
    // a state saved by 2 ranks does not resume a single process (the batches would differ)
    const single = new BatchLoader(tokens, { batchSize: 3, seqLen: 16, seed: 3 });
    expect(() => single.restore(shards[0].state())).toThrow(/saved by a run of 2 rank\(s\) but this one has 1/);
    expect(() => new BatchLoader(tokens, { batchSize: 3, seqLen: 16, shard: { rank: 2, worldSize: 2 } })).toThrow(
      /outside a world of size 2/,
    );
  });

  it('the launcher runs `staged-lm` as this package CLI', () => {
    const [file, args] = rankArgv(['staged-lm', 'train', '--x']);
    expect(file).toBe(process.execPath);
    expect(args[0]).toMatch(/cli[/\\]main\.js$/);
    expect(args.slice(1)).toEqual(['train', '--x']);
    expect(rankArgv(['python3', '-c', 'x'])).toEqual(['python3', ['-c', 'x']]);
    expect(() => rankArgv([])).toThrow(/no command/);
  });
});

describe('one rank in this process', () => {
  itGloo('the reducer averages over a world of 1 exactly, in several buckets, and refuses misuse', async () => {
    expect(() => new GradientReducer([])).toThrow(/no process group/);
    initDistributed({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: await freePort(), timeoutMs: 10000 });
    try {
      manualSeed(1);
      const model = new GPT(presetConfig('tiny', { nLayer: 1, nEmbd: 32, nHead: 2, contextLength: 16 }));
      const params = model.namedParameters().map((p) => p.tensor);
      const reducer = new GradientReducer(params, 16 * 1024);
      expect(reducer.buckets().length).toBeGreaterThan(2);
      expect(
        reducer
          .buckets()
          .flat()
          .sort((a, b) => a - b),
      ).toEqual(params.map((_, i) => i));
      expect(reducer.buckets()[0][0]).toBe(params.length - 1); // the last parameter's gradient comes first
      const x = fromTypedArray(
        Int32Array.from({ length: 32 }, (_, i) => (i * 31) % 50257),
        [2, 16],
        { dtype: 'int64' },
      );
      const y = fromTypedArray(
        Int32Array.from({ length: 32 }, (_, i) => (i * 17) % 50257),
        [2, 16],
        { dtype: 'int64' },
      );
      model.loss(x, y).backward();
      const plain = params.map((p) => p.grad!.toNumberArray());
      for (const p of params) p.grad = null;
      reducer.prepare();
      model.loss(x, y).backward();
      // every bucket started from the hooks while backward ran, none waited for finish()
      expect(reducer.launchedDuringBackward()).toBe(reducer.buckets().length);
      reducer.finish();
      params.forEach((p, i) => expect(p.grad!.toNumberArray()).toEqual(plain[i]));
      // gradient accumulation: only the last micro-batch's backward is armed, the sum is reduced
      for (const p of params) p.grad = null;
      model.loss(x, y).backward();
      model.loss(y, x).backward();
      const accumulated = params.map((p) => p.grad!.toNumberArray());
      for (const p of params) p.grad = null;
      model.loss(x, y).backward(); // not armed: no communication
      expect(reducer.launchedDuringBackward()).toBe(reducer.buckets().length); // (still the last count)
      reducer.prepare();
      expect(reducer.launchedDuringBackward()).toBe(0);
      model.loss(y, x).backward();
      expect(reducer.launchedDuringBackward()).toBe(reducer.buckets().length);
      reducer.finish();
      params.forEach((p, i) => expect(p.grad!.toNumberArray()).toEqual(accumulated[i]));
      expect(() => reducer.finish()).toThrow(/prepare\(\) was not called/);
      reducer.dispose();
      // buckets start in order on every rank (collectives pair up by order): one whose parameter
      // gets no gradient in this backward holds back those after it until finish()
      const a = randn([3]).requiresGrad_();
      const b = randn([3]).requiresGrad_();
      const pair = new GradientReducer([a, b], 4);
      expect(pair.buckets()).toEqual([[1], [0]]);
      pair.prepare();
      a.mul(2).sum().backward(); // b, the first bucket, gets nothing
      expect(pair.launchedDuringBackward()).toBe(0);
      pair.finish();
      expect(a.grad!.toNumberArray()).toEqual([2, 2, 2]);
      expect(b.grad!.toNumberArray()).toEqual([0, 0, 0]);
      pair.prepare();
      b.mul(3).sum().backward(); // now the first bucket completes, and only it may start
      expect(pair.launchedDuringBackward()).toBe(1);
      pair.finish();
      pair.dispose();
      // an integer mean is refused before any rank sums anything
      const counts = fromTypedArray(new Int32Array([1, 2]), [2], { dtype: 'int64' });
      expect(() => allReduce([counts], 'mean')).toThrow(/allReduce: 'mean' needs floating-point tensors, got int64/);
      allReduce([counts], 'sum');
      expect(counts.toNumberArray()).toEqual([1, 2]);
      expect(() => reducer.prepare()).toThrow(/disposed/);
      model.dispose();
    } finally {
      destroyDistributed();
    }
  });
});

describe('rendezvous', () => {
  itGloo('a rank whose peers never come fails after the timeout, saying what to check', async () => {
    const port = await freePort();
    const t0 = Date.now();
    expect(() => initDistributed({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 1500 })).toThrow(
      /^initDistributed: rank 0 of 2 could not reach the other ranks through 127\.0\.0\.1:\d+ within 1 s \(are all WORLD_SIZE ranks started/,
    );
    expect(Date.now() - t0).toBeLessThan(20000);
  });
});

describe('2 ranks over loopback (Gloo)', () => {
  itGloo('train like one process with the doubled batch through a growth, end identical, and resume', async () => {
    const single = join(dir, 'single');
    const dp = join(dir, 'dp');
    writeFileSync(join(dir, 'single.json'), JSON.stringify(config(8)));
    const [one, two] = await Promise.all([
      node([CLI, 'train', '--config', join(dir, 'single.json'), '--out', single, '--no-progress']),
      // (checkpoints due by time at every check: the ranks agree on each, and they change nothing)
      node([CLI, 'launch', '-n', '2', '--', 'node', RANK], {
        DP_CONFIG: JSON.stringify({ ...config(4), checkpointMinutes: 1e-6 }),
        DP_OUT: dp,
      }),
    ]);
    // (--no-progress: only the growth and its notes, no progress lines, no errors)
    expect(one.stderr.split('\n').filter((l) => l !== '' && !/^staged-lm: note: |^step 10: grew width /.test(l))).toEqual([]);
    expect(one.stderr).toMatch(/^step 10: grew width → 2×128 \(stage 1\)/m);
    expect(one.code).toBe(0);
    expect(two.code).toBe(0);
    expectSameLosses(losses(single), losses(dp), 20);
    // evaluation is split between the ranks and scores the same windows
    expectSameLosses(losses(single, 'valLoss'), losses(dp, 'valLoss'), 2);

    // each rank's own account of its final state: grown, and identical to the last bit
    const finals = two.stdout
      .split('\n')
      .map((l) => /^\[rank (\d)\] (\{.*\})$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => JSON.parse(m![2]) as { rank: number; step: number; nEmbd: number; checksums: Record<string, number[]> });
    expect(finals.map((f) => f.rank).sort()).toEqual([0, 1]);
    for (const f of finals) {
      expect(f.step).toBe(20);
      expect(f.nEmbd).toBe(128);
    }
    expect(Object.keys(finals[0].checksums).length).toBeGreaterThan(20);
    expect(finals[0].checksums).toEqual(finals[1].checksums);
    const growth = readFileSync(join(dp, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"growth"'))
      .map((l) => JSON.parse(l) as { step: number; to: { nEmbd: number } });
    expect(growth).toEqual([expect.objectContaining({ step: 10, to: expect.objectContaining({ nEmbd: 128 }) })]);

    // both ranks resume from rank 0's checkpoint and go on like the single process does
    const [r1, r2] = await Promise.all([
      node([CLI, 'train', '--resume', single, '--steps', '25', '--no-progress']),
      node([CLI, 'launch', '-n', '2', '--', 'staged-lm', 'train', '--resume', dp, '--steps', '25', '--no-progress', '--json']),
    ]);
    expect(r1.code).toBe(0);
    // nothing on stderr but rank 0's note that the new steps lie past the schedule's horizon, in the
    // growth's re-warmup
    expect(r2.stderr).toMatch(
      /^\[rank 0\] staged-lm: note: the re-warmup after the growth [^\n]* runs past the schedule's horizon [^\n]*\n$/,
    );
    expect(r2.code).toBe(0);
    expectSameLosses(losses(single), losses(dp), 25);
    // only rank 0 prints, and its --json result stays untagged: stdout parses
    expect(r2.stdout).not.toMatch(/\[rank 1\]/);
    expect(JSON.parse(r2.stdout)).toMatchObject({ step: 25, interrupted: false });
    // resumed in one process: refused, saying how to resume it
    const alone = await node([CLI, 'train', '--resume', dp, '--steps', '26', '--out', join(dir, 'dp-alone'), '--no-progress']);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(
      /the run trained on 2 rank\(s\) and this one has 1: a run resumes on as many \(its batches are split between them\): resume it with staged-lm launch -n 2/,
    );
  });

  itGloo(
    'with dropout, a resumed run draws the masks an uninterrupted one does on every rank, also with activation checkpointing and loss scaling',
    async () => {
      // rank 1 draws its own masks: its generator is saved with rank 0's and restored on resuming
      const withDropout = (steps: number) => ({
        ...config(4, steps),
        model: { preset: 'tiny', nLayer: 2, nEmbd: 64, nHead: 2, dropout: { attention: 0.1, residual: 0.1 } },
        lr: { peak: 3e-3, warmup: 2, total: 12 },
        stages: [],
      });
      writeFileSync(join(dir, 'drop12.json'), JSON.stringify(withDropout(12)));
      writeFileSync(join(dir, 'drop6.json'), JSON.stringify(withDropout(6)));
      const launch = (args: string[]) => node([CLI, 'launch', '-n', '2', '--', 'staged-lm', 'train', ...args, '--no-progress']);
      const [whole, first, recomputed, scaled] = await Promise.all([
        launch(['--config', join(dir, 'drop12.json'), '--out', join(dir, 'drop-whole')]),
        launch(['--config', join(dir, 'drop6.json'), '--out', join(dir, 'drop-resumed')]),
        // activation checkpointing: the recomputed blocks' gradients reach the all-reduce hooks once each
        launch(['--config', join(dir, 'drop12.json'), '--out', join(dir, 'drop-recomputed'), '--activation-checkpointing']),
        // loss scaling: the ranks all-reduce scaled gradients and agree on the check (fp32, 2^16: the same losses)
        launch(['--config', join(dir, 'drop12.json'), '--out', join(dir, 'drop-scaled'), '--set', 'lossScale.enabled=true']),
      ]);
      expect([whole.code, first.code, recomputed.code, scaled.code]).toEqual([0, 0, 0, 0]);
      expect([...losses(join(dir, 'drop-recomputed')).entries()]).toEqual([...losses(join(dir, 'drop-whole')).entries()]);
      expect([...losses(join(dir, 'drop-scaled')).entries()]).toEqual([...losses(join(dir, 'drop-whole')).entries()]);
      const rest = await launch(['--resume', join(dir, 'drop-resumed'), '--steps', '12']);
      expect(rest.code).toBe(0);
      const a = losses(join(dir, 'drop-whole'));
      const b = losses(join(dir, 'drop-resumed'));
      expect(a.size).toBe(12);
      expect([...b.entries()]).toEqual([...a.entries()]);
    },
  );

  itGloo('rank 0 decides, any rank can stop, and the state check names a tensor that differs between ranks', async () => {
    const r = await node([CLI, 'launch', '-n', '2', '--', 'node', RANK], {
      DP_CONFIG: JSON.stringify(config(4)),
      DP_OUT: join(dir, 'perturb'),
      DP_PERTURB: '1',
    });
    expect(r.code).toBe(0);
    for (const rank of [0, 1]) {
      expect(r.stdout).toContain(`[rank ${rank}] agree true false any true false`);
      expect(r.stdout).toContain(`[rank ${rank}] sum 1 2`);
      expect(r.stdout).toMatch(
        new RegExp(
          `\\[rank ${rank}\\] data parallel: the ranks' states differ in the test \\(1 tensors, e\\.g\\. transformer\\.h\\.0\\.mlp\\.c_fc\\.bias\\)`,
        ),
      );
    }
  });

  itGloo('a killed rank makes the other fail with a clear error, not hang', async () => {
    const port = String(await freePort());
    const env = (rank: number) => ({
      RANK: String(rank),
      WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: port,
      DP_CONFIG: JSON.stringify({ ...config(4, 100000), logInterval: 1, stages: [] }),
      DP_OUT: join(dir, 'killed'),
      DP_TIMEOUT_MS: '20000',
    });
    let killed = false;
    const victim = run(process.execPath, [RANK], env(1));
    const survivor = run(process.execPath, [RANK], env(0), 90000, (out) => {
      if (!killed && /^step 3$/m.test(out)) {
        killed = true;
        victim.child.kill('SIGKILL');
      }
    });
    const [s, v] = await Promise.all([survivor.done, victim.done]);
    expect(killed).toBe(true);
    expect(v.signal).toBe('SIGKILL');
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/rank 0: .*failed on rank 0 of 2 \(gloo\): .*\(a rank that died or stopped answering fails it after \d+ s\)/);
    expect(s.stderr).not.toMatch(/timed out after/); // it failed by itself, well before the test's limit
  });

  itGloo('Ctrl-C stops every rank at the same step with a checkpoint', async () => {
    const out = join(dir, 'ctrl-c');
    // no log, eval or checkpoint step to agree at: the ranks agree every few steps all the same
    writeFileSync(
      join(dir, 'long.json'),
      JSON.stringify({ ...config(4, 100000), logInterval: 100000, eval: { interval: 0 }, checkpointInterval: 0, stages: [] }),
    );
    // a terminal's Ctrl-C reaches the whole foreground process group: the launcher and its ranks
    const child = spawn(
      process.execPath,
      [CLI, 'launch', '-n', '2', '--', 'staged-lm', 'train', '--config', join(dir, 'long.json'), '--out', out],
      {
        env: { ...process.env, OMP_NUM_THREADS: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    // (once both ranks train: rank 0's start line, then a few seconds of steps)
    const { code, sent, stderr } = await afterRanksTrain(child, () => process.kill(-child.pid!, 'SIGINT'));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    const events = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"interrupt"'));
    expect(events).toHaveLength(1); // rank 0 alone writes
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
    const stoppedAt = (JSON.parse(events[0]) as { step: number }).step;
    expect(state.step).toBe(stoppedAt);
    expect(stoppedAt % 10).toBe(0); // a polling step (STOP_POLL_STEPS)
    expect(stoppedAt).toBeGreaterThan(0);
    // rank 1 stopped on the interrupt too (130, or SIGINT when the signal lands after its handler is
    // gone), not on a failed collective (exit 1)
    expect(stderr).toMatch(/rank 1: (130|SIGINT)/);
  });

  itGloo(
    'SIGTERM to the launcher alone, or to every process, reaches every rank as one stop: checkpoints, exit 143; ranks whose launcher is killed stop with one too',
    async () => {
      // (long.json: the previous test's endless run)
      const run = (out: string) =>
        spawn(process.execPath, [CLI, 'launch', '-n', '2', '--', 'staged-lm', 'train', '--config', join(dir, 'long.json'), '--out', out], {
          env: { ...process.env, OMP_NUM_THREADS: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      /**
       * Once both ranks train: `signal` to the launcher alone, or also to its ranks at once (a
       * scheduler that signals every process of the job), or `then` to the launcher 300 ms later
       * (a supervisor's escalation). Resolves with the launcher's exit code.
       */
      const stopped = (child: ReturnType<typeof run>, signal: NodeJS.Signals, o: { ranksToo?: boolean; then?: NodeJS.Signals } = {}) =>
        afterRanksTrain(child, () => {
          const ranks = o.ranksToo
            ? (spawnSync('pgrep', ['-P', String(child.pid)])
                .stdout.toString()
                .match(/\d+/g) ?? [])
            : [];
          child.kill(signal);
          for (const r of ranks) process.kill(Number(r), signal);
          if (o.then !== undefined) setTimeout(() => child.kill(o.then), 300);
        });
      const checkpointed = (out: string) => {
        const interrupts = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"event":"interrupt"'));
        expect(interrupts).toHaveLength(1);
        const step = (JSON.parse(interrupts[0]) as { step: number }).step;
        expect(step).toBeGreaterThan(0);
        expect((JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')) as { step: number }).step).toBe(step);
      };
      const term = await stopped(run(join(dir, 'term')), 'SIGTERM');
      expect(term.code).toBe(143);
      expect(term.stderr).toMatch(/launch: asked to stop \(SIGTERM\) — waiting for the ranks to save and exit/);
      expect(term.stderr).toMatch(/rank 0: 143, rank 1: 143/);
      checkpointed(join(dir, 'term'));
      // every process signalled at once: each rank takes its own and the launcher's as one stop
      const all = await stopped(run(join(dir, 'term-all')), 'SIGTERM', { ranksToo: true });
      expect(all.code).toBe(143);
      expect(all.stderr).not.toMatch(/staged-lm: quit at once|the ranks quit at once/);
      checkpointed(join(dir, 'term-all'));
      // SIGTERM, then SIGKILL: the ranks, already stopping, are not asked again when the launcher is gone
      await stopped(run(join(dir, 'term-kill')), 'SIGTERM', { then: 'SIGKILL' });
      const gone = Date.now() + 60000;
      const running = (out: string) => spawnSync('pgrep', ['-f', join(dir, out)]).status === 0;
      while (running('term-kill') && Date.now() < gone) await new Promise((r) => setTimeout(r, 500));
      checkpointed(join(dir, 'term-kill'));
      // the launcher killed outright: its ranks see it gone, save and exit by themselves
      await stopped(run(join(dir, 'orphans')), 'SIGKILL');
      const later = Date.now() + 60000;
      while (running('orphans') && Date.now() < later) await new Promise((r) => setTimeout(r, 500));
      expect(running('orphans')).toBe(false);
      checkpointed(join(dir, 'orphans'));
    },
  );

  itGloo('launch reports the first failing rank and exits with its code', async () => {
    const r = await node([
      CLI,
      'launch',
      '-n',
      '2',
      '--grace',
      '5',
      '--',
      'node',
      '-e',
      'process.exit(Number(process.env.RANK) === 1 ? 3 : 0)',
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rank 1 failed first \(exit code 3\)/);
  });
});

describe('without a backend', () => {
  it('doctor reports distributed support', async () => {
    const r = await node([CLI, 'doctor', '--json']);
    const report = JSON.parse(r.stdout) as { distributed: { gloo: boolean; nccl: boolean; reason: string | null } };
    expect(report.distributed.gloo).toBe(hasGloo);
    expect(report.distributed.reason === null).toBe(hasGloo || report.distributed.nccl);
  });

  it('initDistributed names what is missing', () => {
    // (no WORLD_SIZE in the test environment: nothing comes from the launcher)
    expect(() => initDistributed({ rank: 0, worldSize: 1, masterAddr: '127.0.0.1' })).toThrow(/masterPort is not given/);
  });
});
