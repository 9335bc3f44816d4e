import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** Local mode is not a sandbox, but a worker's plain `git` must not land in the orchestrator's repository. */
describe('local workers and the orchestrator’s repository (issue 11)', () => {
  it('a worker’s git, run in its workspace, finds no repository (and so cannot touch the orchestrator’s)', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'probe',
        queue: 'default',
        items: [
          {
            id: 'look',
            executor: 'command',
            // Records the repository git discovers from the workspace, if any.
            inputs: { run: 'git rev-parse --absolute-git-dir > found.txt 2>/dev/null || echo none > found.txt' },
            depends_on: [],
            resourceLocks: ['found.txt'],
          },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(0);
    expect(git(repo, 'show', 'refs/agora/integration/probe-1:found.txt')).toBe('none\n');
  });
});
