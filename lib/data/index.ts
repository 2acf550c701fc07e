// The data pipeline: tokenizer, token files, corpora, preparation and batch loaders.
export { EOT, GPT2_VOCAB, encode, decode, TextStream, encodeDocuments, concatTokens } from './tokenizer';
export {
  SHARD_MAGIC,
  SHARD_VERSION,
  SHARD_HEADER_BYTES,
  TokenFileError,
  readShard,
  readTokens,
  writeShard,
  type ReadTokensOptions,
  type TokenFileFormat,
} from './shards';
export { DOCUMENT_SEPARATOR, readDocuments, readText, splitDocuments } from './documents';
export { tokenizeDocuments, type TokenizeOptions, type TokenizeResult } from './parallel';
export { EMBEDDED_CORPUS_NAME, embeddedDocuments, loadEmbeddedCorpus, type EmbeddedCorpus, type EmbeddedCorpusOptions } from './corpus';
export type { CachedSplits, SplitCounts, Splits } from './cache';
export { DEFAULT_MAX_IN_MEMORY_BYTES, loadTokenData, type LoadTokenDataOptions, type TokenData } from './source';
export { FileTokens, detectTokenFile, sliceSegment, tokenFileSegment, type TokenSegment, type Tokens } from './file-tokens';
export { DEFAULT_SHARD_TOKENS, prepare, type PrepareOptions, type PrepareSummary, type ShardInfo } from './prepare';
export type { Batch } from './batch';
export { BatchLoader, type BatchLoaderOptions, type LoaderState } from './loader';
export { evalBatchCount, evalBatches, evalScoredTokens, evalTailTokens, evalWindowCount, type EvalBatch, type EvalOptions } from './eval';
export { Xoshiro128, type RngState } from './rng';
