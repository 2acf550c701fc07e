// TensorBoard event files (train --tensorboard): the records are TensorBoard's own writer's, byte for
// byte (test/fixtures/tensorboard-events.py made them); a run's files hold metrics.jsonl's scalars;
// a resumed session supersedes what the interrupted one logged past its checkpoint. Where python has
// tensorboard, its own reader (EventAccumulator) reads a run directory back.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { encodeEvent, scalarsOf, tfRecord, type TensorBoardEvent } from '../../lib/train/tensorboard';
import type { RunConfigInput } from '../../lib/train/config';
import { Trainer } from '../../lib/train/trainer';
import { itWhen } from '../helpers';

const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'tensorboard-events.json'), 'utf8')) as {
  event: unknown;
  record: string;
}[];

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-tb-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('event records', () => {
  it("are TensorBoard's RecordWriter's bytes for the same Event (version, session start, scalars, int64 steps, float32 values)", () => {
    expect(fixture.length).toBeGreaterThanOrEqual(6);
    for (const c of fixture) expect(tfRecord(encodeEvent(c.event as TensorBoardEvent)).toString('hex')).toBe(c.record);
  });

  it("take a metrics record's scalars by tag; of events, only a growth's stage", () => {
    expect(
      scalarsOf({ step: 4, tokens: 8, flops: 1, compute: 1, loss: 3, lr: 0.1, gradNorm: null, valLoss: 2.5, lossScale: 1024 }),
    ).toEqual([
      { tag: 'train/loss', value: 3 },
      { tag: 'train/lr', value: 0.1 },
      { tag: 'train/loss_scale', value: 1024 },
      { tag: 'val/loss', value: 2.5 },
    ]);
    expect(scalarsOf({ event: 'growth', step: 10, stage: 1 })).toEqual([{ tag: 'stage', value: 1 }]);
    expect(scalarsOf({ event: 'interrupt', step: 10 })).toEqual([]);
  });
});

// (a reader for the checks below: the framing by hand, the Event with the field numbers of
// TensorBoard's event.proto)
const EventType = protobuf
  .parse(
    `syntax = "proto3";
message Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; SessionLog session_log = 7; }
message SessionLog { int32 status = 1; }
message Summary { message Value { string tag = 1; float simple_value = 2; } repeated Value value = 1; }`,
  )
  .root.lookupType('Event');

interface Read {
  step: number;
  fileVersion?: string;
  sessionStart?: boolean;
  scalars?: Record<string, number>;
}

function readEvents(path: string): Read[] {
  const bytes = readFileSync(path);
  const out: Read[] = [];
  for (let at = 0; at < bytes.length;) {
    const length = Number(bytes.readBigUInt64LE(at));
    const e = EventType.toObject(EventType.decode(bytes.subarray(at + 12, at + 12 + length)), { longs: Number }) as {
      step?: number;
      fileVersion?: string;
      sessionLog?: { status?: number };
      summary?: { value: { tag: string; simpleValue: number }[] };
    };
    out.push({
      step: e.step ?? 0,
      ...(e.fileVersion !== undefined ? { fileVersion: e.fileVersion } : {}),
      ...(e.sessionLog?.status === 1 ? { sessionStart: true } : {}),
      ...(e.summary !== undefined ? { scalars: Object.fromEntries(e.summary.value.map((v) => [v.tag, v.simpleValue])) } : {}),
    });
    at += 12 + length + 4;
  }
  return out;
}

const eventFiles = (run: string) =>
  readdirSync(run)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort()
    .map((f) => join(run, f));

const metrics = (run: string) =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const config = {
  model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 16 },
  batchSize: 2,
  seqLen: 16,
  steps: 8,
  eval: { interval: 4, batches: 1 },
  logInterval: 2,
  checkpointInterval: 4,
  lr: { peak: 3e-3, warmup: 2 },
  stages: [{ until: { steps: 4 }, grow: { op: 'depth', rewarmup: 1 } }],
} satisfies RunConfigInput;

/**
 * A run to step 4, resumed to step 8, then back at the checkpoint of step 4 and resumed to 8 again
 * (as after a crash at step 7, its last checkpoint at 4): three sessions' files.
 */
async function resumedTwice(): Promise<string> {
  const run = join(dir, 'run');
  const t = Trainer.create({ ...config, stages: [] });
  await t.train({ out: run, progress: false, tensorboard: true, steps: 4 });
  t.dispose();
  const atFour = join(dir, 'checkpoint-4');
  cpSync(join(run, 'checkpoint'), atFour, { recursive: true });
  for (let i = 0; i < 2; i++) {
    if (i === 1) {
      rmSync(join(run, 'checkpoint'), { recursive: true });
      cpSync(atFour, join(run, 'checkpoint'), { recursive: true });
    }
    const r = Trainer.resume(join(run, 'checkpoint'));
    await r.train({ out: run, progress: false, tensorboard: true });
    r.dispose();
  }
  return run;
}

