// The typed Tensor: a handle on one libtorch tensor. Every op is one native call; arguments are
// checked here first so mistakes come back as TypeErrors that name the argument.
import { checkDevice, checkDtype, checkInt, checkNumber, checkShape, checkValue, describe, type Device, type Dtype } from './dtype';
import { native, type NativeTensor } from './native';
import { setDisposeAll, setTensorCheck, track, type Scoped } from './scope';

export type TypedArrayOut = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
/** Nested arrays of numbers, as toList() returns them. */
export type NestedArray = number | boolean | NestedArray[];

type Operand = Tensor | number;

function operand(x: unknown, op: string, arg = 'other'): NativeTensor | number {
  if (x instanceof Tensor) return x.native;
  if (typeof x === 'number') return x;
  throw new TypeError(`${op}: expected a Tensor or number for ${arg} but received ${describe(x)}`);
}

function tensorOf(x: unknown, op: string, arg: string): NativeTensor {
  if (x instanceof Tensor) return x.native;
  throw new TypeError(`${op}: expected a Tensor for ${arg} but received ${describe(x)}`);
}

function dimsOf(dims: number | number[] | undefined, op: string): number[] | null {
  if (dims === undefined) return null;
  const list = typeof dims === 'number' ? [dims] : dims;
  if (!Array.isArray(list) || !list.every(Number.isInteger)) {
    throw new TypeError(`${op}: expected an integer or array of integers for dims but received ${describe(dims)}`);
  }
  return list;
}

/** Options of a move or cast. */
export interface ToOptions {
  device?: Device;
  dtype?: Dtype;
  /** Asynchronous host-to-device copy (from pinned memory). */
  nonBlocking?: boolean;
}

export class Tensor {
  /** @internal the native handle */
  readonly native: NativeTensor;

  /** @internal wrap a native handle; the tensor joins the innermost tidy() scope */
  constructor(handle: NativeTensor) {
    this.native = handle;
    track(this);
  }

  // ---- metadata ----------------------------------------------------------------------------

  get shape(): number[] {
    return native.tensorShape(this.native);
  }
  get dtype(): Dtype {
    return native.tensorDtype(this.native) as Dtype;
  }
  get device(): Device {
    return native.tensorDevice(this.native) as Device;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get isDisposed(): boolean {
    return native.tensorIsDisposed(this.native);
  }
  /** Frees the native memory now. Using the tensor afterwards throws. Idempotent. */
  dispose(): void {
    native.tensorDispose(this.native);
  }
  [Symbol.dispose](): void {
    native.tensorDispose(this.native);
  }
  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- data out ------------------------------------------------------------------------------

  /** A copy of the elements (row-major). bfloat16/float16 come back as Float32Array, bool as Uint8Array. */
  toArray(): TypedArrayOut {
    return native.toTypedArray(this.native);
  }
  /** Like toArray(), with the device-to-host copy on a worker thread (the event loop stays free); the values are those at the call. */
  toArrayAsync(): Promise<TypedArrayOut> {
    return native.toTypedArrayAsync(this.native);
  }
  /**
   * The value of a one-element tensor (bool as 0 or 1). An int64 value beyond ±(2^53 − 1)
   * (Number.MAX_SAFE_INTEGER), which a JS number cannot hold exactly, throws a RangeError:
   * toArray() reads it exactly (a BigInt64Array).
   */
  item(): number {
    const v = Number(native.item(this.native));
    if (!Number.isSafeInteger(v) && Number.isInteger(v) && this.dtype === 'int64')
      return exactNumber('item')((this.toArray() as BigInt64Array)[0]);
    return v;
  }
  /**
   * The elements as a flat array of JS numbers. An int64 element beyond ±(2^53 − 1) throws a
   * RangeError, as item() does, rather than coming back rounded: toArray() reads it exactly.
   */
  toNumberArray(): number[] {
    return Array.from(this.toArray() as ArrayLike<number | bigint>, exactNumber('toNumberArray'));
  }
  /** The elements as nested JS arrays (numbers; booleans for bool tensors); int64 as toNumberArray(). */
  toList(): NestedArray {
    const asNumber = exactNumber('toList');
    const flat = Array.from(this.toArray() as ArrayLike<number | bigint>, (v) => (this.dtype === 'bool' ? v !== 0 : asNumber(v)));
    const shape = this.shape;
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === shape.length) return flat[offset];
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[dim] }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  // ---- moves and copies ----------------------------------------------------------------------

