// The scaling commands (plan, fit, slope, report) run in-process on a Commander program of their own:
// stdout captured and returned, a command's error thrown.
import { Command } from 'commander';
import { registerFit, registerPlan } from '../../lib/cli/plan';
import { registerReport } from '../../lib/cli/report';
import { registerSlope } from '../../lib/cli/slope';

export async function runScalingCli(args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerPlan(program);
  registerFit(program);
  registerSlope(program);
  registerReport(program);
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    spy.mockRestore();
  }
  return out;
}
