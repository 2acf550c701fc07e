// Checkpoint directories (../shared/design.md, "Checkpoint directory"):
//   config.json            the model config as Hugging Face GPT2Config (+ ours under `staged_lm`)
//   model.safetensors      parameters under HF GPT-2 names, HF Conv1D layout (tied head omitted, as HF)
//   optimizer.safetensors  AdamW moments keyed `<param name>.exp_avg` / `.exp_avg_sq`
//   state.json             step, tokens, FLOPs, schedule, stage, RNG and data-loader state, versions
// The directory is written under a temporary name and renamed into place, so a crash never leaves
// a half checkpoint where a complete one is expected.
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { basename, dirname, join } from 'node:path';
import { fsyncDirectory, makeDirectory, processAlive, writeFileDurable } from '../data/atomic';
import { noGrad } from '../autograd';
import { isFloatingDtype, type Device } from '../dtype';
import { fromTypedArray } from '../factories';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { fromHfConfig, toHfConfig, type GPTConfig } from '../nn/config';
import type { GPT } from '../nn/gpt';
import type { AdamW } from '../optim/adamw';
import { getRngState, setRngState } from '../runtime';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';

export const CHECKPOINT_FORMAT = 'staged-lm-checkpoint';
export const CHECKPOINT_VERSION = 1;

/** What state.json holds besides tensors. `extra` carries the trainer's own records. */
export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  library: string;
  step: number;
  tokens: number;
  flops: number;
  stage: number;
  optimizerStep: number;
  /**
   * Base64 of the CPU generator's state (and the CUDA device's when trained there); in a
   * data-parallel run also every rank's (index = rank: each draws its own dropout masks).
   */
  rng: RngState & { ranks?: RngState[] };
  extra: Record<string, unknown>;
}

/** One process's generators, base64 of their states. */
export interface RngState {
  cpu: string;
  cuda?: string;
}

function rngToBase64(device: Device): string {
  return tidy(() => Buffer.from(getRngState(device).toArray() as Uint8Array).toString('base64'));
}

function rngFromBase64(b64: string, device: Device): void {
  tidy(() => setRngState(fromTypedArray(new Uint8Array(Buffer.from(b64, 'base64')), [Buffer.from(b64, 'base64').length]), device));
}

/** `cuda` is device 0 (the device index a bare 'cuda' stands for). */
function cudaDevice(device: Device): Device {
  return device === 'cuda' ? 'cuda:0' : device;
}

/** The RNG part of a checkpoint: the CPU generator always, and the run's CUDA device's when it trains on one. */
export function captureRng(device: Device): RngState {
  return { cpu: rngToBase64('cpu'), ...(device.startsWith('cuda') ? { cuda: rngToBase64(cudaDevice(device)) } : {}) };
}

/** Puts the generators back: the CUDA one on the device the resumed run trains on. */
export function restoreRng(rng: RngState, device: Device): void {
  rngFromBase64(rng.cpu, 'cpu');
  if (rng.cuda !== undefined && device.startsWith('cuda')) rngFromBase64(rng.cuda, cudaDevice(device));
}

/** Model parameters under their HF names; a tied LM head is not stored twice (HF re-ties it on load). */
export function modelTensors(model: GPT): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const p of model.namedParameters()) out[p.name] = p.tensor;
  return out;
}

/** The files of a checkpoint that hold the model and its optimizer (state.json aside). */
const TENSOR_FILES = ['config.json', 'model.safetensors', 'optimizer.safetensors'];

/**
 * Writes a checkpoint directory. `opts.tensorsFrom` names a checkpoint the caller knows holds this
 * very model and optimizer (a snapshot saved at the same step): its config and tensor files are
 * hard-linked (copied where links fail) instead of written again, which saves the disk a second
 * copy of the largest files; state.json is written fresh. A later save replaces files by renames,
 * never in place, so the two directories stay independent.
 */
