// AdamW with explicit, addressable state: every parameter's moments are Tensors that callers can
// read and replace by name (the growth operators transform them). One native call per parameter
// group runs the update: the fused multi-tensor kernel on CUDA (libtorch >= 2.1), foreach ops
// elsewhere. Math as torch.optim.AdamW; bias correction can be turned off (the paper runs without).
import { z } from 'zod';
import { keep } from '../scope';
import { native } from '../native';
import { Tensor } from '../tensor';
import { zeros } from '../factories';
import { noGrad } from '../autograd';
import { parseOrThrow } from '../validate';
import { isFloatingDtype } from '../dtype';

/** What a parameter is, for weight-decay grouping. */
export type ParamKind = 'weight' | 'bias' | 'layernorm' | 'embedding';

export interface NamedParameter {
  name: string;
  tensor: Tensor;
  kind: ParamKind;
}

export const AdamWOptionsSchema = z
  .object({
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-8),
    weightDecay: z.number().nonnegative().default(0.1),
    /** Parameter kinds exempt from weight decay. */
    noDecay: z.array(z.enum(['weight', 'bias', 'layernorm', 'embedding'])).default(['bias', 'layernorm']),
    biasCorrection: z.boolean().default(true),
    /** Use libtorch's fused kernel where it has one: CUDA (libtorch >= 2.1) and CPU (>= 2.4). */
    fused: z.boolean().default(true),
  })
  .strict();
export type AdamWOptions = z.infer<typeof AdamWOptionsSchema>;
export type AdamWOptionsInput = z.input<typeof AdamWOptionsSchema>;

export interface Moments {
  expAvg: Tensor;
  expAvgSq: Tensor;
}

interface Entry extends NamedParameter, Moments {
  /** This parameter's learning rate is update(lr)'s lr times this (see setLrScales). */
  lrScale: number;
}

/** Moments are float32 (master precision) unless the parameter is float64. */
function momentDtype(t: Tensor): 'float32' | 'float64' {
  return t.dtype === 'float64' ? 'float64' : 'float32';
}

/**
 * Moments given for a parameter must be what the update can run on, checked before anything is
 * replaced: its shape, the moment dtype fresh ones would have, its device, and two tensors of their
 * own. (The update writes them in place: an int64 moment failed only after the weight decay had
 * touched the other parameters; one tensor as both moments, or the parameter itself, gave wrong
 * values silently.)
 */
function checkMoments(name: string, param: Tensor, m: Moments): void {
  for (const [label, t] of [
    ['expAvg', m.expAvg],
    ['expAvgSq', m.expAvgSq],
  ] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`AdamW: ${label} of '${name}' must be a Tensor, got ${typeof t}`);
    if (t.shape.join() !== param.shape.join())
      throw new Error(`AdamW: ${label} of '${name}' has shape [${t.shape}] but the parameter has [${param.shape}]`);
    if (t.dtype !== momentDtype(param))
      throw new TypeError(
        `AdamW: ${label} of '${name}' is ${t.dtype}: the moments of a ${param.dtype} parameter are ${momentDtype(param)}`,
      );
    if (t.device !== param.device) throw new Error(`AdamW: ${label} of '${name}' is on ${t.device} but the parameter on ${param.device}`);
    if (native.memoryOverlaps(t.native, param.native))
      throw new Error(`AdamW: ${label} of '${name}' lies in the parameter's own memory: moments need tensors of their own`);
  }
  if (native.memoryOverlaps(m.expAvg.native, m.expAvgSq.native))
    throw new Error(`AdamW: expAvg and expAvgSq of '${name}' share memory: each needs a tensor of its own`);
}

export class AdamW {
  readonly options: AdamWOptions;
  /** Updates attempted: made, or skipped under loss scaling for overflowing gradients. */
  private attempted = 0;
  /**
   * Updates skipped for overflowing gradients (scaledUpdate), counted on the device: whether one
   * was skipped is known there only, and reading it back each step would stall the GPU.
   */
  private skippedTensor: Tensor | null = null;
  private entries: Entry[];
  private stepTensor: Tensor | null = null;
  /** Each group's rate in device memory, for stageUpdate (keyed like groups()). */
  private lrTensors = new Map<string, Tensor>();
  /** Captured CUDA graphs that replay this optimizer's update (see holdForGraph). */
  private graphHolds = 0;

