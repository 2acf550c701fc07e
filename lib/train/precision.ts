// What a run's precision 'auto' means on its device.
import { cudaIndex, type Device } from '../dtype';
import { buildInfo } from '../runtime';

/**
 * What precision 'auto' trains in on a device: bf16 autocast where the GPU has bf16 tensor cores
 * (compute capability 8.0 and up: A100, H100, RTX 30xx and later), fp16 autocast with loss scaling
 * on older GPUs (V100, T4, RTX 20xx, whose tensor cores take fp16 but not bf16), as nanoGPT
 * picks; fp32 on the CPU.
 */
export function autoPrecision(
  device: Device,
  devices: { index: number; computeCapability: string }[] = device.startsWith('cuda') ? buildInfo().devices : [],
): 'fp32' | 'bf16' | 'fp16' {
  if (!device.startsWith('cuda')) return 'fp32';
  const d = devices.find((x) => x.index === cudaIndex(device));
  const major = Number((d?.computeCapability ?? '0').split('.')[0]);
  return d === undefined || major >= 8 ? 'bf16' : 'fp16';
}
