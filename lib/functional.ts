// Ops over several tensors and the neural-network functions a GPT is built from.
// Each is one libtorch kernel (fused where libtorch has one), or staged-lm's own fused CUDA
// kernels where they are chosen (float32CrossEntropy, addLayerNorm; see kernels.ts).
import { checkInt, checkNumber, checkShape, describe } from './dtype';
import { checkKernel, type LossKernel, type NormKernel } from './kernels';
import { native, type NativeTensor } from './native';
import { Tensor } from './tensor';

function handle(x: unknown, op: string, arg: string): NativeTensor {
  if (x instanceof Tensor) return x.native;
  throw new TypeError(`${op}: expected a Tensor for ${arg} but received ${describe(x)}`);
}

function optionalHandle(x: unknown, op: string, arg: string): NativeTensor | null {
  return x === undefined || x === null ? null : handle(x, op, arg);
}

function handles(xs: unknown, op: string): NativeTensor[] {
  if (!Array.isArray(xs)) throw new TypeError(`${op}: expected an array of Tensors for tensors but received ${describe(xs)}`);
  return xs.map((x, i) => handle(x, op, `tensors[${i}]`));
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(handles(tensors, 'cat'), checkInt(dim, 'dim', 'cat')));
}

export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(handles(tensors, 'stack'), checkInt(dim, 'dim', 'stack')));
}

/** Elementwise choice: a where cond is true, else b (tensors or numbers, broadcast). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const operand = (x: unknown, arg: string) => (typeof x === 'number' ? x : handle(x, 'where', arg));
  return new Tensor(native.where(handle(cond, 'where', 'condition'), operand(a, 'input'), operand(b, 'other')));
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.matmul(handle(a, 'matmul', 'a'), handle(b, 'matmul', 'b')));
}

export function outer(a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.outer(handle(a, 'outer', 'a'), handle(b, 'outer', 'b')));
}

/** beta·bias + alpha·(a @ b), one BLAS call. */
export function addmm(bias: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor {
  return new Tensor(
    native.addmm(
      handle(bias, 'addmm', 'bias'),
      handle(a, 'addmm', 'mat1'),
      handle(b, 'addmm', 'mat2'),
      checkNumber(beta, 'beta'),
      checkNumber(alpha, 'alpha'),
    ),
  );
}

/** x·Wᵀ + b with W stored (out, in), as torch.nn.functional.linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return new Tensor(
    native.linear(handle(x, 'linear', 'input'), handle(weight, 'linear', 'weight'), optionalHandle(bias, 'linear', 'bias')),
  );
}

export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return new Tensor(native.gelu(handle(x, 'gelu', 'input'), approximate));
}

export function softmax(x: Tensor, dim: number): Tensor {
  return new Tensor(native.softmax(handle(x, 'softmax', 'input'), checkInt(dim, 'dim', 'softmax')));
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return new Tensor(native.logSoftmax(handle(x, 'logSoftmax', 'input'), checkInt(dim, 'dim', 'logSoftmax')));
}

/** LayerNorm over the trailing dims given by normalizedShape. */
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(
    native.layerNorm(
      handle(x, 'layerNorm', 'input'),
      checkShape(normalizedShape, 'normalizedShape'),
      optionalHandle(weight, 'layerNorm', 'weight'),
      optionalHandle(bias, 'layerNorm', 'bias'),
      checkNumber(eps, 'eps'),
    ),
  );
}

/**
 * The residual add and the LayerNorm after it, as a pre-LN transformer runs them between branches:
 * → [a, z] with a = h + y (y of h's shape; a's dtype as add promotes: h's for a residual stream
 * with a narrower branch) and z the LayerNorm of a over its last dimension (weight's size, eps),
 * in autocast's dtype where autocast is on and the tensors are on CUDA (what the next matmul
 * would cast it to; float64 stays float64), else a's dtype.
 * kernel 'fused' (CUDA tensors; all of one dtype, or float32 h, weight and bias with a float16 or
 * bfloat16 y; a last dimension that is a multiple of 4 up to 16384; a build with staged-lm's CUDA
 * kernels; refused otherwise): one read of h and y and one write of a and z forward, one read of
 * z's and a's gradients and a, one write of h's and y's gradients backward, in float32 arithmetic
 * (native/kernels/add_layer_norm.cu); 'aten': libtorch's add, layerNorm and cast — the same values
 * up to the order of float32 sums; absent: what setNormKernel chose, where it applies.
 */
export function addLayerNorm(
  h: Tensor,
  y: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  opts: { eps?: number; kernel?: NormKernel } = {},
): [Tensor, Tensor] {
  if (opts.kernel !== undefined) checkKernel(opts.kernel, 'addLayerNorm');
  const [a, z] = native.addLayerNorm(
    handle(h, 'addLayerNorm', 'h'),
    handle(y, 'addLayerNorm', 'y'),
    handle(weight, 'addLayerNorm', 'weight'),
    optionalHandle(bias, 'addLayerNorm', 'bias'),
    checkNumber(opts.eps ?? 1e-5, 'eps'),
    opts.kernel ?? 'default',
  );
  return [new Tensor(a), new Tensor(z)];
}

