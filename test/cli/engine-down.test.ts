import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe, tempDir } from '../support/repo.js';

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

  it('does not stop a serve restarted with a docker item running: the attempt counts as lost, with a warning', async () => {
    const config = `export const orch = { subagents: { box: { target: 'docker', command: ['sh', '-c', 'echo hi > a.txt'], docker: { image: 'busybox' } } } };\n`;
    const plan = {
      id: 'dk',
      queue: 'default',
      items: [{ id: 'a', executor: 'dispatch', inputs: { subagent: 'box' }, depends_on: [], resourceLocks: ['a.txt'] }],
    };
    const repo = makeRepo({ 'agora.config.mjs': config, 'plan.json': JSON.stringify(plan) });
    const env = { DOCKER_HOST: `unix://${tempDir('agora-no-engine-')}/docker.sock` };
    // The first serve dies right after it committed the item's start, as a crash would.
    expect((await agora(repo, ['orch', 'run', 'plan.json'], { ...env, AGORA_CRASH_AT: 'state-committed:1' })).code).not.toBe(0);
    const item = async () =>
      (JSON.parse((await agora(repo, ['orch', 'status', 'dk-1'], env)).stdout) as { items: Array<{ status: string; attempts: number }> }).items[0]!;
    expect(await item()).toMatchObject({ status: 'running', attempts: 1 });

    // The engine is still down when the next serve starts: it serves, and says why the attempt is lost.
    const serve = startServe(repo, env);
    try {
      await eventually('the lost attempt to be recorded and run again', async () => ((await item()).attempts >= 2 ? true : undefined));
      expect(serve.exitCode).toBeNull();
      expect(serve.output()).toContain('dk-1: warning: a: the worker could not be looked for after a restart of agora serve: docker engine unreachable');
      expect(serve.output()).not.toContain('internal error');
    } finally {
      serve.kill('SIGKILL');
      await exited(serve);
    }
  });
});
