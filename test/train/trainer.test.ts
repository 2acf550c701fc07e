// The trainer end to end on CPU: exact resume, checkpoints in Hugging Face's layout, divergence
// detection, and that the tiny preset learns on the embedded corpus.
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, TrainingDivergedError, type GrowthEvent } from '../../lib/train/trainer';
import { autoPrecision } from '../../lib/train/precision';
import { pastHorizon } from '../../lib/optim/schedule';
import type { Device, Dtype } from '../../lib/dtype';
import { loadSafetensors, saveSafetensors } from '../../lib/io/safetensors';
import type { Tensor } from '../../lib/tensor';
import { parseRunConfig } from '../../lib/train/config';
import { loadCheckpoint, readCheckpointState } from '../../lib/train/checkpoint';
import { readRun, stageTable } from '../../lib/train/report';
import type { StepRecord } from '../../lib/train/metrics';
import { noGrad } from '../../lib';
import { writeShard } from '../../lib/data';

const small = {
  model: { nLayer: 1, nHead: 2, nEmbd: 32, contextLength: 32 },
  batchSize: 2,
  seqLen: 32,
  eval: { interval: 0, batches: 2 },
  logInterval: 5,
  lr: { peak: 3e-3, total: 60, warmup: 5 },
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'slm-train-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function losses(t: Trainer, out: string): Promise<number[]> {
  const seen: number[] = [];
  await t.train({ out, progress: false, onRecord: (r) => seen.push(r.loss) });
  return seen;
}

/** safetensors header read by hand: 8-byte little-endian length, then JSON. */
function header(path: string): Record<string, { dtype: string; shape: number[] }> {
  const fd = openSync(path, 'r');
  const len = Buffer.alloc(8);
  readSync(fd, len, 0, 8, 0);
  const json = Buffer.alloc(Number(len.readBigUInt64LE(0)));
  readSync(fd, json, 0, json.length, 8);
  closeSync(fd);
  return JSON.parse(json.toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
}

describe('checkpointMinutes', () => {
  /** The steps at which the run saved its checkpoint (not snapshots). */
  async function checkpointSteps(cfg: object): Promise<{ steps: number[]; losses: number[] }> {
    const t = Trainer.create({ ...small, steps: 25, ...cfg });
    const steps: number[] = [];
    const save = t.save.bind(t);
    t.save = (d, o) => {
      if (d.endsWith('checkpoint')) steps.push(t.progression.step);
      save(d, o);
    };
    const seen = await losses(t, join(dir, String(steps.length) + Math.random()));
    t.dispose();
    return { steps, losses: seen };
  }

  it('saves when that much time has passed, at steps every rank reaches together; what the run computes is the same', async () => {
    // (a minute's millionth: due at every check — the log steps, every 5, and every 10th)
    const timed = await checkpointSteps({ checkpointMinutes: 1e-6 });
    expect(timed.steps).toEqual([5, 10, 15, 20, 25]);
    const never = await checkpointSteps({ checkpointMinutes: 0 });
    expect(never.steps).toEqual([25]);
    expect(timed.losses).toEqual(never.losses);
    // the default, 30 minutes, does not come due in a short run
    expect((await checkpointSteps({})).steps).toEqual([25]);
    // on a clock of a minute a step, every 12 minutes: due at the check at step 15, then counted
    // from that save (due from step 27: not at 20 or 25)
    let step = 0;
    const clock = jest.spyOn(performance, 'now').mockImplementation(() => step * 60_000);
    try {
      const t = Trainer.create({ ...small, steps: 25, checkpointMinutes: 12 });
      const saved: number[] = [];
      const save = t.save.bind(t);
      t.save = (d, o) => {
        if (d.endsWith('checkpoint')) saved.push(t.progression.step);
        save(d, o);
      };
      await t.train({ out: join(dir, 'clock'), progress: false, onRecord: (r) => (step = r.step) });
      t.dispose();
      expect(saved).toEqual([15, 25]);
    } finally {
      clock.mockRestore();
    }
    expect(parseRunConfig({ steps: 1 }).checkpointMinutes).toBe(30);
  });
});

describe('resume', () => {
  it('train 60 steps == train 30 + resume 30 (same losses, bit for bit)', async () => {
    const full = Trainer.create({ ...small, steps: 60, model: { ...small.model, dropout: { attention: 0.1, residual: 0.1 } } });
    const a = await losses(full, join(dir, 'a'));
    full.dispose();

    const first = Trainer.create({ ...small, steps: 30, model: { ...small.model, dropout: { attention: 0.1, residual: 0.1 } } });
    const b1 = await losses(first, join(dir, 'b'));
    first.dispose();
    const second = Trainer.resume(join(dir, 'b', 'checkpoint'), { steps: 60 });
    const b2 = await losses(second, join(dir, 'b'));
    second.dispose();

    expect(a).toHaveLength(60);
    expect([...b1, ...b2]).toEqual(a);
    const lines = readFileSync(join(dir, 'b', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(60);
  });
});

describe('checkpoints', () => {
  it('have Hugging Face GPT-2 tensor names and shapes, and load back bit-identically', async () => {
    const t = Trainer.create({ ...small, steps: 3 });
    await t.train({ out: dir, progress: false });
    const ckpt = join(dir, 'checkpoint');
    for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'state.json'])
      expect(existsSync(join(ckpt, f))).toBe(true);
    const h = header(join(ckpt, 'model.safetensors'));
    expect(h['transformer.wte.weight']).toEqual({ dtype: 'F32', shape: [50304, 32], data_offsets: expect.any(Array) });
    expect(h['transformer.h.0.attn.c_attn.weight'].shape).toEqual([32, 96]);
    expect(h['transformer.h.0.mlp.c_proj.weight'].shape).toEqual([128, 32]);
    expect(h['transformer.ln_f.weight'].shape).toEqual([32]);
    expect(h['lm_head.weight']).toBeUndefined();
    const opt = header(join(ckpt, 'optimizer.safetensors'));
    expect(opt['transformer.wte.weight.exp_avg'].shape).toEqual([50304, 32]);
    expect(opt['transformer.wte.weight.exp_avg_sq'].shape).toEqual([50304, 32]);
    const hf = JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(hf).toMatchObject({ model_type: 'gpt2', n_embd: 32, n_layer: 1, n_head: 2, n_positions: 32, vocab_size: 50304 });

    const loaded = loadCheckpoint(ckpt);
    for (const p of t.model.namedParameters()) {
      expect(loaded.params[p.name].toNumberArray()).toEqual(p.tensor.toNumberArray());
    }
    expect(loaded.state.step).toBe(3);
    t.dispose();
  });

  it('refuse a directory that is not a checkpoint, naming what is missing', () => {
    expect(() => loadCheckpoint(dir)).toThrow(/is not a staged-lm checkpoint: config.json is missing/);
  });
});

describe('divergence', () => {
  it('reports the step at which the loss became NaN', async () => {
    const t = Trainer.create({ ...small, steps: 10, logInterval: 2 });
    const out = join(dir, 'nan');
    await t.train({ out, progress: false });
    // poison a weight, then train on: the next read-back must name the first bad step
    noGrad(() => t.model.transformer.wte.weight.fill_(NaN));
    const err = await t.train({ out, progress: false, steps: 14 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingDivergedError);
    expect((err as TrainingDivergedError).step).toBe(11);
    expect((err as Error).message).toMatch(/loss is NaN at step 11/);
    const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; loss: number | null });
    expect(records.find((r) => r.loss === null)?.step).toBe(11);
    t.dispose();
  });

  it('an update that diverges at a checkpoint step does not replace the last good checkpoint', async () => {
    // the grown stage's rate explodes the weights; step 3's loss (before its update) is still finite
    const t = Trainer.create({
      ...small,
      steps: 10,
      checkpointInterval: 1,
      logInterval: 5,
      lr: { peak: 1e-3, warmup: 0, total: 10 },
      stages: [{ until: { steps: 2 }, grow: { op: 'depth', peakLr: 1e36, rewarmup: 0 } }],
    });
    const out = join(dir, 'exploded');
    const err = await t.train({ out, progress: false }).catch((e: unknown) => e);
    t.dispose();
    expect(err).toBeInstanceOf(TrainingDivergedError);
    expect((err as Error).message).toMatch(/training diverged: the parameters blew up \(their norm is not finite\) at step 3/);
    // the checkpoint is the grown state of step 2, finite
    expect(readCheckpointState(join(out, 'checkpoint')).step).toBe(2);
    const ck = loadCheckpoint(join(out, 'checkpoint'));
    for (const w of Object.values(ck.params)) expect(Number.isFinite(w.abs().max().item())).toBe(true);
    for (const x of [...Object.values(ck.params), ...Object.values(ck.moments!)]) x.dispose();
  });
});

