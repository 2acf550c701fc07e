// Bad calls: each throws the expected class with a message naming the problem, and the process
// (this test) lives on to make the next call.
import { spawnSync } from 'node:child_process';
import { native } from '../lib/native';
import { AdamW } from '../lib/optim/adamw';
import {
  addLayerNorm,
  softmax,
  splitHeads,
  cat,
  checkDevice,
  crossEntropy,
  cudaAvailable,
  layerNorm,
  ones,
  tensor,
  tidy,
  zeros,
  Tensor,
  fromTypedArray,
  randint,
  scaledDotProductAttention,
} from './imports';

type Case = [name: string, fn: () => unknown, cls: ErrorConstructor | TypeErrorConstructor, message: RegExp];

const a = ones([2, 3]);
const b = ones([4, 5]);
const disposed = ones([2]);
disposed.dispose();

const cases: Case[] = [
  // wrong types
  [
    'string operand',
    () => a.add('x' as unknown as number),
    TypeError,
    /add: expected a Tensor or number for other but received string 'x'/,
  ],
  ['object as tensor', () => a.matmul({} as Tensor), TypeError, /matmul: expected a Tensor for other but received Object/],
  [
    'shape not an array',
    () => zeros(3 as unknown as number[]),
    TypeError,
    /array of non-negative integers for shape but received number 3/,
  ],
  ['negative dimension', () => zeros([2, -1]), TypeError, /non-negative integers for shape .*\[2, -1\]/],
  ['fractional dimension', () => ones([1.5]), TypeError, /non-negative integers for shape/],
  ['non-integer dim', () => a.sum(0.5), TypeError, /sum: expected an integer or array of integers for dims/],
  [
    'list with a non-tensor',
    () => cat([a, 3 as unknown as Tensor]),
    TypeError,
    /cat: expected a Tensor for tensors\[1\] but received number 3/,
  ],
  ['ragged nested data', () => tensor([[1, 2], [3]]), TypeError, /ragged/],
  ['bad dropout p', () => a.view(6).add(0) && native.dropout(a.native, 2, true), TypeError, /dropout: expected a probability in \[0, 1\]/],
  [
    'bad reduction',
    () => native.crossEntropy(a.native, a.native, -100, 'avg', 0),
    TypeError,
    /crossEntropy: expected 'mean', 'sum' or 'none' for argument 'reduction'/,
  ],
  [
    'native: plain object for a tensor',
    () => native.add({} as never, 1),
    TypeError,
    /add: expected a Tensor for argument 'tensor' but received object/,
  ],
  [
    'native: a plain object for a handle method',
    () => native.tensorShape({} as never),
    TypeError,
    /expected a tensor handle for argument 'tensor'/,
  ],
  // shapes: messages name both shapes
  ['matmul shapes', () => a.matmul(b), Error, /matmul: .*2x3 and 4x5.*input shapes: \[2, 3\], \[4, 5\]/],
  ['broadcast shapes', () => a.add(b), Error, /add: .*input shapes: \[2, 3\], \[4, 5\]/],
  ['view size', () => a.view(4), Error, /view: .*\[4\].*input shapes: \[2, 3\]/],
  ['cat shapes', () => cat([a, b], 0), Error, /cat: .*input shapes: \[2, 3\], \[4, 5\]/],
  ['layerNorm shape', () => layerNorm(a, [5]), Error, /layerNorm: .*input shapes: \[2, 3\]/],
  ['data length', () => fromTypedArray(new Float32Array(5), [2, 3]), Error, /shape \[2, 3\] holds 6 elements but the data has 5/],
  ['item of many', () => a.item(), Error, /item: expected a tensor with one element but its shape is \[2, 3\]/],
  [
    'cross entropy target range',
    () => crossEntropy(a, randint(5, 6, [2])),
    Error,
    /crossEntropy: .*out of bounds|crossEntropy: .*Target 5/,
  ],
  [
    'attention head size',
    () => scaledDotProductAttention(ones([1, 1, 2, 4]), ones([1, 1, 2, 3]), ones([1, 1, 2, 3])),
    Error,
    /scaledDotProductAttention: .*input shapes: \[1, 1, 2, 4\], \[1, 1, 2, 3\], \[1, 1, 2, 3\]/,
  ],
  [
    'backward of non-scalar',
    () => ones([2], { requiresGrad: true }).mul(2).backward(),
    Error,
    /backward: a gradient is needed for a non-scalar tensor of shape \[2\]/,
  ],
  ['backward without grad', () => ones([1]).backward(), Error, /backward: the tensor does not require grad/],
  // disposed tensors
  ['disposed receiver', () => disposed.add(1), Error, /Tensor was disposed/],
  ['disposed argument', () => a.add(disposed), Error, /Tensor was disposed.*argument 'other'/],
  ['disposed in a list', () => cat([a, disposed]), Error, /Tensor was disposed.*tensors\[1\]/],
  ['disposed metadata', () => disposed.shape, Error, /Tensor was disposed/],
  // dtypes and devices
  [
    'unknown dtype',
    () => zeros([2], { dtype: 'float31' as never }),
    TypeError,
    /Expected one of float32, float64, .* for options.dtype but received string 'float31'/,
  ],
  [
    'unknown device',
    () => zeros([2], { device: 'tpu' as never }),
    TypeError,
    /Expected 'cpu', 'cuda' or 'cuda:N' for options.device but received string 'tpu'/,
  ],
  ['malformed device', () => checkDevice('cuda:-1'), TypeError, /'cpu', 'cuda' or 'cuda:N'/],
  ['native unknown dtype', () => native.zeros([2], 'complex64', 'cpu'), TypeError, /zeros: unknown dtype 'complex64'/],
  ['native unknown device', () => native.zeros([2], 'float32', 'tpu'), TypeError, /zeros: unknown device 'tpu'/],
  ['to unknown dtype', () => a.to({ dtype: 'int4' as never }), TypeError, /for dtype but received string 'int4'/],
  [
    'float mask',
    () => a.maskedFill(ones([2, 3]), 0),
    TypeError,
    /^maskedFill: expected a bool tensor for argument 'mask' but received float32/,
  ],
  ['split by 0', () => a.split(0), TypeError, /^split: 'size' must be positive/],
  // an integer argument left out: the op is named
  ['softmax without dim', () => softmax(a, undefined as never), TypeError, /^softmax: Expected an integer for dim but received undefined/],
  ['narrow of a fraction', () => a.narrow(0, 0.5, 1), TypeError, /^narrow: Expected an integer for start but received number 0\.5/],
  // values that libtorch would take in silently, wrongly
  ['int overflow', () => tensor([1e10], { dtype: 'int32' }), TypeError, /value 10000000000 cannot be converted to int32 without overflow/],
  ['NaN to int64', () => tensor([1, NaN], { dtype: 'int64' }), TypeError, /value nan cannot be converted to int64 without overflow/],
  [
    'negative label smoothing',
    () => crossEntropy(ones([2, 3]), tensor([0, 1], { dtype: 'int64' }), { labelSmoothing: -0.1 }),
    TypeError,
    /crossEntropy: expected a probability in \[0, 1\] for labelSmoothing but received number -0\.1/,
  ],
  [
    'negative attention dropout',
    () => scaledDotProductAttention(ones([1, 1, 2, 2]), ones([1, 1, 2, 2]), ones([1, 1, 2, 2]), { dropoutP: -1 }),
    TypeError,
    /scaledDotProductAttention: expected a probability in \[0, 1\] for dropoutP/,
  ],
  [
    'one tensor under two names',
    () =>
      new AdamW([
        { name: 'a', tensor: a, kind: 'weight' },
        { name: 'b', tensor: a, kind: 'weight' },
      ]),
    Error,
    /AdamW: 'b' is the same tensor as 'a'/,
  ],
  [
    'clip bound 0',
    () => new AdamW([{ name: 'w', tensor: ones([2]), kind: 'weight' }]).clipGradNorm(0),
    RangeError,
    /gradient-norm bound must be a positive number, got 0/,
  ],
  // a native RangeError stays one
  ['non-positive eps', () => addLayerNorm(a, a, ones([3]), null, { eps: 0 }), RangeError, /addLayerNorm: eps must be positive/],
  ['empty heads', () => splitHeads(zeros([1, 2, 0]), 2), Error, /expected qkv of shape \(B, T, 3·heads·headSize\), got \[1, 2, 0\]/],
];

