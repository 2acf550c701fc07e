// The training state the growth operators transform: everything that decides how training
// continues — model config, parameters, AdamW moments and step, schedule and its position,
// counters — as plain data over tensors. Operators are pure: they return a new TrainState and
// never modify the one they are given.
import type { GPTConfig } from '../nn/config';
import type { Moments } from '../optim/adamw';
import type { Schedule } from '../optim/schedule';
import type { Tensor } from '../tensor';

export interface Progression {
  /** Optimizer steps taken over all stages. */
  step: number;
  tokens: number;
  flops: number;
  /** 0 for the first stage, +1 per growth. */
  stage: number;
  /** Position in the current LR schedule (differs from step after growth). */
  schedulePos: number;
}

export interface TrainState {
  config: GPTConfig;
  /** Parameters under their Hugging Face GPT-2 names (a tied head is the token embedding). */
  params: Record<string, Tensor>;
  /** AdamW moments per parameter name. */
  moments: Record<string, Moments>;
  /** AdamW updates made so far (kept through growth). */
  optimizerStep: number;
  schedule: Schedule;
  progression: Progression;
}

/**
 * Frees every tensor of a state that owns them: a grown state nothing has taken over, or a loaded
 * one. Not a state whose tensors a model or optimizer holds — stateOf's view of live ones, or one
 * given to instantiate({ adopt: true }), resetParameters or setMoments.
 */
export function disposeState(s: TrainState): void {
  for (const t of Object.values(s.params)) t.dispose();
  for (const m of Object.values(s.moments)) {
    m.expAvg.dispose();
    m.expAvgSq.dispose();
  }
}

/** Block index of a parameter name (transformer.h.<i>.…), or null. */
export function blockIndex(name: string): number | null {
  const m = /^transformer\.h\.(\d+)\./.exec(name);
  return m === null ? null : Number(m[1]);
}

/** The name with its block index replaced. */
export function renameBlock(name: string, index: number): string {
  return name.replace(/^transformer\.h\.\d+\./, `transformer.h.${index}.`);
}
