// Turning host token windows into the int64 [B, T] tensors a model consumes, on its device.
import { checkDevice, type Device } from '../dtype';
import { fromTypedArray } from '../factories';
import type { Tensor } from '../tensor';
import { FileTokens, type Tokens } from './file-tokens';

/** Inputs and next-token targets: y[b, t] is the token after x[b, t]. Both int64 [B, T]. */
export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** The sizes every loader validates: positive integers B and T, and data holding at least one window of T+1 tokens. */
export function checkWindow(tokens: Tokens, batchSize: number, seqLen: number, who: string): void {
  if (!(tokens instanceof Uint16Array || tokens instanceof FileTokens))
    throw new TypeError(`${who}: expected a Uint16Array of token ids (or a FileTokens) for tokens`);
  for (const [name, v] of [
    ['batchSize', batchSize],
    ['seqLen', seqLen],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new TypeError(`${who}: expected a positive integer for ${name} but received ${v}`);
  }
  // (the host buffers are typed arrays, which stop well short of this)
  if (batchSize * seqLen > 2 ** 31 - 1)
    throw new RangeError(`${who}: a batch of ${batchSize} × ${seqLen} tokens is more than one batch can hold (2^31 − 1 tokens)`);
  if (tokens.length < seqLen + 1) {
    throw new RangeError(`${who}: the data has ${tokens.length} tokens, too few for one window of seqLen + 1 = ${seqLen + 1} tokens`);
  }
}

export function resolveDevice(device: Device | undefined, who: string): Device {
  return device === undefined ? 'cpu' : checkDevice(device, `${who} device`);
}

/**
 * Copies `rows` windows laid out in x and y ([rows, T] row-major, int32 on the host) to int64
 * tensors on `device`. For CUDA the host copy goes through page-locked memory so the transfer is
 * asynchronous (non-blocking) and overlaps with work already queued on the GPU; libtorch's caching
 * host allocator keeps the pinned block alive until the copy has finished, so disposing it here is safe.
 */
export function toBatch(x: Int32Array, y: Int32Array, rows: number, seqLen: number, device: Device): Batch {
  return { x: toDevice(x, rows, seqLen, device), y: toDevice(y, rows, seqLen, device) };
}

function toDevice(data: Int32Array, rows: number, seqLen: number, device: Device): Tensor {
  const host = fromTypedArray(data, [rows, seqLen], { dtype: 'int64' });
  if (device === 'cpu') return host;
  const pinned = host.pinMemory();
  host.dispose();
  const moved = pinned.to({ device, nonBlocking: true });
  pinned.dispose();
  return moved;
}
