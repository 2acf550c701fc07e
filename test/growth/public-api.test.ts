// The README's growth flow from a script, through the package's public exports only: a live model and
// optimizer → stateOf → an operator → instantiate(adopt) → training on, with the same function and
// no tensor left behind; and the re-warmup note a script can ask for.
import {
  AdamW,
  GPT,
  growWidth,
  instantiate,
  manualSeed,
  memoryStats,
  noGrad,
  parseGPTConfig,
  parseSchedule,
  randint,
  rewarmupPastHorizonNote,
  stateOf,
  tidy,
} from '../../lib';

describe('growth from a script (public API)', () => {
  it('stateOf → growWidth → instantiate({adopt}): the same loss, a grown model that trains, nothing leaked', () => {
    manualSeed(5);
    const live = memoryStats().liveTensors;
    const config = parseGPTConfig({ nLayer: 2, nHead: 2, nEmbd: 16, contextLength: 8, vocabSize: 64 });
    const x = randint(0, 64, [2, 8], { dtype: 'int64' });
    const y = randint(0, 64, [2, 8], { dtype: 'int64' });
    const model = new GPT(config, { dtype: 'float64' });
    const optimizer = new AdamW(model.namedParameters());
    for (let i = 0; i < 3; i++)
      tidy(() => {
        optimizer.zeroGrad();
        model.loss(x, y).backward();
        optimizer.update(1e-2);
      });
    const loss = (m: GPT) => noGrad(() => tidy(() => m.loss(x, y).item()));
    model.eval();
    const before = loss(model);
    const schedule = parseSchedule({ kind: 'cosine', peak: 1e-2, warmup: 2, total: 1000 });
    const state = stateOf(model, optimizer, schedule, { step: 3, tokens: 48, flops: 0, stage: 0, schedulePos: 3 });
    const grown = growWidth(state, { schedule: { peak: 1e-2, rewarmup: 2 } });
    const { model: big, optimizer: bigOptimizer } = instantiate(grown, { adopt: true });
    model.dispose();
    optimizer.dispose();
    big.eval();
    expect(big.config.nEmbd).toBe(32);
    expect(Math.abs(loss(big) - before)).toBeLessThan(1e-10);
    expect(bigOptimizer.step).toBe(3);
    big.train();
    tidy(() => {
      bigOptimizer.zeroGrad();
      big.loss(x, y).backward();
      bigOptimizer.update(1e-2);
    });
    big.dispose();
    bigOptimizer.dispose();
    x.dispose();
    y.dispose();
    expect(memoryStats().liveTensors).toBe(live);
  });

  it('rewarmupPastHorizonNote tells a script that the grown rate would never decay', () => {
    const s = parseSchedule({ kind: 'cosine', peak: 1e-2, warmup: 2, total: 100, restart: { at: 23, rewarmup: 150 } });
    expect(rewarmupPastHorizonNote(s)).toMatch(/re-warmup \(150 steps from position 23\) ends at or past the schedule's horizon 100/);
    expect(rewarmupPastHorizonNote({ ...s, restart: { at: 23, rewarmup: 10 } })).toBeNull();
  });
});
