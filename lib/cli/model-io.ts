// Loading a checkpoint's model for inference commands (eval, sample).
import { checkDevice, type Device } from '../dtype';
import { GPT } from '../nn/gpt';
import { manualSeed } from '../runtime';
import { loadCheckpoint, loadParameters } from '../train/checkpoint';

export function loadModel(dir: string, device: string = 'cpu'): GPT {
  const dev: Device = checkDevice(device);
  const ck = loadCheckpoint(dir, dev, { optimizer: false });
  manualSeed(0);
  const model = new GPT(ck.config, { device: dev });
  loadParameters(model, ck.params, `${dir}/model.safetensors`);
  for (const t of Object.values(ck.params)) t.dispose();
  return model.eval();
}
