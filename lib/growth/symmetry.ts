// Whether a growth's copies have anything to tell them apart (spec/growth.md, "Symmetry"): width
// copies of the residual stream, mlp units or heads that get equal gradients stay identical — the
// small model in disguise — unless dropout, noise or split noise breaks the tie. Both the trainer
// (for a run config's stages) and `staged-lm grow` say so before the compute is spent.

import type { GrowthOperator } from './index';

/** The symmetry breakers a growth is given (the stage's, or grow's flags). */
export interface SymmetryBreakers {
  /** The grown model's attention and residual dropout, where the growth sets it. */
  dropout?: number;
  noiseStd?: number;
  splitNoiseStd?: number;
}

/** What the caller calls each breaker (config keys or flags), for the note. */
export interface BreakerNames {
  dropout: string;
  noise: string;
  split: string;
}

/**
 * The note for a growth whose copies nothing tells apart, or null. `model`: the dropout of the model
 * being grown (kept through growth where the growth sets none).
 */
export function symmetryNote(
  op: GrowthOperator,
  b: SymmetryBreakers,
  model: { embedding: number; attention: number; residual: number },
  names: BreakerNames,
): string | null {
  const split = (b.splitNoiseStd ?? 0) > 0;
  // embedding dropout masks the two copies of each residual unit apart
  const dropout = (b.dropout ?? Math.max(model.attention, model.residual)) > 0 || model.embedding > 0;
  if ((op === 'width' || op === 'both') && !(dropout || (b.noiseStd ?? 0) > 0 || split))
    return `width growth has nothing to break the symmetry of its copies (no ${names.dropout}, ${names.noise} or ${names.split}): they stay identical`;
  // dropout acts on the MLP's averaged output, never on its copied units; attention dropout does tell heads apart
  if (op === 'mlp' && !split)
    return `mlp growth has no ${names.split}: its copied units get equal gradients and stay identical (dropout cannot tell them apart)`;
  if (op === 'heads' && !split && !(model.attention > 0))
    return `heads growth has nothing to break the symmetry of its copies (no attention dropout or ${names.split}): they stay identical`;
  return null;
}
