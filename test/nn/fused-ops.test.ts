// The one-call ops the model uses to keep host overhead down (conv1d, splitHeads, mergeHeads) give
// exactly what the composed ops give, values and gradients, and name bad shapes.
import { addmm, conv1d, mergeHeads, splitHeads } from '../../lib/functional';
import { manualSeed, randn, tidy } from '../../lib';

function grads(fn: () => number[][], leaves: { grad: { toNumberArray(): number[] } | null }[]): number[][] {
  return [...fn(), ...leaves.map((l) => l.grad!.toNumberArray())];
}

describe('fused host-overhead ops', () => {
  it('conv1d = reshape + addmm + view, forward and backward, with and without bias', () => {
    tidy(() => {
      manualSeed(3);
      for (const withBias of [true, false]) {
        const x = randn([2, 5, 4], { dtype: 'float64' }).requiresGrad_();
        const w = randn([4, 6], { dtype: 'float64' }).requiresGrad_();
        const b = withBias ? randn([6], { dtype: 'float64' }).requiresGrad_() : null;
        const leaves = [x, w, ...(b ? [b] : [])];
        const fused = grads(() => {
          const y = conv1d(x, w, b);
          expect(y.shape).toEqual([2, 5, 6]);
          y.mul(y).sum().backward();
          return [y.toNumberArray()];
        }, leaves);
        for (const l of leaves) l.grad = null;
        const composed = grads(() => {
          const x2 = x.reshape(-1, 4);
          const y = (b ? addmm(b, x2, w) : x2.mm(w)).view(2, 5, 6);
          y.mul(y).sum().backward();
          return [y.toNumberArray()];
        }, leaves);
        expect(fused).toEqual(composed);
      }
      expect(() => conv1d(randn([2, 3]), randn([4, 6]))).toThrow(
        "conv1d: the input's last dimension must equal the weight's rows ([2, 3] · [4, 6])",
      );
    });
  });

  it('splitHeads / mergeHeads = split + view + transpose and back', () => {
    tidy(() => {
      manualSeed(4);
      const qkv = randn([2, 3, 3 * 4 * 5], { dtype: 'float64' }).requiresGrad_();
      const [q, k, v] = splitHeads(qkv, 4);
      const ref = qkv.split(20, 2).map((t) => t.view(2, 3, 4, 5).transpose(1, 2));
      for (const [i, t] of [q, k, v].entries()) {
        expect(t.shape).toEqual([2, 4, 3, 5]);
        expect(t.toNumberArray()).toEqual(ref[i].toNumberArray());
      }
      const merged = mergeHeads(q.mul(k).add(v));
      expect(merged.shape).toEqual([2, 3, 20]);
      expect(merged.toNumberArray()).toEqual(ref[0].mul(ref[1]).add(ref[2]).transpose(1, 2).contiguous().view(2, 3, 20).toNumberArray());
      merged.sum().backward();
      const g = qkv.grad!.toNumberArray();
      qkv.grad = null;
      ref[0].mul(ref[1]).add(ref[2]).transpose(1, 2).contiguous().view(2, 3, 20).sum().backward();
      expect(g).toEqual(qkv.grad!.toNumberArray());
      expect(() => splitHeads(randn([2, 3, 10]), 4)).toThrow(
        'splitHeads: expected qkv of shape (B, T, 3·heads·headSize), got [2, 3, 10] with 4 heads',
      );
      expect(() => mergeHeads(randn([2, 3]))).toThrow('mergeHeads: expected (B, heads, T, headSize), got [2, 3]');
    });
  });
});
