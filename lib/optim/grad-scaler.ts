// Dynamic loss scaling for float16 training, as torch.amp.GradScaler does it: the loss is
// multiplied by a scale before the backward so that small gradients do not flush to zero in
// float16; the optimizer divides it out again (AdamW.scaledUpdate) and skips any update whose
// gradients overflowed; then the scale backs off after an overflow and grows after a run of good
// steps. The scale and the count of good steps live on the device, so a step never waits for it.
import { z } from 'zod';
import { native } from '../native';
import { keep } from '../scope';
import { Tensor } from '../tensor';
import { full, zeros } from '../factories';
import type { Device } from '../dtype';
import { parseOrThrow } from '../validate';

/** The largest finite float32: the scale is a float32 on the device. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** GradScaler's settings; the defaults are torch.amp.GradScaler's. */
export const LossScaleOptionsSchema = z
  .object({
    /** The scale before the first step. */
    init: z
      .number()
      .positive()
      .max(FLOAT32_MAX)
      .default(2 ** 16),
    /** What the scale is multiplied by after growthInterval good steps in a row. */
    growthFactor: z.number().gt(1).default(2),
    /** What the scale is multiplied by after a step whose gradients overflowed. */
    backoffFactor: z.number().gt(0).lt(1).default(0.5),
    /** Good steps in a row before the scale grows. */
    growthInterval: z
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1)
      .default(2000),
  })
  .strict();
export type LossScaleOptions = z.infer<typeof LossScaleOptionsSchema>;
export type LossScaleOptionsInput = z.input<typeof LossScaleOptionsSchema>;

/** What a checkpoint keeps of a GradScaler: its scale and its count of good steps since the scale last changed. */
export interface GradScalerState {
  scale: number;
  growthTracker: number;
}

export const GradScalerStateSchema = z
  .object({
    scale: z.number().positive().max(FLOAT32_MAX),
    growthTracker: z
      .number()
      .int()
      .nonnegative()
      .max(2 ** 31 - 1),
  })
  .strict();

export class GradScaler {
  readonly options: LossScaleOptions;
  /** The current scale: a float32 scalar on the device (the live tensor; update() changes it in place). */
  readonly scale: Tensor;
  /** Good steps since the scale last changed: an int32 scalar on the device. */
  private readonly tracker: Tensor;

  constructor(device: Device, options: LossScaleOptionsInput = {}, state?: GradScalerState) {
    this.options = parseOrThrow(LossScaleOptionsSchema, options, 'loss-scale options');
    const s = state === undefined ? undefined : parseOrThrow(GradScalerStateSchema, state, 'loss-scale state');
    this.scale = keep(full([], s?.scale ?? this.options.init, { device, dtype: 'float32' }));
    this.tracker = keep(s === undefined ? zeros([], { device, dtype: 'int32' }) : full([], s.growthTracker, { device, dtype: 'int32' }));
  }

  /** loss × scale: what to call backward() on. */
  scaleLoss(loss: Tensor): Tensor {
    if (!(loss instanceof Tensor)) throw new TypeError(`GradScaler.scaleLoss: loss must be a Tensor, got ${typeof loss}`);
    return loss.mul(this.scale);
  }

  /**
   * After the step: foundInf (AdamW.scaledUpdate's, 1 where the gradients overflowed) backs the
   * scale off or counts a good step, growing the scale after growthInterval of them. On the device.
   */
  update(foundInf: Tensor): void {
    if (!(foundInf instanceof Tensor))
      throw new TypeError(`GradScaler.update: foundInf must be the Tensor AdamW.scaledUpdate returned, got ${typeof foundInf}`);
    const { growthFactor, backoffFactor, growthInterval } = this.options;
    native.ampUpdateScale(this.scale.native, this.tracker.native, foundInf.native, growthFactor, backoffFactor, growthInterval);
  }

  /** The scale and good-step count, for a checkpoint (waits for the device). */
  state(): GradScalerState {
    return { scale: this.scale.item(), growthTracker: this.tracker.item() };
  }

  dispose(): void {
    this.scale.dispose();
    this.tracker.dispose();
  }
}
