// float32CrossEntropy: the language-model loss computed in float32 (float64 for float64 logits)
// with a backward that writes the logits' dtype directly (native/loss.cc). Checked against the
// textbook formulas in float64 computed here in JS from the very values the tensors hold — loss =
// mean over counted rows of logsumexp(x) − x_t, ∂loss/∂x = (softmax(x) − onehot(t)) · g / n, 0 for
// ignored rows — and against the usual crossEntropy(logits.float(), targets).
import { crossEntropy, float32CrossEntropy, manualSeed, randint, tensor, tidy, type Tensor } from '../../lib';
import { GPT } from '../../lib/nn/gpt';
import { parseGPTConfig } from '../../lib/nn/config';
import { crossEntropyReference, expectRelClose, flat, jsUniform } from '../helpers';

const N = 7;
const C = 11;

/** float64 reference: loss and gradient (times g) for logits x (N×C, row-major). */
const reference = (x: number[], targets: number[], ignoreIndex: number, g: number) => crossEntropyReference(x, C, targets, ignoreIndex, g);

function logitsOf(dtype: 'bfloat16' | 'float16' | 'float32', seed: number): Tensor {
  // spread like real logits (a few units), then rounded to dtype: the reference reads them back
  return tensor(jsUniform(N * C, seed, -6, 6))
    .reshape(N, C)
    .to(dtype)
    .requiresGrad_();
}

