// Behaviours a review against PyTorch 2.13 found wrong (or silent) in the Tensor API, each pinned
// here. Expected values are PyTorch 2.13's (CPU), computed there and written in as literals; the
// messages quote PyTorch's where it has one.
import {
  arange,
  empty,
  eye,
  fromTypedArray,
  full,
  memoryStats,
  ones,
  rand,
  randint,
  randn,
  randperm,
  scaledDotProductAttention,
  tensor,
  tidy,
  zeros,
  type TensorOptions,
} from './imports';

/** The error fn throws (by constructor name: addon errors come from Node's realm, not jest's). */
function thrown(fn: () => unknown): { name: string; message: string } {
  try {
    tidy(() => {
      fn();
    });
  } catch (e) {
    return { name: (e as Error).constructor.name, message: (e as Error).message };
  }
  throw new Error('expected a throw');
}

describe('keepdim with no dims keeps every dimension (size 1)', () => {
  // PyTorch: x.sum(dim=None, keepdim=True) etc. on [[1, 2, 3], [4, 5, 6]]
  it('sum, mean and norm of [2, 3] are [1, 1]', () =>
    tidy(() => {
      const x = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      expect(x.sum(undefined, true).shape).toEqual([1, 1]);
      expect(x.sum(undefined, true).toList()).toEqual([[21]]);
      expect(x.mean(undefined, true).toList()).toEqual([[3.5]]);
      const n = x.norm(2, undefined, true);
      expect(n.shape).toEqual([1, 1]);
      expect(n.toNumberArray()[0]).toBeCloseTo(9.539392471313477, 6);
      // without keepdim: 0-dim as before
      expect(x.sum().shape).toEqual([]);
      expect(x.norm().shape).toEqual([]);
    }));

  it('argmax with no dim and keepdim is the flat index shaped [1, 1]', () =>
    tidy(() => {
      const x = tensor([
        [1, 5],
        [7, 2],
      ]);
      expect(x.argmax(undefined, true).shape).toEqual([1, 1]);
      expect(x.argmax(undefined, true).toNumberArray()).toEqual([2]);
      expect(ones([2, 3, 4]).argmax(undefined, true).shape).toEqual([1, 1, 1]);
      expect(ones([2, 3, 4]).mean(undefined, true).shape).toEqual([1, 1, 1]);
    }));

  it('a 0-dim tensor stays 0-dim (PyTorch: torch.Size([]))', () =>
    tidy(() => {
      expect(tensor(5).sum(undefined, true).shape).toEqual([]);
      expect(tensor(5).argmax(undefined, true).shape).toEqual([]);
    }));
});

describe('scaledDotProductAttention masks', () => {
  const q = () => randn([1, 1, 2, 4]);
  it('refuses an int64 or uint8 mask (PyTorch: "Expected attn_mask dtype to be bool or float")', () => {
    for (const dtype of ['int64', 'uint8', 'int32'] as const) {
      const e = thrown(() => scaledDotProductAttention(q(), q(), q(), { mask: ones([2, 2], { dtype }) }));
      expect(e.name).toBe('TypeError');
      expect(e.message).toMatch(
        new RegExp(
          `^scaledDotProductAttention: expected a bool \\(true = attend\\) or floating \\(additive\\) tensor for argument 'mask' but received ${dtype}`,
        ),
      );
    }
  });
  it('still takes bool and floating masks', () =>
    tidy(() => {
      const x = q();
      expect(scaledDotProductAttention(x, x, x, { mask: ones([2, 2], { dtype: 'bool' }) }).shape).toEqual([1, 1, 2, 4]);
      expect(scaledDotProductAttention(x, x, x, { mask: zeros([2, 2]) }).shape).toEqual([1, 1, 2, 4]);
    }));
});