describe('a run with tensorboard', () => {
  it("writes metrics.jsonl's scalars at their steps (float32), the growth's stage; none without the option", async () => {
    const run = join(dir, 'run');
    const t = Trainer.create(config);
    await t.train({ out: run, progress: false, tensorboard: true });
    t.dispose();
    const [file, ...more] = eventFiles(run);
    expect(more).toEqual([]);
    const events = readEvents(file);
    expect(events.slice(0, 2)).toEqual([
      { step: 0, fileVersion: 'brain.Event:2' },
      { step: 0, sessionStart: true },
    ]);
    const expected: Read[] = [];
    for (const r of metrics(run)) {
      const scalars: Record<string, number> = {};
      if (r.event === 'growth') scalars.stage = r.stage as number;
      if (r.event === undefined) {
        scalars['train/loss'] = Math.fround(r.loss as number);
        scalars['train/lr'] = Math.fround(r.lr as number);
        scalars['train/grad_norm'] = Math.fround(r.gradNorm as number);
        if (r.tokensPerSec !== undefined) scalars['train/tokens_per_sec'] = Math.fround(r.tokensPerSec as number);
        if (r.valLoss !== undefined) scalars['val/loss'] = Math.fround(r.valLoss as number);
      }
      if (Object.keys(scalars).length > 0) expected.push({ step: r.step as number, scalars });
    }
    expect(events.slice(2)).toEqual(expected);
    // a record each step (read back every 2), a growth at 4, evaluations at 4 and 8
    expect(expected.map((e) => e.step)).toEqual([1, 2, 3, 4, 4, 5, 6, 7, 8]);
    expect(expected.filter((e) => e.scalars?.['val/loss'] !== undefined).map((e) => e.step)).toEqual([4, 8]);

    const plain = join(dir, 'plain');
    const u = Trainer.create(config);
    await u.train({ out: plain, progress: false });
    u.dispose();
    expect(eventFiles(plain)).toEqual([]);
  });

  it('train --tensorboard writes them from the command line, and train --resume --tensorboard a second file', () => {
    const run = join(dir, 'cli');
    const train = (args: string[]) =>
      spawnSync(
        process.execPath,
        [join(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js'), 'train', ...args, '--no-progress', '--tensorboard'],
        {
          encoding: 'utf8',
          input: '',
          timeout: 120_000,
        },
      );
    const model = ['--preset', 'tiny', '--set', 'model.nLayer=1', '--set', 'model.nEmbd=16', '--set', 'model.nHead=2'];
    const r = train([...model, '--batch-size', '2', '--seq-len', '16', '--steps', '3', '--out', run]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [file] = eventFiles(run);
    expect(readEvents(file).map((e) => e.step)).toEqual([0, 0, 1, 2, 3]);
    expect(train(['--resume', run, '--steps', '4']).status).toBe(0);
    const files = eventFiles(run);
    expect(files).toHaveLength(2);
    expect(readEvents(files[1]).map((e) => e.step)).toEqual([0, 4, 4]);
  });

  it('a resumed session starts at its first new step, where what the interrupted one logged after the checkpoint is superseded', async () => {
    const run = await resumedTwice();
    const files = eventFiles(run);
    expect(files).toHaveLength(3);
    expect(files.map((f) => readEvents(f)[1])).toEqual([
      { step: 0, sessionStart: true },
      { step: 5, sessionStart: true },
      { step: 5, sessionStart: true },
    ]);
    expect(
      readEvents(files[2])
        .slice(2)
        .map((e) => e.step),
    ).toEqual([5, 6, 7, 8]);
  });
});

const python = process.env.STAGED_LM_PYTHON ?? 'python3';
const hasTensorBoard = spawnSync(python, ['-c', 'import tensorboard'], { stdio: 'ignore' }).status === 0;
const itTensorBoard = itWhen(hasTensorBoard, `${python} cannot import tensorboard (set STAGED_LM_PYTHON)`);

describe("TensorBoard's reader", () => {
  itTensorBoard('reads a resumed run as one curve: each step once, with the last session’s values', async () => {
    // the interrupted session's steps 5 … 8 are superseded: without the purge they would be read twice
    const run = await resumedTwice();
    const r = spawnSync(
      python,
      [
        '-c',
        `import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1]); acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()['scalars']}))`,
        run,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).not.toMatch(/Traceback/);
    const read = JSON.parse(r.stdout) as Record<string, [number, number][]>;
    const log = metrics(run).filter((m) => m.event === undefined);
    expect(read['train/loss']).toEqual(log.map((m) => [m.step, Math.fround(m.loss as number)]));
    expect(read['val/loss']).toEqual(log.filter((m) => m.valLoss !== undefined).map((m) => [m.step, Math.fround(m.valLoss as number)]));
    expect(read['train/loss'].map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
