// Training throughput on random tokens, shaped like ../shared/bench/torch_reference.py so the two
// print comparable JSON: same models, AdamW (fused on CUDA), clipping at 1.0, bf16 autocast on CUDA.
import { readFileSync } from 'node:fs';
import { checkDevice, cudaIndex, type Device } from '../dtype';
import { randint } from '../factories';
import { GPT } from '../nn/gpt';
import { parseGPTConfig, PRESET_NAMES, presetConfig, totalParams, trainingFlopsPerToken, type GPTConfig } from '../nn/config';
import { AdamW } from '../optim/adamw';
import { GradScaler } from '../optim/grad-scaler';
import { countOps, mergeCounts, type OpCounts } from '../op-count';
import { checkProfiling, profileToFile } from '../profile';
import { readTrace, summarizeTrace, type TraceSummary } from './trace-summary';
import { lossKernelInfo, normKernelInfo, useKernels, type KernelInfo, type LossKernel, type NormKernel } from '../kernels';
import { buildInfo, emptyCache, manualSeed, memoryStats, resetPeakMemory, setNumThreads, synchronize, withAutocast } from '../runtime';
import { tidy } from '../scope';
import { CapturedTrainStep } from './captured-step';
import { CudaGraph } from '../cuda-graph';
import type { Tensor } from '../tensor';

/** The reference script's model names, plus any preset. */
export const BENCH_MODELS: Record<string, () => GPTConfig> = {
  // tiny's structure at a width where the arithmetic is negligible on a CPU: its step time is
  // what a step costs the host (the launch-bound case); use with --vocab 64 --batch 1 --seq 8
  micro: () => parseGPTConfig({ nLayer: 4, nHead: 4, nEmbd: 32, contextLength: 1024, vocabSize: 50304 }),
  tiny: () => parseGPTConfig({ nLayer: 4, nHead: 4, nEmbd: 256, contextLength: 1024, vocabSize: 50304 }),
  '124M': () => presetConfig('gpt2-124m', { vocabSize: 50304 }),
  '350M': () => presetConfig('gpt2-350m', { vocabSize: 50304 }),
};

export interface BenchOptions {
  model: string;
  device: string;
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
  /** Dense bf16 peak of the card, TFLOP/s, for MFU (default 989: H100/H200 SXM). */
  peakTflops?: number;
  /** Vocabulary size (default 50304, as the reference's --vocab). */
  vocab?: number;
  /** CPU threads for libtorch (0 or absent: leave as is, as the reference's --threads). */
  threads?: number;
  /** Capture the step as a CUDA graph after the warm-up and time its replays. */
  cudaGraph?: boolean;
  /**
   * The step's precision on CUDA: 'bf16' autocast (the default, the reference's), 'fp16' autocast
   * with dynamic loss scaling (GradScaler), or 'fp32'. The CPU runs fp32 only.
   */
  precision?: 'bf16' | 'fp16' | 'fp32';
  /** The loss's kernel (float32CrossEntropy): libtorch's or staged-lm's fused CUDA one (default: setLossKernel's, where it applies). */
  lossKernel?: LossKernel;
  /** The residual add + LayerNorm's kernel (addLayerNorm): libtorch's or staged-lm's fused CUDA one (default: setNormKernel's, where it applies). */
  normKernel?: NormKernel;
  /** Activation checkpointing (GPT.lossBackward with recompute): blocks run forward again in the backward. */
  activationCheckpointing?: boolean;
  /** Count the ATen operators of one more step after the timed ones (countOps), in ops_per_step. */
  countOps?: boolean;
  /** Record one more step after the timed ones with libtorch's profiler: its Chrome trace goes to this file, its split by kind to `profile`. */
  profile?: string;
}

export interface BenchResult {
  /** Eager or replayed graph; '+fused-loss' / '+fused-norm' with staged-lm's fused CUDA loss / add + LayerNorm kernels. */
  impl: `${'staged-lm' | 'staged-lm-cuda-graph'}${'' | '+fused-loss'}${'' | '+fused-norm'}`;
  /** The libtorch version the addon was built against (the reference prints its torch's). */
  torch: string;
  device: string;
  /** The step's precision: bf16 or fp16 autocast (fp16 with loss scaling), or fp32. */
  precision: 'bf16' | 'fp16' | 'fp32';
  model: string;
  params: number;
  batch: number;
  seq: number;
  ms_per_step: number;
  tokens_per_s: number;
  mfu: number | null;
  peak_mem_gib: number | null;
  /** What peak_mem_gib counts: peak allocated bytes (eager) or all reserved bytes (CUDA graph). */
  peak_mem_kind: 'allocated' | 'reserved';
  final_loss: number;
  /** The process's peak resident set (VmHWM, Linux; null elsewhere): on the CPU, what the run's memory peaked at. */
  peak_rss_gib: number | null;
  /** Whether the step recomputed the blocks' activations in its backward (forward time is then counted in backward). */
  activation_checkpointing: boolean;
  host_ms_per_step: number;
  /** Host time per step by phase: where a launch-bound step spends its time (kernels run async). */
  host_phase_ms: { forward: number; backward: number; optimizer: number } | null;
  /**
   * With countOps: the ATen operators one step dispatches, and how many in each phase (eager; a
   * replayed graph dispatches only what is outside it, and has no phases).
   */
  ops_per_step: (OpCounts & { by_phase: { forward: number; backward: number; optimizer: number } | null }) | null;
  /** With profile: the trace's file and one step's time by kind of work (GPU kernel time on CUDA). */
  profile: (TraceSummary & { trace: string }) | null;
}

