// Dtypes and devices: the names the API accepts, and checks that reject anything else with a
// TypeError naming the argument (the native layer checks again, as a safety net).
import { native } from './native';

export const DTYPES = ['float32', 'float64', 'bfloat16', 'float16', 'int64', 'int32', 'uint8', 'bool'] as const;
export type Dtype = (typeof DTYPES)[number];

/** `cpu`, `cuda` (the current CUDA device) or `cuda:N`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export const FLOAT_DTYPES: readonly Dtype[] = ['float32', 'float64', 'bfloat16', 'float16'];

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  float32: 4,
  float64: 8,
  bfloat16: 2,
  float16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'string') return `string '${value}'`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

export function checkDtype(value: unknown, arg = 'dtype'): Dtype {
  if (typeof value === 'string' && (DTYPES as readonly string[]).includes(value)) return value as Dtype;
  throw new TypeError(`Expected one of ${DTYPES.join(', ')} for ${arg} but received ${describe(value)}`);
}

const DEVICE_RE = /^(cpu|cuda)(:(0|[1-9]\d*))?$/;

let cudaCount: number | undefined;
/** Number of CUDA devices libtorch sees (0 on a CPU build). */
export function cudaDeviceCount(): number {
  cudaCount ??= native.cudaDeviceCount();
  return cudaCount;
}

export function cudaAvailable(): boolean {
  return cudaDeviceCount() > 0;
}

/** Validates a device name; CUDA names are checked against the devices present. */
export function checkDevice(value: unknown, arg = 'device'): Device {
  const m = typeof value === 'string' ? DEVICE_RE.exec(value) : null;
  if (!m || (m[1] === 'cpu' && m[2])) {
    throw new TypeError(`Expected 'cpu', 'cuda' or 'cuda:N' for ${arg} but received ${describe(value)}`);
  }
  if (m[1] === 'cuda') {
    const count = cudaDeviceCount();
    if (count === 0) {
      throw new Error(
        `CUDA is not available (${arg} '${value as string}'): this build uses a libtorch without CUDA ` +
          'or sees no GPU; see `staged-lm doctor`',
      );
    }
    if (m[3] !== undefined && Number(m[3]) >= count) {
      throw new Error(`Device ${value as string} does not exist: ${count} CUDA device(s) present`);
    }
  }
  return value as Device;
}

/** The index of a CUDA device ('cuda' is device 0); null for the CPU or a string that is no device. */
export function cudaIndex(device: string): number | null {
  const m = DEVICE_RE.exec(device);
  return m === null || m[1] !== 'cuda' ? null : Number(m[3] ?? 0);
}

/** A shape: an array of non-negative integers. */
export function checkShape(value: unknown, arg = 'shape'): number[] {
  if (!Array.isArray(value) || !value.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TypeError(
      `Expected an array of non-negative integers for ${arg} but received ${describe(value)}${Array.isArray(value) ? ` [${value.join(', ')}]` : ''}`,
    );
  }
  return value as number[];
}

export function checkInt(value: unknown, arg: string, op?: string): number {
  if (!Number.isInteger(value))
    throw new TypeError(`${op === undefined ? '' : `${op}: `}Expected an integer for ${arg} but received ${describe(value)}`);
  return value as number;
}

/** Any JS number but NaN (±Infinity included): where NaN means nothing (alpha, eps, a norm's p). */
export function checkNumber(value: unknown, arg: string, op?: string): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`${op === undefined ? '' : `${op}: `}Expected a number other than NaN for ${arg} but received ${describe(value)}`);
  }
  return value;
}

/** Any JS number, NaN and ±Infinity included: a value to store (full, fill_, maskedFill). */
export function checkValue(value: unknown, arg: string, op: string): number {
  if (typeof value !== 'number') throw new TypeError(`${op}: expected a number for ${arg} but received ${describe(value)}`);
  return value;
}

/** A finite number (not NaN, not ±Infinity), for ops where nothing else has a meaning (arange's bounds). */
export function checkFinite(value: unknown, arg: string, op: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${op}: expected a finite number for ${arg} but received ${describe(value)}`);
  }
  return value;
}

/** Whether dtype is a floating one (the only kind that can require gradients). */
export function isFloatingDtype(dtype: Dtype): boolean {
  return FLOAT_DTYPES.includes(dtype);
}
