// Hugging Face GPT-2 directories (what `save_pretrained` writes: config.json and model.safetensors,
// or shards listed in model.safetensors.index.json) read as a model config and this library's
// parameters. The names and the Conv1D (in, out) layout are already ours; what differs: the files
// may drop the `transformer.` prefix (GPT2Model, the original hub checkpoints), hold the attention
// mask buffers (`h.N.attn.bias`, `.masked_bias`: not parameters, skipped) and leave out a tied
// lm_head. The vocabulary keeps its size (fromHfConfig: no padding rows).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../dtype';
import { fromHfConfig, type GPTConfig } from '../nn/config';
import type { Tensor } from '../tensor';
import { loadSafetensors } from './safetensors';

/**
 * Whether a directory holds a Hugging Face model rather than a staged-lm checkpoint: a config.json
 * with a `model_type` and no state.json (a staged-lm checkpoint that transformers saved back is one;
 * a model_type other than gpt2 is then refused by name).
 */
export function isHfDir(dir: string): boolean {
  if (existsSync(join(dir, 'state.json')) || !existsSync(join(dir, 'config.json'))) return false;
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as unknown;
    return typeof c === 'object' && c !== null && 'model_type' in c;
  } catch {
    return false;
  }
}

/** GPT2Config options this model does not implement, with the values it does. */
const REQUIRED: [string, unknown, string][] = [
  ['scale_attn_weights', true, 'scales attention scores by 1/√head size'],
  ['scale_attn_by_inverse_layer_idx', false, 'has no per-layer score scaling'],
  ['add_cross_attention', false, 'has no cross-attention'],
];

/** The model config of a Hugging Face GPT-2 config.json, refusing options this model does not have. */
export function hfGpt2Config(dir: string): GPTConfig {
  const path = join(dir, 'config.json');
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path}: not a JSON object (a model config)`);
  const hf = value as Record<string, unknown>;
  if (hf.model_type !== 'gpt2') throw new Error(`${path}: model_type is ${JSON.stringify(hf.model_type)}, not "gpt2"`);
  const activation = hf.activation_function ?? 'gelu_new';
  // GPT-2's GELU is the tanh approximation ('gelu_new'); 'gelu' (erf) would compute another function
  if (activation !== 'gelu_new' && activation !== 'gelu_pytorch_tanh')
    throw new Error(
      `${path}: activation_function ${JSON.stringify(activation)} is not GPT-2's tanh GELU ('gelu_new'), the only one this model has`,
    );
  for (const [key, value, what] of REQUIRED)
    if (hf[key] !== undefined && hf[key] !== value)
      throw new Error(`${path}: ${key} ${JSON.stringify(hf[key])} is not supported (this model ${what})`);
  try {
    return fromHfConfig(hf);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** The safetensors files of a directory: model.safetensors, or the shards its index lists. */
function weightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    } catch (e) {
      throw new Error(`${index}: ${(e as Error).message}`);
    }
    if (typeof map !== 'object' || map === null) throw new Error(`${index}: no weight_map`);
    const files = [...new Set(Object.values(map))].map((f) => join(dir, f));
    const missing = files.find((f) => !existsSync(f));
    if (missing !== undefined) throw new Error(`${index} lists ${missing}, which is missing`);
    return files;
  }
  if (existsSync(join(dir, 'pytorch_model.bin')))
    throw new Error(
      `${dir} holds pytorch_model.bin (a Python pickle) but no safetensors: convert it in Python: GPT2LMHeadModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`,
    );
  throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
}

const MASK_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

/** A Hugging Face GPT-2 directory as a model config and parameters under this library's names, in float32 on `device`. */
export function loadHfGpt2(dir: string, device: Device = 'cpu'): { config: GPTConfig; params: Record<string, Tensor> } {
  const config = hfGpt2Config(dir);
  const params: Record<string, Tensor> = {};
  try {
    for (const file of weightFiles(dir)) {
      for (const [raw, t] of Object.entries(loadSafetensors(file, device))) {
        const name = raw === 'lm_head.weight' || raw.startsWith('transformer.') ? raw : `transformer.${raw}`;
        if (MASK_BUFFER.test(name.slice('transformer.'.length)) || params[name] !== undefined) {
          t.dispose(); // a buffer, or a tied head written twice
          continue;
        }
        params[name] = t.dtype === 'float32' ? t : replace(t, t.float());
      }
    }
    // a tied head is the embedding (save_pretrained leaves it out; a file that keeps it holds the same values)
    if (config.tiedEmbeddings && params['lm_head.weight'] !== undefined) {
      params['lm_head.weight'].dispose();
      delete params['lm_head.weight'];
    }
  } catch (e) {
    for (const t of Object.values(params)) t.dispose();
    throw e;
  }
  return { config, params };
}

/** `next`, after freeing `t`. */
function replace(t: Tensor, next: Tensor): Tensor {
  t.dispose();
  return next;
}
