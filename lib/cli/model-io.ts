// Loading a checkpoint's model for inference commands (eval, sample).
import { checkDevice } from '../dtype';
import { GPT } from '../nn/gpt';
import { manualSeed } from '../runtime';
import { adoptWeights, loadWeights } from '../train/weights';

export { checkpointDir } from '../train/weights';

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