describe('integer powers', () => {
  it('an integer or bool tensor to a negative integer number is refused (PyTorch: "Integers to negative integer powers are not allowed.")', () => {
    for (const [fn, op, dtype, e] of [
      [() => tensor([2, 3], { dtype: 'int64' }).pow(-1), 'pow', 'int64', '-1'],
      [() => tensor([2, 3], { dtype: 'int32' }).pow_(-2), 'pow_', 'int32', '-2'],
      [() => tensor([2], { dtype: 'uint8' }).pow(-3), 'pow', 'uint8', '-3'],
      [() => tensor([true]).pow(-1), 'pow', 'bool', '-1'],
    ] as const) {
      const err = thrown(fn);
      expect(err.name).toBe('Error');
      expect(err.message).toMatch(
        new RegExp(`^${op}: Integers to negative integer powers are not allowed \\(${dtype} tensor to the power ${e}\\)`),
      );
    }
  });
  it('non-negative and non-integral exponents still work (PyTorch: [4]**2 = [16], [4]**-0.5 = [0.5])', () =>
    tidy(() => {
      const x = tensor([4], { dtype: 'int64' });
      expect(x.pow(2).dtype).toBe('int64');
      expect(x.pow(2).toNumberArray()).toEqual([16]);
      expect(x.pow(-0.5).toNumberArray()).toEqual([0.5]);
      expect(tensor([4]).pow(-1).toNumberArray()).toEqual([0.25]);
    }));
});

describe('-0 as a number argument keeps its sign', () => {
  // PyTorch: torch.tensor([1.]).mul(-0.0).reciprocal() = [-inf], div(-0.0) = [-inf], fill_(-0.0)
  it('mul, div, fill_, maskedFill and maskedFill_', () =>
    tidy(() => {
      expect(tensor([1]).mul(-0).reciprocal().toNumberArray()).toEqual([-Infinity]);
      expect(tensor([2]).div(-0).toNumberArray()).toEqual([-Infinity]);
      expect(tensor([1]).fill_(-0).reciprocal().toNumberArray()).toEqual([-Infinity]);
      expect(
        tensor([1])
          .maskedFill(tensor([true]), -0)
          .reciprocal()
          .toNumberArray(),
      ).toEqual([-Infinity]);
      expect(
        tensor([1])
          .maskedFill_(tensor([true]), -0)
          .reciprocal()
          .toNumberArray(),
      ).toEqual([-Infinity]);
      expect(Object.is(tensor([1], { dtype: 'float64' }).mul(-0).item(), -0)).toBe(true);
    }));
  it('an int tensor times -0 is floating, as times -0.0 in PyTorch ([1, 2] * -0.0 = [-0., -0.])', () =>
    tidy(() => {
      const r = tensor([1, 2], { dtype: 'int64' }).mul(-0);
      expect(r.dtype).toBe('float32');
      expect(r.toNumberArray().every((v) => Object.is(v, -0))).toBe(true);
      // +0 stays an integer
      expect(tensor([1, 2], { dtype: 'int64' }).mul(0).dtype).toBe('int64');
    }));
});

describe('.T', () => {
  it('refuses a tensor that is not 2-D, pointing to transpose and permute', () => {
    for (const shape of [[2, 3, 4], [3], []]) {
      const e = thrown(() => ones(shape).T);
      expect(e.name).toBe('Error');
      expect(e.message).toMatch(/^T: expected a 2-D tensor but its shape is .*use transpose\(dim0, dim1\) or permute\(\.\.\.dims\)/);
    }
  });
  it('transposes a 2-D tensor', () =>
    tidy(() => {
      expect(ones([2, 3]).T.shape).toEqual([3, 2]);
    }));
});

describe('tensor() infers bool only from all-boolean data', () => {
  // PyTorch: torch.tensor([True, 2]) = [1, 2]; torch.tensor([[1, False], [True, 0]]) = [[1, 0], [1, 0]]
  it('mixed booleans and numbers are numeric (true = 1), float32 as all numbers here', () =>
    tidy(() => {
      const t = tensor([true, 2]);
      expect(t.dtype).toBe('float32');
      expect(t.toList()).toEqual([1, 2]);
      const u = tensor([
        [1, false],
        [true, 0],
      ]);
      expect(u.dtype).toBe('float32');
      expect(u.toList()).toEqual([
        [1, 0],
        [1, 0],
      ]);
    }));
  it('all booleans are bool; an empty array is float32', () =>
    tidy(() => {
      expect(tensor([[true], [false]]).dtype).toBe('bool');
      expect(tensor(true).dtype).toBe('bool');
      expect(tensor([]).dtype).toBe('float32');
    }));
});

