// Loading a checkpoint's model for inference commands (eval, sample).
import { checkDevice } from '../dtype';
import { GPT } from '../nn/gpt';
import { manualSeed } from '../runtime';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adoptWeights, checkpointDir, loadWeights } from '../train/weights';

export { checkpointDir } from '../train/weights';

/**
 * The sequence length a staged-lm run trained its checkpoint on, where it is shorter than the
 * model's context: positions past it never had a gradient (their embeddings are as initialized),
 * so eval and sample read no further by default. Null for a Hugging Face directory, a run from
 * another checkpoint's weights (initFrom: what those were trained on is not known here), or a
 * run that trained on the whole context.
 */
export function trainedSeqLen(path: string, contextLength: number): number | null {
  const file = join(checkpointDir(path), 'state.json');
  if (!existsSync(file)) return null;
  try {
    const run = (JSON.parse(readFileSync(file, 'utf8')) as { extra?: { run?: { seqLen?: unknown; initFrom?: unknown } } }).extra?.run;
    const seqLen = run?.seqLen;
    if (run?.initFrom !== undefined || typeof seqLen !== 'number' || !Number.isInteger(seqLen) || seqLen < 1) return null;
    return seqLen < contextLength ? seqLen : null;
  } catch {
    return null; // (loadModel has read the checkpoint: a state.json it could not parse would have failed there)
  }
}

/** A checkpoint's model (ours, or a Hugging Face GPT-2 directory) on `device`, in eval mode. */
export function loadModel(path: string, device: string = 'cpu'): GPT {
  const dev = checkDevice(device);
  const weights = loadWeights(path, dev);
  let model: GPT;
  try {
    manualSeed(0);
    model = new GPT(weights.config, { device: dev });
  } catch (e) {
    for (const t of Object.values(weights.params)) t.dispose();
    throw e;
  }
  try {
    adoptWeights(model, weights);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}