export function saveCheckpoint(
  dir: string,
  model: GPT,
  optimizer: AdamW,
  state: Omit<CheckpointState, 'format' | 'version'>,
  opts: { tensorsFrom?: string } = {},
): void {
  checkSaveTarget(dir);
  const shape = StateShape.safeParse(state);
  if (!shape.success)
    throw new TypeError(
      `saveCheckpoint: state is not a checkpoint state (${shape.error.issues.map((i) => `${i.path.join('.') || '(state)'}: ${i.message}`).join('; ')})`,
    );
  // the optimizer must be this model's: its moments are saved under the model's parameter names
  const names = model.namedParameters().map((p) => p.name);
  const held = optimizer.parameters().map((p) => p.name);
  const tensors = new Set(model.namedParameters().map((p) => p.tensor));
  if (held.length !== names.length || !optimizer.parameters().every((p) => tensors.has(p.tensor)))
    throw new Error(
      `saveCheckpoint: the optimizer is not this model's (it updates ${held.length} parameters${held.length === names.length ? ", not the model's own tensors" : `, the model has ${names.length}`})`,
    );
  makeDirectory(dirname(dir));
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp);
  try {
    // every file flushed, then the directory, then the renames: a crash keeps one complete save
    const from = opts.tensorsFrom;
    if (from !== undefined && TENSOR_FILES.every((f) => existsSync(join(from, f)))) {
      for (const f of TENSOR_FILES) linkOrCopy(join(from, f), join(tmp, f));
    } else {
      writeFileDurable(join(tmp, 'config.json'), [Buffer.from(JSON.stringify(toHfConfig(model.config), null, 2) + '\n')]);
      saveSafetensors(join(tmp, 'model.safetensors'), modelTensors(model), { format: 'pt' });
      saveSafetensors(join(tmp, 'optimizer.safetensors'), optimizer.momentTensors(), { step: String(optimizer.step) });
    }
    const full: CheckpointState = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...state };
    writeFileDurable(join(tmp, 'state.json'), [Buffer.from(JSON.stringify(full, null, 2) + '\n')]);
    fsyncDirectory(tmp);
    if (existsSync(dir)) {
      const old = `${tmp}.old`;
      renameSync(dir, old);
      renameSync(tmp, dir); // (a kill between the renames leaves both saves complete: recoverCheckpoint)
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
    fsyncDirectory(dirname(dir));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  // what saves killed before they finished left behind (each as large as a checkpoint)
  for (const s of pendingSaves(dir)) if (!processAlive(s.pid)) rmSync(s.path, { recursive: true, force: true });
}

const CHECKPOINT_FILES = [...TENSOR_FILES, 'state.json'];

/**
 * A save replaces what is at `dir` as a whole: only nothing, an empty directory or a checkpoint
 * (its files and nothing else, or a state.json of this format) is replaced — never a file or a
 * directory of something else that a mistyped path names.
 */
function checkSaveTarget(dir: string): void {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error(`saveCheckpoint: ${dir} is a file, not a checkpoint directory: it is left as it is`);
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (entries.every((f) => CHECKPOINT_FILES.includes(f))) return;
  let format: unknown;
  try {
    format = (JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { format?: unknown }).format;
  } catch {
    format = undefined;
  }
  if (format !== CHECKPOINT_FORMAT)
    throw new Error(
      `saveCheckpoint: ${dir} holds files that are not a checkpoint's (${entries
        .filter((f) => !CHECKPOINT_FILES.includes(f))
        .slice(0, 3)
        .join(', ')}): a save replaces its directory as a whole, so it is left as it is; choose another path`,
    );
}

