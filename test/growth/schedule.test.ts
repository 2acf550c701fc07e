// The schedule and counters after growth: target peak LR, restart at R = S_pre / c_op with re-warmup,
// counters carried, stage advanced.
import { growBoth, growDepth, growWidth, REFERENCE_C_OP } from '../../lib/growth';
import { kaplanPeakLr, learningRate } from '../../lib/optim/schedule';
import { tinyState } from './fixture';

const { state } = tinyState(); // schedulePos 100, linear, peak 1e-3, warmup 10, total 1000

describe('schedule after growth', () => {
  it.each([
    ['width', growWidth],
    ['depth', growDepth],
    ['both', growBoth],
  ] as const)('%s: restarts at R = S_pre / c_op with the target peak LR', (op, fn) => {
    const g = fn(state, { schedule: { rewarmup: 20 } } as never);
    const R = Math.round(100 / REFERENCE_C_OP[op]);
    expect(g.progression).toMatchObject({ step: 100, tokens: 12800, flops: 1e12, stage: 1, schedulePos: R });
    expect(g.schedule.peak).toBeCloseTo(kaplanPeakLr(12 * g.config.nLayer * g.config.nEmbd ** 2), 15); // N = 12·L·d² (spec)
    expect(g.schedule.restart).toEqual({ at: R, rewarmup: 20 });
    expect(learningRate(g.schedule, R)).toBe(0);
    expect(learningRate(g.schedule, R + 10)).toBeCloseTo(0.5 * learningRate(g.schedule, R + 20), 15);
    expect(g.schedule.final / g.schedule.peak).toBeCloseTo(state.schedule.final / state.schedule.peak, 12);
  });

  it('a configured peak, c_op and target warmup/horizon are honoured; schedule: false keeps it', () => {
    const g = growWidth(state, { schedule: { peak: 5e-4, cOp: 2, warmup: 50, total: 4000, rewarmup: 0 } });
    expect(g.schedule).toMatchObject({ peak: 5e-4, warmup: 50, total: 4000, restart: { at: 50, rewarmup: 0 } });
    const same = growWidth(state, { schedule: false });
    expect(same.schedule).toEqual(state.schedule);
    expect(same.progression.schedulePos).toBe(100);
  });
});