describe('requiresGrad with a non-floating dtype is refused before allocating', () => {
  // PyTorch: "Only Tensors of floating point and complex dtype can require gradients"
  const grad = (dtype: 'int64' | 'int32' | 'uint8' | 'bool'): TensorOptions => ({ dtype, requiresGrad: true });
  const factories: [string, () => unknown][] = [
    ['zeros', () => zeros([2], grad('int64'))],
    ['ones', () => ones([2], grad('int32'))],
    ['empty', () => empty([2], grad('uint8'))],
    ['full', () => full([2], 1, grad('bool'))],
    ['eye', () => eye(2, grad('int64'))],
    ['randn', () => randn([2], grad('int64'))],
    ['rand', () => rand([2], grad('int64'))],
    ['tensor', () => tensor([1, 2], grad('int64'))],
    ['fromTypedArray', () => fromTypedArray(new Int32Array([1, 2]), [2], { requiresGrad: true })],
    ['arange', () => arange(3, undefined, 1, { requiresGrad: true })],
    ['randint', () => randint(0, 3, [2], { requiresGrad: true })],
    ['randperm', () => randperm(3, { requiresGrad: true })],
  ];
  it.each(factories)('%s leaves no tensor behind', (op, fn) => {
    const before = memoryStats().liveTensors;
    let err: Error | undefined;
    try {
      fn(); // outside tidy, where a tensor made before the refusal would stay alive
    } catch (e) {
      err = e as Error;
    }
    // (at most: finalizers may collect earlier tests' handles meanwhile; a leak only adds)
    expect(memoryStats().liveTensors).toBeLessThanOrEqual(before);
    expect(err?.constructor.name).toBe('TypeError');
    expect(err?.message).toMatch(new RegExp(`^${op}: only tensors of a floating dtype can require gradients`));
  });
  it('a non-boolean requiresGrad is a TypeError', () => {
    expect(thrown(() => zeros([2], { requiresGrad: 1 as unknown as boolean })).message).toMatch(
      /^zeros: expected a boolean for options.requiresGrad but received number 1/,
    );
  });
  it('floating factories still require grad', () => {
    const t = zeros([2], { dtype: 'float64', requiresGrad: true });
    expect(t.requiresGrad).toBe(true);
    t.dispose();
  });
});

describe('NaN and ±Infinity as fill values', () => {
  // PyTorch: torch.full((2,), nan) = [nan, nan]; ones(2).masked_fill([True, False], nan) = [nan, 1.]
  it('full, maskedFill, maskedFill_ and fill_ take them', () =>
    tidy(() => {
      expect(full([2], NaN).toNumberArray()).toEqual([NaN, NaN]);
      expect(full([1], -Infinity).toNumberArray()).toEqual([-Infinity]);
      const m = tensor([true, false]);
      expect(ones([2]).maskedFill(m, NaN).toNumberArray()).toEqual([NaN, 1]);
      expect(ones([2]).maskedFill(m, -Infinity).toNumberArray()).toEqual([-Infinity, 1]);
      expect(ones([2]).maskedFill_(m, Infinity).toNumberArray()).toEqual([Infinity, 1]);
      expect(ones([2]).fill_(NaN).toNumberArray()).toEqual([NaN, NaN]);
    }));
  it('still refuses what is not a number, naming the op', () => {
    expect(thrown(() => full([2], 'x' as unknown as number)).message).toMatch(/^full: expected a number for value but received string 'x'/);
    expect(thrown(() => ones([2]).maskedFill(tensor([true, false]), null as unknown as number)).message).toMatch(
      /^maskedFill: expected a number for value but received null/,
    );
  });
  it('where a number must be finite, the message says so (PyTorch: "unsupported range: 0 -> inf")', () => {
    expect(thrown(() => arange(0, Infinity)).message).toMatch(/^arange: expected a finite number for end but received number Infinity/);
    expect(thrown(() => arange(NaN)).message).toMatch(/^arange: expected a finite number for end but received number NaN/);
  });
  it('where NaN means nothing, the message does not contradict itself', () => {
    expect(thrown(() => ones([2]).add(1, NaN)).message).toMatch(/Expected a number other than NaN for alpha but received number NaN/);
  });
});