describe('activation checkpointing', () => {
  it('trains as the plain step does, dropout masks and gradient accumulation included; not with cudaGraph', async () => {
    const cfg = { ...small, steps: 6, gradAccum: 2, model: { ...small.model, dropout: { embedding: 0.1, attention: 0.1, residual: 0.1 } } };
    // (one after the other: creating a trainer seeds the generators)
    const run = async (activationCheckpointing: boolean) => {
      const t = Trainer.create({ ...cfg, activationCheckpointing });
      const seen = await losses(t, join(dir, String(activationCheckpointing)));
      t.dispose();
      return seen;
    };
    const plain = await run(false);
    const recomputed = await run(true);
    expect(recomputed).toHaveLength(6);
    expect(recomputed).toEqual(plain); // (on the CPU the very same numbers)
    expect(() => parseRunConfig({ ...cfg, device: 'cuda', cudaGraph: true, gradAccum: 1, activationCheckpointing: true })).toThrow(
      /activationCheckpointing: cudaGraph captures one plain forward and backward: it does not take activationCheckpointing/,
    );
  });
});

describe('the best snapshot', () => {
  // a rate high enough that the validation loss goes up and down: 10.11, 8.99, 9.09, 8.67, 8.81
  const bumpy = { ...small, eval: { interval: 2, batches: 2 }, lr: { kind: 'constant' as const, peak: 0.05, warmup: 0 } };

  it('keeps the state of the lowest validation loss on the interval; a resumed run keeps the same one', async () => {
    const whole = Trainer.create({ ...bumpy, steps: 10, snapshots: { best: true } });
    const seen: StepRecord[] = [];
    const r = await whole.train({ out: join(dir, 'a'), progress: false, onRecord: (x) => seen.push(x) });
    whole.dispose();
    const vals = seen.filter((x) => x.valLoss !== undefined).map((x) => [x.step, x.valLoss!] as const);
    const [bestStep, bestLoss] = vals.reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(bestStep).not.toBe(10); // (the curve is not monotone here: the test means something)
    expect(r.best).toEqual({ step: bestStep, valLoss: bestLoss, snapshot: join(dir, 'a', 'snapshots', 'best') });
    expect(readCheckpointState(join(dir, 'a', 'snapshots', 'best')).step).toBe(bestStep);
    // its weights score that loss again
    const back = Trainer.resume(join(dir, 'a', 'snapshots', 'best'));
    expect(back.evaluate()).toBe(bestLoss);
    back.dispose();

    // a 5-step run (its last step's evaluation counts), resumed to 10 steps
    const first = Trainer.create({ ...bumpy, steps: 5, snapshots: { best: true } });
    await first.train({ out: join(dir, 'b'), progress: false });
    first.dispose();
    const second = Trainer.resume(join(dir, 'b', 'checkpoint'), { steps: 10 });
    const r2 = await second.train({ out: join(dir, 'b'), progress: false });
    second.dispose();
    expect(r2.best).toEqual({ ...r.best, snapshot: join(dir, 'b', 'snapshots', 'best') });
    expect(readCheckpointState(join(dir, 'b', 'snapshots', 'best')).step).toBe(bestStep);

    // a shorter session of the 10-step run (train({ steps: 3 })): its evaluation at step 3, off the
    // interval, is no candidate, though lower than step 2's
    const part = Trainer.create({ ...bumpy, steps: 10, snapshots: { best: true } });
    const partSeen: StepRecord[] = [];
    const r3 = await part.train({ out: join(dir, 'c'), progress: false, steps: 3, onRecord: (x) => partSeen.push(x) });
    const at3 = partSeen.find((x) => x.step === 3)!.valLoss!;
    expect(at3).toBeLessThan(vals[0][1]);
    expect(r3.best).toMatchObject({ step: 2 });
    const r4 = await part.train({ out: join(dir, 'c'), progress: false });
    part.dispose();
    expect(r4.best).toEqual({ ...r.best, snapshot: join(dir, 'c', 'snapshots', 'best') });
  });

  it('eval.patience stops the run after that many evaluations without a lower validation loss; a resume goes on', async () => {
    // 10.11 at step 2, 8.99 at 4, 9.09 at 6: one evaluation without improvement
    const t = Trainer.create({ ...bumpy, steps: 10, eval: { ...bumpy.eval, patience: 1 }, snapshots: { best: true } });
    const r = await t.train({ out: join(dir, 'es'), progress: false });
    t.dispose();
    expect(r).toMatchObject({ step: 6, stoppedEarly: true, interrupted: false, best: { step: 4 } });
    expect(readCheckpointState(join(dir, 'es', 'checkpoint')).step).toBe(6);
    const events = readFileSync(join(dir, 'es', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event?: string; step: number })
      .filter((e) => e.event !== undefined);
    expect(events).toEqual([expect.objectContaining({ event: 'early-stop', step: 6, best: expect.objectContaining({ step: 4 }) })]);
    expect(stageTable(readRun(join(dir, 'es')))).toMatch(/\nstopped early at step 6 \(eval\.patience\)$/);
    // resumed, it improves at step 8 and reaches its last step (no stop at the end)
    const more = Trainer.resume(join(dir, 'es', 'checkpoint'), { steps: 10 });
    const r2 = await more.train({ out: join(dir, 'es'), progress: false });
    more.dispose();
    expect(r2).toMatchObject({ step: 10, stoppedEarly: false, best: { step: 8 } });
    expect(stageTable(readRun(join(dir, 'es')))).not.toMatch(/stopped early/); // (it went on past the stop)
    // a checkpoint with skipped updates in a row, resumed where the loss is not scaled (another
    // device under 'auto'): no run of skips goes on, and the stop's note does not ask for a scale
    const part = Trainer.create({ ...bumpy, steps: 10, eval: { ...bumpy.eval, patience: 1 } });
    await part.train({ out: join(dir, 'skips'), progress: false, steps: 4 });
    part.dispose();
    const statePath = join(dir, 'skips', 'checkpoint', 'state.json');
    const saved = JSON.parse(readFileSync(statePath, 'utf8')) as { extra: Record<string, unknown> };
    writeFileSync(statePath, JSON.stringify({ ...saved, extra: { ...saved.extra, skippedInARow: 3 } }));
    const unscaled = Trainer.resume(join(dir, 'skips', 'checkpoint'));
    expect(unscaled.scaler).toBeNull();
    expect(await unscaled.train({ out: join(dir, 'skips'), progress: false })).toMatchObject({ step: 6, stoppedEarly: true });
    unscaled.dispose();
    expect(() => parseRunConfig({ ...small, steps: 2, eval: { interval: 0, patience: 2 } })).toThrow(
      /eval\.patience: early stopping counts evaluations: it needs eval\.interval > 0/,
    );
  });

  it('a best snapshot saved after the checkpoint a run resumes from is set aside; one in another run directory is not reported', async () => {
    const t = Trainer.create({ ...bumpy, steps: 10, snapshots: { best: true, interval: 4 } });
    await t.train({ out: join(dir, 'k'), progress: false });
    t.dispose();
    // a kill after step 8's best save: the checkpoint of step 4 is what a resume finds
    rmSync(join(dir, 'k', 'checkpoint'), { recursive: true });
    cpSync(join(dir, 'k', 'snapshots', 'step-000004'), join(dir, 'k', 'checkpoint'), { recursive: true });
    const resumed = Trainer.resume(join(dir, 'k', 'checkpoint'), { steps: 10 });
    const r = await resumed.train({ out: join(dir, 'k'), progress: false, steps: 6 });
    resumed.dispose();
    expect(r.best).toEqual({ step: 4, valLoss: expect.any(Number), snapshot: null });
    expect(readCheckpointState(join(dir, 'k', 'snapshots', 'abandoned-best-step-000008')).step).toBe(8);
    // resumed into another directory: its best is the old run's, whose snapshot is not there
    // (to step 6, whose 9.09 is no better than step 4's 8.99)
    const elsewhere = Trainer.resume(join(dir, 'k', 'snapshots', 'step-000004'), { steps: 6 });
    const r2 = await elsewhere.train({ out: join(dir, 'k2'), progress: false });
    elsewhere.dispose();
    expect(r2.best).toMatchObject({ step: 4, snapshot: null });
  });

  it('the evaluation at the last step is a candidate; patience restarts at a growth', async () => {
    // steps 7 (off the interval of 2): the loss at step 7 is a candidate
    const t = Trainer.create({ ...bumpy, steps: 7, snapshots: { best: true } });
    const seen: StepRecord[] = [];
    const r = await t.train({ out: join(dir, 'last'), progress: false, onRecord: (x) => seen.push(x) });
    t.dispose();
    const vals = seen.filter((x) => x.valLoss !== undefined).map((x) => [x.step, x.valLoss!] as const);
    expect(vals.map(([s]) => s)).toEqual([2, 4, 6, 7]);
    const [bestStep] = vals.reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(r.best!.step).toBe(bestStep);
    // a growth at step 6 (after 4 without improvement: one evaluation) restarts the count: no stop at 6 or 8
    const g = Trainer.create({
      ...bumpy,
      steps: 10,
      eval: { ...bumpy.eval, patience: 2 },
      stages: [{ until: { steps: 6 }, grow: { op: 'depth' } }],
    });
    const rg = await g.train({ out: join(dir, 'grown'), progress: false });
    g.dispose();
    expect(rg.step).toBe(10);
  });

  it("patience counts the interval's evaluations only: a run extended after its last step stops where an uninterrupted one does", async () => {
    // uninterrupted with patience 2: 10.11, 8.99, 9.09 (1), 8.67, 8.81 (1) — no stop. A 5-step run
    // evaluates at its last step too (9.10, off the interval): counted, it would stop the extension at 6
    const first = Trainer.create({ ...bumpy, steps: 5, eval: { ...bumpy.eval, patience: 2 } });
    await first.train({ out: join(dir, 'p'), progress: false });
    first.dispose();
    const more = Trainer.resume(join(dir, 'p', 'checkpoint'), { steps: 10 });
    const r = await more.train({ out: join(dir, 'p'), progress: false });
    more.dispose();
    expect(r).toMatchObject({ step: 10, stoppedEarly: false });
  });

  it('needs evaluations', () => {
    expect(() => parseRunConfig({ ...small, steps: 2, snapshots: { best: true } })).toThrow(
      /snapshots\.best: the best snapshot is chosen at evaluations: it needs eval\.interval > 0/,
    );
  });
});

