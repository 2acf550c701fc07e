// saveCheckpoint from a script: it replaces its directory as a whole, so it refuses a path that holds
// anything but a checkpoint (a file, another directory) and leaves it as it was; it refuses an
// optimizer that is not the model's and a state that is not a checkpoint's.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW, GPT, loadCheckpoint, manualSeed, parseGPTConfig, saveCheckpoint } from '../../lib';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-ckpt-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const state = { library: 'test', step: 3, tokens: 48, flops: 0, stage: 0, optimizerStep: 3, rng: { cpu: '' }, extra: {} };
const small = (nEmbd = 16) => new GPT(parseGPTConfig({ nLayer: 1, nHead: 2, nEmbd, contextLength: 8, vocabSize: 64 }));

describe('saveCheckpoint', () => {
  it('writes a new checkpoint, and replaces one (an empty directory too)', () => {
    manualSeed(1);
    const model = small();
    const opt = new AdamW(model.namedParameters());
    const path = join(dir, 'ckpt');
    saveCheckpoint(path, model, opt, state);
    saveCheckpoint(path, model, opt, { ...state, step: 4 });
    expect(loadCheckpoint(path, 'cpu', { optimizer: false }).state.step).toBe(4);
    // a run directory stands for its checkpoint/
    saveCheckpoint(join(dir, 'run', 'checkpoint'), model, opt, { ...state, step: 5 });
    expect(loadCheckpoint(join(dir, 'run'), 'cpu', { optimizer: false }).state.step).toBe(5);
    mkdirSync(join(dir, 'empty'));
    saveCheckpoint(join(dir, 'empty'), model, opt, state);
    expect(readdirSync(join(dir, 'empty')).sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'state.json']);
    model.dispose();
    opt.dispose();
  });

  it("loadCheckpoint names config.json where its Hugging Face fields are not its staged_lm block's, and a run's checkpoint/ that lacks it", () => {
    const model = small();
    const opt = new AdamW(model.namedParameters());
    const path = join(dir, 'run', 'checkpoint');
    saveCheckpoint(path, model, opt, state);
    const config = JSON.parse(readFileSync(join(path, 'config.json'), 'utf8')) as Record<string, unknown>;
    // (loaded here as 16 wide, by transformers as 32)
    writeFileSync(join(path, 'config.json'), JSON.stringify({ ...config, n_embd: 32 }));
    expect(() => loadCheckpoint(path)).toThrow(
      /checkpoint.config\.json: n_embd 32 is not its staged_lm block's \(16\): an edited config, which Hugging Face would read as another model/,
    );
    // the same model said another way is not an edit: n_inner 4·n_embd for null
    writeFileSync(join(path, 'config.json'), JSON.stringify({ ...config, n_inner: 64 }));
    expect(loadCheckpoint(path, 'cpu', { optimizer: false }).config.mlpWidth).toBe(64);
    writeFileSync(join(path, 'config.json'), JSON.stringify({ ...config, staged_lm: { ...(config.staged_lm as object), nHead: 0 } }));
    expect(() => loadCheckpoint(path)).toThrow(/checkpoint.config\.json: invalid model config: staged_lm\.nHead: /);
    // the run directory names its checkpoint/, not itself, as lacking config.json
    rmSync(join(path, 'config.json'));
    expect(() => loadCheckpoint(join(dir, 'run'))).toThrow(/run.checkpoint is not a staged-lm checkpoint: config\.json is missing/);
    model.dispose();
    opt.dispose();
  });

  it('leaves a file, or a directory of something else, as it was', () => {
    const model = small();
    const opt = new AdamW(model.namedParameters());
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'mine');
    expect(() => saveCheckpoint(file, model, opt, state)).toThrow(/saveCheckpoint: .*notes\.txt is a file, not a checkpoint directory/);
    expect(readFileSync(file, 'utf8')).toBe('mine');
    const project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'main.ts'), 'code');
    writeFileSync(join(project, 'state.json'), '{"format": "something else"}');
    expect(() => saveCheckpoint(project, model, opt, state)).toThrow(
      /saveCheckpoint: .*project holds files that are not a checkpoint's \(main\.ts\): a save replaces its directory as a whole/,
    );
    expect(readdirSync(project).sort()).toEqual(['main.ts', 'state.json']);
    // nothing left beside it either (no temporary directory)
    expect(readdirSync(dir).sort()).toEqual(['notes.txt', 'project']);
    model.dispose();
    opt.dispose();
  });

  it("refuses another model's optimizer and a state that is not a checkpoint's", () => {
    const model = small();
    const other = small(32);
    const theirs = new AdamW(other.namedParameters());
    const part = new AdamW(model.namedParameters().slice(1));
    const path = join(dir, 'ckpt');
    expect(() => saveCheckpoint(path, model, theirs, state)).toThrow(/saveCheckpoint: the optimizer is not this model's/);
    expect(() => saveCheckpoint(path, model, part, state)).toThrow(
      /the optimizer is not this model's \(it updates \d+ parameters, the model has \d+\)/,
    );
    const own = new AdamW(model.namedParameters());
    expect(() => saveCheckpoint(path, model, own, {} as typeof state)).toThrow(/saveCheckpoint: state is not a checkpoint state \(step: /);
    expect(readdirSync(dir)).toEqual([]);
    for (const o of [theirs, part, own]) o.dispose();
    model.dispose();
    other.dispose();
  });
});
