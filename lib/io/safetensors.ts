// safetensors files (the format Hugging Face loads):
//   bytes 0..8    N, the header length, uint64 little-endian
//   bytes 8..8+N  JSON: { name: { dtype: "F32", shape: [..], data_offsets: [begin, end] }, ...,
//                         "__metadata__": { string: string } }   (offsets relative to byte 8+N)
//   then          the tensors' raw little-endian bytes, row-major, in offset order
// The header is built and checked here; native/io.cc moves the bytes (no JS arrays in between).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DTYPE_BYTES, type Device, type Dtype } from '../dtype';
import { native } from '../native';
import { Tensor } from '../tensor';

const TO_SAFE: Record<Dtype, string> = {
  float32: 'F32',
  float64: 'F64',
  bfloat16: 'BF16',
  float16: 'F16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_SAFE: Record<string, Dtype> = Object.fromEntries(Object.entries(TO_SAFE).map(([k, v]) => [v, k as Dtype]));

export interface SafetensorsEntry {
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  nbytes: number;
}

/** Writes tensors (any device) to a safetensors file, which appears whole or not at all. Names keep their insertion order. */
export function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const names = Object.keys(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error(`saveSafetensors: '__metadata__' is the format's own key, not a tensor name (${path})`);
    const t = tensors[name];
    const nbytes = t.numel * DTYPE_BYTES[t.dtype];
    setOwn(header, name, { dtype: TO_SAFE[t.dtype], shape: t.shape, data_offsets: [offset, offset + nbytes] });
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  // pad with spaces so the data starts 8-byte aligned (as the reference implementation does)
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const prefix = new Uint8Array(8 + jsonBytes.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  prefix.set(jsonBytes, 8);
  native.writeTensorFile(
    path,
    prefix,
    names.map((n) => tensors[n].native),
  );
}

/** Reads and validates the header: every entry's dtype, shape and byte range. */
export function readSafetensorsHeader(path: string): { entries: Record<string, SafetensorsEntry>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const fail = (why: string): never => {
      throw new Error(`${path}: not a valid safetensors file: ${why}`);
    };
    if (size < 8) fail(`${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > size - 8 || n > 100 * 2 ** 20) fail(`header length ${n} exceeds the file (${size} bytes)`);
    const jsonBuf = Buffer.alloc(n);
    readSync(fd, jsonBuf, 0, n, 8);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(jsonBuf.toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      return fail(`header is not JSON (${(e as Error).message})`);
    }
    const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (!isObject(raw)) fail('header is not a JSON object');
    const dataStart = 8 + n;
    const entries: Record<string, SafetensorsEntry> = {};
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(raw)) {
      if (name === '__metadata__') {
        if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) fail('__metadata__ is not an object of strings');
        metadata = v as Record<string, string>;
        continue;
      }
      if (!isObject(v)) fail(`tensor '${name}' has no entry object (dtype, shape, data_offsets)`);
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = typeof e.dtype === 'string' ? FROM_SAFE[e.dtype] : undefined;
      if (dtype === undefined) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(e.dtype)}`);
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        fail(`tensor '${name}' has a malformed shape ${JSON.stringify(shape)}`);
      const offs = e.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0))
        fail(`tensor '${name}' has malformed data_offsets`);
      const [begin, end] = offs as [number, number];
      const nbytes = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype!];
      if (end - begin !== nbytes) fail(`tensor '${name}' spans ${end - begin} bytes but dtype and shape need ${nbytes}`);
      if (dataStart + end > size)
        fail(`tensor '${name}' ends at byte ${dataStart + end}, past the end of the file (${size} bytes): truncated?`);
      setOwn(entries, name, { dtype: dtype!, shape: shape as number[], offset: dataStart + begin, nbytes });
    }
    return { entries, metadata };
  } finally {
    closeSync(fd);
  }
}

/** Loads every tensor (or those named) onto a device. */
export function loadSafetensors(path: string, device: Device = 'cpu', names?: string[]): Record<string, Tensor> {
  const { entries } = readSafetensorsHeader(path);
  const wanted = names ?? Object.keys(entries);
  for (const n of wanted) if (!Object.hasOwn(entries, n)) throw new Error(`${path}: no tensor named '${n}'`);
  const handles = native.readTensorFile(
    path,
    wanted.map((n) => [entries[n].offset, entries[n].dtype, entries[n].shape]),
    device,
  );
  const out: Record<string, Tensor> = {};
  wanted.forEach((n, i) => setOwn(out, n, new Tensor(handles[i])));
  return out;
}

/**
 * obj[name] = value as an own property, whatever the name: a tensor named `__proto__` set by
 * assignment would replace the object's prototype and vanish from its keys.
 */
function setOwn<T>(obj: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true });
}
