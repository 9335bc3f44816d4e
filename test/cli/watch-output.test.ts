import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';
import { agoraOnTerminal } from '../support/terminal.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'two',
  queue: 'default',
  items: [
    { id: 'write', executor: 'command', inputs: { run: 'echo hi > out.txt' }, depends_on: [], resourceLocks: ['out.txt'] },
    { id: 'fail', executor: 'command', inputs: { run: 'exit 3' }, depends_on: [], resourceLocks: [] },
  ],
});

describe('watch and run output', () => {
  it('piped: JSON lines, each naming the result of every item that is done, and of the change that made it done', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const run = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(run.code).toBe(1);
    const typo = await agora(repo, ['orch', 'status', 'tow-1']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('agora: no run tow-1 in this repository (did you mean "two-1"?)');
    expect(typo.stderr).toContain('hint: the nearest of its 1 runs: two-1');
    const watched = await agora(repo, ['orch', 'watch', 'two-1']);
    const line = JSON.parse(watched.stdout.trim().split('\n').at(-1)!) as { items: Record<string, string>; resultRefs: Record<string, string> };
    expect(line.items).toEqual({ write: 'done', fail: 'failed' });
    expect(Object.keys(line.resultRefs)).toEqual(['write']);
    expect(line.resultRefs.write).toMatch(/^git:[0-9a-f]{40}$/);

    const runLines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { changes?: Array<{ item?: string; to?: string; resultRef?: string }> });
    const doneChange = runLines.flatMap((l) => l.changes ?? []).find((c) => c.item === 'write' && c.to === 'done');
    expect(doneChange?.resultRef).toBe(line.resultRefs.write);
  });

  it('on a terminal: a finished run watched leaves its table on screen; --json gives JSON lines there', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(1);
    const table = await agoraOnTerminal(repo, ['orch', 'watch', 'two-1']);
    expect(table.code).toBe(1);
    const heading = table.screen.lastIndexOf('two-1  failed  1/2 done, 1 failed');
    expect(heading).toBeGreaterThanOrEqual(0);
    const finalFrame = table.screen.slice(heading);
    expect(finalFrame).toMatch(/✓ write\s+done\s+git:[0-9a-f]{12}/);
    expect(finalFrame).toMatch(/✗ fail\s+failed/);
    // Nothing erases it afterwards (the old watch cleared the table at exit: ESC[2K per line).
    expect(finalFrame).not.toContain('\u001b[2K');

    const json = await agoraOnTerminal(repo, ['orch', 'watch', 'two-1', '--json']);
    const last = json.screen.trim().split(/\r?\n/).at(-1)!;
    expect(JSON.parse(last)).toMatchObject({ runId: 'two-1', status: 'failed' });
  });
});
