// `--set PATH=VALUE`: parsed as JSON where it parses, set along a dotted path (arrays by index),
// refused with a message naming the override when the path cannot hold it.
import { InvalidArgumentError } from 'commander';
import { applyOverrides, collectOverride } from '../../lib/cli/overrides';

const set = (config: Record<string, unknown>, ...texts: string[]) => {
  applyOverrides(
    config,
    texts.reduce((acc, t) => collectOverride(t, acc), [] as ReturnType<typeof collectOverride>),
  );
  return config;
};

describe('--set', () => {
  it('reads the value as JSON when it parses, else as a string', () => {
    expect(set({}, 'a=6e-4', 'b=true', 'c=null', 'd=[1,2]', 'e={"x":1}', 'f=cosine', 'g=data/shards', 'h=')).toEqual({
      a: 6e-4,
      b: true,
      c: null,
      d: [1, 2],
      e: { x: 1 },
      f: 'cosine',
      g: 'data/shards',
      h: '',
    });
  });

  it('sets nested fields, keeping their siblings, and creates what is missing (arrays for indices)', () => {
    const c = set({ lr: { peak: 1, warmup: 5 } }, 'lr.peak=2', 'eval.interval=0', 'stages.0.grow.op=depth', 'stages.1.until.steps=9');
    expect(c).toEqual({
      lr: { peak: 2, warmup: 5 },
      eval: { interval: 0 },
      stages: [{ grow: { op: 'depth' } }, { until: { steps: 9 } }],
    });
    // an existing entry is changed in place
    expect(set({ stages: [{ grow: { op: 'width' } }] }, 'stages.0.grow.factor=4')).toEqual({
      stages: [{ grow: { op: 'width', factor: 4 } }],
    });
  });

  it('applies overrides in order: the last one wins', () => {
    expect(set({}, 'steps=1', 'steps=2')).toEqual({ steps: 2 });
  });

  it('refuses malformed overrides and paths that cannot hold a value, naming them', () => {
    expect(() => collectOverride('lr.peak')).toThrow(InvalidArgumentError);
    expect(() => collectOverride('=3')).toThrow(/--set takes PATH=VALUE/);
    expect(() => collectOverride('lr..peak=1')).toThrow(/'' is not a field name/);
    expect(() => collectOverride('__proto__.polluted=1')).toThrow(/'__proto__' is not a field name/);
    expect(() => collectOverride('a.constructor.prototype=1')).toThrow(/'constructor' is not a field name/);
    expect(() => set({ stages: [] }, 'stages.2.grow.op=depth')).toThrow(
      /--set stages\.2\.grow\.op=depth: stages has 0 entries: index 2 would leave a gap/,
    );
    expect(() => set({ stages: [] }, 'stages.first=1')).toThrow(/stages is an array: give an index, not 'first'/);
    expect(() => set({ model: 'tiny' }, 'model.nLayer=2')).toThrow(/model is "tiny", not an object with fields/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
