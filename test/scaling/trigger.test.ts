// The online growth trigger (../shared/spec/schedule.md, "Measuring σ online", "Savings accounting").
import { REFERENCE_C_OP } from '../../lib/growth/schedule';
import {
  KAPLAN,
  OP_PARAM_FACTOR,
  STEP_RATIO_C_OP,
  TRIGGER_THRESHOLDS,
  curveSlope,
  findGrowthPoint,
  lawFinalStepRatio,
  lossAt,
  lossFloor,
  measureSlopes,
  optimalSizeClosedForm,
  stepsToLoss,
  type ValPoint,
} from '../../lib/scaling';

const N = 1e7;
const B = 5e5;
const EVERY = 100;
/** Tolerance on the detected step: 5 evaluation intervals (the trailing window lags by (5 − 1)/2 of them). */
const LAG = 5 * EVERY;

/** A from-scratch curve of the law at a fixed batch: evaluations every EVERY steps. */
function lawCurve(maxStep: number, spikes: number[] = []): ValPoint[] {
  const pts: ValPoint[] = [];
  for (let s = EVERY; s <= maxStep; s += EVERY) pts.push({ step: s, compute: 6 * N * B * s, loss: lossAt(N, s) });
  for (const i of spikes) pts[i] = { ...pts[i], loss: pts[i].loss * 1.03 };
  return pts;
}

/** Where the law's fixed-batch slope −αS(L − u)/L reaches the threshold. */
function exactCrossing(threshold: number): number {
  const u = lossFloor(N);
  return stepsToLoss(N, u / (1 + threshold / KAPLAN.alphaS));
}