/** Rows of weight (V×d) gathered by integer indices of any shape → (...indices.shape, d). */
export function embedding(weight: Tensor, indices: Tensor): Tensor {
  return new Tensor(native.embedding(handle(weight, 'embedding', 'weight'), handle(indices, 'embedding', 'indices')));
}

/** p itself, if it is a number in [0, 1] (libtorch takes a negative one as 0 in places). */
function checkProbability(p: unknown, op: string, arg: string): number {
  if (!(typeof p === 'number' && p >= 0 && p <= 1))
    throw new TypeError(`${op}: expected a probability in [0, 1] for ${arg} but received ${describe(p)}`);
  return p;
}

/** Zeroes elements with probability p and scales the rest by 1/(1−p) while training. */
export function dropout(x: Tensor, p: number, train: boolean): Tensor {
  return new Tensor(native.dropout(handle(x, 'dropout', 'input'), checkProbability(p, 'dropout', 'p'), train));
}

export interface AttentionOptions {
  /** Additive float mask or boolean mask (true = attend), broadcast to (B, heads, T, S). */
  mask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
}

/**
 * softmax(q·kᵀ/√dh + mask)·v for q (B, heads, T, dh), k and v (B, heads, S, dh). libtorch ≥ 2.0
 * picks flash / memory-efficient kernels on CUDA; 1.13 runs the math implementation.
 */
/** Hugging Face's Conv1D: x (..., in) · weight (in, out) + bias, one GEMM and one native call. */
export function conv1d(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return new Tensor(
    native.conv1d(handle(x, 'conv1d', 'input'), handle(weight, 'conv1d', 'weight'), optionalHandle(bias, 'conv1d', 'bias')),
  );
}

/** A fused QKV projection (B, T, 3·H·D) → [q, k, v], each (B, H, T, D) (views, no copy). */
export function splitHeads(qkv: Tensor, heads: number): [Tensor, Tensor, Tensor] {
  const [q, k, v] = native.splitHeads(handle(qkv, 'splitHeads', 'qkv'), checkInt(heads, 'heads', 'splitHeads')).map((h) => new Tensor(h));
  return [q, k, v];
}

/** (B, H, T, D) → (B, T, H·D), contiguous: the heads side by side again. */
export function mergeHeads(y: Tensor): Tensor {
  return new Tensor(native.mergeHeads(handle(y, 'mergeHeads', 'input')));
}

export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  return new Tensor(
    native.scaledDotProductAttention(
      handle(q, 'scaledDotProductAttention', 'query'),
      handle(k, 'scaledDotProductAttention', 'key'),
      handle(v, 'scaledDotProductAttention', 'value'),
      optionalHandle(opts.mask, 'scaledDotProductAttention', 'mask'),
      checkProbability(opts.dropoutP ?? 0, 'scaledDotProductAttention', 'dropoutP'),
      opts.isCausal ?? false,
    ),
  );
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (default -100, as PyTorch). */
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
  labelSmoothing?: number;
}

/** Cross-entropy of logits (N, C) against integer targets (N), fused log-softmax + NLL. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return new Tensor(
    native.crossEntropy(
      handle(logits, 'crossEntropy', 'logits'),
      handle(targets, 'crossEntropy', 'targets'),
      checkInt(opts.ignoreIndex ?? -100, 'ignoreIndex', 'crossEntropy'),
      opts.reduction ?? 'mean',
      checkProbability(opts.labelSmoothing ?? 0, 'crossEntropy', 'labelSmoothing'),
    ),
  );
}

/**
 * Mean cross-entropy of logits (N, C) of any floating dtype against int64 targets (N), computed in
 * float32 (float64 for float64 logits; the loss has that dtype) with the gradient returned in the
 * logits' dtype: the loss a language model wants. Against crossEntropy(logits.float(), targets)
 * for bfloat16/float16 logits its backward makes two fewer passes over the logits; for any dtype
 * its temporaries besides the saved log-probabilities hold at most `chunkElements` values, where
 * the usual loss holds up to three full float32 copies (native/loss.cc). Default: logits of up to
 * 2^28 values whole (fewer kernels for launch-bound steps), larger ones in chunks of 2^26.
 * kernel 'fused' (CUDA logits of float32/float16/bfloat16, a build with staged-lm's CUDA kernels;
 * refused otherwise): one read of the logits in forward, one read and one write in backward,
 * nothing full-size saved but the logits (native/kernels/cross_entropy.cu); 'aten': libtorch's
 * kernels as above; absent: what setLossKernel chose, where it applies.
 */
export function float32CrossEntropy(
  logits: Tensor,
  targets: Tensor,
  opts: { ignoreIndex?: number; chunkElements?: number; kernel?: LossKernel } = {},
): Tensor {
  if (opts.kernel !== undefined) checkKernel(opts.kernel, 'float32CrossEntropy');
  return new Tensor(
    native.float32CrossEntropy(
      handle(logits, 'float32CrossEntropy', 'logits'),
      handle(targets, 'float32CrossEntropy', 'targets'),
      checkInt(opts.ignoreIndex ?? -100, 'ignoreIndex', 'float32CrossEntropy'),
      checkInt(opts.chunkElements ?? 0, 'chunkElements', 'float32CrossEntropy'),
      opts.kernel ?? 'default',
    ),
  );
}