  constructor(params: NamedParameter[], options: AdamWOptionsInput = {}) {
    this.options = parseOrThrow(AdamWOptionsSchema, options, 'AdamW options');
    const seen = new Set<string>();
    const tensors = new Map<Tensor, string>();
    for (const p of params) {
      if (seen.has(p.name)) throw new Error(`AdamW: parameter name '${p.name}' appears twice`);
      seen.add(p.name);
      // (one tensor under two names would be updated twice per step)
      const other = tensors.get(p.tensor);
      if (other !== undefined) throw new Error(`AdamW: '${p.name}' is the same tensor as '${other}'`);
      tensors.set(p.tensor, p.name);
      // (libtorch would refuse an integer parameter only inside the first step)
      if (!(p.tensor instanceof Tensor)) throw new TypeError(`AdamW: parameter '${p.name}' is not a Tensor`);
      if (!isFloatingDtype(p.tensor.dtype))
        throw new TypeError(`AdamW: parameter '${p.name}' is ${p.tensor.dtype}: only floating-point tensors can be trained`);
    }
    this.entries = params.map((p) => ({ ...p, ...this.freshMoments(p.tensor), lrScale: 1 }));
  }

  /**
   * Updates made so far (the bias corrections' t); the next update is `step + 1`. Reading it after
   * a scaledUpdate waits for the device (it counts the skipped updates there); setting it (a
   * checkpoint's count) forgets the skipped ones.
   */
  get step(): number {
    return this.skippedTensor === null ? this.attempted : this.attempted - this.skippedTensor.item();
  }