if (!cudaAvailable()) {
  cases.push(
    ['CUDA without CUDA', () => zeros([2], { device: 'cuda' }), Error, /CUDA is not available/],
    ['to CUDA without CUDA', () => a.to('cuda'), Error, /CUDA is not available/],
    ['native CUDA without CUDA', () => native.zeros([2], 'float32', 'cuda:0'), Error, /zeros: CUDA is not available/],
  );
} else {
  cases.push(['CUDA index out of range', () => zeros([2], { device: 'cuda:99' }), Error, /cuda:99 does not exist/]);
}

describe('bad calls throw clear errors and the process lives on', () => {
  it.each(cases)('%s', (_name, fn, cls, message) => {
    let thrown: unknown;
    try {
      tidy(() => {
        fn();
      });
    } catch (e) {
      thrown = e;
    }
    // by name: errors made by the addon belong to Node's main realm, not jest's sandbox, so
    // instanceof across the two fails even though they are real TypeError / Error objects
    expect((thrown as Error).constructor.name).toBe(cls.name);
    expect((thrown as Error).message).toMatch(message);
    // no C++ backtrace leaks into messages
    expect((thrown as Error).message).not.toMatch(/Exception raised from|frame #0/);
  });

  it('still computes after every failure above', () => {
    expect(tidy(() => a.add(1).sum().item())).toBe(12);
  });
});

describe("libtorch's warnings", () => {
  it('print once each as one line in the CLI style, not through glog with a C++ file and line', () => {
    const script = [
      `const t = require(${JSON.stringify(require.resolve('../dist/lib/index.js'))});`,
      'const a = t.randn([2], { requiresGrad: true });',
      'const b = a.mul(2); b.grad; b.grad; a.mul(3).grad;', // (reading .grad of a non-leaf warns)
    ].join('\n');
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^staged-lm: libtorch warning: The \.grad attribute of a Tensor that is not a leaf Tensor is being accessed/);
    expect(r.stderr).not.toMatch(/InitGoogleLogging|\.h:\d+\]/);
  });
});
