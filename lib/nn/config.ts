// The GPT configuration (validated by zod), its presets, derived sizes, and the conversion to and
// from Hugging Face's GPT2Config so checkpoints interoperate.
import { z } from 'zod';
import { formatIssues } from '../validate';

const probability = z.number().min(0).lt(1);

export const GPTConfigSchema = z
  .object({
    /** Tokenizer vocabulary (GPT-2: 50257); the model pads it to a multiple of `vocabMultiple`. */
    vocabSize: z.number().int().positive().default(50257),
    vocabMultiple: z.number().int().positive().default(64),
    /** Context length (positions). */
    contextLength: z.number().int().positive().default(1024),
    nLayer: z.number().int().positive(),
    nHead: z.number().int().positive(),
    /** Model width d. */
    nEmbd: z.number().int().positive(),
    /** MLP inner width (default 4·d). */
    mlpWidth: z.number().int().positive().optional(),
    /** Size of each attention head (default d / nHead); attention is nHead·headSize wide. */
    headSize: z.number().int().positive().optional(),
    dropout: z
      .object({ embedding: probability.default(0), attention: probability.default(0), residual: probability.default(0) })
      .strict()
      .default({ embedding: 0, attention: 0, residual: 0 }),
    /** LM head shares the token embedding (GPT-2). */
    tiedEmbeddings: z.boolean().default(true),
    /** Biases in linear layers and LayerNorms. */
    bias: z.boolean().default(true),
    /** Std of the normal init of weights (residual projections get std/√(2L), as GPT-2). */
    initStd: z.number().positive().default(0.02),
    layerNormEps: z.number().positive().default(1e-5),
  })
  .strict()
  .refine((c) => c.headSize !== undefined || c.nEmbd % c.nHead === 0, { message: 'nEmbd must be divisible by nHead', path: ['nHead'] });

export type GPTConfigInput = z.input<typeof GPTConfigSchema>;
export type GPTConfig = z.infer<typeof GPTConfigSchema> & { mlpWidth: number; headSize: number };

/** Validates a config and fills in defaults; errors name the field. */
/** Validates a model config; `at`: where it sits in a larger config (the run config's 'model'), for the messages. */
export function parseGPTConfig(input: GPTConfigInput, at?: string): GPTConfig {
  const r = GPTConfigSchema.safeParse(input);
  if (!r.success) {
    throw new Error(`invalid model config: ${formatIssues(r.error, '(config)', at)}`);
  }
  return { ...r.data, mlpWidth: r.data.mlpWidth ?? 4 * r.data.nEmbd, headSize: r.data.headSize ?? r.data.nEmbd / r.data.nHead };
}

export const PRESETS = {
  /** Small enough for the CPU demo. */
  tiny: { nLayer: 4, nHead: 4, nEmbd: 128, contextLength: 128 },
  'gpt2-124m': { nLayer: 12, nHead: 12, nEmbd: 768, contextLength: 1024 },
  'gpt2-350m': { nLayer: 24, nHead: 16, nEmbd: 1024, contextLength: 1024 },
  // Shen et al. (2022): heads of 96; the halved variants are the starting points of staged runs.
  'paper-base': { nLayer: 12, nHead: 8, nEmbd: 768, contextLength: 1024 },
  'paper-base-half-width': { nLayer: 12, nHead: 4, nEmbd: 384, contextLength: 1024 },
  'paper-base-half-depth': { nLayer: 6, nHead: 8, nEmbd: 768, contextLength: 1024 },
  'paper-large': { nLayer: 24, nHead: 16, nEmbd: 1536, contextLength: 1024 },
  'paper-large-half-width': { nLayer: 24, nHead: 8, nEmbd: 768, contextLength: 1024 },
  'paper-large-half-depth': { nLayer: 12, nHead: 16, nEmbd: 1536, contextLength: 1024 },
} as const satisfies Record<string, GPTConfigInput>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export function presetConfig(name: string, overrides: Partial<GPTConfigInput> = {}, at?: string): GPTConfig {
  if (!(name in PRESETS)) throw new Error(`unknown preset '${name}' (expected one of ${PRESET_NAMES.join(', ')})`);
  return parseGPTConfig({ ...PRESETS[name as PresetName], ...overrides }, at);
}

/** Vocabulary rows in the model: vocabSize rounded up to a multiple of vocabMultiple (50257 → 50304). */
export function paddedVocab(c: GPTConfig): number {
  return Math.ceil(c.vocabSize / c.vocabMultiple) * c.vocabMultiple;
}

export function headSize(c: GPTConfig): number {
  return c.headSize;
}

/** Width of the attention: nHead·headSize (= d for GPT-2 shapes). */
export function attentionWidth(c: GPTConfig): number {
  return c.nHead * c.headSize;
}