describe('wsd', () => {
  it('a staged wsd run ending at its step count still decays: the decay moves to the run end after the growth', async () => {
    const t = Trainer.create({
      ...small,
      steps: 40,
      lr: { kind: 'wsd', peak: 1e-3, warmup: 4 },
      stages: [{ until: { steps: 20 }, grow: { op: 'depth', rewarmup: 2 } }],
    });
    const seen: StepRecord[] = [];
    await t.train({ out: join(dir, 'wsd'), progress: false, onRecord: (x) => seen.push(x) });
    expect(t.schedule).toMatchObject({ kind: 'wsd', total: t.progression.schedulePos });
    t.dispose();
    const lr = new Map(seen.map((x) => [x.step, x.lr]));
    expect(lr.get(30)).toBe(1e-3); // stable
    expect(lr.get(40)).toBeCloseTo(1e-4, 12); // the final rate at the last step
    expect(lr.get(38)!).toBeLessThan(1e-3);
  });
});

describe('wsd on resuming', () => {
  it('a wsd run resumed with more steps while at its peak moves its decay to the new end at once (before train())', async () => {
    const t = Trainer.create({ ...small, steps: 20, lr: { kind: 'wsd', peak: 1e-3, warmup: 2 } });
    await t.train({ out: join(dir, 'w'), progress: false, steps: 10 });
    t.dispose();
    const more = Trainer.resume(join(dir, 'w', 'checkpoint'), { steps: 40 });
    expect(more.schedule).toMatchObject({ kind: 'wsd', total: 40 });
    expect(pastHorizon(more.schedule, 11, 40)).toEqual({ atFinal: 0, rewarming: 0 });
    more.dispose();
  });
});

