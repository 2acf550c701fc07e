// Per-parameter learning-rate multipliers of a run (config.lr.hiddenWidthBase): μP's rule for Adam,
// at base/width for every parameter whose width copies add up in the function — the blocks' weight
// matrices (a duplicated input sums the two copies) and the final LayerNorm (its halves' logits
// add up, which is why the width operator halves it). Why it matters for growth: Adam's step does
// not depend on the gradient's scale, so after width ×k each copy takes the step the small weight
// would have taken and the function moves k times as far. The 1/width rate undoes exactly that:
// with the off-diagonal moments scaled like the copies' and no dropout, the grown model then trains
// as the small model did (test/train/lr-scales.test.ts). Embeddings, biases and the blocks'
// LayerNorms are copied, not summed, and keep the peak rate. Which is which is the width operator's
// own classification (widthRole: block-diagonal matrices and LNf), so the two cannot disagree.
import { widthRole } from '../growth/width';
import type { GPTConfig } from '../nn/config';
import type { NamedParameter } from '../optim/adamw';

/** The multiplier of each parameter, or null when the run uses one learning rate for all. */
export function lrScales(base: number | undefined, model: Pick<GPTConfig, 'nEmbd'>): ((p: NamedParameter) => number) | null {
  if (base === undefined) return null;
  const scaled = base / model.nEmbd;
  return (p) => {
    const role = widthRole(p.name).kind;
    return role === 'matrix' || role === 'lnf' ? scaled : 1;
  };
}
