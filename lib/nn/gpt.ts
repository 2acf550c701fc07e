// GPT-2: token + position embeddings, L pre-LN blocks, final LayerNorm, LM head (tied to the token
// embedding by default). Parameter names follow Hugging Face's GPT2LMHeadModel.
import { enableGrad, noGrad } from '../autograd';
import { randn, type TensorOptions } from '../factories';
import { float32CrossEntropy, linear } from '../functional';
import { getRngState, setRngState } from '../runtime';
import { tidy } from '../scope';
import { Tensor } from '../tensor';
import { Block } from './block';
import { paddedVocab, parseGPTConfig, type GPTConfig, type GPTConfigInput } from './config';
import type { KVCache } from './kv-cache';
import { Embedding, LayerNorm, modelDropout } from './layers';
import { Module } from './module';
import { FLOAT_DTYPES } from '../dtype';

/**
 * Token ids a model reads or scores: a (B, T) tensor (libtorch names a wrong dtype itself). Returns
 * its shape (one native call per step's check: the step is host-bound on small models).
 */
function checkTokens(t: unknown, arg: string): number[] {
  if (!(t instanceof Tensor))
    throw new TypeError(`GPT: ${arg} must be a Tensor of token ids (B, T), got ${Array.isArray(t) ? 'an array' : typeof t}`);
  const shape = t.shape;
  if (shape.length !== 2) throw new RangeError(`GPT: ${arg} must be (batch, positions), got shape [${shape}]`);
  return shape;
}

/** A config made by parseGPTConfig (a hand-built object may lack its defaults and derived sizes). */
/**
 * Whether a config is parseGPTConfig's output: every field it fills in is there. (A written one
 * that gives some of them — mlpWidth, headSize, dropout — still lacks the defaults of the rest.)
 * A parsed config is taken as it is: checkConfig allows what the schema does not, such as no blocks.
 */
function isParsed(c: GPTConfig | GPTConfigInput): c is GPTConfig {
  if (typeof c !== 'object' || c === null) return false;
  const d = (c as { dropout?: unknown }).dropout as Record<string, unknown> | undefined;
  return (
    PARSED_FIELDS.every((k) => (c as Record<string, unknown>)[k] !== undefined) &&
    typeof d === 'object' &&
    d !== null &&
    ['embedding', 'attention', 'residual'].every((k) => typeof d[k] === 'number')
  );
}

const PARSED_FIELDS = [
  'vocabSize',
  'vocabMultiple',
  'contextLength',
  'nLayer',
  'nHead',
  'nEmbd',
  'mlpWidth',
  'headSize',
  'tiedEmbeddings',
  'bias',
  'initStd',
  'layerNormEps',
];

