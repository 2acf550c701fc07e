// GPT-2: token + position embeddings, L pre-LN blocks, final LayerNorm, LM head (tied to the token
// embedding by default). Parameter names follow Hugging Face's GPT2LMHeadModel.
import { noGrad } from '../autograd';
import { randn, type TensorOptions } from '../factories';
import { float32CrossEntropy, linear } from '../functional';
import { tidy } from '../scope';
import { Tensor } from '../tensor';
import { Block } from './block';
import { paddedVocab, type GPTConfig } from './config';
import type { KVCache } from './kv-cache';
import { Embedding, LayerNorm, modelDropout } from './layers';
import { Module } from './module';

/** transformer.{wte, wpe, h.N, ln_f} */
class Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Module & { blocks: Block[] };
  readonly lnF: LayerNorm;

  constructor(config: GPTConfig, opts: TensorOptions) {
    super();
    const std = config.initStd;
    this.wte = this.registerModule('wte', new Embedding(paddedVocab(config), config.nEmbd, { std, ...opts }));
    this.wpe = this.registerModule('wpe', new Embedding(config.contextLength, config.nEmbd, { std, ...opts }));
    this.h = this.registerModule('h', new BlockList(config, opts));
    this.lnF = this.registerModule('ln_f', new LayerNorm(config.nEmbd, config.layerNormEps, { bias: config.bias, ...opts }));
  }
}

/** h.0 … h.{L−1} */
class BlockList extends Module {
  readonly blocks: Block[];
  constructor(config: GPTConfig, opts: TensorOptions) {
    super();
    this.blocks = Array.from({ length: config.nLayer }, (_, i) => this.registerModule(String(i), new Block(config, opts)));
  }
}

/** lm_head (only when not tied) */
class LMHead extends Module {
  readonly weight: Tensor;
  constructor(config: GPTConfig, opts: TensorOptions) {
    super();
    this.weight = this.registerParameter('weight', randn([paddedVocab(config), config.nEmbd], opts).mul_(config.initStd), 'weight');
  }
}

export interface GPTOptions {
  dtype?: TensorOptions['dtype'];
  device?: TensorOptions['device'];
}

export class GPT extends Module {
  readonly transformer: Transformer;
  readonly lmHead: LMHead | null;

  /** Parameters are initialised from the global generator (seed it with manualSeed). */
  constructor(
    readonly config: GPTConfig,
    opts: GPTOptions = {},
  ) {
    super();
    const o = { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' };
    this.transformer = this.registerModule('transformer', new Transformer(config, o));
    this.lmHead = config.tiedEmbeddings ? null : this.registerModule('lm_head', new LMHead(config, o));
  }

  get blocks(): Block[] {
    return this.transformer.h.blocks;
  }

  /** The residual stream after the last block (before LNf): idx (B, T) → (B, T, d). */
  hidden(idx: Tensor): Tensor {
    return tidy(() => {
      const { residual, branch } = this.stream(idx);
      return branch === null ? residual : residual.add(branch);
    });
  }

  /**
   * The residual stream after the last block with its MLP output not yet added (`branch`; null
   * without blocks), so that the caller adds it in one op with the LayerNorm after it.
   */
  private stream(idx: Tensor, cache?: KVCache): { residual: Tensor; branch: Tensor | null } {
    const T = idx.shape[1];
    const start = cache?.length ?? 0; // the position of idx's first token
    if (start + T > this.config.contextLength)
      throw new Error(
        `sequence length ${start + T}${start > 0 ? ` (${start} cached)` : ''} exceeds the context length ${this.config.contextLength}`,
      );
    if (cache !== undefined && start + T > cache.capacity)
      throw new Error(`sequence length ${start + T} (${start} cached) exceeds the cache's capacity ${cache.capacity}`);
    const tr = this.transformer;
    let h = tidy(() => {
      // positions 0…T−1 are wpe's first T rows: a view broadcast over the batch. Its backward is
      // one sum over the batch (and a zero-fill + copy when T < contextLength) where an embedding
      // lookup's is, on CUDA, a sort and about ten more kernels — with the arange, a dozen
      // launches per step that a small, launch-bound model pays for in time
      const wpe = tr.wpe.weight;
      const positions = start === 0 && T === wpe.shape[0] ? wpe : wpe.narrow(0, start, T); // (T, d)
      return modelDropout(tr.wte.forward(idx).add(positions), this.config.dropout.embedding, this.training);
    });
    let branch: Tensor | null = null;
    this.blocks.forEach((b, layer) => {
      // release each block's input handles once the next ones exist: the memory stays only as
      // long as autograd needs it, as in PyTorch
      const next = cache === undefined ? b.forwardPending(h, branch) : b.forwardPending(h, branch, cache.layer(layer));
      h.dispose();
      branch?.dispose();
      ({ residual: h, branch } = next);
    });
    if (cache !== undefined) cache.length += T;
    return { residual: h, branch };
  }

  /** Logits over the padded vocabulary: idx (B, T) → (B, T, Vpad). */
  logits(idx: Tensor): Tensor {
    return tidy(() => this.head(this.stream(idx)));
  }

  /**
   * The logits (B, Vpad) of the token after idx (B, T), which continues the positions in `cache`
   * (empty: idx is a prompt from position 0). idx's keys and values are added to the cache, so the
   * next call passes only the token drawn from these logits. Equals logits() of the whole sequence
   * at its last position; the cache holds at most its capacity (see KVCache.free). Inference only:
   * it runs without autograd (the cache's in-place writes would chain every token's graph).
   */
  nextLogits(idx: Tensor, cache: KVCache): Tensor {
    if (cache.config !== this.config && JSON.stringify(cache.config) !== JSON.stringify(this.config))
      throw new Error('nextLogits: the cache was made for another model configuration');
    return noGrad(() =>
      tidy(() => {
        const { residual, branch } = this.stream(idx, cache);
        const last = (t: Tensor) => t.narrow(1, t.shape[1] - 1, 1); // only the last position is read out
        return this.head({ residual: last(residual), branch: branch === null ? null : last(branch) }).squeeze(1);
      }),
    );
  }

  /** LNf and the LM head on the residual stream: (B, T, d) → (B, T, Vpad). */
  private head({ residual, branch }: { residual: Tensor; branch: Tensor | null }): Tensor {
    const lnF = this.transformer.lnF;
    const x = branch === null ? lnF.forward(residual) : lnF.addForward(residual, branch)[1];
    const head = this.lmHead?.weight ?? this.transformer.wte.weight; // (Vpad, d): linear's (out, in)
    return linear(x, head);
  }

  /** Mean next-token cross-entropy of idx (B, T) against targets (B, T), in at least float32. */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return tidy(() => {
      const logits = this.logits(idx);
      const V = logits.shape[2];
      // scored in float32 even for half-precision logits (bf16 weights, or autocast), the gradient
      // written back in their dtype without a float32 round trip or full-size temporaries: the
      // step's largest tensors
      return float32CrossEntropy(logits.view(-1, V), targets.reshape(-1)); // reshape: targets may be a strided slice
    });
  }
}