describe('float32CrossEntropy', () => {
  const targets = [3, 0, 10, -100, 5, 5, 1];

  for (const dtype of ['bfloat16', 'float16'] as const) {
    it(`${dtype} logits: loss in float32, gradient in ${dtype}, both as the float64 formulas`, () => {
      tidy(() => {
        const x = logitsOf(dtype, 11);
        const xs = flat(x.float());
        const loss = float32CrossEntropy(x, tensor(targets, { dtype: 'int64' }));
        expect(loss.dtype).toBe('float32');
        expect(loss.shape).toEqual([]);
        loss.mul(3).backward(); // an upstream gradient g = 3
        const ref = reference(xs, targets, -100, 3);
        expectRelClose([loss.item()], [ref.loss], 1e-6);
        expect(x.grad!.dtype).toBe(dtype);
        // one rounding of the float32 result into the half type (8 or 11 significant bits)
        expectRelClose(flat(x.grad!), ref.grad, dtype === 'bfloat16' ? 2 ** -8 : 2 ** -10, 1e-7);
        expect(
          flat(x.grad!)
            .slice(3 * C, 4 * C)
            .map(Math.abs),
        ).toEqual(new Array(C).fill(0)); // the ignored row
      });
    });
  }

  it('equals crossEntropy(logits.float()) in value and gradient, with another ignoreIndex', () => {
    tidy(() => {
      const t = [3, 0, 10, 2, 5, 2, 1];
      const x = logitsOf('bfloat16', 12);
      const loss = float32CrossEntropy(x, tensor(t, { dtype: 'int64' }), { ignoreIndex: 2 });
      loss.backward();
      const ours = flat(x.grad!);
      x.grad = null;
      const usual = crossEntropy(x.float(), tensor(t, { dtype: 'int64' }), { ignoreIndex: 2 });
      usual.backward();
      expect(loss.item()).toBeCloseTo(usual.item(), 6);
      // both round a float32 gradient to bf16; they may differ in that one rounding only
      expectRelClose(ours, flat(x.grad!), 2 ** -7, 1e-9);
    });
  });

  it('float32 logits: the same loss and gradient as crossEntropy', () => {
    tidy(() => {
      const x = logitsOf('float32', 13);
      const loss = float32CrossEntropy(x, tensor(targets, { dtype: 'int64' }));
      loss.backward();
      const ours = flat(x.grad!);
      x.grad = null;
      const usual = crossEntropy(x, tensor(targets, { dtype: 'int64' }));
      usual.backward();
      expect(loss.item()).toBeCloseTo(usual.item(), 6);
      expectRelClose(ours, flat(x.grad!), 1e-6, 1e-9);
      expect(x.grad!.dtype).toBe('float32');
    });
  });

  it('float64 logits stay float64: loss and gradient as the formulas to 1e-12', () => {
    tidy(() => {
      const x = tensor(jsUniform(N * C, 17, -6, 6), { dtype: 'float64' })
        .reshape(N, C)
        .requiresGrad_();
      const loss = float32CrossEntropy(x, tensor(targets, { dtype: 'int64' }));
      expect(loss.dtype).toBe('float64');
      loss.backward();
      const ref = reference(flat(x), targets, -100, 1);
      expectRelClose([loss.item()], [ref.loss], 1e-12);
      expect(x.grad!.dtype).toBe('float64');
      expectRelClose(flat(x.grad!), ref.grad, 1e-10, 1e-15);
    });
  });

  for (const dtype of ['bfloat16', 'float32', 'float64'] as const) {
    it(`row chunks (down to one row each) give the very same loss and gradient as one piece (${dtype})`, () => {
      tidy(() => {
        const x = tensor(jsUniform(N * C, 16, -6, 6), { dtype })
          .reshape(N, C)
          .requiresGrad_();
        const t = tensor(targets, { dtype: 'int64' });
        const run = (chunkElements: number) => {
          x.grad = null;
          const loss = float32CrossEntropy(x, t, { chunkElements });
          loss.mul(0.5).backward();
          return [loss.item(), ...flat(x.grad!)];
        };
        const whole = run(N * C);
        const ref = reference(flat(x.double()), targets, -100, 0.5);
        expectRelClose(whole.slice(1), ref.grad, dtype === 'bfloat16' ? 2 ** -8 : 1e-5, 1e-9);
        for (const chunk of [1, 2 * C, 3 * C + 1, N * C - 1]) expect(run(chunk)).toEqual(whole);
      });
    });
  }

  it('non-contiguous (transposed) logits, whole and chunked', () => {
    tidy(() => {
      const base = logitsOf('bfloat16', 18); // (N, C): its transpose's transpose is a strided view
      const x = base.detach().T.contiguous().T.requiresGrad_();
      expect(x.isContiguous).toBe(false);
      const xs = flat(x.float());
      for (const chunkElements of [0, 2 * C]) {
        x.grad = null;
        const loss = float32CrossEntropy(x, tensor(targets, { dtype: 'int64' }), { chunkElements });
        loss.backward();
        const ref = reference(xs, targets, -100, 1);
        expectRelClose([loss.item()], [ref.loss], 1e-6);
        expectRelClose(flat(x.grad!), ref.grad, 2 ** -8, 1e-7);
      }
    });
  });

  it('a bf16 GPT scores its batch as crossEntropy(logits.float()) does, and trains the same gradients', () => {
    tidy(() => {
      manualSeed(5);
      const model = new GPT(parseGPTConfig({ nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 8, vocabSize: 40 }), { dtype: 'bfloat16' });
      const idx = randint(0, 40, [2, 8]);
      const y = randint(0, 40, [2, 8]);
      const ours = model.loss(idx, y);
      ours.backward();
      const grads = model.parameters().map((p) => flat(p.grad!.float()));
      for (const p of model.parameters()) p.grad = null;
      const logits = model.logits(idx);
      const usual = crossEntropy(logits.view(-1, logits.shape[2]).float(), y.view(-1));
      usual.backward();
      expect(ours.dtype).toBe('float32');
      expect(ours.item()).toBeCloseTo(usual.item(), 5);
      model.parameters().forEach((p, i) => {
        const u = flat(p.grad!.float());
        const scale = Math.max(...u.map(Math.abs));
        // bf16 parameters: the two gradients of the logits differ by at most one bf16 rounding
        expectRelClose(grads[i], u, 0, 2 ** -6 * scale + 1e-12, `parameter ${i}, element`);
      });
      model.dispose();
    });
  });

  it('every target ignored: NaN loss (as PyTorch) and a zero gradient, not NaN', () => {
    tidy(() => {
      const x = logitsOf('bfloat16', 14);
      const loss = float32CrossEntropy(x, tensor(new Array(N).fill(-100), { dtype: 'int64' }));
      expect(Number.isNaN(loss.item())).toBe(true);
      loss.backward();
      expect(flat(x.grad!).map(Math.abs)).toEqual(new Array(N * C).fill(0));
    });
  });

  it('names bad arguments', () => {
    tidy(() => {
      const x = logitsOf('bfloat16', 15);
      const t = tensor(targets, { dtype: 'int64' });
      const what = 'float32CrossEntropy: expected float16, bfloat16, float32 or float64 logits of shape (N, C) with C ≥ 1, got';
      expect(() => float32CrossEntropy(x.view(1, N, C), t)).toThrow(`${what} bfloat16 [1, 7, 11]`);
      expect(() => float32CrossEntropy(tensor([[1, 2]], { dtype: 'int64' }), t)).toThrow(`${what} int64 [1, 2]`);
      expect(() => float32CrossEntropy(x.narrow(1, 0, 0), t)).toThrow(`${what} bfloat16 [7, 0]`);
      expect(() => float32CrossEntropy(x, t, { chunkElements: -1 })).toThrow(
        'float32CrossEntropy: chunkElements must be 0 (the default) or positive',
      );
      expect(() => float32CrossEntropy(x, t.narrow(0, 0, 3))).toThrow(
        'float32CrossEntropy: expected int64 targets of shape (7), got int64 [3]',
      );
      expect(() => float32CrossEntropy(x, t.float())).toThrow('float32CrossEntropy: expected int64 targets of shape (7), got float32 [7]');
      expect(() => float32CrossEntropy(x, tensor([3, 0, 11, 1, 1, 1, 1], { dtype: 'int64' }))).toThrow(
        /float32CrossEntropy: .*(out of bounds|Target 11)/,
      );
    });
  });
});
