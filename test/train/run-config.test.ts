// Run configs: the README's parse as they stand, and its reference recipe is spec/growth.md's
// ("Reference training recipe"): β (0.9, 0.98), ε 1e-6, no bias correction, no weight decay, no
// clipping, dropout 0.1, 512 × 1024 tokens per step, warmup 3000, linear decay to 0 at 250k. A
// model's errors name their place in the run config.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRunConfig, resolveModel } from '../../lib/train/config';
import { defaultSchedule } from '../../lib/train/trainer';
import { presetConfig } from '../../lib/nn/config';

const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);

describe("the README's run configs", () => {
  it('every JSON block parses as a run config', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const b of blocks) expect(() => parseRunConfig(JSON.parse(b), 'README')).not.toThrow();
  });

  it('the reference recipe is the spec’s', () => {
    const block = blocks.find((b) => b.includes('"biasCorrection": false'));
    expect(block).toBeDefined();
    const c = parseRunConfig(JSON.parse(block!), 'README');
    expect(c.optimizer).toMatchObject({ betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0, biasCorrection: false });
    expect(c.clipGradNorm).toBeNull();
    expect(c.batchSize * c.gradAccum * (c.seqLen as number)).toBe(512 * 1024);
    const model = presetConfig('paper-base-half-width', { dropout: { embedding: 0.1, attention: 0.1, residual: 0.1 } });
    const s = defaultSchedule(c, model);
    expect(s).toMatchObject({ kind: 'linear', warmup: 3000, total: 250000, final: 0 });
    expect(c.stages.map((st) => st.grow.op)).toEqual(['width']);
    const m = c.model as { preset: string; dropout: Record<string, number> };
    expect(m.dropout).toEqual({ embedding: 0.1, attention: 0.1, residual: 0.1 });
    expect(presetConfig(m.preset as 'paper-base-half-width').nEmbd * 2).toBe(presetConfig('paper-base').nEmbd);
  });
});

describe('a run config’s model errors name their place in the run config', () => {
  it('model.<key>, for a preset with overrides and for a full config', () => {
    const cases: [object, RegExp][] = [
      [{ preset: 'tiny', nEmbed: 64 }, /invalid model config: model: Unrecognized key: "nEmbed"/],
      [{ preset: 'tiny', nHead: 0 }, /invalid model config: model\.nHead: /],
      [{ nLayer: 1, nHead: 2, nEmbd: 32, contextLength: 8, dropout: { residual: 2 } }, /model\.dropout\.residual: /],
    ];
    for (const [model, message] of cases) expect(() => resolveModel(model as never)).toThrow(message);
  });
});