/**
 * Kaplan's N, the count the scaling laws and the peak-LR formula take: the blocks' weight matrices,
 * 2·d·L·(2·attention width + MLP width) — 12·L·d² for GPT-2's shapes (biases and LayerNorms left
 * out, as in Kaplan et al. and spec/growth.md).
 */
export function kaplanParams(c: GPTConfig): number {
  return 2 * c.nEmbd * c.nLayer * (2 * attentionWidth(c) + c.mlpWidth);
}

/** Parameters outside the embeddings: attention, MLP and LayerNorms of every block, and LNf, biases included. */
export function nonEmbeddingParams(c: GPTConfig): number {
  const d = c.nEmbd;
  const b = c.bias ? 1 : 0;
  const a = attentionWidth(c);
  const attn = d * 3 * a + 3 * a * b + a * d + d * b;
  const mlp = d * c.mlpWidth + c.mlpWidth * b + c.mlpWidth * d + d * b;
  const ln = 2 * (d + d * b);
  return c.nLayer * (attn + mlp + ln) + (d + d * b);
}

/** All parameters (a tied head counted once). */
export function totalParams(c: GPTConfig): number {
  const emb = paddedVocab(c) * c.nEmbd + c.contextLength * c.nEmbd;
  const head = c.tiedEmbeddings ? 0 : paddedVocab(c) * c.nEmbd;
  return nonEmbeddingParams(c) + emb + head;
}

/**
 * Training FLOPs per token at sequence length T: 6 per parameter (forward + backward) plus
 * attention's 12·L·d·T (PaLM, App. B) — the accounting of ../shared/bench/torch_reference.py.
 */
export function trainingFlopsPerToken(c: GPTConfig, seqLen = c.contextLength): number {
  return 6 * totalParams(c) + 12 * c.nLayer * attentionWidth(c) * seqLen;
}

/** Hugging Face GPT2Config fields, plus our full config under `staged_lm`. */
export function toHfConfig(c: GPTConfig): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: paddedVocab(c),
    n_positions: c.contextLength,
    n_ctx: c.contextLength,
    n_embd: c.nEmbd,
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_inner: c.mlpWidth === 4 * c.nEmbd ? null : c.mlpWidth,
    activation_function: 'gelu_new',
    resid_pdrop: c.dropout.residual,
    embd_pdrop: c.dropout.embedding,
    attn_pdrop: c.dropout.attention,
    layer_norm_epsilon: c.layerNormEps,
    initializer_range: c.initStd,
    tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: 50256,
    eos_token_id: 50256,
    staged_lm: c,
  };
}

/** The fields of a Hugging Face GPT-2 config that decide the shapes of its model and its outputs. */
const HF_SHAPE_FIELDS = [
  'vocab_size',
  'n_positions',
  'n_embd',
  'n_layer',
  'n_head',
  'n_inner',
  'tie_word_embeddings',
  'layer_norm_epsilon',
];

/**
 * Reads a config.json written by toHfConfig, or a plain HF GPT-2 config. The latter's vocabulary is
 * kept at its size (vocabMultiple 1): padding rows would be zero in its weights, and a zero row
 * scores logit 0, far above a trained model's real logits, in every softmax over the vocabulary.
 */
export function fromHfConfig(hf: Record<string, unknown>): GPTConfig {
  if (hf.staged_lm !== undefined) {
    const c = parseGPTConfig(hf.staged_lm as GPTConfigInput, 'staged_lm');
    // the Hugging Face fields are what transformers builds its model from: an edit of one that the
    // block does not share would load here as one model and there as another
    const own = toHfConfig(c);
    // the value as transformers reads it (n_inner null is 4·n_embd)
    const read = (key: string, v: unknown) => JSON.stringify(key === 'n_inner' && v === null ? 4 * c.nEmbd : v);
    for (const key of HF_SHAPE_FIELDS)
      if (key in hf && read(key, hf[key]) !== read(key, own[key]))
        throw new Error(
          `${key} ${JSON.stringify(hf[key])} is not its staged_lm block's (${JSON.stringify(own[key])}): an edited config, which Hugging Face would read as another model`,
        );
    return c;
  }
  const num = (k: string) => hf[k] as number;
  return parseGPTConfig({
    vocabSize: num('vocab_size'),
    vocabMultiple: 1,
    contextLength: num('n_positions'),
    nLayer: num('n_layer'),
    nHead: num('n_head'),
    nEmbd: num('n_embd'),
    mlpWidth: (hf.n_inner as number | null) ?? undefined,
    dropout: { embedding: num('embd_pdrop') ?? 0, attention: num('attn_pdrop') ?? 0, residual: num('resid_pdrop') ?? 0 },
    tiedEmbeddings: (hf.tie_word_embeddings as boolean | undefined) ?? true,
    layerNormEps: num('layer_norm_epsilon') ?? 1e-5,
    initStd: num('initializer_range') ?? 0.02,
  });
}
