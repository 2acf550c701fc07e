// Growth operators on the whole training state (spec/growth.md). Each is a pure function
// TrainState → TrainState: parameters and AdamW moments are mapped so that the grown model computes
// the same function and trains on like a model of its size, the optimizer step is kept, the LR
// schedule switches to the target model's (placed at R = S_pre / c_op, with re-warmup), and the
// token/FLOP counters carry on into the next stage.
import { depthParams, type DepthOptions } from './depth';
import { headsParams, mlpParams, type InnerOptions } from './inner';
import { rescheduled, type GrowthOp, type GrowthScheduleOptions } from './schedule';
import type { TrainState } from './state';
import { widthParams, type WidthOptions } from './width';

export * from './state';
export { stateOf, instantiate } from './model-state';
export { REFERENCE_C_OP, REFERENCE_REWARMUP, referenceCOpNote, rescheduled, type GrowthOp, type GrowthScheduleOptions } from './schedule';
export { widthParams, widthRole, grownWidthConfig, type WidthOptions } from './width';
export { depthParams, type DepthOptions } from './depth';
export { mlpParams, headsParams, InnerOptionsSchema, type InnerOptions } from './inner';

function finish(
  s: TrainState,
  grown: Pick<TrainState, 'config' | 'params' | 'moments'>,
  op: GrowthOp | null,
  schedule?: GrowthScheduleOptions | false,
): TrainState {
  const keepSchedule = schedule === false;
  const r = keepSchedule ? { schedule: s.schedule, schedulePos: s.progression.schedulePos } : rescheduled(s, grown.config, op, schedule);
  return {
    ...grown,
    optimizerStep: s.optimizerStep,
    schedule: r.schedule,
    progression: { ...s.progression, stage: s.progression.stage + 1, schedulePos: r.schedulePos },
  };
}

/** Width ×k (default 2). `schedule: false` keeps the LR schedule as it is. */
export function growWidth(s: TrainState, opts: WidthOptions & { schedule?: GrowthScheduleOptions | false } = {}): TrainState {
  const { schedule, ...width } = opts;
  return finish(s, widthParams(s, width), 'width', schedule);
}

/** Depth ×k (default 2), identity blocks interleaved by default. */
export function growDepth(s: TrainState, opts: DepthOptions & { schedule?: GrowthScheduleOptions | false } = {}): TrainState {
  const { schedule, ...depth } = opts;
  return finish(s, depthParams(s, depth), 'depth', schedule);
}

/** Width then depth in one growth (c_op of 'both'). */
export function growBoth(
  s: TrainState,
  opts: { width?: WidthOptions; depth?: DepthOptions; schedule?: GrowthScheduleOptions | false } = {},
): TrainState {
  // (a `factor` here would be ignored silently: each operator takes its own)
  const unknown = Object.keys(opts).filter((k) => !['width', 'depth', 'schedule'].includes(k));
  if (unknown.length > 0)
    throw new TypeError(
      `growBoth: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}: it takes width, depth and schedule (each operator's factor goes in its own options: { width: { factor }, depth: { factor } })`,
    );
  const wide = widthParams(s, opts.width);
  const mid: TrainState = { ...s, ...wide };
  const deep = depthParams(mid, opts.depth);
  for (const t of Object.values(wide.params)) t.dispose();
  for (const m of Object.values(wide.moments)) {
    m.expAvg.dispose();
    m.expAvgSq.dispose();
  }
  return finish(s, deep, 'both', opts.schedule);
}

/**
 * MLP inner width ×k, residual width kept. The schedule needs an explicit cOp (or false). Without
 * `splitNoiseStd` the copies never diverge (module comment of ./inner).
 */
export function growMlp(s: TrainState, opts: InnerOptions & { schedule?: GrowthScheduleOptions | false } = {}): TrainState {
  const { schedule, ...inner } = opts;
  return finish(s, mlpParams(s, inner), null, schedule ?? false);
}

/** Attention heads ×k with the head size kept, residual width kept. */
export function growHeads(s: TrainState, opts: InnerOptions & { schedule?: GrowthScheduleOptions | false } = {}): TrainState {
  const { schedule, ...inner } = opts;
  return finish(s, headsParams(s, inner), null, schedule ?? false);
}

export type GrowthOperator = 'width' | 'depth' | 'both' | 'mlp' | 'heads';

/** One operator by name, with default options. */
export function grow(s: TrainState, op: GrowthOperator, opts: Record<string, unknown> = {}): TrainState {
  switch (op) {
    case 'width':
      return growWidth(s, opts);
    case 'depth':
      return growDepth(s, opts);
    case 'both':
      return growBoth(s, opts);
    case 'mlp':
      return growMlp(s, opts);
    case 'heads':
      return growHeads(s, opts);
    default:
      // (an op read from JSON or the command line is not checked by the type)
      throw new TypeError(`grow: unknown operator '${String(op)}' (width, depth, both, mlp or heads)`);
  }
}