describe('loss scaling', () => {
  /** The records of a run (all of them: steps, skipped flags, scales). */
  async function records(t: Trainer, out: string): Promise<StepRecord[]> {
    const seen: StepRecord[] = [];
    await t.train({ out, progress: false, onRecord: (r) => seen.push(r) });
    return seen;
  }

  it('a float32 run that scales its loss (by a power of two) trains to the same losses, bit for bit, gradient accumulation and dropout included', async () => {
    const cfg = { ...small, steps: 12, gradAccum: 2, model: { ...small.model, dropout: { attention: 0.1, residual: 0.1 } } };
    const run = async (enabled: boolean) => {
      const t = Trainer.create({ ...cfg, lossScale: { enabled } });
      const seen = await records(t, join(dir, String(enabled)));
      t.dispose();
      return seen;
    };
    const plain = await run(false);
    const scaled = await run(true);
    expect(scaled.map((r) => [r.loss, r.gradNorm])).toEqual(plain.map((r) => [r.loss, r.gradNorm]));
    expect(scaled.some((r) => r.skipped === true)).toBe(false);
    expect(scaled.filter((r) => r.lossScale !== undefined).map((r) => r.lossScale)).toEqual([65536, 65536, 65536]);
    expect(plain.every((r) => r.lossScale === undefined)).toBe(true);
  });

  it('updates whose scaled gradients overflow are skipped, the scale backs off and grows back, and a resumed run goes on exactly', async () => {
    // 2^66 times gradients of norm ~1 overflows the norm's float32 sum of squares (above 1.8e19):
    // the first steps are skipped until the scale is small enough, then it grows back every 4 steps
    // (with a depth growth at step 14: the grown optimizer counts the updates made)
    const cfg = {
      ...small,
      steps: 24,
      lossScale: { enabled: true, init: 2 ** 66, growthInterval: 4 },
      stages: [{ until: { steps: 14 }, grow: { op: 'depth' as const } }],
    };
    const whole = Trainer.create(cfg);
    const growths: GrowthEvent[] = [];
    const a: StepRecord[] = [];
    await whole.train({ out: join(dir, 'a'), progress: false, onRecord: (r) => a.push(r), onGrowth: (g) => growths.push(g) });
    const wholeResult = whole.skippedUpdates;
    expect(whole.modelConfig.nLayer).toBe(2);
    whole.dispose();
    expect(growths).toHaveLength(1);
    expect(growths[0].lossAfter).toBeCloseTo(growths[0].lossBefore, 5);
    const skipped = a.filter((r) => r.skipped === true).map((r) => r.step);
    expect(skipped.slice(0, 2)).toEqual([1, 2]); // (2^66 and 2^65 overflow)
    expect(skipped.length).toBeGreaterThan(3); // (and growing back to an overflowing scale again, later)
    expect(skipped.some((s) => s > 8)).toBe(true);
    expect(wholeResult).toBe(skipped.length);
    for (const r of a.filter((x) => x.skipped === true)) expect(r.gradNorm).toBe(Infinity);
    expect(stageTable(readRun(join(dir, 'a')))).toMatch(
      new RegExp(`\\n${skipped.length} update\\(s\\) skipped under loss scaling \\(gradients overflowed\\)$`),
    );
    // the checkpoint counts the updates made: the bias corrections of a resumed run go on from it
    const state = readCheckpointState(join(dir, 'a', 'checkpoint'));
    expect(state.optimizerStep).toBe(24 - skipped.length);
    expect(state.extra).toMatchObject({ skippedUpdates: skipped.length, lossScale: { scale: a[a.length - 1].lossScale } });

    const first = Trainer.create({ ...cfg, steps: 10 });
    const b1 = await records(first, join(dir, 'b'));
    first.dispose();
    const second = Trainer.resume(join(dir, 'b', 'checkpoint'), { steps: 24 });
    const b2 = await records(second, join(dir, 'b'));
    expect(second.skippedUpdates).toBe(skipped.length);
    second.dispose();
    const strip = (rs: StepRecord[]) => rs.map(({ loss, gradNorm, skipped: s, lossScale }) => ({ loss, gradNorm, s, lossScale }));
    expect(strip([...b1, ...b2])).toEqual(strip(a));
  });

  it('a run whose updates are all skipped stops as diverged after 50 in a row (the scale is then no longer the cause)', async () => {
    // 2^126 halved 50 times is 2^76: times gradients of norm ~1, still past the norm's float32 range
    const t = Trainer.create({ ...small, steps: 80, logInterval: 10, lossScale: { enabled: true, init: 2 ** 126 } });
    const err = await t.train({ out: join(dir, 'nan'), progress: false }).catch((e: unknown) => e);
    t.dispose();
    expect(err).toBeInstanceOf(TrainingDivergedError);
    expect((err as TrainingDivergedError).what).toBe('gradients');
    expect((err as Error).message).toMatch(
      /training diverged: the gradients overflowed at 50 steps in a row although the loss scale halved each time \(down to .*\): they are not finite \(NaN\), or the scale began far too high \(lossScale\.init; 2\^16 by default\) at step 50/,
    );
    expect(existsSync(join(dir, 'nan', 'checkpoint'))).toBe(false);
  });

  it("precision 'auto' is bf16 on GPUs with bf16 tensor cores (compute capability 8.0+), fp16 on older ones, fp32 on the CPU", () => {
    const gpus = [
      { index: 0, computeCapability: '7.0' }, // V100
      { index: 1, computeCapability: '7.5' }, // T4
      { index: 2, computeCapability: '8.0' }, // A100
      { index: 3, computeCapability: '9.0' }, // H100
    ];
    expect(['cuda', 'cuda:1', 'cuda:2', 'cuda:3'].map((d) => autoPrecision(d as Device, gpus))).toEqual(['fp16', 'fp16', 'bf16', 'bf16']);
    expect(autoPrecision('cpu')).toBe('fp32');
    const t = Trainer.create({ ...small, steps: 1 });
    expect([t.precision, t.autocast, t.scaler]).toEqual(['fp32', null, null]);
    t.dispose();
  });

  it('precision fp16 needs CUDA; loss scaling is not captured in a CUDA graph', () => {
    expect(() => Trainer.create({ ...small, steps: 2, precision: 'fp16' })).toThrow(/precision fp16 needs a CUDA device/);
    expect(() => parseRunConfig({ ...small, steps: 2, device: 'cuda', cudaGraph: true, precision: 'fp16' })).toThrow(
      /cudaGraph: cudaGraph does not capture loss scaling/,
    );
    expect(() => parseRunConfig({ ...small, steps: 2, lossScale: { growthFactor: 0.5 } })).toThrow(/lossScale\.growthFactor/);
    // (on by default for fp16 only)
    expect(parseRunConfig({ ...small, steps: 2, precision: 'fp16' }).lossScale).toEqual({
      init: 65536,
      growthFactor: 2,
      backoffFactor: 0.5,
      growthInterval: 2000,
    });
  });
});