  /** A copy on another device and/or dtype; the same tensor (a new handle) when nothing changes. */
  to(target: Device | Dtype | ToOptions): Tensor {
    let opts: ToOptions;
    if (typeof target === 'string')
      opts = target === 'cpu' || target.startsWith('cuda') ? { device: target as Device } : { dtype: target as Dtype };
    else if (target !== null && typeof target === 'object') opts = target;
    else throw new TypeError(`to: expected a device, dtype or options for target but received ${describe(target)}`);
    const device = opts.device === undefined ? this.device : checkDevice(opts.device);
    const dtype = opts.dtype === undefined ? this.dtype : checkDtype(opts.dtype);
    return new Tensor(native.to(this.native, device, dtype, opts.nonBlocking ?? false));
  }
  cpu(): Tensor {
    return this.to({ device: 'cpu' });
  }
  cuda(index?: number): Tensor {
    return this.to({ device: index === undefined ? 'cuda' : `cuda:${index}` });
  }
  float(): Tensor {
    return this.to({ dtype: 'float32' });
  }
  double(): Tensor {
    return this.to({ dtype: 'float64' });
  }
  /** A copy in page-locked host memory (for non-blocking transfers to CUDA). */
  pinMemory(): Tensor {
    return new Tensor(native.pinMemory(this.native));
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.native));
  }
  /** Shares the data, cut from the autograd graph. */
  detach(): Tensor {
    return new Tensor(native.detach(this.native));
  }
  /** Another handle on the same tensor (same data, same autograd identity), with its own lifetime. */
  alias(): Tensor {
    return new Tensor(native.alias(this.native));
  }

  // ---- shape ---------------------------------------------------------------------------------

  /** The same data seen with another shape (one entry may be -1): view(2, 3) or view([2, 3]). */
  view(shape: number[]): Tensor;
  view(...shape: number[]): Tensor;
  view(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.view(this.native, checkShapeWithInfer(shape, 'view')));
  }
  /** reshape(2, 3) or reshape([2, 3]); one entry may be -1. */
  reshape(shape: number[]): Tensor;
  reshape(...shape: number[]): Tensor;
  reshape(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.reshape(this.native, checkShapeWithInfer(shape, 'reshape')));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.native, checkInt(dim0, 'dim0', 'transpose'), checkInt(dim1, 'dim1', 'transpose')));
  }
  /** Transpose of a 2-D tensor; any other number of dimensions is refused (use transpose or permute there). */
  get T(): Tensor {
    const shape = this.shape;
    if (shape.length !== 2) {
      throw new Error(
        `T: expected a 2-D tensor but its shape is [${shape.join(', ')}] (${shape.length} dimension${shape.length === 1 ? '' : 's'}); ` +
          'use transpose(dim0, dim1) or permute(...dims) to reorder the dimensions of other tensors',
      );
    }
    return this.transpose(0, 1);
  }
  /** The dimensions reordered: permute(2, 0, 1) or permute([2, 0, 1]). */
  permute(dims: number[]): Tensor;
  permute(...dims: number[]): Tensor;
  permute(...dims: (number | number[])[]): Tensor {
    return new Tensor(native.permute(this.native, intList(dims, 'permute', 'dims')));
  }
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.native));
  }
  get isContiguous(): boolean {
    return native.isContiguous(this.native);
  }
  get strides(): number[] {
    return native.stride(this.native);
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.native, checkInt(dim, 'dim', 'unsqueeze')));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.native, dim === undefined ? undefined : checkInt(dim, 'dim', 'squeeze')));
  }
  /** A broadcast view: expand(2, 3) or expand([2, 3]); -1 keeps a dimension's size. */
  expand(shape: number[]): Tensor;
  expand(...shape: number[]): Tensor;
  expand(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.expand(this.native, checkShapeWithInfer(shape, 'expand')));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.native, checkInt(startDim, 'startDim', 'flatten'), checkInt(endDim, 'endDim', 'flatten')));
  }
  /** Equal pieces of `size` along dim (the last may be smaller), or pieces of the given sizes. */
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    if (typeof sizeOrSizes !== 'number' && !Array.isArray(sizeOrSizes)) {
      throw new TypeError(`split: expected a size or array of sizes but received ${describe(sizeOrSizes)}`);
    }
    return native.split(this.native, sizeOrSizes, checkInt(dim, 'dim', 'split')).map((h) => new Tensor(h));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return native.chunk(this.native, checkInt(chunks, 'chunks', 'chunk'), checkInt(dim, 'dim', 'chunk')).map((h) => new Tensor(h));
  }
  /**
   * A view of `length` elements along dim, from `start` (negative: counted from the end; in
   * [-size, size]). The messages are PyTorch's.
   */
  narrow(dim: number, start: number, length: number): Tensor {
    checkInt(dim, 'dim', 'narrow');
    checkInt(start, 'start', 'narrow');
    if (checkInt(length, 'length', 'narrow') < 0) throw new RangeError(`narrow: length must be non-negative, but got ${length}`);
    try {
      return new Tensor(native.narrow(this.native, dim, start, length));
    } catch (e) {
      // libtorch 1.13 reports a start out of range as a dimension out of range
      const shape = this.shape;
      const size = shape[dim < 0 ? dim + shape.length : dim];
      if (size !== undefined && (start < -size || start > size)) {
        throw new RangeError(`narrow: start out of range (expected to be in range of [${-size}, ${size}], but got ${start})`);
      }
      throw e;
    }
  }
  /**
   * Python's t[start:end:step] along dim (a view); end defaults to the end. As in Python, start and
   * end may be negative (counted from the end) and lie beyond the size (clamped: slice(0, 1,
   * Infinity) is t[1:]); ±Infinity are accepted. The step is a positive integer.
   */
  slice(dim: number, start = 0, end = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return new Tensor(
      native.slice(
        this.native,
        checkInt(dim, 'dim', 'slice'),
        sliceBound(start, 'start'),
        sliceBound(end, 'end'),
        checkInt(step, 'step', 'slice'),
      ),
    );
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.native, checkInt(dim, 'dim', 'select'), checkInt(index, 'index', 'select')));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.native, checkInt(dim, 'dim', 'indexSelect'), tensorOf(index, 'indexSelect', 'index')));
  }

  // ---- arithmetic (broadcasting; the second operand may be a number) --------------------------

  add(other: Operand, alpha = 1): Tensor {
    return new Tensor(native.add(this.native, operand(other, 'add'), checkNumber(alpha, 'alpha')));
  }
  sub(other: Operand, alpha = 1): Tensor {
    return new Tensor(native.sub(this.native, operand(other, 'sub'), checkNumber(alpha, 'alpha')));
  }
  mul(other: Operand): Tensor {
    return new Tensor(native.mul(this.native, operand(other, 'mul')));
  }
  div(other: Operand): Tensor {
    return new Tensor(native.div(this.native, operand(other, 'div')));
  }
  pow(exponent: Operand): Tensor {
    return new Tensor(native.pow(this.native, operand(exponent, 'pow', 'exponent')));
  }
  maximum(other: Operand): Tensor {
    return new Tensor(native.maximum(this.native, operand(other, 'maximum')));
  }
  minimum(other: Operand): Tensor {
    return new Tensor(native.minimum(this.native, operand(other, 'minimum')));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.native));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.native));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.native));
  }
  rsqrt(): Tensor {
    return new Tensor(native.rsqrt(this.native));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.native));
  }
  log(): Tensor {
    return new Tensor(native.log(this.native));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.native));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.native));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.native));
  }
  square(): Tensor {
    return new Tensor(native.square(this.native));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.native));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.native));
  }
  /** GELU; 'tanh' is GPT-2's approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return new Tensor(native.gelu(this.native, approximate));
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.native, checkInt(dim, 'dim', 'softmax')));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.native, checkInt(dim, 'dim', 'logSoftmax')));
  }
  clamp(min: number | null, max: number | null = null): Tensor {
    return new Tensor(native.clamp(this.native, min, max));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.triu(this.native, checkInt(diagonal, 'diagonal', 'triu')));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.tril(this.native, checkInt(diagonal, 'diagonal', 'tril')));
  }
  /** value (NaN and ±Infinity included) where mask (bool) is true. */
  maskedFill(mask: Tensor, value: number): Tensor {
    return new Tensor(native.maskedFill(this.native, tensorOf(mask, 'maskedFill', 'mask'), checkValue(value, 'value', 'maskedFill')));
  }

  // ---- comparisons -------------------------------------------------------------------------

  eq(other: Operand): Tensor {
    return new Tensor(native.eq(this.native, operand(other, 'eq')));
  }
  ne(other: Operand): Tensor {
    return new Tensor(native.ne(this.native, operand(other, 'ne')));
  }
  lt(other: Operand): Tensor {
    return new Tensor(native.lt(this.native, operand(other, 'lt')));
  }
  le(other: Operand): Tensor {
    return new Tensor(native.le(this.native, operand(other, 'le')));
  }
  gt(other: Operand): Tensor {
    return new Tensor(native.gt(this.native, operand(other, 'gt')));
  }
  ge(other: Operand): Tensor {
    return new Tensor(native.ge(this.native, operand(other, 'ge')));
  }
  isFinite(): Tensor {
    return new Tensor(native.isFinite(this.native));
  }
  isNan(): Tensor {
    return new Tensor(native.isNan(this.native));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.native));
  }

  // ---- reductions ----------------------------------------------------------------------------

  /** Sum over dims (all elements by default); keepdim keeps each reduced dimension as size 1 (all of them with no dims). */
  sum(dims?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.sum(this.native, dimsOf(dims, 'sum'), keepdim));
  }
  /** Mean over dims (all elements by default); keepdim as sum's. */
  mean(dims?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.mean(this.native, dimsOf(dims, 'mean'), keepdim));
  }
  /** Vector p-norm over dims (all elements by default); keepdim as sum's. */
  norm(p = 2, dims?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.norm(this.native, checkNumber(p, 'p'), dimsOf(dims, 'norm'), keepdim));
  }
  /** The largest element. */
  max(): Tensor {
    return new Tensor(native.max(this.native));
  }
  min(): Tensor {
    return new Tensor(native.min(this.native));
  }
  /** Largest values along dim and where they are. */
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.maxDim(this.native, checkInt(dim, 'dim', 'max'), keepdim);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  minDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.minDim(this.native, checkInt(dim, 'dim', 'min'), keepdim);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  /** Index of the largest value along dim; with no dim, the flat index (shaped [1, …, 1] with keepdim). */
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.native, dim === undefined ? null : checkInt(dim, 'dim', 'argmax'), keepdim));
  }
  all(): Tensor {
    return new Tensor(native.all(this.native));
  }
  any(): Tensor {
    return new Tensor(native.any(this.native));
  }

  // ---- matrix products -------------------------------------------------------------------

  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.native, tensorOf(other, 'matmul', 'other')));
  }
  mm(other: Tensor): Tensor {
    return new Tensor(native.mm(this.native, tensorOf(other, 'mm', 'other')));
  }
  bmm(other: Tensor): Tensor {
    return new Tensor(native.bmm(this.native, tensorOf(other, 'bmm', 'other')));
  }

  // ---- in place (return this) ----------------------------------------------------------------

  add_(other: Operand, alpha = 1): this {
    native.add_(this.native, operand(other, 'add_'), checkNumber(alpha, 'alpha'));
    return this;
  }
  sub_(other: Operand, alpha = 1): this {
    native.sub_(this.native, operand(other, 'sub_'), checkNumber(alpha, 'alpha'));
    return this;
  }
  mul_(other: Operand): this {
    native.mul_(this.native, operand(other, 'mul_'));
    return this;
  }
  div_(other: Operand): this {
    native.div_(this.native, operand(other, 'div_'));
    return this;
  }
  pow_(exponent: Operand): this {
    native.pow_(this.native, operand(exponent, 'pow_', 'exponent'));
    return this;
  }
  sqrt_(): this {
    native.sqrt_(this.native);
    return this;
  }
  /** Copies src's values into this tensor (broadcasting, casting, across devices). */
  copy_(src: Tensor): this {
    native.copy_(this.native, tensorOf(src, 'copy_', 'src'));
    return this;
  }
  zero_(): this {
    native.zero_(this.native);
    return this;
  }
  /** Sets every element to value (NaN and ±Infinity included). */
  fill_(value: number): this {
    native.fill_(this.native, checkValue(value, 'value', 'fill_'));
    return this;
  }
  /** this += value·a·b */
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    native.addcmul_(this.native, tensorOf(a, 'addcmul_', 'tensor1'), tensorOf(b, 'addcmul_', 'tensor2'), checkNumber(value, 'value'));
    return this;
  }
  /** this += value·a/b */
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    native.addcdiv_(this.native, tensorOf(a, 'addcdiv_', 'tensor1'), tensorOf(b, 'addcdiv_', 'tensor2'), checkNumber(value, 'value'));
    return this;
  }
  /** this += weight·(end − this) */
  lerp_(end: Tensor, weight: number): this {
    native.lerp_(this.native, tensorOf(end, 'lerp_', 'end'), checkNumber(weight, 'weight'));
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    native.maskedFill_(this.native, tensorOf(mask, 'maskedFill_', 'mask'), checkValue(value, 'value', 'maskedFill_'));
    return this;
  }

  // ---- autograd ------------------------------------------------------------------------------

  get requiresGrad(): boolean {
    return native.requiresGrad(this.native);
  }
  /** Marks a leaf tensor as a parameter whose gradient backward() accumulates. */
  requiresGrad_(flag = true): this {
    native.setRequiresGrad(this.native, flag);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.native);
  }
  /** The accumulated gradient (a new handle on it), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.native);
    return g === null ? null : new Tensor(g);
  }
  /** Replaces the gradient; null drops it (frees its memory). */
  set grad(g: Tensor | null) {
    native.setGrad(this.native, g === null ? null : tensorOf(g, 'grad', 'grad'));
  }
  /** Keep the gradient of a non-leaf tensor after backward(). */
  retainGrad(): this {
    native.retainGrad(this.native);
    return this;
  }
  /** Backpropagates from this tensor (a scalar, unless a gradient is given). */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    native.backward(this.native, gradient === undefined ? null : tensorOf(gradient, 'backward', 'gradient'), options.retainGraph ?? false);
  }
  /**
   * Makes this tensor show src's data (the shape may change) while keeping its identity, like
   * `param.data = src` in PyTorch; its gradient is dropped. Used to grow parameters in place.
   */
  setData(src: Tensor): this {
    native.setData(this.native, tensorOf(src, 'setData', 'src'));
    return this;
  }
}

