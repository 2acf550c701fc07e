// GPT-2: token + position embeddings, L pre-LN blocks, final LayerNorm, LM head (tied to the token
// embedding by default). Parameter names follow Hugging Face's GPT2LMHeadModel.
import { randn, type TensorOptions } from '../factories';
import { float32CrossEntropy, linear } from '../functional';
import { tidy } from '../scope';
import { Tensor } from '../tensor';
import { Block } from './block';
import { paddedVocab, type GPTConfig } from './config';
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
  private stream(idx: Tensor): { residual: Tensor; branch: Tensor | null } {
    const T = idx.shape[1];
    if (T > this.config.contextLength) throw new Error(`sequence length ${T} exceeds the context length ${this.config.contextLength}`);
    const tr = this.transformer;
    let h = tidy(() => {
      // positions 0…T−1 are wpe's first T rows: a view broadcast over the batch. Its backward is
      // one sum over the batch (and a zero-fill + copy when T < contextLength) where an embedding
      // lookup's is, on CUDA, a sort and about ten more kernels — with the arange, a dozen
      // launches per step that a small, launch-bound model pays for in time
      const wpe = tr.wpe.weight;
      const positions = T === wpe.shape[0] ? wpe : wpe.narrow(0, 0, T); // (T, d)
      return modelDropout(tr.wte.forward(idx).add(positions), this.config.dropout.embedding, this.training);
    });
    let branch: Tensor | null = null;
    for (const b of this.blocks) {
      // release each block's input handles once the next ones exist: the memory stays only as
      // long as autograd needs it, as in PyTorch
      const next = b.forwardPending(h, branch);
      h.dispose();
      branch?.dispose();
      ({ residual: h, branch } = next);
    }
    return { residual: h, branch };
  }

  /** Logits over the padded vocabulary: idx (B, T) → (B, T, Vpad). */
  logits(idx: Tensor): Tensor {
    return tidy(() => {
      const { residual, branch } = this.stream(idx);
      const lnF = this.transformer.lnF;
      const x = branch === null ? lnF.forward(residual) : lnF.addForward(residual, branch)[1];
      const head = this.lmHead?.weight ?? this.transformer.wte.weight; // (Vpad, d): linear's (out, in)
      return linear(x, head);
    });
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
