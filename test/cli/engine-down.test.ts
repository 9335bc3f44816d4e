import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

describe('a docker engine that cannot be reached', () => {
  it('does not stop a run of local items: orch run warns that it left the engine alone, and runs the plan', async () => {
    const plan = {
      id: 'here',
      queue: 'default',
      items: [{ id: 'a', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] }],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan) });
    const nowhere = `unix://${tempDir('agora-no-engine-')}/docker.sock`; // DOCKER_HOST set, for other work, with the engine down
    const r = await agora(repo, ['orch', 'run', 'plan.json'], { DOCKER_HOST: nowhere });
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({
      code: 0,
      stderr: expect.stringContaining(`agora: warning: docker engine unreachable at ${nowhere}: `),
    });
    expect(r.stderr).toContain('stays until a serve starts with it reachable');
    expect(r.stderr).not.toContain('internal error');
    expect(git(repo, 'show', 'refs/agora/integration/here-1:a.txt')).toBe('a\n');
  });
});