function checkConfig(c: GPTConfig): void {
  for (const k of ['nLayer', 'nHead', 'nEmbd', 'contextLength', 'vocabSize', 'mlpWidth', 'headSize'] as const) {
    const v: unknown = c?.[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (k === 'nLayer' ? 0 : 1))
      throw new TypeError(
        `GPT: config.${k} is ${String(v)}: build the config with parseGPTConfig({...}), which fills in the defaults and checks it`,
      );
  }
}

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
  readonly config: GPTConfig;
  readonly transformer: Transformer;
  readonly lmHead: LMHead | null;

  /**
   * Parameters are initialised from the global generator (seed it with manualSeed). `config`: a
   * parsed one (parseGPTConfig, a preset's), or one as written — `{ nLayer: 2, nHead: 2, nEmbd:
   * 64, contextLength: 64 }` — which is parsed here (defaults filled in, checked).
   */
  constructor(config: GPTConfig | GPTConfigInput, opts: GPTOptions = {}) {
    super();
    this.config = isParsed(config) ? config : parseGPTConfig(config);
    checkConfig(this.config);
    const o = { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' };
    if (!FLOAT_DTYPES.includes(o.dtype))
      throw new TypeError(`GPT: dtype must be a floating type (${FLOAT_DTYPES.join(', ')}), got '${String(o.dtype)}'`);
    this.transformer = this.registerModule('transformer', new Transformer(this.config, o));
    this.lmHead = this.config.tiedEmbeddings ? null : this.registerModule('lm_head', new LMHead(this.config, o));
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
    const T = checkTokens(idx, 'idx')[1];
    const start = cache?.length ?? 0; // the position of idx's first token
    if (start + T > this.config.contextLength)
      throw new Error(
        `sequence length ${start + T}${start > 0 ? ` (${start} cached)` : ''} exceeds the context length ${this.config.contextLength}`,
      );
    if (cache !== undefined && start + T > cache.capacity)
      throw new Error(`sequence length ${start + T} (${start} cached) exceeds the cache's capacity ${cache.capacity}`);
    let h = this.embed(idx, start);
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

  /** Token + position embeddings (with their dropout) of idx (B, T) at positions start…: (B, T, d). */
  private embed(idx: Tensor, start = 0): Tensor {
    const tr = this.transformer;
    const T = idx.shape[1];
    return tidy(() => {
      // positions 0…T−1 are wpe's first T rows: a view broadcast over the batch. Its backward is
      // one sum over the batch (and a zero-fill + copy when T < contextLength) where an embedding
      // lookup's is, on CUDA, a sort and about ten more kernels — with the arange, a dozen
      // launches per step that a small, launch-bound model pays for in time
      const wpe = tr.wpe.weight;
      const positions = start === 0 && T === wpe.shape[0] ? wpe : wpe.narrow(0, start, T); // (T, d)
      return modelDropout(tr.wte.forward(idx).add(positions), this.config.dropout.embedding, this.training);
    });
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

  /** LNf and the LM head on the residual stream: (B, T, d) → (B, T, Vpad); `weight` stands in for the head's. */
  private head({ residual, branch }: { residual: Tensor; branch: Tensor | null }, weight?: Tensor): Tensor {
    const lnF = this.transformer.lnF;
    const x = branch === null ? lnF.forward(residual) : lnF.addForward(residual, branch)[1];
    const head = weight ?? this.lmHead?.weight ?? this.transformer.wte.weight; // (Vpad, d): linear's (out, in)
    return linear(x, head);
  }

  /** Mean next-token cross-entropy of idx (B, T) against targets (B, T), in at least float32. */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return tidy(() => this.scoreLogits(this.logits(idx), targets));
  }

  private scoreLogits(logits: Tensor, targets: Tensor): Tensor {
    const shape = logits.shape;
    const given = checkTokens(targets, 'targets');
    if (given[0] !== shape[0] || given[1] !== shape[1])
      throw new RangeError(`GPT.loss: targets have shape [${given}] but idx has [${shape.slice(0, 2)}]`);
    const V = shape[2];
    // scored in float32 even for half-precision logits (bf16 weights, or autocast), the gradient
    // written back in their dtype without a float32 round trip or full-size temporaries: the
    // step's largest tensors
    return float32CrossEntropy(logits.view(-1, V), targets.reshape(-1)); // reshape: targets may be a strided slice
  }

  /**
   * The loss of idx against targets and its backward: the gradients of (loss / divisor) are
   * accumulated into the parameters' .grad. Returns the loss, detached.
   *
   * With `recompute` (activation checkpointing), the forward keeps only each block's input — two
   * (B, T, d) tensors a block, where autograd would keep a dozen and the attention's — and the
   * backward runs block by block from the last, each block's forward run again with autograd on
   * just before its backward: about a third more compute for the blocks' activations' memory.
   * Dropout draws the same masks again (each block's generator state is put back before its
   * recomputation, and the state after the forward at the end), so the gradients are those of
   * the plain backward. A tied embedding gets its two contributions (the head's, the lookup's) in
   * one accumulation, as in the plain backward, so that gradient hooks (data parallel) see it once.
   * `run` wraps each forward (autocast). `lossScale` (a scalar tensor; dynamic loss scaling, see
   * GradScaler) multiplies the loss the backward starts from: the gradients are those of
   * loss · lossScale / divisor; the loss returned is not scaled.
   */
  lossBackward(
    idx: Tensor,
    targets: Tensor,
    opts: { divisor?: number; recompute?: boolean; run?: <R>(fn: () => R) => R; lossScale?: Tensor } = {},
  ): Tensor {
    const run = opts.run ?? (<R>(fn: () => R) => fn());
    const divisor = opts.divisor ?? 1;
    const lossScale = opts.lossScale;
    const scaled = (loss: Tensor) => {
      const l = lossScale === undefined ? loss : loss.mul(lossScale);
      return divisor === 1 ? l : l.div(divisor);
    };
    if (!opts.recompute)
      return tidy(() => {
        const loss = run(() => this.loss(idx, targets));
        scaled(loss).backward();
        return loss.detach();
      });
    const device = idx.device;
    return tidy(() => {
      const rngStart = getRngState(device);
      // the forward, no graph: each block's input (stream, pending branch) and generator state
      const inputs: { h: Tensor; pending: Tensor | null; rng: Tensor }[] = [];
      const end = noGrad(() =>
        run(() => {
          let h = this.embed(idx);
          let branch: Tensor | null = null;
          for (const b of this.blocks) {
            inputs.push({ h, pending: branch, rng: getRngState(device) });
            ({ residual: h, branch } = b.forwardPending(h, branch));
          }
          return { residual: h, branch };
        }),
      );
      const rngEnd = getRngState(device);
      // (a throw part-way leaves the gradients partly accumulated, but the generator where the
      // plain step would leave it)
      try {
        return this.recomputedBackward(idx, targets, { inputs, end, rngStart, device, run, scaled });
      } finally {
        setRngState(rngEnd, device);
      }
    });
  }

  /** lossBackward's backward with recomputation, from the forward's kept block inputs. */
  private recomputedBackward(
    idx: Tensor,
    targets: Tensor,
    o: {
      inputs: { h: Tensor; pending: Tensor | null; rng: Tensor }[];
      end: { residual: Tensor; branch: Tensor | null };
      rngStart: Tensor;
      device: Tensor['device'];
      run: <R>(fn: () => R) => R;
      scaled: (loss: Tensor) => Tensor;
    },
  ): Tensor {
    const { inputs, end, rngStart, device, run, scaled } = o;
    return tidy(() => {
      const leaf = (t: Tensor | null) => (t === null ? null : t.detach().requiresGrad_());
      // the head and the loss, from the last block's output; a tied head's weight as a leaf of its
      // own. Their own scope: the logits and LNf's output are freed before the blocks' backward
      const tied = this.lmHead === null ? leaf(this.transformer.wte.weight) : null;
      let gradIn = { residual: leaf(end.residual)!, branch: leaf(end.branch) };
      const loss = tidy(() => {
        const l = enableGrad(() => run(() => this.scoreLogits(this.head(gradIn, tied ?? undefined), targets)));
        scaled(l).backward();
        return l.detach();
      });
      for (const t of [end.residual, end.branch]) t?.dispose();
      // d(Σ out·g)/d out = g: one backward of a block's two outputs against their gradients
      const against = (outs: (Tensor | null)[], grads: (Tensor | null)[]): Tensor =>
        outs
          .map((o, i) => (o === null ? null : o.mul(grads[i]!).sum()))
          .filter((t): t is Tensor => t !== null)
          .reduce((a, b) => a.add(b));
      for (let i = this.blocks.length - 1; i >= 0; i--) {
        // (each block's recomputed activations, its output gradients and its kept input go as
        // soon as its backward is done: beyond the kept inputs, one block's activations at a time)
        const next = tidy(() => {
          const { h, pending, rng } = inputs[i];
          const x = { residual: leaf(h)!, branch: leaf(pending) };
          setRngState(rng, device);
          const out = enableGrad(() => run(() => this.blocks[i].forwardPending(x.residual, x.branch)));
          enableGrad(() => against([out.residual, out.branch], [gradIn.residual.grad, gradIn.branch?.grad ?? null])).backward();
          return x;
        });
        for (const t of [gradIn.residual, gradIn.branch, inputs[i].h, inputs[i].pending, inputs[i].rng]) t?.dispose();
        gradIn = next;
      }
      setRngState(rngStart, device);
      const h0 = enableGrad(() => run(() => this.embed(idx)));
      enableGrad(() =>
        against([h0, tied === null ? null : this.transformer.wte.weight], [gradIn.residual.grad, tied?.grad ?? null]),
      ).backward();
      return loss;
    });
  }
}
