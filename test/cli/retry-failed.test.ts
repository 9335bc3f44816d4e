import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { agora, cleanupTempDirs, git, makeRepo, startServe } from '../support/repo.js';
import { eventually } from '../support/eventually.js';

const servers: ChildProcess[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
});
afterAll(cleanupTempDirs);

interface Status {
  status: string;
  items: Array<{ id: string; status: string; attempts: number }>;
}

async function status(repo: string, runId: string): Promise<Status> {
  return JSON.parse((await agora(repo, ['orch', 'status', runId])).stdout) as Status;
}

/** A command that fails the first time it runs (leaving the marker) and succeeds after. */
function failsOnce(marker: string, out: string): string {
  return `test -f ${marker} || { touch ${marker}; echo 'first time fails' >&2; exit 1; }; echo ok > ${out}`;
}

describe('agora orch retry --failed', () => {
  it('reopens every failed item and its skipped dependents in one state commit, extends the same run and its audit log', async () => {
    const marker = `/tmp/agora-retry-failed-${process.pid}-${Date.now()}`;
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'two-flaky',
        queue: 'default',
        items: [
          { id: 'a', executor: 'command', inputs: { run: failsOnce(`${marker}-a`, 'a.txt') }, depends_on: [], resourceLocks: ['a.txt'] },
          { id: 'b', executor: 'command', inputs: { run: failsOnce(`${marker}-b`, 'b.txt') }, depends_on: [], resourceLocks: ['b.txt'] },
          { id: 'after-a', executor: 'command', inputs: { run: 'echo ok > c.txt' }, depends_on: ['a'], resourceLocks: ['c.txt'] },
          { id: 'steady', executor: 'command', inputs: { run: 'echo ok > d.txt' }, depends_on: [], resourceLocks: ['d.txt'] },
        ],
      }),
    });
    const run = 'two-flaky-1';
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(1);
    const ended = await status(repo, run);
    expect(ended.status).toBe('failed');
    expect(ended.items.map((i) => [i.id, i.status])).toEqual([
      ['a', 'failed'],
      ['b', 'failed'],
      ['after-a', 'skipped'],
      ['steady', 'done'],
    ]);
    const anchorBefore = git(repo, 'rev-parse', `refs/agora/anchors/${run}`).trim();
    const commitsBefore = Number(git(repo, 'rev-list', '--count', `refs/agora/runs/${run}`).trim());

    // Usage: an item and --failed together, or neither, is refused (exit 2, bad usage) and changes nothing.
    for (const args of [['a', '--failed'], []]) {
      const bad = await agora(repo, ['orch', 'retry', run, ...args]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--failed');
    }
    expect(Number(git(repo, 'rev-list', '--count', `refs/agora/runs/${run}`).trim())).toBe(commitsBefore);

    const retry = await agora(repo, ['orch', 'retry', run, '--failed', '--reason', 'flaky network']);
    expect(retry.stderr).toBe('');
    expect(retry.stdout).toContain(`${run}: 2 failed items will run again (3 reopened in all)`);
    expect(retry.code).toBe(0);
    // One step: one state commit, the run running again, the three items reopened, the done one untouched.
    expect(Number(git(repo, 'rev-list', '--count', `refs/agora/runs/${run}`).trim())).toBe(commitsBefore + 1);
    const entries = git(repo, 'show', `refs/agora/runs/${run}:entries.jsonl`)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { kind: string; itemId?: string; from: string; to: string; reason?: string });
    expect(entries.map((e) => [e.kind, e.itemId ?? null, e.from, e.to])).toEqual([
      ['run', null, 'failed', 'running'],
      ['item', 'a', 'failed', 'pending'],
      ['item', 'b', 'failed', 'pending'],
      ['item', 'after-a', 'skipped', 'pending'],
      ['item', 'a', 'pending', 'ready'],
      ['item', 'b', 'pending', 'ready'],
    ]);
    expect(entries.filter((e) => e.to !== 'ready').every((e) => e.reason?.includes('flaky network'))).toBe(true);

    // Nothing failed any more: a second --failed says so and exits 1.
    const again = await agora(repo, ['orch', 'retry', run, '--failed']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`run ${run} is running and has no failed item to retry`);

    const serve = startServe(repo);
    servers.push(serve);
    const done = await eventually('the retried run to finish', async () => {
      const s = await status(repo, run);
      return s.status !== 'running' ? s : undefined;
    });
    expect(done.status).toBe('done');
    expect(done.items.map((i) => [i.id, i.status, i.attempts])).toEqual([
      ['a', 'done', 2],
      ['b', 'done', 2],
      ['after-a', 'done', 1],
      ['steady', 'done', 1],
    ]);
    // The anchor moved forward: the new anchor commit has the old one as its parent, and the log verifies.
    const anchorAfter = await eventually('the new anchor', () => {
      const now = git(repo, 'rev-parse', `refs/agora/anchors/${run}`).trim();
      return now !== anchorBefore ? now : undefined;
    });
    expect(git(repo, 'rev-parse', `${anchorAfter}^`).trim()).toBe(anchorBefore);
    const audit = await agora(repo, ['orch', 'audit', run]);
    expect(audit.stdout + audit.stderr).not.toContain('FAIL');
    expect(audit.code).toBe(0);
  });
});