  set step(n: number) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`AdamW: step must be a non-negative integer, got ${n}`);
    this.attempted = n;
    this.skippedTensor?.dispose();
    this.skippedTensor = null;
  }

  /** Updates skipped so far (since the step was last set) for overflowing gradients; waits for the device. */
  skippedUpdates(): number {
    return this.skippedTensor === null ? 0 : this.skippedTensor.item();
  }

  /**
   * Per-parameter learning-rate multipliers (e.g. width-scaled hidden matrices): update(lr) takes
   * the Adam step of parameter p at lr · scale(p); decoupled weight decay stays lr · weightDecay.
   * Parameters are grouped by multiplier, one native call a group.
   */
  setLrScales(scale: (p: NamedParameter) => number): void {
    this.checkNotHeld('setLrScales');
    for (const e of this.entries) {
      const s = scale({ name: e.name, tensor: e.tensor, kind: e.kind });
      if (!(s >= 0) || !Number.isFinite(s))
        throw new RangeError(`AdamW: learning-rate scale of '${e.name}' must be a finite non-negative number, got ${s}`);
      e.lrScale = s;
    }
  }

  /** The learning-rate multiplier of one parameter (1 unless setLrScales changed it). */
  lrScale(name: string): number {
    return this.entry(name).lrScale;
  }

  private freshMoments(t: Tensor): Moments {
    const dtype = momentDtype(t);
    return {
      expAvg: keep(zeros(t.shape, { device: t.device, dtype })),
      expAvgSq: keep(zeros(t.shape, { device: t.device, dtype })),
    };
  }

  /** Parameter names in order. */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  parameters(): NamedParameter[] {
    return this.entries.map(({ name, tensor, kind }) => ({ name, tensor, kind }));
  }

  private entry(name: string): Entry {
    const e = this.entries.find((x) => x.name === name);
    if (e === undefined) throw new Error(`AdamW: no parameter named '${name}'`);
    return e;
  }

  /** The moments of one parameter (the live tensors, not copies). */
  getMoments(name: string): Moments {
    const e = this.entry(name);
    return { expAvg: e.expAvg, expAvgSq: e.expAvgSq };
  }

  /**
   * Replaces the moments of one parameter; the old tensors are disposed. Shapes must match the
   * parameter. The optimizer takes the given tensors over (no copy): the caller must not dispose them.
   */
  setMoments(name: string, m: Moments): void {
    this.checkNotHeld('setMoments');
    const e = this.entry(name);
    checkMoments(name, e.tensor, m);
    if (e.expAvg !== m.expAvg) e.expAvg.dispose();
    if (e.expAvgSq !== m.expAvgSq) e.expAvgSq.dispose();
    e.expAvg = keep(m.expAvg);
    e.expAvgSq = keep(m.expAvgSq);
  }

  /**
   * Replaces the parameter set (after growth): parameters whose names are known keep their
   * moments unless `moments` gives new ones; new names start at zero moments. Given moments are
   * taken over (no copy), as by setMoments: do not dispose them, nor a state that holds them
   * (disposeState).
   */
  resetParameters(params: NamedParameter[], moments: Record<string, Moments> = {}): void {
    this.checkNotHeld('resetParameters');
    const old = new Map(this.entries.map((e) => [e.name, e]));
    const next: Entry[] = [];
    // every given moment is checked before anything is kept or allocated: a refusal changes nothing
    for (const p of params) if (moments[p.name] !== undefined) checkMoments(p.name, p.tensor, moments[p.name]);
    for (const p of params) {
      const given = moments[p.name];
      const prev = old.get(p.name);
      let m: Moments;
      if (given !== undefined) m = { expAvg: keep(given.expAvg), expAvgSq: keep(given.expAvgSq) };
      // kept where they still fit the parameter (a parameter now in another dtype or on another
      // device starts afresh, as one of another shape does)
      else if (
        prev !== undefined &&
        prev.expAvg.shape.join() === p.tensor.shape.join() &&
        prev.expAvg.dtype === momentDtype(p.tensor) &&
        prev.expAvg.device === p.tensor.device
      )
        m = { expAvg: prev.expAvg, expAvgSq: prev.expAvgSq };
      else m = this.freshMoments(p.tensor);
      next.push({ ...p, ...m, lrScale: prev?.lrScale ?? 1 });
    }
    const live = new Set(next.flatMap((e) => [e.expAvg, e.expAvgSq]));
    for (const e of this.entries) for (const t of [e.expAvg, e.expAvgSq]) if (!live.has(t)) t.dispose();
    this.entries = next;
  }

  /** Drops every gradient (no memory kept, no kernel launched). */
  zeroGrad(): void {
    native.zeroGrad(this.entries.map((e) => e.tensor.native));
  }

  /** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before (a tensor, no sync). */
  clipGradNorm(maxNorm: number): Tensor {
    checkMaxNorm(maxNorm);
    return new Tensor(
      native.clipGradNorm(
        this.entries.map((e) => e.tensor.native),
        maxNorm,
      ),
    );
  }

  /** One AdamW update at learning rate lr (parameters without a gradient are skipped). */
  update(lr: number): void {
    this.updateWith(lr, null, null);
  }

  /**
   * clipGradNorm(maxNorm) and update(lr) in one: the same result (the gradients are left clipped
   * too), but where the fused kernel runs it divides the gradients as it reads them, one pass over
   * them and a few kernels fewer than clipping first. Returns the norm before clipping (no sync).
   */
  clipAndUpdate(maxNorm: number, lr: number): Tensor {
    checkLr(lr);
    checkMaxNorm(maxNorm);
    return this.withDeferredClip(maxNorm, (divisor) => this.updateWith(lr, divisor, null));
  }

  /**
   * The update after the backward of a loss multiplied by `lossScale` (dynamic loss scaling, a
   * float32 scalar on the parameters' device; see GradScaler): the gradients are unscaled, clipped
   * to maxNorm (Infinity: not clipped) and applied in one pass, as torch.amp.GradScaler's
   * unscale_, clip_grad_norm_ and step do — unless one of them holds an inf or NaN, when nothing
   * is updated and `step` does not advance. Returns the norm of the unscaled gradients and
   * foundInf (1: skipped, 0: made; for GradScaler.update), both tensors on the device: on the
   * fused path nothing here waits for it. The gradients are left unscaled (and clipped) where the
   * update was made.
   */
  scaledUpdate(lr: number, lossScale: Tensor, maxNorm = Infinity): { norm: Tensor; foundInf: Tensor } {
    checkLr(lr);
    if (!(lossScale instanceof Tensor))
      throw new TypeError(`AdamW.scaledUpdate: lossScale must be a float32 scalar Tensor (GradScaler's scale), got ${typeof lossScale}`);
    checkMaxNorm(maxNorm);
    const [n, d, f] = native.clipGradNorm(
      this.entries.map((e) => e.tensor.native),
      maxNorm,
      true,
      lossScale.native,
    );
    const norm = new Tensor(n);
    const divisor = new Tensor(d);
    const foundInf = new Tensor(f);
    try {
      this.updateWith(lr, divisor, foundInf);
    } catch (e) {
      norm.dispose();
      foundInf.dispose();
      throw e;
    } finally {
      divisor.dispose();
    }
    return { norm, foundInf };
  }

  private updateWith(lr: number, gradScale: Tensor | null, foundInf: Tensor | null): void {
    checkLr(lr);
    const useFused = this.usesFusedKernel();
    this.attempted += 1;
    // the step this update makes: attempted minus skipped. The fused kernel reads it from the
    // device, which counts the skipped ones; the foreach path is given it (a read-back, as that
    // path reads foundInf back anyway)
    let hostStep = this.attempted;
    const skipped = foundInf === null ? this.skippedTensor : (this.skippedTensor ??= keep(zeros([], { device: foundInf.device })));
    if (skipped !== null && !useFused) hostStep -= skipped.item();
    // without bias correction the step only has to agree between host and kernel (see adamwFused):
    // the attempted count, which the host knows
    const stepOnDevice = skipped !== null && useFused && this.options.biasCorrection;
    if (useFused) this.deviceScalar('step').fill_(this.attempted);
    const undo = () => {
      this.attempted -= 1;
      if (foundInf !== null) noGrad(() => skipped!.sub_(foundInf));
    };
    let withGradient = 0;
    try {
      noGrad(() => {
        if (foundInf !== null) skipped!.add_(foundInf);
        if (stepOnDevice) this.deviceScalar('step').sub_(skipped!);
        for (const { decay, scale, entries: group } of this.groups().values())
          withGradient += this.launch(group, decay, scale, lr, useFused, null, gradScale, foundInf, hostStep, stepOnDevice);
      });
    } catch (e) {
      // refused (a gradient not its parameter's shape): no update was counted
      undo();
      throw e;
    }
    // no parameter had a gradient: nothing was updated, and the step stays where it was, as
    // torch.optim's per-parameter step does (the device step tensor is refilled by the next update)
    if (withGradient === 0) undo();
  }

  /**
   * The global gradient norm (returned) and what to divide the gradients by to clip them to
   * maxNorm, which `update` is given (null: nothing to clip) and which is freed after it.
   */
  private withDeferredClip(maxNorm: number, update: (divisor: Tensor | null) => void): Tensor {
    const [n, d] = native.clipGradNorm(
      this.entries.map((e) => e.tensor.native),
      maxNorm,
      true,
    );
    const norm = new Tensor(n);
    const divisor = d === null ? null : new Tensor(d);
    try {
      update(divisor);
    } catch (e) {
      norm.dispose();
      throw e;
    } finally {
      divisor?.dispose();
    }
    return norm;
  }

  /**
   * The update split for CUDA-graph capture, where a kernel keeps the arguments it was captured
   * with: stageUpdate(lr) writes the step count and each group's rate into device memory (run it
   * before every replay, outside the graph); applyStagedUpdate() launches the fused kernels that
   * read them (the part that is captured). Needs CUDA parameters, the fused kernel and bias
   * correction; the parameter set and the lr scales must not change while a graph uses them.
   */
  stageUpdate(lr: number): void {
    checkLr(lr);
    if (!this.usesFusedKernel() || !this.entries[0].tensor.device.startsWith('cuda') || !this.options.biasCorrection)
      throw new Error('AdamW: a staged (device-rate) update needs CUDA parameters, the fused kernel and bias correction');
    this.attempted += 1;
    this.deviceScalar('step').fill_(this.attempted);
    if (this.skippedTensor !== null) noGrad(() => this.deviceScalar('step').sub_(this.skippedTensor!));
    for (const [key, g] of this.groups()) this.deviceScalar(key).fill_(lr * g.scale);
  }

  /** Allocates the device tensors stageUpdate writes (before a capture: they must outlive it). */
  prepareStagedUpdate(): void {
    this.deviceScalar('step');
    for (const key of this.groups().keys()) this.deviceScalar(key);
  }

  /** The step tensor ('step') or a group's rate tensor (its key), allocated on first use. */
  private deviceScalar(which: string): Tensor {
    const device = this.entries[0]?.tensor.device ?? 'cpu';
    if (which === 'step') return (this.stepTensor ??= keep(zeros([], { device })));
    let t = this.lrTensors.get(which);
    if (t === undefined) {
      t = keep(zeros([], { device }));
      this.lrTensors.set(which, t);
    }
    return t;
  }

  /** Launches the update staged by stageUpdate (see there). */
  applyStagedUpdate(): void {
    this.applyStagedWith(null);
  }

  /** clipGradNorm(maxNorm), then the update staged by stageUpdate, as clipAndUpdate does it; returns the norm before clipping. */
  clipAndApplyStagedUpdate(maxNorm: number): Tensor {
    if (this.stepTensor === null) throw new Error('AdamW: clipAndApplyStagedUpdate() before any stageUpdate(lr)');
    checkMaxNorm(maxNorm);
    return this.withDeferredClip(maxNorm, (divisor) => this.applyStagedWith(divisor));
  }

  private applyStagedWith(gradScale: Tensor | null): void {
    if (this.stepTensor === null) throw new Error('AdamW: applyStagedUpdate() before any stageUpdate(lr)');
    noGrad(() => {
      for (const [key, { decay, scale, entries: group }] of this.groups()) {
        const lrT = this.lrTensors.get(key);
        if (lrT === undefined) throw new Error('AdamW: the parameter groups changed since stageUpdate(lr)');
        this.launch(group, decay, scale, 0, true, lrT, gradScale, null, this.attempted, this.skippedTensor !== null);
      }
    });
  }

  /**
   * Marks the optimizer as replayed by a captured CUDA graph, which reads its tensors by address:
   * until the returned release() runs, changing the parameter set, the moments or the lr scales
   * throws (it would leave the graph updating freed memory, or at the old rates).
   */
  holdForGraph(): () => void {
    this.graphHolds += 1;
    let released = false;
    return () => {
      if (!released) this.graphHolds -= 1;
      released = true;
    };
  }

  private checkNotHeld(what: string): void {
    if (this.graphHolds > 0)
      throw new Error(`AdamW: ${what}() while a captured CUDA graph replays this optimizer: dispose the captured step first`);
  }

  /** Whether this build has a fused kernel for the parameters' device (native takes it only for tensors it can read). */
  private usesFusedKernel(): boolean {
    if (!this.options.fused || this.entries.length === 0) return false;
    return this.entries[0].tensor.device.startsWith('cuda') ? native.hasFusedAdamW : native.hasFusedAdamWCpu;
  }

  /** Parameters grouped by (weight decay on/off, lr scale): one native call each. */
  private groups(): Map<string, { decay: boolean; scale: number; entries: Entry[] }> {
    const groups = new Map<string, { decay: boolean; scale: number; entries: Entry[] }>();
    for (const e of this.entries) {
      const decay = !this.options.noDecay.includes(e.kind);
      const key = `${decay}:${e.lrScale}`;
      const g = groups.get(key) ?? { decay, scale: e.lrScale, entries: [] };
      g.entries.push(e);
      groups.set(key, g);
    }
    return groups;
  }

  private launch(
    group: Entry[],
    decay: boolean,
    scale: number,
    lr: number,
    fused: boolean,
    lrTensor: Tensor | null,
    gradScale: Tensor | null,
    foundInf: Tensor | null,
    step: number,
    stepOnDevice: boolean,
  ): number {
    const { betas, eps, weightDecay, biasCorrection } = this.options;
    const args = [
      group.map((e) => e.tensor.native),
      group.map((e) => e.expAvg.native),
      group.map((e) => e.expAvgSq.native),
      fused ? this.stepTensor!.native : null,
      {
        lr: lr * scale,
        beta1: betas[0],
        beta2: betas[1],
        eps,
        // the multiplier scales the Adam step, not the decay: lr·weightDecay stays the run's
        // (a width-scaled matrix decays on the same time constant as at any other width)
        weightDecay: decay && scale > 0 ? weightDecay / scale : 0,
        step,
        stepOnDevice,
        biasCorrection,
        fused,
      },
    ] as const;
    return native.adamwStep(...args, lrTensor?.native ?? null, gradScale?.native ?? null, foundInf?.native ?? null);
  }

  /** Every moment tensor, keyed `<name>.exp_avg` / `<name>.exp_avg_sq` (the checkpoint layout). */
  momentTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const e of this.entries) {
      out[`${e.name}.exp_avg`] = e.expAvg;
      out[`${e.name}.exp_avg_sq`] = e.expAvgSq;
    }
    return out;
  }

  /**
   * Loads moments saved by momentTensors(): exactly one pair for every parameter, each checked
   * before any is loaded. They are copied to each parameter's device and moment dtype (float32;
   * float64 for float64 parameters); with `exactDtype` (a checkpoint's own moments, which a
   * conversion would not resume exactly) another dtype is refused. The caller still owns `tensors`
   * and disposes them.
   */
  loadMomentTensors(tensors: Record<string, Tensor>, step: number, opts: { exactDtype?: boolean } = {}): void {
    this.checkNotHeld('loadMomentTensors');
    const names = new Set(this.entries.flatMap((e) => [`${e.name}.exp_avg`, `${e.name}.exp_avg_sq`]));
    for (const n of Object.keys(tensors))
      if (!names.has(n)) throw new Error(`unexpected moment tensor '${n}': no parameter of the model has it`);
    for (const e of this.entries) {
      for (const n of [`${e.name}.exp_avg`, `${e.name}.exp_avg_sq`]) {
        const t = tensors[n] as Tensor | undefined;
        if (t === undefined) throw new Error(`no moment tensor '${n}' for parameter '${e.name}'`);
        if (opts.exactDtype === true && t.dtype !== momentDtype(e.tensor))
          throw new Error(`moment tensor '${n}' is ${t.dtype}: the moments of '${e.name}' are ${momentDtype(e.tensor)}`);
      }
    }
    for (const e of this.entries) {
      const m = tensors[`${e.name}.exp_avg`];
      const v = tensors[`${e.name}.exp_avg_sq`];
      this.setMoments(e.name, {
        expAvg: m.to({ device: e.tensor.device, dtype: momentDtype(e.tensor) }),
        expAvgSq: v.to({ device: e.tensor.device, dtype: momentDtype(e.tensor) }),
      });
    }
    this.step = step;
  }

  /** Frees every moment tensor. */
  dispose(): void {
    for (const e of this.entries) {
      e.expAvg.dispose();
      e.expAvgSq.dispose();
    }
    this.stepTensor?.dispose();
    this.skippedTensor?.dispose();
    this.skippedTensor = null;
    for (const t of this.lrTensors.values()) t.dispose();
    this.lrTensors.clear();
  }
}

/** A clipping bound is a positive number (Infinity: compute the norm, clip nothing). */
function checkMaxNorm(maxNorm: number): void {
  if (!(maxNorm > 0)) throw new RangeError(`AdamW: the gradient-norm bound must be a positive number, got ${maxNorm}`);
}

function checkLr(lr: number): void {
  // (a string '0.1' compares as a number in JS, and Infinity would turn every parameter to ±inf/NaN)
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)
    throw new RangeError(
      `AdamW: learning rate must be a finite non-negative number, got ${typeof lr === 'string' ? `'${lr}'` : String(lr)}`,
    );
}
