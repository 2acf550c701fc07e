// Grad mode. Gradients themselves live on tensors (requiresGrad_, backward, grad).
import { native } from './native';

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

function withGradMode<R>(enabled: boolean, fn: () => R): R {
  const prev = native.isGradEnabled();
  native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('noGrad()/enableGrad() take a synchronous function');
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn without recording the autograd graph (inference, optimizer updates, growth). */
export function noGrad<R>(fn: () => R): R {
  return withGradMode(false, fn);
}

/** Runs fn with autograd on, even inside noGrad. */
export function enableGrad<R>(fn: () => R): R {
  return withGradMode(true, fn);
}
