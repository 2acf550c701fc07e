// Tensor building blocks of the width maps, all on the tensors' own device (no JS arrays):
//   dup_k(x)   k copies along an axis:         [x ∣ x ∣ … ]
//   bd_k(W)    block-diagonal with k copies:   [[W, 0], [0, W]]  (k = 2)
import { cat } from '../functional';
import { randn, zeros } from '../factories';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';

export function dup(x: Tensor, k: number, dim: number): Tensor {
  return cat(
    Array.from({ length: k }, () => x),
    dim,
  );
}

/**
 * k copies of W on the diagonal; the off-diagonal blocks hold `offDiagonal` (zeros by default):
 * one tensor for every block (the moments option that gives them m/2, v/4 as well), or a function
 * called once per block (noise: blocks (i, j) and (j, i) must differ, or the copies stay symmetric).
 */
export function blockDiagonal(w: Tensor, k: number, offDiagonal: Tensor | (() => Tensor) | null = null): Tensor {
  const [r, c] = w.shape;
  return tidy(() => {
    const out = zeros([k * r, k * c], { dtype: w.dtype, device: w.device });
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const src = i === j ? w : typeof offDiagonal === 'function' ? offDiagonal() : offDiagonal;
        if (src !== null)
          out
            .narrow(0, i * r, r)
            .narrow(1, j * c, c)
            .copy_(src);
      }
    }
    return out;
  });
}

/**
 * Adds noise that sums to zero over the k column copies of a (rows, k·c) tensor laid out copy-major
 * ([x+N₁ ∣ … ∣ x+N_k], ΣN_c = 0): the copies start apart, so training tells them apart, while their
 * mean is unchanged — a function that averages the copies moves only at second order in N.
 */
export function splitNoise(grown: Tensor, k: number, std: number): Tensor {
  if (grown.ndim !== 2 || grown.shape[1] % k !== 0)
    throw new Error(`splitNoise: expected a (rows, ${k}·c) matrix, got shape [${grown.shape.join(', ')}]`);
  return tidy(() => {
    const [rows, cols] = grown.shape;
    const n = randn([rows, k, cols / k], { dtype: grown.dtype, device: grown.device }).mul_(std);
    return grown.add(n.sub(n.mean(1, true)).reshape(rows, cols));
  });
}

/** Applies f to each of n equal column groups of x (the fused [q ∣ k ∣ v]) and joins the results. */
export function perGroup(x: Tensor, n: number, dim: number, f: (part: Tensor) => Tensor): Tensor {
  return tidy(() => cat(x.chunk(n, dim).map(f), dim));
}