export function benchConfig(name: string): GPTConfig {
  const shape = BENCH_MODELS[name];
  if (shape !== undefined) return shape();
  if (!(PRESET_NAMES as readonly string[]).includes(name))
    throw new Error(`unknown model '${name}' (expected one of ${[...Object.keys(BENCH_MODELS), ...PRESET_NAMES].join(', ')})`);
  return presetConfig(name, { vocabSize: 50304 });
}

export function runBench(o: BenchOptions): BenchResult {
  const device: Device = checkDevice(o.device);
  const cuda = device.startsWith('cuda');
  const precision = o.precision ?? (cuda ? 'bf16' : 'fp32');
  if (precision !== 'fp32' && !cuda) throw new Error(`--precision ${precision} needs a CUDA device (autocast is CUDA-only here)`);
  if (precision === 'fp16' && o.cudaGraph) throw new Error('--cuda-graph does not capture loss scaling: not with --precision fp16');
  // the model's loss and LayerNorms read the process-wide choices: the ones asked for (refused
  // where they cannot run), else the process's; each runs fused where it applies
  const restoreKernels = useKernels({ loss: o.lossKernel, norm: o.normKernel }, device, 'bench kernels');
  const fusedHere = (k: KernelInfo<'aten' | 'fused'>): boolean => k.default === 'fused' && k.available && cuda;
  const lossFused = fusedHere(lossKernelInfo());
  const normFused = fusedHere(normKernelInfo());
  if (o.threads) setNumThreads(o.threads);
  const base = benchConfig(o.model);
  // positions table as the reference's (one row per position of the sequence)
  const cfg = { ...base, contextLength: o.seq, vocabSize: o.vocab ?? base.vocabSize };
  manualSeed(0);
  const model = new GPT(cfg, { device });
  const opt = new AdamW(model.namedParameters(), { betas: [0.9, 0.95], weightDecay: 0.1, noDecay: [] });
  const autocastDtype = precision === 'bf16' ? 'bfloat16' : precision === 'fp16' ? 'float16' : null;
  const scaler = precision === 'fp16' ? new GradScaler(device) : null;
  const x = randint(0, cfg.vocabSize, [o.batch, o.seq], { device });
  const y = randint(0, cfg.vocabSize, [o.batch, o.seq], { device });
  let hostMs = 0;
  let captured: CapturedTrainStep | null = null;
  const phases = { forward: 0, backward: 0, optimizer: 0 };
  // with a record, each phase's operators are counted into it (an untimed step)
  let phaseOps: { forward: OpCounts; backward: OpCounts; optimizer: OpCounts } | null = null;
  const phase = <R>(name: keyof typeof phases, fn: () => R): R => {
    if (phaseOps === null) return fn();
    let r!: R;
    phaseOps[name] = countOps(() => {
      r = fn();
    });
    return r;
  };
  const step = (): Tensor =>
    tidy(() => {
      const h0 = performance.now();
      const autocast = <R>(fn: () => R): R => (autocastDtype === null ? fn() : withAutocast(autocastDtype, fn));
      // (with recomputation the forward runs inside lossBackward: all of it counts as backward)
      const loss = o.activationCheckpointing ? null : phase('forward', () => autocast(() => model.loss(x, y)));
      const h1 = performance.now();
      const detached = phase('backward', () => {
        if (loss === null)
          return model.lossBackward(x, y, { recompute: true, run: autocast, ...(scaler === null ? {} : { lossScale: scaler.scale }) });
        (scaler === null ? loss : scaler.scaleLoss(loss)).backward();
        return loss.detach();
      });
      const h2 = performance.now();
      phase('optimizer', () => {
        if (scaler === null) opt.clipAndUpdate(1.0, 6e-4);
        else scaler.update(opt.scaledUpdate(6e-4, scaler.scale, 1.0).foundInf);
        opt.zeroGrad();
      });
      const h3 = performance.now();
      phases.forward += h1 - h0;
      phases.backward += h2 - h1;
      phases.optimizer += h3 - h2;
      hostMs += h3 - h0;
      return detached;
    });
  try {
    if (o.cudaGraph && !cuda) throw new Error('--cuda-graph needs a CUDA device');
    if (o.cudaGraph && o.activationCheckpointing)
      throw new Error('--cuda-graph captures a plain step: not with --activation-checkpointing');
    // before the run, not after it
    if (o.profile !== undefined) checkProfiling(o.profile, '--profile');
    if (o.cudaGraph && o.warmup < 1)
      throw new Error('--cuda-graph needs at least one warm-up step (set-up must not happen during capture)');
    for (let i = 0; i < o.warmup; i++) {
      // with --cuda-graph the last warm-up step runs on the capture stream
      if (o.cudaGraph && i === o.warmup - 1) CudaGraph.warmup(device, step).dispose();
      else step().dispose();
    }
    if (o.cudaGraph) {
      // the warm-up's cached blocks go back first, so that what is reserved afterwards is the
      // state plus the graph's private pool (which the allocator counts as free, not allocated)
      emptyCache();
      captured = CapturedTrainStep.capture(model, opt, x, y, { clip: 1.0, autocast: autocastDtype });
      captured.run(6e-4); // the first replay uploads the graph: not timed
    }
    synchronize();
    resetPeakMemory();
    hostMs = 0;
    phases.forward = phases.backward = phases.optimizer = 0;
    const t0 = performance.now();
    let last: Tensor | null = null;
    if (captured !== null) {
      for (let i = 0; i < o.steps; i++) {
        const h0 = performance.now();
        captured.run(6e-4);
        hostMs += performance.now() - h0;
      }
      last = captured.loss;
    } else {
      for (let i = 0; i < o.steps; i++) {
        last?.dispose();
        last = step();
      }
    }
    const finalLoss = last!.item();
    synchronize();
    const dt = (performance.now() - t0) / o.steps / 1000;
    if (captured === null) last!.dispose();
    const tokensPerS = (o.batch * o.seq) / dt;
    const perStep = (ms: number): number => Math.round((ms / o.steps) * 1e3) / 1e3;
    const mem = memoryStats().cuda.find((m) => m.device === cudaIndex(device));
    // host times of the timed steps, before the extra steps below add to them
    const hostMsPerStep = perStep(hostMs);
    const hostPhaseMs =
      captured === null
        ? { forward: perStep(phases.forward), backward: perStep(phases.backward), optimizer: perStep(phases.optimizer) }
        : null;
    // counted or profiled after the timing and the memory reading: both cost host time
    const oneStep = (): void => {
      if (captured !== null) captured.run(6e-4);
      else step().dispose();
    };
    let ops: BenchResult['ops_per_step'] = null;
    if (o.countOps === true && captured !== null) ops = { ...countOps(oneStep), by_phase: null };
    if (o.countOps === true && captured === null) {
      const empty = { total: 0, byName: {} };
      phaseOps = { forward: empty, backward: empty, optimizer: empty };
      oneStep();
      const counted = phaseOps;
      phaseOps = null;
      ops = {
        ...mergeCounts(Object.values(counted)),
        by_phase: { forward: counted.forward.total, backward: counted.backward.total, optimizer: counted.optimizer.total },
      };
    }
    let profile: BenchResult['profile'] = null;
    if (o.profile !== undefined) {
      profileToFile(o.profile, oneStep, { cuda });
      profile = { trace: o.profile, ...summarizeTrace(readTrace(o.profile), 1) };
    }
    return {
      impl: `${captured === null ? 'staged-lm' : 'staged-lm-cuda-graph'}${lossFused ? '+fused-loss' : ''}${normFused ? '+fused-norm' : ''}`,
      torch: buildInfo().torchVersion,
      device,
      precision,
      model: o.model,
      params: totalParams(cfg),
      batch: o.batch,
      seq: o.seq,
      ms_per_step: Math.round(dt * 1e6) / 1e3,
      tokens_per_s: Math.round(tokensPerS),
      mfu: cuda ? Math.round(((tokensPerS * trainingFlopsPerToken(cfg, o.seq)) / ((o.peakTflops ?? 989) * 1e12)) * 1e4) / 1e4 : null,
      // eager: the allocator's peak of allocated bytes (as torch.cuda.max_memory_allocated);
      // graph: all reserved bytes, an upper bound (a replay allocates nothing the counters see)
      peak_mem_gib: cuda && mem ? Math.round(((captured === null ? mem.peakAllocated : mem.reserved) / 2 ** 30) * 100) / 100 : null,
      peak_mem_kind: captured === null ? 'allocated' : 'reserved',
      final_loss: Math.round(finalLoss * 1e4) / 1e4,
      peak_rss_gib: peakRssGib(),
      activation_checkpointing: o.activationCheckpointing === true,
      host_ms_per_step: hostMsPerStep,
      host_phase_ms: hostPhaseMs,
      ops_per_step: ops,
      profile,
    };
  } finally {
    restoreKernels();
    captured?.dispose();
    x.dispose();
    y.dispose();
    model.dispose();
    opt.dispose();
    scaler?.dispose();
  }
}

/** VmHWM of /proc/self/status in GiB (two decimals), or null where there is none. */
function peakRssGib(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m === null ? null : Math.round((Number(m[1]) / 2 ** 20) * 100) / 100;
  } catch {
    return null;
  }
}
