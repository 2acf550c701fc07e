// TensorBoard event files beside metrics.jsonl (train --tensorboard): the same scalars, for watching
// a run live with `tensorboard --logdir runs/`. A file is a sequence of TFRecords — length (uint64
// LE), masked CRC-32C of the length, the data, masked CRC-32C of the data — each holding one
// tensorboard.Event protocol buffer; the first says the file version ("brain.Event:2").
//
// A resumed run redoes the steps after its checkpoint, which the interrupted session may already
// have logged: each session's file starts with a SessionLog START at its first new step, on which
// TensorBoard's Python loader drops what earlier files hold at that step and after (its "purge" of
// orphaned data), as tensorboardX's SummaryWriter(purge_step) does; metrics.jsonl drops the same
// records. (TensorBoard's default Rust loader ignores the START: it drops a tag's points when its
// steps go back, which the resumed session's first records do — all but a point the interrupted
// session logged past the last one the resumed session logs under that tag.)
//
// Encoding: protobufjs over the few fields used, with their numbers from TensorBoard's event.proto
// and summary.proto; CRC-32C from @aws-crypto/crc32c. Checked byte for byte against files
// TensorBoard's own writer made (test/fixtures/tensorboard-events.py).
import { crc32c } from '@aws-crypto/crc32c';
import { appendFileSync } from 'node:fs';
import { makeDirectory } from '../data/atomic';
import { hostname } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { MetricsRecord } from './metrics';

// (tensorboard/compat/proto/event.proto and summary.proto, the fields this writer sets)
const { root } = protobuf.parse(`
syntax = "proto3";
package tensorboard;
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
    SessionLog session_log = 7;
  }
}
message SessionLog {
  enum SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
  SessionStatus status = 1;
}
message Summary {
  message Value {
    string tag = 1;
    oneof value { float simple_value = 2; }
  }
  repeated Value value = 1;
}
`);
const EventType = root.lookupType('tensorboard.Event');

/** One event: the file's version, a session's start (TensorBoard's purge point), or scalars. */
export type TensorBoardEvent = { wallTime: number; step: number } & (
  { fileVersion: string } | { sessionStart: true } | { scalars: { tag: string; value: number }[] }
);

/** An Event protocol buffer. */
export function encodeEvent(e: TensorBoardEvent): Uint8Array {
  const what =
    'fileVersion' in e
      ? { fileVersion: e.fileVersion }
      : 'sessionStart' in e
        ? { sessionLog: { status: 1 } }
        : { summary: { value: e.scalars.map((s) => ({ tag: s.tag, simpleValue: s.value })) } };
  return EventType.encode(EventType.fromObject({ wallTime: e.wallTime, step: e.step, ...what })).finish();
}

/** TFRecord's masked CRC-32C (a CRC of data holding CRCs is then no CRC of its own). */
function maskedCrc(data: Uint8Array): number {
  const crc = crc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc(data), 12 + data.length);
  return out;
}

/** The scalars of a metrics.jsonl record, by TensorBoard tag (none for most events). */
export function scalarsOf(r: MetricsRecord): { tag: string; value: number }[] {
  const scalars: { tag: string; value: number }[] = [];
  const add = (tag: string, v: unknown) => {
    if (typeof v === 'number') scalars.push({ tag, value: v });
  };
  if ('event' in r) {
    // a growth: the stage it starts, so the charts show where the model changed
    if (r.event === 'growth') add('stage', r.stage);
    return scalars;
  }
  add('train/loss', r.loss);
  add('train/lr', r.lr);
  add('train/grad_norm', r.gradNorm);
  add('train/tokens_per_sec', r.tokensPerSec);
  add('train/loss_scale', r.lossScale);
  add('val/loss', r.valLoss);
  return scalars;
}

let filesOpened = 0;

/** One session's event file in a run directory. */
export class TensorBoardLog {
  readonly path: string;

  /**
   * Opens a new event file in `dir`, named as TensorBoard's writers name theirs but for the
   * milliseconds and a zero-padded count after the seconds: TensorBoard reads a directory's files
   * in name order, which must be the order written, also for two sessions in one second (a later
   * file's START would otherwise be read first). `firstStep`: the session's first new step; what
   * earlier files logged from there on is superseded.
   */
  constructor(
    dir: string,
    firstStep: number,
    private readonly clock: () => number = () => Date.now() / 1000,
  ) {
    makeDirectory(dir);
    const now = this.clock();
    const seconds = String(Math.floor(now)).padStart(10, '0');
    const millis = String(Math.floor((now % 1) * 1000)).padStart(3, '0');
    const count = String(filesOpened++).padStart(6, '0');
    this.path = join(dir, `events.out.tfevents.${seconds}.${millis}${count}.${hostname()}.${process.pid}`);
    this.write([
      { wallTime: now, step: 0, fileVersion: 'brain.Event:2' },
      { wallTime: now, step: firstStep, sessionStart: true },
    ]);
  }

  /** Adds the scalars of metrics records (one event per record that has any). */
  append(records: MetricsRecord[]): void {
    const now = this.clock();
    const events: TensorBoardEvent[] = [];
    for (const r of records) {
      const scalars = scalarsOf(r);
      if (scalars.length > 0) events.push({ wallTime: now, step: r.step, scalars });
    }
    this.write(events);
  }

  private write(events: TensorBoardEvent[]): void {
    if (events.length === 0) return;
    // whole records in one write: a crash leaves at most a torn last record, which readers skip
    appendFileSync(this.path, Buffer.concat(events.map((e) => tfRecord(encodeEvent(e)))));
  }
}
