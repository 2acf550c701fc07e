// Loading a checkpoint's model for inference commands (eval, sample).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkDevice, type Device } from '../dtype';
import { GPT } from '../nn/gpt';
import { manualSeed } from '../runtime';
import { loadCheckpoint, loadParameters, recoverCheckpoint } from '../train/checkpoint';

/** A checkpoint directory, or a run directory holding checkpoint/ (recovered if a save was cut short). */
export function checkpointDir(dir: string): string {
  if (existsSync(join(dir, 'config.json'))) return dir;
  const inner = join(dir, 'checkpoint');
  return existsSync(join(inner, 'config.json')) || recoverCheckpoint(inner) ? inner : dir;
}

export function loadModel(path: string, device: string = 'cpu'): GPT {
  const dir = checkpointDir(path);
  const dev: Device = checkDevice(device);
  const ck = loadCheckpoint(dir, dev, { optimizer: false });
  manualSeed(0);
  const model = new GPT(ck.config, { device: dev });
  loadParameters(model, ck.params, `${dir}/model.safetensors`);
  for (const t of Object.values(ck.params)) t.dispose();
  return model.eval();
}
