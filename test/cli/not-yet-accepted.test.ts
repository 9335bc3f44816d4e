import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'later',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
});

/** The verbs that need a run's state, each with what it is given besides the run id. */
const VERBS: Array<[string, string[]]> = [
  ['logs', ['a']],
  ['report', []],
  ['retry', ['a']],
  ['audit', []],
];

describe('a run submitted and not yet accepted by serve', () => {
  it('logs, report, retry and audit say it waits for `agora orch serve`, as status does, instead of "no run"', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const submitted = await agora(repo, ['orch', 'submit', 'plan.json']);
    expect(submitted.stdout.trim()).toBe('later-1');
    expect(JSON.parse((await agora(repo, ['orch', 'status', 'later-1'])).stdout)).toMatchObject({ status: 'submitted' });
    for (const [verb, rest] of VERBS) {
      const r = await agora(repo, ['orch', verb, 'later-1', ...rest]);
      expect({ verb, code: r.code, stderr: r.stderr }).toEqual({
        verb,
        code: 1,
        stderr:
          'agora: run later-1 is submitted and waits for `agora orch serve` to accept it: it has no state, logs or audit yet\n' +
          'hint: no agora orch serve runs for this repository: start one (`agora orch serve`), then ask again\n',
      });
    }
    // Nothing was written: the submission is still in the inbox, and no report file was made.
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('refs/agora/inbox/later-1');
    expect(git(repo, 'status', '--porcelain').trim()).toBe('');
  });

  it('a rejected submission is refused with its problems, not as "no run"', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const blob = (text: string) => execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: text, encoding: 'utf8' }).trim();
    const errors = JSON.stringify({ problems: [{ path: '$.items[0].executor', message: 'unknown executor "teleport"' }] });
    const tree = execFileSync('git', ['mktree'], {
      cwd: repo,
      input: `100644 blob ${blob(PLAN)}\tplan.json\n100644 blob ${blob(errors)}\terrors.json\n`,
      encoding: 'utf8',
    }).trim();
    git(repo, 'update-ref', 'refs/agora/rejected/later-1', git(repo, 'commit-tree', tree, '-m', 'rejected').trim());
    for (const [verb, rest] of VERBS) {
      const r = await agora(repo, ['orch', verb, 'later-1', ...rest]);
      expect({ verb, code: r.code }).toEqual({ verb, code: 1 });
      expect(r.stderr).toContain('agora: run later-1 was rejected by serve: 1 problem\n  $.items[0].executor: unknown executor "teleport"\n');
      expect(r.stderr).toContain('hint: fix the plan and submit it again');
    }
  });

  it('cancel withdraws it and removes its secret parameters from this host', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const storeDir = join(repo, '.git', 'agora', 'params');
    expect((await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', 'token=a-withdrawn-secret-value'])).stdout.trim()).toBe('later-1');
    const stores = readdirSync(storeDir);
    expect(stores).toHaveLength(1);
    const cancelled = await agora(repo, ['orch', 'cancel', 'later-1']);
    expect({ code: cancelled.code, stdout: cancelled.stdout.trim() }).toEqual({ code: 0, stdout: 'later-1: withdrawn before it was accepted' });
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('');
    expect(existsSync(join(storeDir, stores[0]!))).toBe(false);
  });
});
