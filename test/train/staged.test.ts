// Staged runs: a config with two growths runs end to end, logs each growth with equal loss before
// and after, writes the report; resuming right after a growth gives the same losses as no interruption.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer } from '../../lib/train/trainer';
import { growthOptions, parseRunConfig, type RunConfigInput } from '../../lib/train/config';
import { withStderr } from '../helpers';

const staged = {
  model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 32 },
  batchSize: 2,
  seqLen: 32,
  steps: 30,
  eval: { interval: 10, batches: 2 },
  logInterval: 5,
  lr: { peak: 3e-3, total: 30, warmup: 3 },
  stages: [
    { until: { steps: 10 }, grow: { op: 'depth', rewarmup: 2 } },
    { until: { tokens: 20 * 64 }, grow: { op: 'width', dropout: 0.1, rewarmup: 2 } },
  ],
} satisfies RunConfigInput;

/** 12 steps evaluated every 3, growing in depth on the slope trigger. */
const slopeDepth = {
  ...staged,
  steps: 12,
  eval: { interval: 3, batches: 2 },
  stages: [{ until: { slope: {} }, grow: { op: 'depth' } }],
} satisfies RunConfigInput;

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-staged-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('staged runs', () => {
  it("the grown stages keep a fixed lr.peak; 'kaplan' (the run's, or a stage's peakLr) gives lr(N) of each size", async () => {
    const peaks = async (cfg: object) => {
      const t = Trainer.create({ ...staged, steps: 12, eval: { interval: 0 }, ...cfg });
      const seen: number[] = [];
      await t.train({ out: join(dir, String(Math.random())), progress: false, onGrowth: (g) => seen.push(g.peakLr) });
      t.dispose();
      return seen;
    };
    const kaplan = (layers: number, width: number) => 0.003239 - 0.0001395 * Math.log10(12 * layers * width ** 2);
    const stages = [
      { until: { steps: 4 }, grow: { op: 'depth', rewarmup: 2 } },
      { until: { steps: 8 }, grow: { op: 'width', dropout: 0.1, rewarmup: 2 } },
    ];
    expect(await peaks({ stages })).toEqual([3e-3, 3e-3]); // staged's lr.peak
    const byN = await peaks({ stages, lr: { ...staged.lr, peak: 'kaplan' } });
    expect(byN[0]).toBeCloseTo(kaplan(2, 16), 12);
    expect(byN[1]).toBeCloseTo(kaplan(2, 32), 12);
    const mixed = await peaks({ stages: [{ ...stages[0], grow: { ...stages[0].grow, peakLr: 'kaplan' } }, stages[1]] });
    expect(mixed[0]).toBeCloseTo(kaplan(2, 16), 12);
    expect(mixed[1]).toBe(3e-3);
    // Trainer.grow from a script takes the run's lr.peak too, unless its options name a peak; mlp
    // keeps the schedule (the operators alone default to the spec's 'kaplan')
    const t = Trainer.create({ ...staged, stages: undefined, steps: 12 });
    expect(t.grow('depth').peakLr).toBe(3e-3);
    expect(t.grow('width', { schedule: { rewarmup: 1 } }).peakLr).toBe(3e-3);
    expect(t.schedule.restart?.rewarmup).toBe(1);
    expect(t.grow('depth', { schedule: { peak: 'kaplan' } }).peakLr).toBeCloseTo(kaplan(4, 32), 12);
    const before = t.schedule;
    t.grow('mlp');
    expect(t.schedule).toEqual(before);
    expect(() => t.grow('wide' as 'width')).toThrow(/grow: unknown operator 'wide' \(width, depth, both, mlp or heads\)/);
    t.dispose();
  });

  it('grow twice in place, log each growth, and write the report', async () => {
    const t = Trainer.create(staged);
    const r = await t.train({ out: dir, progress: false });
    expect(r.step).toBe(30);
    expect(t.modelConfig).toMatchObject({ nLayer: 2, nEmbd: 32, nHead: 4 });
    const events = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === 'growth');
    expect(events.map((e) => [e.step, e.op, e.stage])).toEqual([
      [10, 'depth', 1],
      [20, 'width', 2],
    ]);
    for (const e of events) expect(Math.abs((e.lossAfter as number) - (e.lossBefore as number))).toBeLessThan(1e-4);
    expect(r.report).not.toBeNull();
    expect(existsSync(join(dir, 'report.svg'))).toBe(true);
    expect(readFileSync(join(dir, 'report.svg'), 'utf8')).toContain('depth → 2×16 @10');
    expect(r.report!.table.split('\n')).toHaveLength(4);
    t.dispose();
  });

  it('alignTo places the grown state where a from-scratch curve reached the same loss', async () => {
    // a made-up curve of the grown size: 11.5 at step 10 … 5.5 at step 70 (0.1 per step)
    const curve = [10, 20, 40, 70].map((step) =>
      JSON.stringify({ step, tokens: 0, flops: step, loss: 0, lr: 0, gradNorm: null, valLoss: 12.5 - step / 10 }),
    );
    writeFileSync(join(dir, 'baseline.jsonl'), curve.join('\n') + '\n');
    const t = Trainer.create({
      ...staged,
      steps: 12,
      stages: [{ until: { steps: 10 }, grow: { op: 'width', rewarmup: 2, alignTo: join(dir, 'baseline.jsonl') } }],
    });
    await t.train({ out: join(dir, 'run'), progress: false });
    const growth = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>)
      .find((e) => (e.event as unknown) === 'growth')!;
    const lossAtGrowth = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>)
      .find((r) => r.step === 10 && r.valLoss !== undefined)!.valLoss;
    expect(lossAtGrowth).toBeGreaterThan(10.5); // inside the curve's first interval
    expect(growth.schedulePos).toBe(Math.round(10 * (12.5 - lossAtGrowth)));
    t.dispose();
    // a curve that never gets there, and both knobs at once, are errors naming the field
    writeFileSync(join(dir, 'high.jsonl'), curve.slice(0, 1).join('\n') + '\n');
    const never = Trainer.create({
      ...staged,
      steps: 12,
      stages: [{ until: { steps: 10 }, grow: { op: 'width', alignTo: join(dir, 'high.jsonl') } }],
    });
    await expect(never.train({ out: join(dir, 'never'), progress: false })).rejects.toThrow(
      /never reached validation loss .* \(its best is 11\.5000\)/,
    );
    never.dispose();
    expect(() => Trainer.create({ ...staged, stages: [{ until: { steps: 10 }, grow: { op: 'width', cOp: 2, alignTo: 'x' } }] })).toThrow(
      /cOp or alignTo, not both/,
    );
  });

  it('resuming right after a growth gives the same losses as no interruption', async () => {
    const full: number[] = [];
    const a = Trainer.create(staged);
    await a.train({ out: join(dir, 'a'), progress: false, onRecord: (r) => full.push(r.loss) });
    a.dispose();

    const parts: number[] = [];
    const b = Trainer.create(staged);
    await b.train({ out: join(dir, 'b'), progress: false, steps: 10, onRecord: (r) => parts.push(r.loss) }); // stops right at the first growth
    b.dispose();
    const c = Trainer.resume(join(dir, 'b', 'checkpoint'));
    expect(c.modelConfig.nLayer).toBe(1); // the growth happens on the resumed side, at the same step
    await c.train({ out: join(dir, 'b'), progress: false, onRecord: (r) => parts.push(r.loss) });
    c.dispose();
    expect(parts).toEqual(full);

    // and resuming from a checkpoint written just after a growth
    const d = Trainer.create(staged);
    await d.train({ out: join(dir, 'd'), progress: false, steps: 11 });
    d.dispose();
    const e = Trainer.resume(join(dir, 'd', 'checkpoint'));
    expect(e.modelConfig.nLayer).toBe(2);
    const rest: number[] = [];
    await e.train({ out: join(dir, 'd'), progress: false, onRecord: (r) => rest.push(r.loss) });
    e.dispose();
    expect(rest).toEqual(full.slice(11));
  });

  it('a slope-triggered stage ends once σ of its validation curve rises past the threshold', () => {
    const t = Trainer.create({ ...staged, stages: [{ until: { slope: {} }, grow: { op: 'depth' } }] });
    const stage = t.config.stages[0];
    // a curve from the Kaplan law for N = 1e6: σ climbs from steep towards 0
    const law = (S: number) => (8.8e13 / 1e6) ** 0.076 + ((2 * 2.1e3) / S) ** 0.76;
    const points = Array.from({ length: 60 }, (_, i) => 10 ** (2 + (4 * i) / 59)).map((S, i) => ({
      step: i + 1,
      flops: 6e6 * 1e5 * S,
      loss: law(S),
    }));
    t.valHistory = points.slice(0, 8);
    expect(t.stageEnded(stage)).toBe(false);
    t.valHistory = points;
    expect(t.stageEnded(stage)).toBe(true);
    t.dispose();
  });

  it("a checkpoint keeps the stage's validation curve: a resumed run's slope trigger sees the points before it", async () => {
    const t = Trainer.create(slopeDepth);
    const out = join(dir, 'run');
    await t.train({ out, progress: false, steps: 9 });
    expect(t.valHistory.map((v) => v.step)).toEqual([3, 6, 9]);
    const r = Trainer.resume(join(out, 'checkpoint'));
    expect(r.valHistory).toEqual(t.valHistory);
    t.dispose();
    r.dispose();
  });

  it('a session that ends between eval intervals leaves its last evaluation out of the curve (a resumed trigger sees what an uninterrupted one does)', async () => {
    const t = Trainer.create(slopeDepth);
    const r = await t.train({ out: join(dir, 'short'), progress: false, steps: 8 });
    expect(r.valLoss).not.toBeNull(); // evaluated at its last step all the same
    expect(t.valHistory.map((v) => v.step)).toEqual([3, 6]);
    t.dispose();
    // metrics.jsonl marks it, for `slope` to leave out as the trigger does
    const evals = readFileSync(join(dir, 'short', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; valLoss?: number; valOffInterval?: boolean })
      .filter((m) => m.valLoss !== undefined);
    expect(evals.map((m) => [m.step, m.valOffInterval ?? false])).toEqual([
      [3, false],
      [6, false],
      [8, true],
    ]);
  });

  it('resumes a checkpoint older than the compute counter with its FLOPs scaled to compute, the curve and the counter alike', async () => {
    const t = Trainer.create(slopeDepth);
    const out = join(dir, 'run');
    await t.train({ out, progress: false, steps: 9 });
    t.dispose();
    const path = join(out, 'checkpoint', 'state.json');
    const state = JSON.parse(readFileSync(path, 'utf8')) as {
      extra: { compute?: number; valHistory: { compute?: number }[] };
    };
    const now = Trainer.resume(join(out, 'checkpoint'));
    delete state.extra.compute;
    for (const v of state.extra.valHistory) delete v.compute;
    writeFileSync(path, JSON.stringify(state));
    const old = Trainer.resume(join(out, 'checkpoint'));
    // before any growth the conversion is exact
    expect(old.compute).toBeCloseTo(now.compute, 6);
    expect(old.valHistory.map((v) => v.compute! / now.valHistory.find((w) => w.step === v.step)!.compute!)).toEqual(
      now.valHistory.map(() => expect.closeTo(1, 12)),
    );
    now.dispose();
    old.dispose();
  });

  it("counts the spec's compute (6·N·tokens, N = 12·L·d² of each stage's model) beside the hardware's FLOPs", async () => {
    const t = Trainer.create({
      ...staged,
      steps: 6,
      logInterval: 1,
      eval: { interval: 0 },
      stages: [{ until: { steps: 3 }, grow: { op: 'depth' } }],
    });
    const out = join(dir, 'run');
    await t.train({ out, progress: false });
    const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; compute?: number; event?: string })
      .filter((r) => r.event === undefined);
    const perStep = records.map((r, i) => r.compute! - (i === 0 ? 0 : records[i - 1].compute!));
    const tokens = 2 * 32; // batch × sequence
    const n1 = 12 * 1 * 16 ** 2; // 1 layer × 16
    expect(perStep).toEqual([n1, n1, n1, 2 * n1, 2 * n1, 2 * n1].map((n) => 6 * n * tokens)); // depth ×2 at step 3
    // a resumed run goes on counting from the checkpoint's
    const r = Trainer.resume(join(out, 'checkpoint'));
    expect(r.compute).toBe(records[records.length - 1].compute);
    t.dispose();
    r.dispose();
  });

  it('a width stage passes offDiagonalMoments to the operator; a bad value is refused naming the field', () => {
    const stage = (o: unknown) => ({ until: { steps: 5 }, grow: { op: 'width', offDiagonalMoments: o } });
    expect(growthOptions(parseRunConfig({ ...staged, stages: [stage('scaled')] }).stages[0].grow)).toMatchObject({
      offDiagonalMoments: 'scaled',
    });
    expect(() => parseRunConfig({ ...staged, stages: [stage('half')] })).toThrow(/stages\.0\.grow\.offDiagonalMoments/);
  });

  it('rejects stages whose thresholds of one kind do not increase (the counters run over the whole run)', () => {
    const stages = [
      { until: { steps: 10 }, grow: { op: 'depth' } },
      { until: { steps: 5 }, grow: { op: 'width' } },
    ];
    expect(() => parseRunConfig({ ...staged, stages })).toThrow(
      /stages\.1\.until\.steps: stages\[1\] ends at steps 5, not after stages\[0\]'s 10/,
    );
  });

  it('checks before training what a growth point would find wrong: an unreadable alignTo, an untied head', async () => {
    const untied = {
      ...staged,
      model: { ...staged.model, tiedEmbeddings: false },
      stages: [{ until: { steps: 5 }, grow: { op: 'width' } }],
    } satisfies RunConfigInput;
    const checks: [RunConfigInput, RegExp][] = [
      [
        { ...staged, stages: [{ until: { steps: 5 }, grow: { op: 'width', alignTo: join(dir, 'typo') } }] },
        /stages\.0\.grow\.alignTo: cannot read .*typo/,
      ],
      [untied, /stages\.0\.grow: width growth of this model's untied LM head needs untiedHead: 'duplicate'/],
    ];
    for (const [config, message] of checks) {
      const t = Trainer.create(config);
      await expect(t.train({ out: join(dir, 'run'), progress: false })).rejects.toThrow(message);
      expect(existsSync(join(dir, 'run'))).toBe(false); // nothing trained, nothing written
      t.dispose();
    }
    // asked to duplicate it, the untied head grows
    const t = Trainer.create({ ...untied, steps: 7, stages: [{ until: { steps: 5 }, grow: { op: 'width', untiedHead: 'duplicate' } }] });
    const r = await t.train({ out: join(dir, 'untied'), progress: false });
    expect(t.modelConfig.nEmbd).toBe(32);
    expect(r.step).toBe(7);
    t.dispose();
  });

  it('notes a stage that ends at or after the last step of the run (it does not grow in this run)', async () => {
    const lines = await withStderr(async (lines) => {
      const t = Trainer.create({
        ...staged,
        steps: 6,
        stages: [
          { until: { steps: 3 }, grow: { op: 'depth' } },
          { until: { steps: 6 }, grow: { op: 'width' } },
        ],
      });
      await t.train({ out: join(dir, 'run'), progress: true });
      t.dispose();
      return lines;
    });
    const notes = lines.filter((l) => l.includes('note: stage'));
    // the depth growth at step 3 resumes the 30-step schedule at R = round(3 / 1.412) = 2
    expect(lines.filter((l) => l.includes('note: the schedule'))).toEqual([
      expect.stringMatching(
        /note: the schedule resumes at position 2; this run's 6 steps end at position 5 of its 30 \(31 steps would finish its decay\)/,
      ),
    ]);
    expect(notes).toEqual([
      expect.stringMatching(/note: stages\[1\] ends at step 6, not before this run's last step 6: it does not grow in this run/),
      expect.stringMatching(
        /note: stages\[1\]'s width growth has nothing to break the symmetry of its copies \(no dropout, noiseStd or splitNoiseStd\)/,
      ),
    ]);
  });

  it('notes a factor other than 2 that takes the ×2 c_op, and no symmetry note where embedding dropout tells the copies apart', async () => {
    const notesOf = (model: RunConfigInput['model'], stages: RunConfigInput['stages']) =>
      withStderr(async (lines) => {
        const t = Trainer.create({ ...staged, model, steps: 1, stages });
        await t.train({ out: join(dir, `run-${Math.random()}`), progress: true });
        t.dispose();
        // (the stages end after this one-step run: those notes are not what is looked at)
        return lines.filter((l) => l.includes('note: stage') && !/does not grow in this run|did not fire by the last step/.test(l));
      });
    const late = { until: { steps: 20 } };
    expect(
      await notesOf({ ...staged.model, dropout: { embedding: 0.1 } }, [
        { ...late, grow: { op: 'depth', factor: 3 } },
        { until: { steps: 25 }, grow: { op: 'width', factor: 3, cOp: 2.5 } },
      ]),
    ).toEqual([
      expect.stringMatching(
        /note: stages\[0\]: c_op 1\.412 is the reference constant of depth growth ×2: for ×3 the grown model's place on its schedule \(R = S_pre \/ 1\.412\) is a guess \(give grow\.cOp, or grow\.alignTo a from-scratch run's log to measure it\)/,
      ),
    ]);
    expect(await notesOf(staged.model, [{ ...late, grow: { op: 'width' } }])).toEqual([
      expect.stringMatching(/note: stages\[0\]'s width growth has nothing to break the symmetry/),
    ]);
    // the dropout an earlier stage sets is the later stages' model's: a second width growth (and a
    // heads growth, told apart by attention dropout) has it; one set back to 0 has none
    expect(
      await notesOf(staged.model, [
        { ...late, grow: { op: 'width', dropout: 0.1 } },
        { until: { steps: 25 }, grow: { op: 'width' } },
        { until: { steps: 30 }, grow: { op: 'heads', splitNoiseStd: 0 } },
      ]),
    ).toEqual([]);
    expect(
      await notesOf(staged.model, [
        { ...late, grow: { op: 'width', dropout: 0.1 } },
        { until: { steps: 25 }, grow: { op: 'width', dropout: 0 } },
        { until: { steps: 30 }, grow: { op: 'width' } },
      ]),
    ).toEqual([
      expect.stringMatching(/note: stages\[1\]'s width growth has nothing to break the symmetry/),
      expect.stringMatching(/note: stages\[2\]'s width growth has nothing to break the symmetry/),
    ]);
    // the slope trigger's default threshold is the ×2 one: the law's optimum for depth ×3 (×3
    // parameters) and width ×3 (×9), independently σ_pre of optimalGrowthPoint — -0.0551 and -0.0432
    const slope = { slope: {} };
    const notes = await notesOf({ ...staged.model, dropout: { embedding: 0.1 } }, [
      { until: slope, grow: { op: 'depth', factor: 3, cOp: 2 } },
      { until: slope, grow: { op: 'width', factor: 3, cOp: 3 } },
      { until: { slope: { threshold: -0.05 } }, grow: { op: 'depth', factor: 4, cOp: 2 } },
    ]);
    expect(notes).toEqual([
      expect.stringMatching(
        /note: stages\[0\]: the slope trigger's default threshold -0\.0575 is that of depth growth ×2; Kaplan's law puts the optimal growth point at σ = -0\.0551 for ×3 \(-0\.0598 for ×2\): give until\.slope\.threshold/,
      ),
      expect.stringMatching(
        /note: stages\[1\]: the slope trigger's default threshold -0\.0475 is that of width growth ×2; .* σ = -0\.0432 for ×3 \(-0\.0519 for ×2\)/,
      ),
    ]);
  });

  it('notes at the end a stage it did not grow out of (FLOP budget, slope trigger), and a re-warmup the run ends inside of', async () => {
    const linesOf = (cfg: object) =>
      withStderr(async (lines) => {
        const t = Trainer.create({ ...staged, steps: 12, ...cfg });
        await t.train({ out: join(dir, `run-${Math.random()}`), progress: true });
        t.dispose();
        return lines.filter((l) => l.includes('note:'));
      });
    expect(await linesOf({ stages: [{ until: { slope: {} }, grow: { op: 'depth' } }] })).toContainEqual(
      expect.stringMatching(
        /note: stages\[0\] \(depth growth\): the slope trigger did not fire by the last step 12: the run ended at the size before that growth/,
      ),
    );
    expect(await linesOf({ stages: [{ until: { flops: 1e20 }, grow: { op: 'depth' } }] })).toContainEqual(
      expect.stringMatching(
        /note: stages\[0\] \(depth growth\) ends at 1\.000e\+20 FLOPs; the run ended at \d\.\d{3}e\+\d+: it did not grow/,
      ),
    );
    // the depth growth at step 5 re-warms for 20 steps: to step 25, past the last step 12 (not past the horizon 30)
    const rewarm = await linesOf({ stages: [{ until: { steps: 5 }, grow: { op: 'depth', rewarmup: 20 } }] });
    expect(rewarm).toContainEqual(
      expect.stringMatching(
        /note: the re-warmup after this growth \(20 steps\) ends at step 25, after this run's last step 12: the run ends with the rate still rising/,
      ),
    );
    expect(rewarm.filter((l) => l.includes('did not'))).toEqual([]);
    // an mlp growth keeps the schedule, the depth growth's restart with it: that re-warmup (steps
    // 10–30) is not this growth's, and ends before the last step
    const kept = await linesOf({
      steps: 40,
      lr: { ...staged.lr, total: 40 },
      stages: [
        { until: { steps: 10 }, grow: { op: 'depth', rewarmup: 20 } },
        { until: { steps: 25 }, grow: { op: 'mlp', splitNoiseStd: 0.01 } },
      ],
    });
    expect(kept.filter((l) => l.includes('re-warmup'))).toEqual([]);
    // a slope stage without evaluations is refused by the config, before anything runs
    expect(() => Trainer.create({ ...staged, eval: { interval: 0 }, stages: [{ until: { slope: {} }, grow: { op: 'depth' } }] })).toThrow(
      /eval\.interval: a stage that ends on the slope trigger reads the validation curve: it needs eval\.interval > 0/,
    );
  });

  it("endAt 'schedule': the run ends when the grown model's schedule ends, S_pre − R steps after `steps`, also across a resume", async () => {
    // 30-step linear schedule; depth growth at step 10 with cOp 2 resumes it at R = 5: the run ends at 10 + (30 − 5) = 35
    const config = {
      ...staged,
      endAt: 'schedule',
      lr: { ...staged.lr, kind: 'linear' },
      stages: [{ until: { steps: 10 }, grow: { op: 'depth', cOp: 2, rewarmup: 2 } }],
    } satisfies RunConfigInput;
    const records: { step: number; lr: number }[] = [];
    let finalLr = NaN;
    const lines = await withStderr(async (lines) => {
      const t = Trainer.create(config);
      expect(t.lastStep()).toBe(30);
      const r = await t.train({ out: join(dir, 'a'), progress: true, onRecord: (x) => records.push(x) });
      expect(r.step).toBe(35);
      expect(t.progression.schedulePos).toBe(30);
      finalLr = t.schedule.final; // (the grown model's: Kaplan's peak for its size · finalFraction)
      expect(() => t.lastStep({ steps: 40 })).toThrow(
        /ends with its schedule \(endAt 'schedule', at step 35\): a step count does not apply/,
      );
      t.dispose();
      return lines;
    });
    expect(lines.filter((l) => l.includes('the run now ends'))).toEqual([
      expect.stringMatching(/the schedule resumes at position 5 of 30: the run now ends at step 35/),
    ]);
    expect(lines.some((l) => l.includes('would finish its decay'))).toBe(false);
    // the last step trains at the schedule's final rate, and the one before it above it
    expect(records.at(-1)).toMatchObject({ step: 35 });
    expect(records.at(-1)!.lr).toBeCloseTo(finalLr, 12);
    expect(records.at(-2)!.lr).toBeGreaterThan(finalLr * 1.01);
    // endAt 'steps' (the default) stops at 30, partway down the decay
    const b = Trainer.create({ ...config, endAt: 'steps' });
    expect((await b.train({ out: join(dir, 'b'), progress: false })).step).toBe(30);
    expect(b.progression.schedulePos).toBe(25);
    b.dispose();
    // interrupted before the growth and resumed: the same end and the same losses
    const parts: { step: number; lr: number }[] = [];
    const c = Trainer.create({ ...config, checkpointInterval: 8 });
    await c.train({ out: join(dir, 'c'), progress: false, signal: AbortSignal.abort(), onRecord: (x) => parts.push(x) }); // stops after step 1
    c.dispose();
    const d = Trainer.resume(join(dir, 'c', 'checkpoint'));
    expect((await d.train({ out: join(dir, 'c'), progress: false, onRecord: (x) => parts.push(x) })).step).toBe(35);
    d.dispose();
    expect(parts.map((x) => [x.step, x.lr])).toEqual(records.map((x) => [x.step, x.lr]));
    expect(() => Trainer.resume(join(dir, 'c', 'checkpoint'), { steps: 50 })).toThrow(
      /ends with its schedule \(endAt 'schedule'\): a step count \(50\) does not apply on resuming \(end it at a step with --end-at steps\)/,
    );
    const e = Trainer.resume(join(dir, 'c', 'checkpoint'));
    await expect(e.train({ out: join(dir, 'c'), progress: false })).rejects.toThrow(
      /already at step 35, at or past the end of its schedule/,
    );
    e.dispose();
    // switched to a step count on resuming, it trains on at the final rate
    const f = Trainer.resume(join(dir, 'c', 'checkpoint'), { endAt: 'steps', steps: 38 });
    expect((await f.train({ out: join(dir, 'c'), progress: false })).step).toBe(38);
    f.dispose();
  });

  it("endAt 'schedule': a growth placed at or past the horizon ends the run there; growths that keep the schedule move nothing; lr.total is noted", async () => {
    const base = { ...staged, endAt: 'schedule', lr: { ...staged.lr, kind: 'linear' } } satisfies RunConfigInput;
    // cOp 0.2: R = 50 ≥ the 30-step horizon, so the run ends right at the growth
    const past = Trainer.create({ ...base, stages: [{ until: { steps: 10 }, grow: { op: 'depth', cOp: 0.2 } }] });
    expect((await past.train({ out: join(dir, 'past'), progress: false })).step).toBe(10);
    past.dispose();
    const lines = await withStderr(async (lines) => {
      const keep = Trainer.create({
        ...base,
        lr: { ...base.lr, total: 20 },
        stages: [{ until: { steps: 10 }, grow: { op: 'mlp', splitNoiseStd: 1e-3 } }],
      });
      expect((await keep.train({ out: join(dir, 'keep'), progress: true })).step).toBe(20);
      keep.dispose();
      return lines;
    });
    expect(lines.some((l) => l.includes('now ends'))).toBe(false);
    // the default re-warmup (150 steps) does not fit in the 25 steps left of a 30-step schedule: noted
    const notes = await withStderr(async (lines) => {
      const long = Trainer.create({ ...base, stages: [{ until: { steps: 10 }, grow: { op: 'depth', cOp: 2 } }] });
      await long.train({ out: join(dir, 'long'), progress: true });
      long.dispose();
      return lines;
    });
    expect(notes).toContainEqual(
      expect.stringMatching(
        /note: the re-warmup \(150 steps from position 5\) ends at or past the schedule's horizon 30: the rate never decays/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/note: this run ends with its schedule \(endAt 'schedule'\), at step 20 \(lr\.total\), not at steps 30/),
    );
  });

  it('snapshots: every N steps and right before each growth, full checkpoints a run resumes from exactly', async () => {
    const config = {
      ...staged,
      steps: 12,
      snapshots: { interval: 5, beforeGrowth: true },
      stages: [{ until: { steps: 7 }, grow: { op: 'depth' } }],
    } satisfies RunConfigInput;
    const losses: number[] = [];
    const t = Trainer.create(config);
    await t.train({ out: join(dir, 'a'), progress: false, onRecord: (r) => losses.push(r.loss) });
    t.dispose();
    const layers = (step: string) =>
      (JSON.parse(readFileSync(join(dir, 'a', 'snapshots', step, 'config.json'), 'utf8')) as { n_layer: number }).n_layer;
    expect(readdirSync(join(dir, 'a', 'snapshots')).sort()).toEqual(['step-000005', 'step-000007-before-growth', 'step-000010']);
    expect([layers('step-000005'), layers('step-000007-before-growth'), layers('step-000010')]).toEqual([1, 1, 2]);
    // the state before the growth, resumed elsewhere: it grows at the same step and trains the same
    const again: number[] = [];
    const r = Trainer.resume(join(dir, 'a', 'snapshots', 'step-000007-before-growth'));
    expect(r.progression.step).toBe(7);
    await r.train({ out: join(dir, 'b'), progress: false, onRecord: (x) => again.push(x.loss) });
    r.dispose();
    expect(again).toEqual(losses.slice(7));
    // keep: only the newest interval snapshots stay; the before-growth one is kept regardless
    const k = Trainer.create({ ...config, snapshots: { interval: 2, keep: 2, beforeGrowth: true } });
    await k.train({ out: join(dir, 'k'), progress: false });
    k.dispose();
    expect(readdirSync(join(dir, 'k', 'snapshots')).sort()).toEqual(['step-000007-before-growth', 'step-000010', 'step-000012']);
    // a kill while deleting leaves the snapshot under a name of its own, not a half one under its
    // own name; the next prune deletes it
    const half = join(dir, 'k', 'snapshots', '.deleting-99999999-step-000008');
    mkdirSync(half);
    writeFileSync(join(half, 'state.json'), '{}');
    const k2 = Trainer.resume(join(dir, 'k', 'checkpoint'), { steps: 14 });
    await k2.train({ out: join(dir, 'k'), progress: false });
    k2.dispose();
    expect(readdirSync(join(dir, 'k', 'snapshots')).sort()).toEqual(['step-000007-before-growth', 'step-000012', 'step-000014']);
    // a second save of one state links the first's tensor files instead of writing them again: the
    // before-growth snapshot those of step 7's checkpoint, the final checkpoint those of the last
    // step's snapshot; each holds what a save of its own holds
    const h = Trainer.create({ ...config, checkpointInterval: 7, snapshots: { interval: 6, beforeGrowth: true } });
    await h.train({ out: join(dir, 'h'), progress: false });
    h.dispose();
    const file = (...path: string[]) => join(dir, ...path, 'model.safetensors');
    expect(statSync(file('h', 'checkpoint')).ino).toBe(statSync(file('h', 'snapshots', 'step-000012')).ino);
    expect(statSync(file('h', 'snapshots', 'step-000012')).nlink).toBe(2);
    expect(statSync(file('h', 'snapshots', 'step-000007-before-growth')).nlink).toBe(1); // (the checkpoint moved on)
    expect(readFileSync(file('h', 'snapshots', 'step-000007-before-growth'))).toEqual(
      readFileSync(file('a', 'snapshots', 'step-000007-before-growth')),
    );
    expect(readFileSync(file('h', 'checkpoint'))).toEqual(readFileSync(file('a', 'checkpoint')));
    expect(readFileSync(join(dir, 'h', 'checkpoint', 'optimizer.safetensors'))).toEqual(
      readFileSync(join(dir, 'a', 'checkpoint', 'optimizer.safetensors')),
    );
    const resumed = Trainer.resume(join(dir, 'h', 'checkpoint'));
    expect(resumed.progression.step).toBe(12);
    resumed.dispose();
  });

  it("refuses the width operator's options on the other operators instead of dropping them", () => {
    const stage = (grow: object) => ({ ...staged, stages: [{ until: { steps: 5 }, grow }] });
    expect(() => parseRunConfig(stage({ op: 'mlp', dropout: 0.1, noiseStd: 0.01 }))).toThrow(
      /stages\.0\.grow\.dropout: dropout applies to width and both growth, not mlp; stages\.0\.grow\.noiseStd: noiseStd applies/,
    );
    expect(() => parseRunConfig(stage({ op: 'both', factor: 3 }))).toThrow(
      /stages\.0\.grow\.factor: factor applies to width, depth, mlp and heads: both grows width and depth by 2 each/,
    );
    expect(() => parseRunConfig(stage({ op: 'depth', splitNoiseStd: 0.01 }))).toThrow(
      /splitNoiseStd applies to width, both, mlp and heads growth, not depth/,
    );
    expect(parseRunConfig(stage({ op: 'both', dropout: 0.1 })).stages[0].grow.dropout).toBe(0.1);
    // split noise is what breaks the symmetry of mlp and heads copies: passed on to the operator
    for (const op of ['mlp', 'heads'])
      expect(growthOptions(parseRunConfig(stage({ op, splitNoiseStd: 0.01 })).stages[0].grow)).toEqual({
        factor: 2,
        splitNoiseStd: 0.01,
        schedule: false,
      });
  });

  it('notes mlp and heads growths whose copies nothing tells apart, and trains with split noise', async () => {
    await withStderr(async (lines) => {
      const run = async (grow: NonNullable<RunConfigInput['stages']>[number]['grow'][], name: string) => {
        lines.length = 0;
        const t = Trainer.create({
          ...staged,
          steps: 4,
          stages: grow.map((g, i) => ({ until: { steps: i + 1 }, grow: g })),
        });
        await t.train({ out: join(dir, name), progress: true });
        const config = t.modelConfig;
        t.dispose();
        return { notes: lines.filter((l) => l.includes('note: stage')), config };
      };
      const bare = await run([{ op: 'mlp' }, { op: 'heads' }], 'bare');
      expect(bare.notes).toEqual([
        expect.stringMatching(
          /note: stages\[0\]'s mlp growth has no splitNoiseStd: its copied units get equal gradients and stay identical/,
        ),
        expect.stringMatching(
          /note: stages\[1\]'s heads growth has nothing to break the symmetry of its copies \(no attention dropout or splitNoiseStd\)/,
        ),
      ]);
      const split = await run(
        [
          { op: 'mlp', splitNoiseStd: 0.01 },
          { op: 'heads', splitNoiseStd: 0.01 },
        ],
        'split',
      );
      expect(split.notes).toEqual([]);
      expect(split.config).toMatchObject({ nEmbd: 16, nHead: 4, mlpWidth: 128 });
    });
  });

  it('rejects a stage with two end conditions, naming the field', () => {
    expect(() => Trainer.create({ ...staged, stages: [{ until: { steps: 5, tokens: 10 }, grow: { op: 'depth' } }] })).toThrow(
      /stages\.0\.until: give exactly one of steps, tokens, flops, slope/,
    );
  });
});