/** A hard link where the file system makes one (the same device), else a flushed copy. */
function linkOrCopy(src: string, dst: string): void {
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
    const fd = openSync(dst, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** The temporary directories saveCheckpoint(dir) writes (and the .old it moves the previous save to), with their writer's pid. */
function pendingSaves(dir: string): { path: string; pid: number }[] {
  const parent = dirname(dir);
  if (!existsSync(parent)) return [];
  const prefix = `.${basename(dir)}.tmp-`;
  return readdirSync(parent)
    .filter((f) => f.startsWith(prefix))
    .map((f) => ({ path: join(parent, f), pid: Number(f.slice(prefix.length).split('-')[0]) }));
}

/**
 * Puts a checkpoint back that a kill between saveCheckpoint's two renames left without its
 * directory: of the complete saves beside it (the new one under its temporary name, the previous
 * one as .old), the one at the latest step is renamed into place. Returns whether one was.
 */
export function recoverCheckpoint(dir: string): boolean {
  if (existsSync(dir)) return false;
  // a writer that is alive is between its renames this instant: its save lands in a moment, and
  // taking it here would make its second rename fail (our own pid's saves are an earlier process's:
  // this one saves synchronously, never while it reads)
  const writing = () => pendingSaves(dir).some((s) => s.pid !== process.pid && processAlive(s.pid));
  const deadline = Date.now() + 10_000;
  while (!existsSync(dir) && writing() && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  if (existsSync(dir) || writing()) return false;
  let best: { path: string; step: number } | null = null;
  for (const { path } of pendingSaves(dir)) {
    if (!CHECKPOINT_FILES.every((f) => existsSync(join(path, f)))) continue;
    let step: number;
    try {
      step = (JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as { step: number }).step;
    } catch {
      continue; // a save cut short while writing state.json
    }
    if (Number.isFinite(step) && (best === null || step > best.step)) best = { path, step };
  }
  if (best === null) return false;
  try {
    renameSync(best.path, dir);
  } catch (e) {
    // another reader put it back first (the ranks of a data-parallel job all look)
    if (existsSync(dir)) return true;
    throw e;
  }
  process.stderr.write(`staged-lm: ${dir} was missing (a save was cut short): recovered the complete save of step ${best.step}\n`);
  return true;
}

export interface LoadedCheckpoint {
  config: GPTConfig;
  state: CheckpointState;
  params: Record<string, Tensor>;
  moments: Record<string, Tensor> | null;
}

/** Why `dir` has no file `f`: there is no such directory, or it is not a checkpoint. */
function missingFile(dir: string, f: string): string {
  if (!existsSync(dir)) return `${dir}: no such checkpoint or run directory`;
  return `${dir} is not a staged-lm checkpoint: ${f} is missing`;
}

function readJsonFile(dir: string, f: string): Record<string, unknown> {
  const p = join(dir, f);
  if (!existsSync(p)) throw new Error(missingFile(dir, f));
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new Error(`${p}: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error(
      `${p}: not a staged-lm checkpoint's ${f} (a JSON object is expected, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})`,
    );
  return value as Record<string, unknown>;
}

// the fields of state.json every reader relies on (the trainer checks its own `extra` records)
const RngStateShape = z.object({ cpu: z.string(), cuda: z.string().optional() });
const StateShape = z.object({
  step: z.number().int().nonnegative(),
  tokens: z.number().nonnegative(),
  flops: z.number().nonnegative(),
  stage: z.number().int().nonnegative(),
  optimizerStep: z.number().int().nonnegative(),
  rng: RngStateShape.extend({ ranks: z.array(RngStateShape).optional() }),
  extra: z.record(z.string(), z.unknown()).optional(), // (the trainer checks its records itself)
});

/** state.json alone (no tensors read), checked for format and version. */
export function readCheckpointState(dir: string): CheckpointState {
  recoverCheckpoint(dir);
  const state = readJsonFile(dir, 'state.json') as unknown as CheckpointState;
  if (state.format !== CHECKPOINT_FORMAT)
    throw new Error(`${join(dir, 'state.json')}: not a staged-lm checkpoint state (format ${String(state.format)})`);
  if (state.version > CHECKPOINT_VERSION)
    throw new Error(
      `${join(dir, 'state.json')}: checkpoint version ${state.version} is newer than this library reads (${CHECKPOINT_VERSION})`,
    );
  const shape = StateShape.safeParse(state);
  if (!shape.success)
    throw new Error(
      `${join(dir, 'state.json')}: a damaged or edited checkpoint state (${shape.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
    );
  return state;
}

/**
 * A checkpoint directory, or a run directory standing for its checkpoint/ (as loadWeights and the
 * commands take it), whose save cut short between two renames is put back first. A checkpoint/
 * that lacks files is still the one meant: what it lacks is named there.
 */
export function checkpointDir(dir: string): string {
  if (existsSync(join(dir, 'config.json'))) return dir;
  const inner = join(dir, 'checkpoint');
  return isDirectory(inner) || recoverCheckpoint(inner) ? inner : dir;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Reads a checkpoint directory; every problem is reported with the path at fault. */
export function loadCheckpoint(dir: string, device: Device = 'cpu', opts: { optimizer?: boolean } = {}): LoadedCheckpoint {
  dir = checkpointDir(dir);
  recoverCheckpoint(dir);
  const need = (f: string) => {
    const p = join(dir, f);
    if (!existsSync(p)) throw new Error(missingFile(dir, f));
    return p;
  };
  let config: GPTConfig;
  try {
    config = fromHfConfig(readJsonFile(dir, 'config.json'));
  } catch (e) {
    const message = (e as Error).message;
    throw message.startsWith(dir) ? e : new Error(`${join(dir, 'config.json')}: ${message}`);
  }
  const state = readCheckpointState(dir);
  const params = loadSafetensors(need('model.safetensors'), device);
  const moments = opts.optimizer === false ? null : loadSafetensors(need('optimizer.safetensors'), device);
  return { config, state, params, moments };
}

/**
 * Copies loaded parameters into a model of the same config; names and shapes must match exactly,
 * and so must dtypes with `exactDtype` (a resumed run's own checkpoint: another dtype there is an
 * edited file, and converting it would not resume the run exactly). Otherwise floating-point
 * weights are converted (a float16 Hugging Face model into a float32 one); integer ones never are.
 * Everything is checked before any parameter changes.
 */
export function loadParameters(model: GPT, params: Record<string, Tensor>, source: string, opts: { exactDtype?: boolean } = {}): void {
  const expected = model.namedParameters();
  const names = new Set(expected.map((p) => p.name));
  for (const n of Object.keys(params)) if (!names.has(n)) throw new Error(`${source}: unexpected tensor '${n}' for this model config`);
  for (const p of expected) {
    const t = params[p.name];
    if (t === undefined) throw new Error(`${source}: missing tensor '${p.name}'`);
    if (t.shape.join() !== p.tensor.shape.join())
      throw new Error(`${source}: tensor '${p.name}' has shape [${t.shape}] but the config needs [${p.tensor.shape}]`);
    if (t.dtype !== p.tensor.dtype && (opts.exactDtype === true || !isFloatingDtype(t.dtype)))
      throw new Error(`${source}: tensor '${p.name}' is ${t.dtype} but the model's is ${p.tensor.dtype}`);
  }
  noGrad(() => {
    for (const p of expected) p.tensor.copy_(params[p.name]);
  });
}
