// Schedules against the spec's exact values (../shared/spec/growth.md).
import { kaplanPeakLr, learningRate, parseSchedule, pastHorizon, wsdEndingAt } from '../../lib/optim/schedule';
import { kaplanParams, presetConfig } from '../../lib/nn/config';
import { parseRunConfig } from '../../lib/train/config';
import { defaultSchedule } from '../../lib/train/trainer';
import { rescheduled } from '../../lib/growth/schedule';
import type { TrainState } from '../../lib/growth/state';

describe('Kaplan peak LR', () => {
  it('gives the spec values for 12×768 and 24×1536', () => {
    expect(kaplanPeakLr(12 * 12 * 768 ** 2)).toBeCloseTo(0.0021329, 7);
    expect(kaplanPeakLr(12 * 24 * 1536 ** 2)).toBeCloseTo(0.0020069, 7);
  });
  it('rejects a non-positive count', () => {
    expect(() => kaplanPeakLr(0)).toThrow(RangeError);
  });
  it("takes the spec's N = 12·L·d² of a model (weights only: no biases, no LayerNorms)", () => {
    expect(kaplanParams(presetConfig('gpt2-124m'))).toBe(12 * 12 * 768 ** 2);
    expect(kaplanParams(presetConfig('paper-large'))).toBe(12 * 24 * 1536 ** 2);
    expect(kaplanPeakLr(kaplanParams(presetConfig('paper-large')))).toBeCloseTo(0.0020069116, 10);
    // a wider MLP counts its weights: 2·d·L·(2·attention width + MLP width)
    expect(kaplanParams(presetConfig('tiny', { mlpWidth: 2048 }))).toBe(2 * 128 * 4 * (2 * 128 + 2048)); // tiny: 4 × 128
  });
});

describe('warmup + linear decay', () => {
  const s = parseSchedule({ kind: 'linear', peak: 1, warmup: 10, total: 110 });
  it('warms up linearly from 0, peaks, decays to 0 at total and stays there', () => {
    expect(learningRate(s, 0)).toBe(0);
    expect(learningRate(s, 5)).toBeCloseTo(0.5, 12);
    expect(learningRate(s, 10)).toBeCloseTo(1, 12);
    expect(learningRate(s, 60)).toBeCloseTo(0.5, 12);
    expect(learningRate(s, 110)).toBe(0);
    expect(learningRate(s, 500)).toBe(0);
  });
});

describe('warmup–stable–decay (wsd)', () => {
  it('holds the peak until the last `decay` steps, then decays as 1 − √p (default) or 1 − p to final at total', () => {
    const s = parseSchedule({ kind: 'wsd', peak: 2, warmup: 10, total: 110, decay: 20, final: 0.2 });
    expect(learningRate(s, 5)).toBeCloseTo(1, 12);
    expect(learningRate(s, 10)).toBe(2);
    expect(learningRate(s, 89)).toBe(2);
    expect(learningRate(s, 90)).toBe(2); // p = 0
    // p = 1/4: 1 − √(1/4) = 1/2 of the way from final to peak
    expect(learningRate(s, 95)).toBeCloseTo(0.2 + 1.8 * 0.5, 12);
    expect(learningRate(s, 110)).toBeCloseTo(0.2, 12);
    expect(learningRate(s, 200)).toBeCloseTo(0.2, 12);
    const lin = parseSchedule({ kind: 'wsd', peak: 2, warmup: 10, total: 110, decay: 20, final: 0.2, decayShape: 'linear' });
    expect(learningRate(lin, 95)).toBeCloseTo(0.2 + 1.8 * 0.75, 12);
    expect(learningRate(lin, 105)).toBeCloseTo(0.2 + 1.8 * 0.25, 12);
    // no decay: the peak up to the horizon, then final
    const none = parseSchedule({ kind: 'wsd', peak: 2, total: 50, decay: 0, final: 0.2 });
    expect([learningRate(none, 49), learningRate(none, 50)]).toEqual([2, 0.2]);
  });

  it('wsdEndingAt moves the decay to a run end while the decay has not begun, shortening it to what is left', () => {
    const s = parseSchedule({ kind: 'wsd', peak: 2, warmup: 10, total: 110, decay: 20, final: 0.2 });
    expect(wsdEndingAt(s, 50, 200)).toMatchObject({ total: 200, decay: 20 });
    expect(wsdEndingAt(s, 50, 60)).toMatchObject({ total: 60, decay: 10 }); // (10 steps left: all of them decay)
    expect(wsdEndingAt(s, 95, 200)).toBeNull(); // under way
    expect(wsdEndingAt(s, 50, 110)).toBeNull();
    expect(wsdEndingAt(parseSchedule({ kind: 'cosine', peak: 1, total: 100 }), 10, 200)).toBeNull();
    const moved = wsdEndingAt(s, 50, 200)!;
    expect([learningRate(moved, 179), learningRate(moved, 190), learningRate(moved, 200)]).toEqual([2, learningRate(s, 100), 0.2]);
  });

  it('refuses a wsd schedule without its decay, or whose warmup and decay do not fit; decay fields on another kind', () => {
    expect(() => parseSchedule({ kind: 'cosine', peak: 1, total: 100, decay: 10 })).toThrow(
      /kind: decay and decayShape belong to a 'wsd' schedule/,
    );
    expect(() => parseRunConfig({ steps: 10, lr: { kind: 'cosine', decayShape: 'linear' } })).toThrow(
      /lr\.kind: decayFraction and decayShape belong to kind 'wsd'/,
    );
    expect(() => parseSchedule({ kind: 'wsd', peak: 1, total: 100 })).toThrow(/decay: a 'wsd' schedule needs its decay length/);
    expect(() => parseSchedule({ kind: 'wsd', peak: 1, warmup: 60, total: 100, decay: 50 })).toThrow(
      /decay: warmup \+ decay must fit in total/,
    );
  });

  it("refuses a final rate above the peak (a run config's finalFraction given as final)", () => {
    expect(() => parseSchedule({ kind: 'cosine', peak: 1e-3, warmup: 10, total: 100, final: 0.1 })).toThrow(
      /final: final is the rate at the end \(absolute\), at most peak; a fraction of the peak is final = fraction × peak/,
    );
    expect(learningRate(parseSchedule({ kind: 'cosine', peak: 1e-3, warmup: 10, total: 100, final: 1e-3 }), 100)).toBe(1e-3);
  });

  it('a run config with kind wsd decays over decayFraction of the steps after warmup; a growth keeps the shape and its share of the steps after warmup', () => {
    const cfg = parseRunConfig({ steps: 1000, lr: { kind: 'wsd', peak: 1e-3, warmup: 100, decayFraction: 0.2 } });
    const s = defaultSchedule(cfg, presetConfig('tiny'));
    expect(s).toMatchObject({ kind: 'wsd', warmup: 100, total: 1000, decay: 180, decayShape: '1-sqrt' });
    expect(learningRate(s, 819)).toBe(1e-3);
    expect(learningRate(s, 1000)).toBeCloseTo(1e-4, 15);
    const grown = rescheduled(
      { schedule: s, progression: { step: 600, tokens: 0, flops: 0, stage: 0, schedulePos: 600 } } as unknown as TrainState,
      presetConfig('tiny'),
      'depth',
      { peak: 2e-3, total: 2000, rewarmup: 10 },
    ).schedule;
    expect(grown).toMatchObject({ kind: 'wsd', total: 2000, decay: 380, decayShape: '1-sqrt', peak: 2e-3, final: 2e-4 });
  });
});

