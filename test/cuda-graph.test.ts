// CUDA graphs: the staged (device-rate) AdamW update against the ordinary one, and a captured
// training step against the same steps run eagerly. The GPU parts run where libtorch sees a GPU
// and the build has graphs; the refusals are checked everywhere.
import { cudaAvailable, manualSeed, randint, randn, tidy } from '../lib';
import { CudaGraph, cudaGraphsAvailable } from '../lib/cuda-graph';
import { GPT } from '../lib/nn/gpt';
import { parseGPTConfig } from '../lib/nn/config';
import { AdamW } from '../lib/optim/adamw';
import { CapturedTrainStep } from '../lib/train/captured-step';
import { parseRunConfig } from '../lib/train/config';
import { Trainer } from '../lib/train/trainer';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { itWhen } from './helpers';
import { native } from '../lib/native';

const itGraphs = itWhen(cudaAvailable() && cudaGraphsAvailable(), 'no CUDA device, or no CUDA graphs in this build');

describe('CUDA graphs', () => {
  it('refuse what they cannot do with errors that say why', () => {
    expect(() => CudaGraph.capture('cpu', () => undefined)).toThrow(/'cpu' is not a CUDA device/);
    if (!cudaGraphsAvailable()) expect(() => CudaGraph.capture('cuda', () => undefined)).toThrow(/CUDA graphs need a CUDA build/);
    const w = randn([3]).requiresGrad_();
    const opt = new AdamW([{ name: 'w', tensor: w, kind: 'weight' }]);
    expect(() => opt.stageUpdate(1e-3)).toThrow(/needs CUDA parameters, the fused kernel and bias correction/);
    expect(() => opt.applyStagedUpdate()).toThrow(/before any stageUpdate/);
    opt.dispose();
    const cfg = { steps: 4, cudaGraph: true };
    expect(() => parseRunConfig(cfg)).toThrow(/cudaGraph: cudaGraph needs a CUDA device/);
    expect(() => parseRunConfig({ ...cfg, device: 'cuda', gradAccum: 2 })).toThrow(/needs gradAccum 1/);
    expect(() => parseRunConfig({ ...cfg, device: 'cuda', optimizer: { biasCorrection: false } })).toThrow(
      /fused AdamW with bias correction/,
    );
    expect(parseRunConfig({ ...cfg, device: 'cuda' }).cudaGraph).toBe(true);
  });

  it('hold the optimizer while a graph replays it: its tensors and rates cannot change', () => {
    const w = randn([2, 3]).requiresGrad_();
    const opt = new AdamW([{ name: 'w', tensor: w, kind: 'weight' }]);
    const release = opt.holdForGraph();
    const m = { expAvg: randn([2, 3]), expAvgSq: randn([2, 3]) };
    expect(() => opt.setMoments('w', m)).toThrow(/setMoments\(\) while a captured CUDA graph replays this optimizer/);
    expect(() => opt.setLrScales(() => 2)).toThrow(/setLrScales\(\) while a captured CUDA graph/);
    expect(() => opt.resetParameters(opt.parameters())).toThrow(/resetParameters\(\) while/);
    expect(() => opt.loadMomentTensors({ 'w.exp_avg': m.expAvg, 'w.exp_avg_sq': m.expAvgSq }, 3)).toThrow(/loadMomentTensors\(\) while/);
    release();
    release(); // idempotent
    opt.setLrScales(() => 2);
    expect(opt.lrScale('w')).toBe(2);
    opt.setMoments('w', m);
    opt.dispose();
  });

  itGraphs('a capture whose function throws fails, whatever was thrown; only graph handles replay', () => {
    const x = randn([4], { device: 'cuda' });
    CudaGraph.warmup('cuda', () => x.mul(2).dispose());
    // values without a message once passed for a complete capture of half a step
    for (const thrown of ['boom', undefined, new Error()]) {
      expect(() =>
        CudaGraph.capture('cuda', () => {
          x.mul(2).dispose();
          throw thrown;
        }),
      ).toThrow(/could not be captured/);
    }
    // an error the callback throws comes out as itself (its class kept), its message prefixed
    expect(() =>
      CudaGraph.warmup('cuda', () => {
        throw new RangeError('inside the warm-up');
      }),
    ).toThrow(RangeError);
    expect(() => native.cudaGraphReplay(x.native)).toThrow(/expected a captured graph handle/);
    expect(() => native.cudaGraphReset(x.native)).toThrow(/expected a captured graph handle/);
    x.dispose();
  });

  itGraphs('a staged update (rates in device memory) equals update(lr), lr scales included', () => {
    manualSeed(3);
    const a = randn([32, 16], { device: 'cuda' }).requiresGrad_();
    const b = a.detach().clone().requiresGrad_();
    const c = randn([16], { device: 'cuda' }).requiresGrad_();
    const d = c.detach().clone().requiresGrad_();
    const o = { betas: [0.9, 0.95] as [number, number], weightDecay: 0.1 };
    const eager = new AdamW(
      [
        { name: 'w', tensor: a, kind: 'weight' },
        { name: 'b', tensor: c, kind: 'bias' },
      ],
      o,
    );
    const staged = new AdamW(
      [
        { name: 'w', tensor: b, kind: 'weight' },
        { name: 'b', tensor: d, kind: 'bias' },
      ],
      o,
    );
    for (const opt of [eager, staged]) opt.setLrScales((p) => (p.kind === 'weight' ? 0.5 : 1));
    for (let i = 0; i < 4; i++) {
      const g1 = randn([32, 16], { device: 'cuda' });
      const g2 = randn([16], { device: 'cuda' });
      a.grad = g1;
      b.grad = g1.clone();
      c.grad = g2;
      d.grad = g2.clone();
      const lr = 1e-2 * (i + 1);
      eager.update(lr);
      staged.stageUpdate(lr);
      staged.applyStagedUpdate();
    }
    expect(tidy(() => a.sub(b).abs().max().item())).toBeLessThan(1e-6);
    expect(tidy(() => c.sub(d).abs().max().item())).toBeLessThan(1e-6);
    expect(staged.step).toBe(eager.step);
    eager.dispose();
    staged.dispose();
  });

  itGraphs('a captured training step replays the eager steps: same losses, same parameters', () => {
    const config = parseGPTConfig({ nLayer: 2, nHead: 2, nEmbd: 32, contextLength: 16, vocabSize: 96 });
    const make = (): { model: GPT; opt: AdamW } => {
      manualSeed(11);
      const model = new GPT(config, { device: 'cuda' });
      return { model, opt: new AdamW(model.namedParameters(), { weightDecay: 0.1 }) };
    };
    manualSeed(12);
    const batches = Array.from({ length: 6 }, () => [
      randint(0, 96, [4, 16], { device: 'cuda' }),
      randint(0, 96, [4, 16], { device: 'cuda' }),
    ]);
    const lrs = [1e-3, 2e-3, 3e-3, 3e-3, 2e-3, 1e-3];
    // eager: two warm-up steps, then four more
    const e = make();
    const eagerNorms: number[] = [];
    const eagerLosses = lrs.map((lr, i) =>
      tidy(() => {
        const loss = e.model.loss(batches[i][0], batches[i][1]);
        loss.backward();
        eagerNorms.push(e.opt.clipGradNorm(1.0).item());
        e.opt.update(lr);
        e.opt.zeroGrad();
        return loss.item();
      }),
    );
    // graph: the same two warm-up steps eagerly, then capture and replay the rest
    const g = make();
    const graphLosses: number[] = [];
    const eagerStep = (i: number) => () =>
      tidy(() => {
        const loss = g.model.loss(batches[i][0], batches[i][1]);
        loss.backward();
        g.opt.clipGradNorm(1.0);
        g.opt.update(lrs[i]);
        g.opt.zeroGrad();
        return loss.item();
      });
    graphLosses.push(eagerStep(0)());
    graphLosses.push(CudaGraph.warmup('cuda', eagerStep(1))); // the last warm-up on the capture stream
    const step = CapturedTrainStep.capture(g.model, g.opt, batches[2][0], batches[2][1], { clip: 1.0, autocast: null });
    const graphNorms: number[] = [];
    for (let i = 2; i < lrs.length; i++) {
      graphLosses.push(step.run(lrs[i], batches[i][0], batches[i][1]).item());
      graphNorms.push(step.gradNorm!.item());
    }
    expect(step.replays).toBe(4);
    for (let i = 0; i < lrs.length; i++) expect(Math.abs(graphLosses[i] - eagerLosses[i])).toBeLessThan(1e-4 * Math.abs(eagerLosses[i]));
    for (let i = 2; i < lrs.length; i++) expect(Math.abs(graphNorms[i - 2] - eagerNorms[i])).toBeLessThan(1e-4 * eagerNorms[i]);
    // a batch of another shape would be broadcast by copy_: refused
    expect(() => step.run(1e-3, batches[0][0].narrow(0, 0, 1))).toThrow(
      /x is int64 \[1,16\] but the step was captured with int64 \[4,16\]/,
    );
    expect(g.opt.step).toBe(e.opt.step);
    const ep = e.model.namedParameters();
    const gp = g.model.namedParameters();
    for (let i = 0; i < ep.length; i++) expect(tidy(() => ep[i].tensor.sub(gp[i].tensor).abs().max().item())).toBeLessThan(1e-4);
    step.dispose();
    for (const r of [e, g]) {
      r.model.dispose();
      r.opt.dispose();
    }
  });

  itGraphs('dropout inside a captured step draws fresh masks at every replay (not the captured ones)', () => {
    // learning rate 0 keeps the parameters (and weight decay) fixed: replayed losses on one batch
    // then differ only by the dropout masks — equal losses would mean every step reused one mask
    const config = parseGPTConfig({
      nLayer: 1,
      nHead: 2,
      nEmbd: 32,
      contextLength: 16,
      vocabSize: 96,
      dropout: { embedding: 0.5, attention: 0.5, residual: 0.5 },
    });
    manualSeed(13);
    const model = new GPT(config, { device: 'cuda' });
    const opt = new AdamW(model.namedParameters(), { weightDecay: 0.1 });
    const x = randint(0, 96, [4, 16], { device: 'cuda' });
    const y = randint(0, 96, [4, 16], { device: 'cuda' });
    const before = model.namedParameters().map((p) => p.tensor.detach().clone());
    const captured: CapturedTrainStep[] = [];
    // the step as captured (clipping included), run eagerly: the warm-up before each capture
    const eagerStep = (): number =>
      tidy(() => {
        const loss = model.loss(x, y);
        loss.backward();
        opt.clipGradNorm(1.0);
        opt.update(0);
        opt.zeroGrad();
        return loss.item();
      });
    const capture = (): CapturedTrainStep => {
      eagerStep();
      CudaGraph.warmup('cuda', eagerStep);
      const step = CapturedTrainStep.capture(model, opt, x, y, { clip: 1.0, autocast: null });
      captured.push(step);
      return step;
    };
    try {
      const withDropout = capture();
      const replayed = Array.from({ length: 4 }, () => withDropout.run(0).item());
      expect(new Set(replayed).size).toBe(replayed.length);
      const params = model.namedParameters();
      for (let i = 0; i < params.length; i++) expect(tidy(() => params[i].tensor.sub(before[i]).abs().max().item())).toBe(0);
      // and without dropout the replays agree: the differences above are the masks
      withDropout.dispose();
      model.eval();
      const still = capture();
      const fixed = Array.from({ length: 3 }, () => still.run(0).item());
      expect(fixed[1]).toBe(fixed[0]);
      expect(fixed[2]).toBe(fixed[0]);
    } finally {
      for (const step of captured) step.dispose();
      for (const t of [x, y, ...before]) t.dispose();
      model.dispose();
      opt.dispose();
    }
  });

  itGraphs(
    'a staged run with cudaGraph trains like the eager run, through a growth (captured again after it); fp32, bf16, fp16',
    async () => {
      let stats: ReturnType<Trainer['cudaGraphStats']> | null = null;
      const losses = async (cudaGraph: boolean, precision: 'fp32' | 'bf16' | 'fp16'): Promise<number[]> => {
        const dir = mkdtempSync(join(tmpdir(), 'slm-graph-'));
        try {
          const t = Trainer.create({
            model: { nLayer: 1, nHead: 2, nEmbd: 32, contextLength: 32 },
            device: 'cuda',
            precision,
            // (fp16 without loss scaling, which a graph does not capture: the replay's autocast must be fp16's)
            ...(precision === 'fp16' ? { lossScale: { enabled: false } } : {}),
            batchSize: 4,
            seqLen: 32,
            steps: 14,
            cudaGraph,
            logInterval: 1,
            eval: { interval: 0, batches: 1 },
            lr: { peak: 3e-3, total: 14, warmup: 2 },
            stages: [{ until: { steps: 6 }, grow: { op: 'depth', rewarmup: 2 } }],
          });
          await t.train({ out: dir, progress: false });
          stats = t.cudaGraphStats();
          t.dispose();
          return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { loss?: number; event?: string })
            .filter((r) => r.event === undefined && r.loss !== undefined)
            .map((r) => r.loss!);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
      for (const [precision, tol] of [
        ['fp32', 1e-4],
        ['bf16', 2e-3],
        ['fp16', 2e-3],
      ] as const) {
        const eager = await losses(false, precision);
        const graph = await losses(true, precision);
        // steps 1–3 eager, 4–6 replayed; growth at 6; steps 7–9 eager again, 10–14 replayed
        expect(stats).toEqual({ captures: 2, replays: 8, failed: false });
        expect(graph.length).toBe(14);
        for (let i = 0; i < eager.length; i++) expect(Math.abs(graph[i] - eager[i])).toBeLessThan(tol * eager[i]);
      }
    },
  );
});