describe('checkpoints cut short', () => {
  it('a kill between the two renames of a save loses nothing: the newer complete save is put back; a later save clears the leftovers', async () => {
    const t = Trainer.create({ ...small, steps: 4 });
    const out = join(dir, 'run');
    await t.train({ out, progress: false });
    expect(readRun(out).stages.map((st) => st.size)).toEqual(['1×32']); // (a run without growths: its checkpoint's size)
    const ckpt = join(out, 'checkpoint');
    // what saveCheckpoint leaves when killed between renameSync(dir, old) and renameSync(tmp, dir):
    // the previous save as .old, the new one under its temporary name (a dead writer's pid), and
    // perhaps an earlier save cut short while writing its files
    const dead = 99999999;
    const previous = join(out, `.checkpoint.tmp-${dead}-aaaa.old`);
    const newer = join(out, `.checkpoint.tmp-${dead}-aaaa`);
    const torn = join(out, `.checkpoint.tmp-${dead}-bbbb`);
    cpSync(ckpt, newer, { recursive: true });
    const state = JSON.parse(readFileSync(join(newer, 'state.json'), 'utf8')) as { step: number };
    writeFileSync(join(newer, 'state.json'), JSON.stringify({ ...state, step: 9 }));
    renameSync(ckpt, previous);
    mkdirSync(torn);
    writeFileSync(join(torn, 'config.json'), '{}');
    expect(readCheckpointState(ckpt).step).toBe(9);
    expect(readdirSync(out).sort()).toEqual([
      '.checkpoint.tmp-99999999-aaaa.old',
      '.checkpoint.tmp-99999999-bbbb',
      'checkpoint',
      'metrics.jsonl',
      'report.svg',
    ]);
    t.save(ckpt);
    expect(readdirSync(out).sort()).toEqual(['checkpoint', 'metrics.jsonl', 'report.svg']);
    t.dispose();
  });

  it('names a checkpoint or log file of valid JSON but the wrong shape (was: a TypeError naming no file)', async () => {
    const t = Trainer.create({ ...small, steps: 2, stages: [{ until: { steps: 1 }, grow: { op: 'depth', rewarmup: 0 } }] });
    const out = join(dir, 'run');
    await t.train({ out, progress: false });
    t.dispose();
    const copy = (name: string, edit: (dir: string) => void) => {
      const d = join(dir, name);
      cpSync(join(out, 'checkpoint'), d, { recursive: true });
      edit(d);
      return d;
    };
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')) as Record<string, unknown>;
    const configNull = copy('config-null', (d) => writeFileSync(join(d, 'config.json'), 'null'));
    const stateArray = copy('state-array', (d) => writeFileSync(join(d, 'state.json'), '[]'));
    const noRng = copy('no-rng', (d) => writeFileSync(join(d, 'state.json'), JSON.stringify({ ...state, rng: undefined })));
    expect(() => loadCheckpoint(configNull)).toThrow(
      /config-null.config\.json: not a staged-lm checkpoint's config\.json \(a JSON object is expected, got null\)/,
    );
    expect(() => readCheckpointState(stateArray)).toThrow(
      /state-array.state\.json: not a staged-lm checkpoint's state\.json \(a JSON object is expected, got an array\)/,
    );
    expect(() => Trainer.resume(noRng)).toThrow(/no-rng.state\.json: a damaged or edited checkpoint state \(rng: /);
    // metrics.jsonl: a line that is not a record, a growth without its sizes
    const log = join(out, 'metrics.jsonl');
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    writeFileSync(log, [lines[0], 'null', ...lines.slice(1)].join('\n') + '\n');
    expect(() => readRun(out)).toThrow(/metrics\.jsonl line 2: not a record this log's writer makes \(a JSON object\)/);
    const growth = lines.findIndex((l) => l.includes('"event":"growth"'));
    const { from, ...rest } = JSON.parse(lines[growth]) as Record<string, unknown>;
    expect(from).toBeDefined();
    writeFileSync(log, [...lines.slice(0, growth), JSON.stringify(rest), ...lines.slice(growth + 1)].join('\n') + '\n');
    expect(() => readRun(out)).toThrow(new RegExp(`metrics\\.jsonl line ${growth + 1}: not a record this log's writer makes \\(from: `));
  });

  it('refuses an edited trainer state, a tensor of another dtype and a stray moment, naming the file and field', async () => {
    const t = Trainer.create({ ...small, steps: 4, eval: { interval: 2, batches: 1 } });
    const out = join(dir, 'run');
    await t.train({ out, progress: false });
    t.dispose();
    const ckpt = join(out, 'checkpoint');
    const state = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as {
      rng: { cpu: string };
      extra: Record<string, unknown> & { progression: Record<string, unknown> };
    };
    const copy = (name: string, edit: (d: string) => void) => {
      const d = join(dir, name);
      cpSync(ckpt, d, { recursive: true });
      edit(d);
      return d;
    };
    const edited = (name: string, edit: (s: typeof state) => void) =>
      copy(name, (d) => {
        const s = structuredClone(state);
        edit(s);
        writeFileSync(join(d, 'state.json'), JSON.stringify(s));
      });
    // (unchecked, a null step restarted the run at 0 and dropped its whole log; another step rewound it)
    expect(() => Trainer.resume(edited('null-step', (s) => (s.extra.progression.step = null)))).toThrow(
      /null-step.state\.json: a damaged or edited checkpoint state \(extra\.progression\.step: /,
    );
    expect(() => Trainer.resume(edited('rewound', (s) => (s.extra.progression.step = 2)))).toThrow(
      /rewound.state\.json: extra\.progression\.step \(2\) is not the checkpoint's step \(4\)/,
    );
    expect(() => Trainer.resume(edited('no-progression', (s) => (s.extra.progression = {})))).toThrow(/extra\.progression\.step: /);
    expect(() => Trainer.resume(edited('history', (s) => (s.extra.valHistory = 5)))).toThrow(/\(extra\.valHistory: /);
    expect(() => Trainer.resume(edited('late', (s) => (s.extra.best = { step: 9, valLoss: 1 })))).toThrow(
      /late.state\.json: extra\.best\.step \(9\) is after the checkpoint's step 4/,
    );
    expect(() => Trainer.resume(edited('rng', (s) => (s.rng.cpu = 'AAAA')))).toThrow(
      /rng.state\.json: rng is not a random generator state this libtorch restores/,
    );
    // tensors: another dtype (an int64 bias changed the loss, a float16 moment too), a stray moment
    const rewrite = (file: string, edit: (tensors: Record<string, Tensor>) => void) => (d: string) => {
      const tensors = loadSafetensors(join(d, file));
      edit(tensors);
      saveSafetensors(join(d, file), tensors);
      for (const x of Object.values(tensors)) x.dispose();
    };
    const retype = (name: string, dtype: Dtype) => (tensors: Record<string, Tensor>) => (tensors[name] = tensors[name].to({ dtype }));
    const bias = 'transformer.ln_f.bias';
    for (const dtype of ['int64', 'float64'] as const)
      expect(() => Trainer.resume(copy(`bias-${dtype}`, rewrite('model.safetensors', retype(bias, dtype))))).toThrow(
        new RegExp(`bias-${dtype}.model\\.safetensors: tensor '${bias}' is ${dtype} but the model's is float32`),
      );
    expect(() => Trainer.resume(copy('moment-f16', rewrite('optimizer.safetensors', retype(`${bias}.exp_avg_sq`, 'float16'))))).toThrow(
      new RegExp(
        `moment-f16.optimizer\\.safetensors: moment tensor '${bias}\\.exp_avg_sq' is float16: the moments of '${bias}' are float32`,
      ),
    );
    const stray = rewrite('optimizer.safetensors', (tensors) => (tensors['foo.exp_avg'] = tensors[`${bias}.exp_avg`].clone()));
    expect(() => Trainer.resume(copy('stray', stray))).toThrow(
      /stray.optimizer\.safetensors: unexpected moment tensor 'foo\.exp_avg': no parameter of the model has it/,
    );
    // the checkpoint itself resumes
    Trainer.resume(ckpt).dispose();
  });

  it("a reader that finds a live writer between its renames waits for its save, and leaves the writer's rename to it", async () => {
    const t = Trainer.create({ ...small, steps: 2 });
    const out = join(dir, 'run');
    await t.train({ out, progress: false });
    t.dispose();
    const ckpt = join(out, 'checkpoint');
    // a writer (another process) that moved the old save aside and renames its new one in 500 ms
    const writer = spawn(
      process.execPath,
      [
        '-e',
        'const fs = require("fs"); process.stdin.once("data", (d) => { const [tmp, dst] = JSON.parse(d); setTimeout(() => { fs.renameSync(tmp, dst); process.exit(0); }, 500); });',
      ],
      { stdio: ['pipe', 'inherit', 'inherit'] },
    );
    const exited = new Promise<number | null>((res) => writer.on('exit', (code) => res(code)));
    const newer = join(out, `.checkpoint.tmp-${writer.pid}-cccc`);
    cpSync(ckpt, newer, { recursive: true });
    const state = JSON.parse(readFileSync(join(newer, 'state.json'), 'utf8')) as { step: number };
    writeFileSync(join(newer, 'state.json'), JSON.stringify({ ...state, step: 7 }));
    renameSync(ckpt, `${newer}.old`);
    writer.stdin.write(JSON.stringify([newer, ckpt]));
    expect(readCheckpointState(ckpt).step).toBe(7); // waited for the writer's rename: not taken over
    expect(await exited).toBe(0); // and the writer's rename succeeded
  });
});

describe('what a run reports', () => {
  it('a run resumed into another directory starts its log and report where it resumed', async () => {
    const t = Trainer.create({ ...small, steps: 4, stages: [{ until: { steps: 2 }, grow: { op: 'depth', rewarmup: 0 } }] });
    await t.train({ out: join(dir, 'first'), progress: false });
    t.dispose();
    const r = Trainer.resume(join(dir, 'first', 'checkpoint'), { steps: 6 });
    await r.train({ out: join(dir, 'second'), progress: false });
    r.dispose();
    const first = readRun(join(dir, 'first'));
    const second = readRun(join(dir, 'second'));
    const at4 = first.stages[first.stages.length - 1];
    // one stage, the grown one (stage 1, 2 layers), from step 4: its tokens and FLOPs those of steps 5–6
    expect(second.stages).toEqual([expect.objectContaining({ stage: 1, fromStep: 4, toStep: 6, size: '2×32' })]);
    expect(second.origin).toEqual({ tokens: at4.tokens, flops: at4.flops });
    const table = stageTable(second).split('\n');
    expect(table[1]).toMatch(/^\s+1\s+4–6\s+2×32\s+128\s/); // 2 steps × 2 × 32 tokens
    // resumed in place, the log goes on without a resume record
    const again = Trainer.resume(join(dir, 'second', 'checkpoint'), { steps: 7 });
    await again.train({ out: join(dir, 'second'), progress: false });
    again.dispose();
    const events = readFileSync(join(dir, 'second', 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"resume"'));
    expect(events).toHaveLength(1);
  });

  it('elapsedSec goes on across a resume instead of starting again at 0', async () => {
    const t = Trainer.create({ ...small, steps: 3, logInterval: 1 });
    await t.train({ out: join(dir, 'clock'), progress: false });
    t.dispose();
    const r = Trainer.resume(join(dir, 'clock', 'checkpoint'), { steps: 5 });
    await r.train({ out: join(dir, 'clock'), progress: false });
    r.dispose();
    const elapsed = readFileSync(join(dir, 'clock', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { elapsedSec?: number })
      .filter((m) => m.elapsedSec !== undefined)
      .map((m) => m.elapsedSec!);
    expect(elapsed).toHaveLength(5);
    for (let i = 1; i < elapsed.length; i++) expect(elapsed[i]).toBeGreaterThan(elapsed[i - 1]);
  });

  it('tokens per second count the training steps, not the evaluations between them', async () => {
    const t = Trainer.create({ ...small, steps: 4, logInterval: 1, eval: { interval: 1, batches: 1 } });
    const evaluate = t.evaluate.bind(t);
    // each evaluation moves the clock on by 1000 s (a virtual clock: a busy machine cannot blur
    // it): were it counted, 64 tokens per step would read < 0.07 tok/s; a real step takes well
    // under 10 s, so counted right they read > 6 tok/s
    const realNow = performance.now.bind(performance);
    let skipped = 0;
    const clock = jest.spyOn(performance, 'now').mockImplementation(() => realNow() + skipped);
    jest.spyOn(t, 'evaluate').mockImplementation(() => {
      skipped += 1_000_000;
      return evaluate();
    });
    const rates: number[] = [];
    try {
      await t.train({
        out: join(dir, 'tps'),
        progress: false,
        onRecord: (r) => r.tokensPerSec !== undefined && rates.push(r.tokensPerSec),
      });
    } finally {
      clock.mockRestore();
    }
    t.dispose();
    expect(rates).toHaveLength(4);
    for (const tps of rates) expect(tps).toBeGreaterThan(1);
  });

  it('a stop that comes during the last step is no interruption', async () => {
    const stopped = new AbortController();
    stopped.abort();
    const t = Trainer.create({ ...small, steps: 1 });
    const r = await t.train({ out: join(dir, 'last'), progress: false, signal: stopped.signal });
    expect(r).toMatchObject({ step: 1, interrupted: false });
    const t3 = Trainer.create({ ...small, steps: 3 });
    const r3 = await t3.train({ out: join(dir, 'early'), progress: false, signal: stopped.signal });
    expect(r3).toMatchObject({ step: 1, interrupted: true });
    t.dispose();
    t3.dispose();
  });

  it('the validation loss reported is dated: an interrupted run names the step it was measured at', async () => {
    const stop = new AbortController();
    const t = Trainer.create({ ...small, steps: 20, logInterval: 1, eval: { interval: 2, batches: 1 } });
    // stopped after step 3's record: the last evaluation was step 2's
    const r = await t.train({
      out: join(dir, 'dated'),
      progress: false,
      onRecord: (x) => x.step === 3 && stop.abort(),
      signal: stop.signal,
      notes: false,
    });
    t.dispose();
    expect(r).toMatchObject({ interrupted: true, valLossStep: 2 });
    expect(r.step).toBeGreaterThan(2);
    const again = Trainer.resume(join(dir, 'dated', 'checkpoint'));
    expect(again.lastValStep).toBe(2);
    again.dispose();
  });
});

describe('the run data', () => {
  it('a relative data path is kept absolute, and a resumed run whose data is gone names it', async () => {
    const data = join(dir, 'tokens');
    mkdirSync(data);
    writeShard(
      join(data, 'val_000000.bin'),
      Uint16Array.from({ length: 200 }, (_, i) => i % 97),
    );
    writeShard(
      join(data, 'train_000001.bin'),
      Uint16Array.from({ length: 2000 }, (_, i) => (i * 7) % 97),
    );
    const cwd = process.cwd();
    process.chdir(dir);
    let t: Trainer;
    try {
      t = Trainer.create({ ...small, data: 'tokens', steps: 2 });
    } finally {
      process.chdir(cwd);
    }
    expect(t.config.data).toBe(data);
    await t.train({ out: join(dir, 'run'), progress: false });
    t.dispose();
    const r = Trainer.resume(join(dir, 'run', 'checkpoint'), { steps: 3 }); // from another directory
    expect(r.data.train.length).toBe(2000);
    r.dispose();
    renameSync(data, join(dir, 'moved'));
    expect(() => Trainer.resume(join(dir, 'run', 'checkpoint'), { steps: 3 })).toThrow(
      `the run's data '${data}' (${join(dir, 'run', 'checkpoint')}/state.json, run.data): ${data}: cannot read the token data`,
    );
    expect(() => Trainer.resume(join(dir, 'run', 'checkpoint'), { steps: 3 })).toThrow(/if it moved, resume with --data where it is now/);
    // named where it is now, it goes on as an uninterrupted run (here: with another --device named too)
    const moved = Trainer.resume(join(dir, 'run', 'checkpoint'), { steps: 4, data: join(dir, 'moved'), device: 'cpu' });
    expect(moved.config.data).toBe(join(dir, 'moved'));
    const resumed = await losses(moved, join(dir, 'run'));
    moved.dispose();
    const whole = Trainer.create({ ...small, data: join(dir, 'moved'), steps: 4 });
    const uninterrupted = await losses(whole, join(dir, 'whole'));
    whole.dispose();
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed).toEqual(uninterrupted.slice(-resumed.length));
    // other tokens under that name are refused, in the run's words
    writeShard(
      join(dir, 'moved', 'train_000001.bin'),
      Uint16Array.from({ length: 1500 }, (_, i) => (i * 5) % 97),
    );
    expect(() => Trainer.resume(join(dir, 'run', 'checkpoint'), { steps: 5, data: join(dir, 'moved') })).toThrow(
      new RegExp(
        `^the run's data '${join(dir, 'moved')}' is not what the run trained on: the checkpoint's loader was saved for data of 2000 tokens but this loader has 1500\\. A run resumes only on the same training tokens`,
      ),
    );
  });

  it('a validation split too short for one window is refused before any step, when something evaluates', () => {
    const train = Uint16Array.from({ length: 500 }, (_, i) => i % 50);
    const val = Uint16Array.from({ length: 20 }, (_, i) => i);
    const data = { name: 'short-val', train, val };
    expect(() => Trainer.create({ ...small, steps: 2, eval: { interval: 1, batches: 1 } }, data)).toThrow(
      'the validation split of short-val has 20 tokens, too few for one window of seqLen + 1 = 33, which eval.interval > 0 needs: give it more tokens (prepare --val-tokens) or train with a shorter seqLen, or set eval.interval 0',
    );
    expect(() => Trainer.create({ ...small, steps: 2, stages: [{ until: { steps: 1 }, grow: { op: 'depth' } }] }, data)).toThrow(
      /which a growth needs: give it more tokens \(prepare --val-tokens\) or train with a shorter seqLen$/,
    );
    // nothing reads it: nothing to refuse
    Trainer.create({ ...small, steps: 2 }, data).dispose();
  });
});

describe('edited checkpoints', () => {
  it('a state.json without what the trainer keeps there is refused, naming the part', async () => {
    const t = Trainer.create({ ...small, steps: 2 });
    const out = join(dir, 'run');
    await t.train({ out, progress: false });
    t.dispose();
    const path = join(out, 'checkpoint', 'state.json');
    const state = JSON.parse(readFileSync(path, 'utf8')) as { extra: Record<string, unknown> };
    delete state.extra.progression;
    writeFileSync(path, JSON.stringify(state));
    expect(() => Trainer.resume(join(out, 'checkpoint'))).toThrow(/state\.json: extra\.progression is missing/);
  });
});

describe('learning', () => {
  it('the tiny preset lowers validation loss by at least 1 nat in 200 steps on the embedded corpus', async () => {
    const t = Trainer.create({ model: 'tiny', steps: 200, batchSize: 4, seqLen: 64, eval: { interval: 200, batches: 4 }, logInterval: 50 });
    const before = t.evaluate();
    expect(Math.abs(before - Math.log(50304))).toBeLessThan(0.2);
    const r = await t.train({ out: dir, progress: false });
    expect(r.valLoss).not.toBeNull();
    expect(before - r.valLoss!).toBeGreaterThan(1);
    t.dispose();
  }, 300_000); // (35 s alone; a hang guard with room for a loaded 2-core machine)
});
