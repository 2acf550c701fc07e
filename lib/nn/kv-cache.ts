// Keys and values of the positions a model has already seen, kept per block so that generating one
// more token costs one position's forward instead of the whole window's: without it, sampling n
// tokens recomputes n windows (quadratic in n), with it the prompt is read once and each new token
// is a (B, 1) forward against the cached keys.
import { empty } from '../factories';
import { keep } from '../scope';
import type { Tensor } from '../tensor';
import type { GPTConfig } from './config';

/** One block's slice of the cache, as its attention extends and reads it. */
export interface AttentionCache {
  /**
   * Stores the new positions' keys and values k, v (B, heads, n, headDim) after the cached ones;
   * returns every position's so far (views of the cache) and the first new position.
   */
  append(k: Tensor, v: Tensor): { keys: Tensor; values: Tensor; start: number };
}

export class KVCache {
  /** Positions cached so far (the next token's position); a forward adds its own when done. */
  length = 0;
  private keys: Tensor[] = [];
  private values: Tensor[] = [];

  /** The most positions it holds: contextLength unless asked for fewer. */
  readonly capacity: number;

  /**
   * A cache for `batch` sequences of the model `config`, of up to `capacity` positions (default and
   * at most the context length: a short generation need not reserve the whole context). The buffers
   * (2 · layers · batch · capacity · attention width elements) are allocated at the first forward,
   * in the dtype and on the device of the keys it computes, so a bf16-autocast forward caches bf16.
   */
  constructor(
    readonly config: GPTConfig,
    readonly batch: number,
    capacity = config.contextLength,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`KVCache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`KVCache: capacity must be a positive integer, got ${capacity}`);
    this.capacity = Math.min(capacity, config.contextLength);
  }

  /** Positions still free. */
  get free(): number {
    return this.capacity - this.length;
  }

  /** Block `layer`'s slice. */
  layer(layer: number): AttentionCache {
    return { append: (k, v) => this.append(layer, k, v) };
  }

  private append(layer: number, k: Tensor, v: Tensor): { keys: Tensor; values: Tensor; start: number } {
    const [batch, heads, n, headDim] = k.shape;
    if (batch !== this.batch) throw new RangeError(`KVCache: a batch of ${batch} sequences does not match the cache's ${this.batch}`);
    if (this.length + n > this.capacity)
      throw new RangeError(`KVCache: ${this.length} cached + ${n} new positions exceed its capacity ${this.capacity}`);
    if (this.keys.length === 0) {
      const shape = [batch, heads, this.capacity, headDim];
      const opts = { dtype: k.dtype, device: k.device };
      for (let i = 0; i < this.config.nLayer; i++) {
        // (kept: the forward that allocates them runs inside a tidy scope)
        this.keys.push(keep(empty(shape, opts)));
        this.values.push(keep(empty(shape, opts)));
      }
    }
    const start = this.length;
    this.keys[layer].narrow(2, start, n).copy_(k);
    this.values[layer].narrow(2, start, n).copy_(v);
    return { keys: this.keys[layer].narrow(2, 0, start + n), values: this.values[layer].narrow(2, 0, start + n), start };
  }

  /** Forgets every position (the buffers stay for the next prompt). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.keys = [];
    this.values = [];
    this.length = 0;
  }
}