describe('growth trigger', () => {
  test('defaults are the spec’s thresholds and c_op (the same c_op as lib/growth)', () => {
    expect(TRIGGER_THRESHOLDS).toEqual({ depth: -0.0575, width: -0.0475, both: -0.03 });
    expect(STEP_RATIO_C_OP).toEqual({ depth: 1.412, width: 1.776, both: 2.455 });
    expect(STEP_RATIO_C_OP).toEqual(REFERENCE_C_OP);
    expect(OP_PARAM_FACTOR).toEqual({ depth: 2, width: 4, both: 8 });
  });

  test('slopes: running mean of log10 L over 5 kept points, σ = Δȳ/Δx̄ (or over the raw Δx)', () => {
    const pts = lawCurve(3000);
    const { slopes, dropped } = measureSlopes(pts);
    expect(dropped).toEqual([]);
    expect(slopes.slice(0, 5).map((s) => s.sigma)).toEqual([null, null, null, null, null]);
    const y = (j: number) => pts.slice(j - 4, j + 1).reduce((a, p) => a + Math.log10(p.loss), 0) / 5;
    const x = (j: number) => Math.log10(pts[j].compute);
    const j = 12;
    expect(slopes[j].y).toBeCloseTo(y(j), 12);
    // the secant over the window: (y_j − y_{j−5}) / (x_j − x_{j−5})
    expect(slopes[j].sigma).toBeCloseTo((Math.log10(pts[j].loss) - Math.log10(pts[j - 5].loss)) / (x(j) - x(j - 5)), 9);
    const literal = measureSlopes(pts, 5, 0.01, 'none').slopes;
    expect(literal[j].sigma).toBeCloseTo((y(j) - y(j - 1)) / (x(j) - x(j - 1)), 9);
  });

  test('why Δx is smoothed too: with the raw Δx a dropped spike halves σ and fires the trigger', () => {
    const pts = lawCurve(120000, [150]);
    const literal = findGrowthPoint(pts, { xSmoothing: 'none' });
    expect(literal.reached && literal.step).toBe(15200);
    const smoothed = findGrowthPoint(pts);
    expect(smoothed.reached && (smoothed.step as number) > exactCrossing(-0.0575)).toBe(true);
    // on evenly spaced points without spikes the two agree up to the small spacing bias
    const clean = lawCurve(120000);
    const a = findGrowthPoint(clean, { xSmoothing: 'none' });
    const b = findGrowthPoint(clean);
    expect(a.reached && b.reached && Math.abs((a.step as number) - (b.step as number)) <= 4 * EVERY).toBe(true);
  });

  for (const op of ['depth', 'width', 'both'] as const) {
    test(`${op}: spikes dropped, the crossing found at the law's step`, () => {
      const spikes = [30, 40, 77, 150, 151, 220, 300];
      const pts = lawCurve(120000, spikes);
      const r = findGrowthPoint(pts, { op });
      expect(r.dropped.filter((d) => d.reason === 'spike').map((d) => d.index)).toEqual(spikes);
      expect(r.reached).toBe(true);
      if (!r.reached) return;
      const exact = exactCrossing(TRIGGER_THRESHOLDS[op]);
      // never early; late by about the trailing window's lag
      expect(r.step as number).toBeGreaterThanOrEqual(exact);
      expect((r.step as number) - exact).toBeLessThanOrEqual(LAG);
      expect(r.sigma).toBeGreaterThanOrEqual(TRIGGER_THRESHOLDS[op]);
      expect(r.sTarget).toBeCloseTo((r.step as number) / STEP_RATIO_C_OP[op], 9);
      expect(r.loss).toBe(pts[r.index].loss);
      expect(r.minSigma as number).toBeLessThan(-0.3);
    });
  }

  test('the steepest point comes first: a slow start (warmup) does not trigger', () => {
    const warm: ValPoint[] = Array.from({ length: 20 }, (_, i) => ({
      step: (i + 1) * 5,
      compute: 6 * N * B * (i + 1) * 5,
      loss: 11 - 0.001 * i,
    }));
    const pts = [...warm, ...lawCurve(60000).filter((p) => (p.step as number) > 100)];
    const r = findGrowthPoint(pts);
    expect(r.reached).toBe(true);
    if (r.reached) expect(Math.abs((r.step as number) - exactCrossing(-0.0575))).toBeLessThanOrEqual(LAG);
  });

  test('no crossing: a clear "not reached" result', () => {
    const r = findGrowthPoint(lawCurve(15000), { op: 'depth' });
    expect(r.reached).toBe(false);
    if (!r.reached) {
      expect(r.reason).toMatch(/at the last point, still below the threshold -0.0575/);
      expect(r.lastSigma as number).toBeLessThan(-0.0575);
    }
    const few = findGrowthPoint(lawCurve(400));
    expect(few.reached).toBe(false);
    if (!few.reached) expect(few.reason).toMatch(/too few points/);
    const flat = findGrowthPoint(lawCurve(200000).slice(1500));
    expect(flat.reached).toBe(false);
    if (!flat.reached) expect(flat.reason).toMatch(/never fell below/);
  });

  test('configurable threshold and window', () => {
    const pts = lawCurve(120000);
    const r = findGrowthPoint(pts, { threshold: -0.07, window: 3 });
    expect(r.reached && Math.abs((r.step as number) - exactCrossing(-0.07)) <= LAG).toBe(true);
    const w3 = findGrowthPoint(pts, { threshold: -0.07, window: 3 });
    const w5 = findGrowthPoint(pts, { threshold: -0.07, window: 5 });
    expect(w3.reached && w5.reached && (w3.step as number) < (w5.step as number)).toBe(true);
  });

  test('saving with a given S_opt: (S_target − r·S_pre)/S_opt', () => {
    const r = findGrowthPoint(lawCurve(60000), { op: 'depth', finalSteps: 100000 });
    expect(r.reached).toBe(true);
    if (!r.reached) return;
    const s = r.step as number;
    expect(r.savingBasis).toBe('final-steps');
    expect(r.saving as number).toBeCloseTo((s / 1.412 - 0.5 * s) / 100000, 12);
    expect(r.sOpt).toBe(100000);
  });

  test('saving from the law: the large model to its compute-optimal loss, the point placed by σ', () => {
    for (const [sigma, factor] of [
      [-0.0575, 2],
      [-0.0475, 4],
      [-0.0598, 2],
    ]) {
      // independent check with the law's own functions: find the loss where the small curve has slope σ
      const nS = 1e8;
      let lo = lossFloor(nS) * (1 + 1e-12);
      let hi = lossFloor(nS) * 3;
      for (let i = 0; i < 200; i++) {
        const mid = (lo + hi) / 2;
        // σ falls (steeper) as the loss rises above the floor
        if (curveSlope(nS, mid) < sigma) hi = mid;
        else lo = mid;
      }
      const lPre = (lo + hi) / 2;
      const nL = factor * nS;
      // the large model's compute-optimal loss: the L for which nL is the single-stage optimum
      const lOpt = lossFloor(nL) * (1 + KAPLAN.alphaN / KAPLAN.alphaS);
      expect(optimalSizeClosedForm(lOpt) / nL).toBeCloseTo(1, 9);
      expect(curveSlope(nL, lOpt)).toBeCloseTo(-0.052, 3);
      const expected = stepsToLoss(nL, lOpt) / stepsToLoss(nS, lPre);
      expect(lawFinalStepRatio(sigma, factor) as number).toBeCloseTo(expected, 6);
    }
    const r = findGrowthPoint(lawCurve(60000), { op: 'depth' });
    expect(r.reached).toBe(true);
    if (!r.reached) return;
    expect(r.savingBasis).toBe('law');
    expect(r.lawSigma).toBe('measured');
    const ratio = lawFinalStepRatio(r.sigma, 2) as number;
    expect(r.sOptOverSPre).toBeCloseTo(ratio, 12);
    expect(r.saving as number).toBeCloseTo((1 / 1.412 - 0.5) / ratio, 12);
    expect(r.saving as number).toBeGreaterThan(0);
    expect(lawFinalStepRatio(0.01, 2)).toBeNull();
  });

  test('a measured σ outside the law’s range (positive, from noise) is placed by the threshold, and says so', () => {
    // slopes of −0.1, then one of +1 (small steps in log compute: not a spike): the secant over the
    // window jumps to (4·(−0.1) + 1)/5 = +0.12 where the trigger fires
    let x = 12;
    let y = Math.log10(6);
    const pts = [{ step: 100, compute: 10 ** x, loss: 10 ** y }];
    [...Array(7).fill(-0.1), 1].forEach((g: number, i) => {
      x += 0.001;
      y += g * 0.001;
      pts.push({ step: 100 * (i + 2), compute: 10 ** x, loss: 10 ** y });
    });
    const r = findGrowthPoint(pts, { op: 'depth' });
    expect(r.reached).toBe(true);
    if (!r.reached) return;
    expect(r.sigma).toBeCloseTo(0.12, 6);
    expect(lawFinalStepRatio(r.sigma, 2)).toBeNull();
    expect(r.lawSigma).toBe('threshold');
    expect(r.sOptOverSPre).toBeCloseTo(lawFinalStepRatio(-0.0575, 2) as number, 12);
    expect(findGrowthPoint(pts, { op: 'depth', finalSteps: 5000 })).toMatchObject({ lawSigma: null, savingBasis: 'final-steps' });
  });

  test('points without steps; non-increasing compute and non-positive values are dropped', () => {
    const pts = lawCurve(60000).map(({ compute, loss }) => ({ compute, loss }));
    pts.splice(10, 0, { compute: pts[9].compute, loss: pts[9].loss * 0.99 });
    pts.unshift({ compute: 0, loss: 11 });
    const r = findGrowthPoint(pts);
    expect(r.dropped.map((d) => d.reason)).toEqual(['non-positive', 'not-increasing-compute']);
    expect(r.reached).toBe(true);
    if (r.reached) {
      expect(r.step).toBeNull();
      expect(r.sTarget).toBeNull();
      expect(r.saving as number).toBeGreaterThan(0);
    }
  });
});
