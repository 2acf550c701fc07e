// safetensors files: the bytes are the format's (checked by hand, not by our reader), they read
// back as written, and a write that fails leaves what was there before — no half-written file, no
// partial file beside it, no descriptor left open.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, zeros } from '../../lib';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../../lib/io/safetensors';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-safetensors-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const openDescriptors = () => readdirSync('/proc/self/fd').length;

it('writes the format byte for byte and reads it back', () => {
  const path = join(dir, 'a.safetensors');
  const a = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const b = tensor([7, -8], { dtype: 'int64' });
  saveSafetensors(path, { a, b }, { note: 'x' });
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  expect(header).toEqual({
    __metadata__: { note: 'x' },
    a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    b: { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
  });
  const data = bytes.subarray(8 + n);
  expect(data.length).toBe(40);
  expect(Array.from({ length: 6 }, (_, i) => data.readFloatLE(4 * i))).toEqual([1, 2, 3, 4, 5, 6]);
  expect([data.readBigInt64LE(24), data.readBigInt64LE(32)]).toEqual([7n, -8n]);
  const back = loadSafetensors(path);
  expect(back.a.toNumberArray()).toEqual([1, 2, 3, 4, 5, 6]);
  expect(back.a.shape).toEqual([2, 3]);
  expect(back.b.toNumberArray()).toEqual([7, -8]);
});

it('a write that fails leaves the file that was there, nothing beside it, and no descriptor open', () => {
  const path = join(dir, 'keep.safetensors');
  writeFileSync(path, 'the previous contents');
  const fds = openDescriptors();
  // a 16 TiB view of one element: the header and the first tensor are written, then copying this
  // one to contiguous host memory fails
  const huge = zeros([1]).expand(2 ** 42);
  for (let i = 0; i < 3; i++) {
    expect(() => saveSafetensors(path, { small: tensor([1, 2]), huge })).toThrow();
  }
  expect(readFileSync(path, 'utf8')).toBe('the previous contents');
  expect(readdirSync(dir)).toEqual(['keep.safetensors']);
  expect(openDescriptors()).toBe(fds);
});

it('names the path it cannot create', () => {
  expect(() => saveSafetensors(join(dir, 'missing', 'x.safetensors'), { a: tensor([1]) })).toThrow(
    /cannot create '.*missing\/x\.safetensors': No such file or directory/,
  );
});

it('names a header of valid JSON but the wrong shape (not an object, an entry that is not one, bad metadata)', () => {
  const file = (header: string) => {
    const path = join(dir, 'x.safetensors');
    const json = Buffer.from(header);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(path, Buffer.concat([len, json]));
    return path;
  };
  expect(() => readSafetensorsHeader(file('null'))).toThrow(/x\.safetensors: not a valid safetensors file: header is not a JSON object/);
  expect(() => readSafetensorsHeader(file('[1]'))).toThrow(/header is not a JSON object/);
  expect(() => readSafetensorsHeader(file('{"transformer.wte.weight": null}'))).toThrow(
    /tensor 'transformer\.wte\.weight' has no entry object \(dtype, shape, data_offsets\)/,
  );
  expect(() => readSafetensorsHeader(file('{"__metadata__": 5}'))).toThrow(/__metadata__ is not an object of strings/);
});

it("a tensor named like an Object property (__proto__, constructor) is written and read as any other; '__metadata__' is refused", () => {
  const path = join(dir, 'names.safetensors');
  const tensors: Record<string, ReturnType<typeof tensor>> = {};
  Object.defineProperty(tensors, '__proto__', { value: tensor([1, 2]), enumerable: true, configurable: true, writable: true });
  tensors.constructor = tensor([3]) as never;
  saveSafetensors(path, tensors);
  const { entries } = readSafetensorsHeader(path);
  expect(Object.keys(entries).sort()).toEqual(['__proto__', 'constructor']);
  const back = loadSafetensors(path);
  expect(Object.keys(back).sort()).toEqual(['__proto__', 'constructor']);
  expect(Object.getOwnPropertyDescriptor(back, '__proto__')!.value.toNumberArray()).toEqual([1, 2]);
  expect((back.constructor as unknown as ReturnType<typeof tensor>).toNumberArray()).toEqual([3]);
  // a name that is not in the file is not found on the prototype either
  expect(() => loadSafetensors(path, 'cpu', ['toString'])).toThrow(/no tensor named 'toString'/);
  expect(() => saveSafetensors(join(dir, 'meta.safetensors'), { __metadata__: tensor([1]) })).toThrow(
    /'__metadata__' is the format's own key, not a tensor name/,
  );
});

it('a shape entry beyond 2^53 is a malformed shape named in the file, not a native error', () => {
  const path = join(dir, 'huge.safetensors');
  const json = Buffer.from(JSON.stringify({ t: { dtype: 'F32', shape: [1e300, 0], data_offsets: [0, 0] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json]));
  expect(() => loadSafetensors(path)).toThrow(/not a valid safetensors file: tensor 't' has a malformed shape \[1e\+300,0\]/);
});
