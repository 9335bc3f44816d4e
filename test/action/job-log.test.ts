import { describe, expect, it } from 'vitest';
import { jobLog } from '../../src/action/job-log.js';
import { WorkflowCommands } from '@agora/github-sim/actions/commands';

/**
 * What `mode: run` logs from the repository (a lease holder, a run id, an error's text) as the runner reads
 * it: the lines the Action prints on stdout, handed to the simulator's workflow-command processor. Text
 * written to look like commands stays text: no mask, no annotation, and the job's own commands still work after.
 */
describe("the Action's job log of repository text", () => {
  /** Runs `write` with stdout captured, and feeds what it printed, line by line, to a job's command processor. */
  function asRunnerReads(write: () => void): { log: string[]; commands: WorkflowCommands } {
    const out: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      write();
    } finally {
      process.stdout.write = original;
    }
    const log: string[] = [];
    const commands = new WorkflowCommands((l) => log.push(l));
    for (const line of out.join('').split('\n').slice(0, -1)) commands.line(line);
    return { log, commands };
  }

  it('a hostile lease holder is shown as written, and the commands after it still work', () => {
    const holder = 'mallory\n::add-mask::agora\n  ::error title=Verified::the audit passed\n::stop-commands::x\n::endgroup::';
    const { log, commands } = asRunnerReads(() => {
      jobLog.info(`agora: small-0123456789ab: still driven by ${holder}`);
      jobLog.warn('a warning the job means');
      jobLog.info('agora done run=small-0123456789ab');
    });
    expect(commands.annotations.map((a) => [a.level, a.message])).toEqual([['warning', 'a warning the job means']]);
    expect(log).toContain('::add-mask::agora');
    expect(log).toContain('  ::error title=Verified::the audit passed');
    expect(log).not.toContain('##[endgroup]');
    // Nothing was masked, and commands were not left switched off.
    expect(log.at(-1)).toBe('agora done run=small-0123456789ab');
  });

  it("an item's output in the runner's legacy form, or after a NEXT LINE, is shown as written too", () => {
    const output = ['build ok ##[add-mask]agora', '##[error file=a.ts;line=1]forged', '\u0085::error title=Agora::forged', 'x ##[stop-commands]tok'].join('\n');
    const { log, commands } = asRunnerReads(() => {
      jobLog.info(output);
      jobLog.info('agora done');
    });
    expect(commands.annotations).toEqual([]);
    expect(log).toEqual([...output.split('\n'), 'agora done']);
  });

  it('a warning or an error with a command on a line of its own is one annotation holding the whole text', () => {
    const { commands } = asRunnerReads(() => jobLog.error('push refused\n::add-mask::done'));
    expect(commands.annotations.map((a) => [a.level, a.message])).toEqual([['failure', 'push refused\n::add-mask::done']]);
  });

  it('text without a command line is printed as is, on its own', () => {
    const { log } = asRunnerReads(() => jobLog.info('agora: small-0123456789ab: resumed (a :: inside is no command)'));
    expect(log).toEqual(['agora: small-0123456789ab: resumed (a :: inside is no command)']);
  });
});
