export * from './config';
export { Module } from './module';
export { Conv1D, Embedding, LayerNorm } from './layers';
export { CausalSelfAttention } from './attention';
export { MLP } from './mlp';
export { Block } from './block';
export { GPT, type GPTOptions } from './gpt';
export { KVCache, type AttentionCache } from './kv-cache';