setTensorCheck((v: unknown): v is Tensor => v instanceof Tensor);
// a scope's tensors are freed in one native call (one JS→native crossing instead of one each)
export function disposeTogether(items: Scoped[]): void {
  const handles: NativeTensor[] = [];
  for (const t of items) {
    if (t instanceof Tensor) handles.push(t.native);
    else t.dispose();
  }
  if (handles.length === 1) native.tensorDispose(handles[0]);
  else if (handles.length > 1) native.disposeMany(handles);
}
setDisposeAll(disposeTogether);

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A converter from toArray()'s elements to JS numbers that refuses an int64 value a number cannot
 * hold exactly (beyond ±(2^53 − 1)): a token id or count read back rounded would be wrong silently.
 */
function exactNumber(op: string): (v: number | bigint) => number {
  return (v) => {
    if (typeof v === 'bigint' && (v > MAX_EXACT || v < -MAX_EXACT))
      throw new RangeError(
        `${op}: the int64 value ${v} is outside ±(2^53 − 1) (Number.MAX_SAFE_INTEGER), the integers a JS number ` +
          'holds exactly; read it with toArray() (a BigInt64Array)',
      );
    return Number(v);
  };
}

/** A start or end of slice: an integer, or ±Infinity; clamped to ±2^53 (beyond any size, as libtorch clamps to the size). */
function sliceBound(value: unknown, arg: string): number {
  if (value === Infinity || value === -Infinity) return Math.sign(value) * Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(value)) {
    throw new TypeError(`slice: expected an integer (or ±Infinity) for ${arg} but received ${describe(value)}`);
  }
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, value as number));
}

/** Integers given as arguments (f(2, 0, 1)) or as one array (f([2, 0, 1])). */
function intList(args: unknown[], op: string, arg: string): number[] {
  const flat = args.length === 1 && Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
  if (!flat.every((d) => Number.isInteger(d))) {
    throw new TypeError(`${op}: expected integers for ${arg} but received [${flat.map(String).join(', ')}]`);
  }
  return flat as number[];
}

/** A shape in which one entry may be -1 (inferred), as view, reshape and expand take. */
function checkShapeWithInfer(shape: unknown[], op: string): number[] {
  const flat = shape.length === 1 && Array.isArray(shape[0]) ? (shape[0] as unknown[]) : shape;
  if (!flat.every((d) => Number.isInteger(d) && (d as number) >= -1)) {
    throw new TypeError(`${op}: expected integers ≥ -1 for shape but received [${flat.map(String).join(', ')}]`);
  }
  return flat as number[];
}

export { checkShape };
