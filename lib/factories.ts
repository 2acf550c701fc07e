// Creating tensors: from JS data, filled, ranges, and seeded random.
import {
  checkDevice,
  checkDtype,
  checkFinite,
  checkInt,
  checkShape,
  checkValue,
  describe,
  isFloatingDtype,
  type Device,
  type Dtype,
} from './dtype';
import { native, type NativeTensor } from './native';
import { Tensor, type NestedArray } from './tensor';

export interface TensorOptions {
  dtype?: Dtype;
  device?: Device;
  /** Make the new tensor a leaf whose gradient backward() accumulates. */
  requiresGrad?: boolean;
}

type Input = number | boolean | NestedArray | ArrayBufferView;

/**
 * The dtype and device of a new tensor, and a check of requiresGrad made before anything is
 * allocated: only floating tensors can require gradients (a refusal after allocating left the
 * tensor alive outside any scope).
 */
function resolve(op: string, opts: TensorOptions | undefined, fallback: Dtype = 'float32'): { dtype: Dtype; device: Device } {
  if (opts !== undefined && (opts === null || typeof opts !== 'object')) {
    throw new TypeError(`Expected an options object but received ${describe(opts)}`);
  }
  const dtype = opts?.dtype === undefined ? fallback : checkDtype(opts.dtype, 'options.dtype');
  const device = opts?.device === undefined ? 'cpu' : checkDevice(opts.device, 'options.device');
  const grad = opts?.requiresGrad;
  if (grad !== undefined && typeof grad !== 'boolean') {
    throw new TypeError(`${op}: expected a boolean for options.requiresGrad but received ${describe(grad)}`);
  }
  if (grad === true && !isFloatingDtype(dtype)) {
    throw new TypeError(
      `${op}: only tensors of a floating dtype can require gradients (options.requiresGrad with dtype ${dtype}); ` +
        'use float32, float64, bfloat16 or float16',
    );
  }
  return { dtype, device };
}

function finish(h: NativeTensor, opts?: TensorOptions): Tensor {
  const t = new Tensor(h);
  if (opts?.requiresGrad) {
    try {
      t.requiresGrad_(true);
    } catch (e) {
      t.dispose();
      throw e;
    }
  }
  return t;
}

const TYPED_DTYPE: [new (...args: never[]) => ArrayBufferView, Dtype][] = [
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Uint8Array, 'uint8'],
  [Uint16Array, 'int32'],
  [Int16Array, 'int32'],
  [Int8Array, 'int32'],
];

/** The dtype a typed array's elements have (Uint16/Int16/Int8 widen to int32). */
function typedArrayDtype(data: ArrayBufferView): Dtype {
  for (const [ctor, dtype] of TYPED_DTYPE) if (data instanceof ctor) return dtype;
  throw new TypeError(`Expected a supported typed array for data but received ${describe(data)}`);
}

/** Tensor from a typed array and a shape (elements are copied). The dtype defaults to the array's. */
export function fromTypedArray(data: ArrayBufferView, shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('fromTypedArray', opts, typedArrayDtype(data));
  // Node-API reads typed arrays over an ArrayBuffer only: one over a SharedArrayBuffer is copied
  // first (slice() gives a typed array of the same kind over a buffer of its own)
  const own =
    typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer
      ? (data as unknown as { slice(): ArrayBufferView }).slice()
      : data;
  return finish(native.fromTypedArray(own, checkShape(shape), dtype, device), opts);
}

/**
 * Tensor from JS data: a number, a (nested) array of numbers or booleans, or a typed array
 * (shape [length]). Numbers default to float32, booleans to bool (when every element is one; mixed
 * with numbers, true is 1 and false 0, float32), typed arrays to their own dtype.
 */
export function tensor(data: Input, opts?: TensorOptions): Tensor {
  if (ArrayBuffer.isView(data)) {
    return fromTypedArray(data, [(data as unknown as ArrayLike<number>).length], opts);
  }
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  // bool only when every element is a boolean (as torch.tensor): [true, 2] is numeric, true = 1
  let numbers = 0;
  const flat: number[] = [];
  const walk = (v: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (typeof v === 'number') {
        numbers++;
        flat.push(v);
      } else if (typeof v === 'boolean') flat.push(Number(v));
      else throw new TypeError(`tensor: expected numbers or booleans in data but found ${describe(v)}`);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new TypeError(`tensor: data is ragged: expected an array of length ${shape[dim]} at depth ${dim}`);
    }
    for (const x of v) walk(x, dim + 1);
  };
  walk(data, 0);
  const { dtype, device } = resolve('tensor', opts, numbers === 0 && flat.length > 0 ? 'bool' : 'float32');
  const h = native.fromTypedArray(new Float64Array(flat), shape, dtype, device);
  return finish(h, opts);
}

export function zeros(shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('zeros', opts);
  return finish(native.zeros(checkShape(shape), dtype, device), opts);
}

export function ones(shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('ones', opts);
  return finish(native.ones(checkShape(shape), dtype, device), opts);
}

/** Uninitialised memory: only for tensors that are overwritten before being read. */
export function empty(shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('empty', opts);
  return finish(native.empty(checkShape(shape), dtype, device), opts);
}

/** A tensor of `value` everywhere (NaN and ±Infinity included). */
export function full(shape: number[], value: number, opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('full', opts);
  return finish(native.full(checkShape(shape), checkValue(value, 'value', 'full'), dtype, device), opts);
}

export function zerosLike(t: Tensor, opts?: TensorOptions): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}

export function onesLike(t: Tensor, opts?: TensorOptions): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}

/** [start, end) by step; arange(n) is [0, n). Integer arguments give int64 unless a dtype is set. */
export function arange(start: number, end?: number, step = 1, opts?: TensorOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  checkFinite(start, 'start', 'arange');
  checkFinite(end, 'end', 'arange');
  checkFinite(step, 'step', 'arange');
  if (step === 0) throw new TypeError('arange: step must not be 0');
  const ints = [start, end, step].every(Number.isInteger);
  const { dtype, device } = resolve('arange', opts, ints ? 'int64' : 'float32');
  return finish(native.arange(start, end, step, dtype, device), opts);
}

export function eye(n: number, opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('eye', opts);
  return finish(native.eye(checkInt(n, 'n', 'eye'), dtype, device), opts);
}

/** Standard normal samples from the device's generator (seeded by manualSeed). */
export function randn(shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('randn', opts);
  return finish(native.randn(checkShape(shape), dtype, device), opts);
}

/** Uniform samples in [0, 1). */
export function rand(shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('rand', opts);
  return finish(native.rand(checkShape(shape), dtype, device), opts);
}

/** Integers uniform in [low, high); int64 by default. */
export function randint(low: number, high: number, shape: number[], opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('randint', opts, 'int64');
  if (checkInt(high, 'high', 'randint') <= checkInt(low, 'low', 'randint'))
    throw new TypeError(`randint: high (${high}) must be greater than low (${low})`);
  return finish(native.randint(low, high, checkShape(shape), dtype, device), opts);
}

/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, opts?: TensorOptions): Tensor {
  const { dtype, device } = resolve('randperm', opts, 'int64');
  return finish(native.randperm(checkInt(n, 'n', 'randperm'), dtype, device), opts);
}