describe('item(), toNumberArray() and toList() of an int64 beyond 2^53', () => {
  // PyTorch: torch.tensor(2**53 + 1).item() = 9007199254740993 and .tolist() the same (Python ints, exact)
  it('throw a RangeError naming the value and toArray()', () => {
    for (const v of [2n ** 53n + 1n, 2n ** 53n, -(2n ** 60n)])
      for (const op of ['item', 'toNumberArray', 'toList'] as const) {
        // (item: the one element; the others: among a safe one)
        const t = fromTypedArray(new BigInt64Array([3n, v]), [2]);
        const e = thrown(() => (op === 'item' ? t.narrow(0, 1, 1) : t)[op]());
        expect(e.name).toBe('RangeError');
        expect(e.message).toBe(
          `${op}: the int64 value ${v} is outside ±(2^53 − 1) (Number.MAX_SAFE_INTEGER), the integers a JS number holds exactly; ` +
            'read it with toArray() (a BigInt64Array)',
        );
      }
  });
  it('return the exact value up to 2^53 − 1; floats are unaffected', () =>
    tidy(() => {
      expect(fromTypedArray(new BigInt64Array([2n ** 53n - 1n]), [1]).item()).toBe(Number.MAX_SAFE_INTEGER);
      expect(fromTypedArray(new BigInt64Array([-(2n ** 53n - 1n)]), [1]).item()).toBe(-Number.MAX_SAFE_INTEGER);
      const edge = fromTypedArray(new BigInt64Array([2n ** 53n - 1n, -(2n ** 53n - 1n)]), [1, 2]);
      expect(edge.toList()).toEqual([[Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]]);
      expect(edge.toNumberArray()).toEqual([Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);
      expect(tensor([2 ** 60], { dtype: 'float64' }).toList()).toEqual([2 ** 60]);
      expect(tensor([2 ** 60], { dtype: 'float64' }).item()).toBe(2 ** 60);
      expect((fromTypedArray(new BigInt64Array([2n ** 53n + 1n]), [1]).toArray() as BigInt64Array)[0]).toBe(2n ** 53n + 1n);
    }));
});

describe('fromTypedArray of integers into a narrower integer dtype', () => {
  // PyTorch: torch.tensor([300], dtype=torch.uint8) → "value cannot be converted to type uint8 without overflow"
  it('refuses values that do not fit, as for floating sources', () => {
    for (const [data, dtype, value] of [
      [new Int32Array([1, 300]), 'uint8', '300'],
      [new BigInt64Array([2n ** 40n]), 'int32', '1099511627776'],
      [new BigInt64Array([-(2n ** 63n)]), 'int32', '-9223372036854775808'],
      [new Int8Array([-1]), 'uint8', '-1'],
      [new Int16Array([-129]), 'uint8', '-129'],
      [new Uint16Array([256]), 'uint8', '256'],
    ] as const) {
      const e = thrown(() => fromTypedArray(data, [data.length], { dtype }));
      expect(e.name).toBe('TypeError');
      expect(e.message).toBe(`fromTypedArray: value ${value} cannot be converted to ${dtype} without overflow`);
    }
  });
  it('takes values that fit, and widening conversions', () =>
    tidy(() => {
      expect(fromTypedArray(new Int32Array([0, 255]), [2], { dtype: 'uint8' }).toNumberArray()).toEqual([0, 255]);
      expect(fromTypedArray(new BigInt64Array([-(2n ** 31n), 2n ** 31n - 1n]), [2], { dtype: 'int32' }).toNumberArray()).toEqual([
        -(2 ** 31),
        2 ** 31 - 1,
      ]);
      expect(fromTypedArray(new Uint16Array([65535]), [1], { dtype: 'int64' }).toNumberArray()).toEqual([65535]);
      expect(fromTypedArray(new Int32Array([300]), [1], { dtype: 'float32' }).toNumberArray()).toEqual([300]);
      // bool takes any integer as nonzero, as PyTorch's cast
      expect(fromTypedArray(new Int32Array([300, 0]), [2], { dtype: 'bool' }).toList()).toEqual([true, false]);
    }));
});

describe('narrow', () => {
  it('names start and length as PyTorch 2.13 does', () => {
    const y = arange(5);
    const cases: [() => unknown, string, RegExp][] = [
      // PyTorch: IndexError "start out of range (expected to be in range of [-5, 5], but got -10)"
      [() => y.narrow(0, -10, 2), 'RangeError', /^narrow: start out of range \(expected to be in range of \[-5, 5\], but got -10\)/],
      [() => y.narrow(0, 6, 0), 'RangeError', /^narrow: start out of range \(expected to be in range of \[-5, 5\], but got 6\)/],
      // PyTorch: "narrow(): length must be non-negative."
      [() => y.narrow(0, 1, -1), 'RangeError', /^narrow: length must be non-negative, but got -1/],
      // PyTorch: "start (4) + length (2) exceeds dimension size (5)."
      [() => y.narrow(0, 4, 2), 'Error', /^narrow: start \(4\) \+ length \(2\) exceeds dimension size \(5\)/],
      // a bad dim is still about the dim
      [() => y.narrow(3, 0, 1), 'Error', /^narrow: Dimension out of range/],
    ];
    for (const [fn, name, message] of cases) {
      const e = thrown(fn);
      expect(e.name).toBe(name);
      expect(e.message).toMatch(message);
    }
    y.dispose();
  });
  it('takes a start counted from the end and an empty piece at the end (PyTorch: [0, 1] and [])', () =>
    tidy(() => {
      expect(arange(5).narrow(0, -5, 2).toNumberArray()).toEqual([0, 1]);
      expect(arange(5).narrow(0, 5, 0).toNumberArray()).toEqual([]);
    }));
});

describe('slice clamps like Python slicing', () => {
  // PyTorch: arange(5)[1:2**62] = [1, 2, 3, 4]; [-10:3] = [0, 1, 2]; [7:] = []
  it('ends and starts beyond the size, and ±Infinity', () =>
    tidy(() => {
      const y = arange(5);
      expect(y.slice(0, 1, Infinity).toNumberArray()).toEqual([1, 2, 3, 4]);
      expect(y.slice(0, 1, 1e20).toNumberArray()).toEqual([1, 2, 3, 4]);
      expect(y.slice(0, 1, 2 ** 62).toNumberArray()).toEqual([1, 2, 3, 4]);
      expect(y.slice(0, -10, 3).toNumberArray()).toEqual([0, 1, 2]);
      expect(y.slice(0, -Infinity, 2).toNumberArray()).toEqual([0, 1]);
      expect(y.slice(0, 7).toNumberArray()).toEqual([]);
      expect(y.slice(0, 1e20).toNumberArray()).toEqual([]);
      expect(y.slice(0, -2).toNumberArray()).toEqual([3, 4]);
      expect(y.slice(0, 0, Infinity, 2).toNumberArray()).toEqual([0, 2, 4]);
    }));
  it('refuses NaN and non-integers with a clear message', () => {
    const y = arange(5);
    expect(thrown(() => y.slice(0, 0, NaN)).message).toMatch(
      /^slice: expected an integer \(or ±Infinity\) for end but received number NaN/,
    );
    expect(thrown(() => y.slice(0, 0.5)).message).toMatch(/^slice: expected an integer \(or ±Infinity\) for start but received number 0.5/);
    y.dispose();
  });
});

describe('shape arguments as one array or as arguments', () => {
  it('permute, expand, view and reshape take both forms', () =>
    tidy(() => {
      const x = arange(24).view([2, 3, 4]);
      expect(x.permute([2, 0, 1]).shape).toEqual([4, 2, 3]);
      expect(x.permute(2, 0, 1).shape).toEqual([4, 2, 3]);
      expect(x.permute([2, 0, 1]).toList()).toEqual(x.permute(2, 0, 1).toList());
      expect(ones([1, 3]).expand([2, 3]).shape).toEqual([2, 3]);
      expect(ones([1, 3]).expand(2, -1).shape).toEqual([2, 3]);
      expect(x.reshape([4, 6]).shape).toEqual([4, 6]);
    }));
  it('refuses non-integers, naming the op', () => {
    expect(thrown(() => ones([2, 3]).permute([1, 0.5])).message).toMatch(/^permute: expected integers for dims but received \[1, 0.5\]/);
    expect(thrown(() => ones([1, 3]).expand([2, -2])).message).toMatch(/^expand: expected integers ≥ -1 for shape but received \[2, -2\]/);
  });
});
