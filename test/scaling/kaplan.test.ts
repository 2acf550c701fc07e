// The Kaplan law, compute accounting, frontier and single-stage optimum (../shared/spec/schedule.md).
import {
  KAPLAN,
  PF_DAY,
  computeToLoss,
  criticalBatch,
  curveSlope,
  frontierCompute,
  frontierLoss,
  lawFromJson,
  lossAt,
  lossAtBatch,
  lossFloor,
  minimalCompute,
  optimalSizeClosedForm,
  parseScalingLaw,
  singleStageOptimum,
  stepsToLoss,
  stepsToLossAtBatch,
  toPfDays,
} from '../../lib/scaling';

describe('Kaplan law', () => {
  test('constants are the spec defaults', () => {
    expect(KAPLAN).toEqual({ Nc: 8.8e13, alphaN: 0.076, Sc: 2.1e3, alphaS: 0.76, Bstar: 2.1e8, alphaB: 0.21 });
    expect(PF_DAY).toBe(8.64e19);
  });

  test('L(N, S) at the critical batch and its inverse S(N, L)', () => {
    const N = 3e7;
    const S = 12345;
    const L = lossAt(N, S);
    expect(L).toBeCloseTo(Math.pow(8.8e13 / N, 0.076) + Math.pow((2 * 2.1e3) / S, 0.76), 12);
    expect(stepsToLoss(N, L)).toBeCloseTo(S, 6);
    expect(stepsToLoss(N, lossFloor(N))).toBe(Infinity);
    expect(stepsToLoss(N, lossFloor(N) - 0.1)).toBe(Infinity);
  });

  test('L(N, S, B) with Smin = S/(1 + Bcrit(L)/B): equals L(N, S) at B = Bcrit(L), inverse of S(N, L, B)', () => {
    const N = 1e8;
    const S = 20000;
    const L = lossAt(N, S);
    expect(lossAtBatch(N, S, criticalBatch(L))).toBeCloseTo(L, 10);
    for (const B of [1e4, 3e5, 1e7]) {
      const Lb = lossAtBatch(N, S, B);
      expect(stepsToLossAtBatch(N, Lb, B)).toBeCloseTo(S, 5);
      const smin = S / (1 + criticalBatch(Lb) / B);
      expect(Lb).toBeCloseTo(lossFloor(N) + Math.pow(2.1e3 / smin, 0.76), 10);
    }
    // a smaller batch needs more steps to the same loss
    expect(lossAtBatch(N, S, 1e4)).toBeGreaterThan(lossAtBatch(N, S, 1e7));
  });

  test('critical batch, compute, PF-days, the spec C(N, L)', () => {
    expect(criticalBatch(3)).toBeCloseTo(2.1e8 / Math.pow(3, 1 / 0.21), 3);
    const N = 2e8;
    const L = 3.1;
    const specC = ((6 * 2.1e8 * 2.1e3 * N) / Math.pow(L, 1 / 0.21)) * Math.pow(L - lossFloor(N), -1 / 0.76);
    expect(minimalCompute(N, L) / specC).toBeCloseTo(1, 12);
    expect(computeToLoss(N, L)).toBeCloseTo(6 * N * criticalBatch(L) * stepsToLoss(N, L), -5);
    expect(computeToLoss(N, L) / minimalCompute(N, L)).toBeCloseTo(2, 12);
    expect(toPfDays(8.64e19)).toBe(1);
  });

  test('compute-efficient frontier L(Cmin) = (2.3e8/Cmin)^0.050 and its inverse', () => {
    expect(frontierLoss(1)).toBeCloseTo(Math.pow(2.3e8, 0.05), 12);
    expect(frontierLoss(frontierCompute(2.7))).toBeCloseTo(2.7, 12);
    // slope −0.050 in log-log
    const s = (Math.log(frontierLoss(10)) - Math.log(frontierLoss(1))) / Math.log(10);
    expect(s).toBeCloseTo(-0.05, 12);
  });

  test('single-stage optimum at L = 3.0: N = 1.63e8, S = 23.2k critical-batch steps, 0.294 PF-days', () => {
    const o = singleStageOptimum(3.0);
    expect(o.params / optimalSizeClosedForm(3.0)).toBeCloseTo(1, 6);
    expect(o.params / 1.63e8).toBeCloseTo(1, 2);
    expect(o.steps / 1000).toBeCloseTo(23.2, 1);
    expect(o.pfDays).toBeCloseTo(0.294, 3);
    expect(o.tokens).toBeCloseTo(o.steps * criticalBatch(3.0), -3);
    expect(o.minimalFlops * 2).toBeCloseTo(o.flops, -5);
    // a minimum: neighbours cost more
    for (const f of [0.9, 1.1]) expect(computeToLoss(o.params * f, 3.0)).toBeGreaterThan(o.flops);
    // the optimality slope: σ of the compute-optimal model at its target is −0.052
    expect(curveSlope(o.params, 3.0)).toBeCloseTo(-0.052, 3);
    expect(curveSlope(o.params, 3.0, KAPLAN, 'fixed')).toBeCloseTo(-0.76 * (1 - 1 / 1.1), 6);
  });

  test('single-stage optimum at L = 2.5 matches the closed form', () => {
    const o = singleStageOptimum(2.5);
    expect(o.params / optimalSizeClosedForm(2.5)).toBeCloseTo(1, 6);
    expect(o.targetLoss).toBe(2.5);
  });

  test('law constants are validated; fit results are accepted', () => {
    expect(() => parseScalingLaw({ Nc: 1e13, alphaN: -1, Sc: 1, alphaS: 1 })).toThrow(/alphaN/);
    expect(() => parseScalingLaw({ Nc: 1e13, alphaN: 0.1, Sc: 1, alphaS: 1, extra: 1 })).toThrow(/invalid scaling-law/);
    expect(parseScalingLaw({ Nc: 1e13, alphaN: 0.1, Sc: 1e3, alphaS: 0.7 })).toEqual({
      Nc: 1e13,
      alphaN: 0.1,
      Sc: 1e3,
      alphaS: 0.7,
      Bstar: 2.1e8,
      alphaB: 0.21,
    });
    expect(lawFromJson({ law: { ...KAPLAN }, rmsRelativeError: 0.01 })).toEqual(KAPLAN);
    expect(() => lossFloor(0)).toThrow(/N must be a positive/);
  });
});
