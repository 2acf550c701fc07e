// The package's entry point (what `require('staged-lm')` gives) exposes what the README's scripting
// examples use: the trainer, growth, sampling, data, and the scaling-law tools behind plan, slope and fit.
import * as api from '../lib';

it('exports the trainer, growth, sampling, data and scaling-law functions by name', () => {
  for (const name of [
    'Trainer',
    'parseRunConfig',
    'AdamW',
    'GradScaler',
    'grow',
    'generateSamples',
    'prepare',
    'loadHfGpt2',
    'learningRate',
    'pastHorizon',
    'planStages',
    'singleStageOptimum',
    'optimalGrowthPoint',
    'findGrowthPoint',
    'replayTrigger',
    'fitScalingLaw',
    'parseValidationLog',
    'KAPLAN',
  ])
    expect(typeof (api as Record<string, unknown>)[name]).not.toBe('undefined');
  // one of them at work: the spec's one-stage optimum at L = 3 (0.294 PF-days)
  expect(api.planStages({ targetLoss: 3, stages: 1 }).singleStage.pfDays).toBeCloseTo(0.294, 3);
});
