// A model's weights from a directory: a staged-lm checkpoint (or the run directory holding it) or a
// Hugging Face GPT-2 directory. What sample, eval and a run's `initFrom` read.
import { join } from 'node:path';
import type { Device } from '../dtype';
import { isHfDir, loadHfGpt2 } from '../io/hf-gpt2';
import type { GPTConfig } from '../nn/config';
import type { GPT } from '../nn/gpt';
import type { Tensor } from '../tensor';
import { checkpointDir, loadCheckpoint, loadParameters } from './checkpoint';

export { checkpointDir };

export interface Weights {
  config: GPTConfig;
  /** Parameters under this library's names, on the device asked for; the caller disposes them. */
  params: Record<string, Tensor>;
  /** Where they came from, for messages. */
  source: string;
}

/** The model config and parameters saved in `path` (see checkpointDir), on `device`. */
export function loadWeights(path: string, device: Device): Weights {
  const dir = checkpointDir(path);
  if (isHfDir(dir)) return { ...loadHfGpt2(dir, device), source: dir };
  const ck = loadCheckpoint(dir, device, { optimizer: false });
  return { config: ck.config, params: ck.params, source: join(dir, 'model.safetensors') };
}

/** Copies `weights` into `model` (of the same config) and frees them, whether or not that succeeds. */
export function adoptWeights(model: GPT, weights: Weights): void {
  try {
    loadParameters(model, weights.params, weights.source);
  } finally {
    for (const t of Object.values(weights.params)) t.dispose();
  }
}