describe('warmup + cosine', () => {
  const s = parseSchedule({ kind: 'cosine', peak: 2, warmup: 4, total: 104, final: 0.2 });
  it('follows final + ½(peak − final)(1 + cos πp)', () => {
    expect(learningRate(s, 2)).toBeCloseTo(1, 12);
    expect(learningRate(s, 4)).toBeCloseTo(2, 12);
    expect(learningRate(s, 54)).toBeCloseTo(1.1, 12);
    expect(learningRate(s, 104)).toBeCloseTo(0.2, 12);
  });
});

describe('constant', () => {
  it('is the peak after warmup', () => {
    const s = parseSchedule({ kind: 'constant', peak: 3e-4, warmup: 2, total: 1 });
    expect(learningRate(s, 1)).toBeCloseTo(1.5e-4, 15);
    expect(learningRate(s, 1000)).toBe(3e-4);
  });
});

describe('restart with re-warmup (the spec example)', () => {
  const s = parseSchedule({ kind: 'linear', peak: 0.0020069116, warmup: 3000, total: 250000, restart: { at: 3319, rewarmup: 150 } });
  it('matches lr(3319), lr(3394), lr(3469), lr(5000)', () => {
    expect(learningRate(s, 3319)).toBe(0);
    expect(learningRate(s, 3394)).toBeCloseTo(1.00155e-3, 8);
    expect(learningRate(s, 3469)).toBeCloseTo(2.0031e-3, 7);
    expect(learningRate(s, 5000)).toBeCloseTo(1.99066e-3, 8);
  });
  it('refuses steps before the restart point', () => {
    expect(() => learningRate(s, 100)).toThrow(/before the restart point 3319/);
  });
});

describe('pastHorizon: the steps of a session past the decay horizon (after lr.total)', () => {
  // counted directly: each position's rate, against the final one and the re-warmup's ramp
  const direct = (s: ReturnType<typeof parseSchedule>, first: number, last: number) => {
    let atFinal = 0;
    let rewarming = 0;
    for (let t = first; t <= last; t++) {
      if (t <= s.total) continue; // (the schedule's last step is at its final rate by design)
      const inRamp = s.restart !== undefined && t < s.restart.at + s.restart.rewarmup;
      if (inRamp) {
        rewarming++;
        expect(learningRate(s, t)).toBeLessThan(s.final);
      } else {
        atFinal++;
        expect(learningRate(s, t)).toBe(s.final);
      }
    }
    return { atFinal, rewarming };
  };
  it.each([
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4 }, 15, 30],
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4 }, 21, 25],
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4 }, 3, 19],
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4, restart: { at: 11, rewarmup: 150 } }, 12, 60],
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4, restart: { at: 11, rewarmup: 15 } }, 12, 60],
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4, restart: { at: 11, rewarmup: 0 } }, 12, 60],
    [{ peak: 1e-3, warmup: 2, total: 20, final: 1e-4, restart: { at: 11, rewarmup: 5 } }, 12, 15],
    [{ kind: 'cosine' as const, peak: 1e-3, warmup: 2, total: 20, final: 1e-4, restart: { at: 25, rewarmup: 4 } }, 26, 40],
  ])('%j from %i to %i', (input, first, last) => {
    const s = parseSchedule(input);
    expect(pastHorizon(s, first, last)).toEqual(direct(s, first, last));
  });
  it('is none for a constant schedule', () => {
    expect(pastHorizon(parseSchedule({ kind: 'constant', peak: 1e-3, total: 5 }), 1, 50)).toEqual({ atFinal: 0, rewarming: 0 });
  });
});

describe('validation', () => {
  it('names the field at fault', () => {
    expect(() => parseSchedule({ peak: -1, total: 10 })).toThrow(/peak/);
    expect(() => parseSchedule({ peak: 1, warmup: 20, total: 10 })).toThrow(/total must be at least warmup/);
  });
});
