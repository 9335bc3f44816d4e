import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

interface Status {
  status: string;
  reason?: string;
  items: Array<{ id: string; status: string; reason?: string }>;
}

async function status(repo: string, runId: string): Promise<Status> {
  return JSON.parse((await agora(repo, ['orch', 'status', runId])).stdout) as Status;
}

const cmd = (id: string, run: string, extra: Record<string, unknown> = {}) => ({
  id,
  executor: 'command',
  inputs: { run },
  depends_on: [],
  resourceLocks: [],
  ...extra,
});

describe('agora orch run: deadlines and items that run whatever happens', () => {
  it('the run deadline stops a worker that would run ten minutes, cancels what waits, and still runs the if-always report', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'dl',
        queue: 'default',
        timeoutSeconds: 3,
        items: [
          cmd('slow', 'sleep 600'),
          cmd('after', 'true', { depends_on: ['slow'] }),
          cmd('report', 'echo ran > report.txt', { depends_on: ['slow', 'after'], resourceLocks: ['report.txt'], if: 'always' }),
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(1);
    const deadline = "the run's deadline passed (timeoutSeconds 3s after it was accepted)";
    expect(r.stderr).toContain(`run dl-1: failed — ${deadline}`);
    const s = await status(repo, 'dl-1');
    const byId = Object.fromEntries(s.items.map((i) => [i.id, i]));
    // On a loaded machine the worker may not have started before the deadline: then it is cancelled.
    expect(['failed', 'cancelled']).toContain(byId.slow!.status);
    expect(byId.slow!.reason).toBe(deadline);
    expect(byId.after).toMatchObject({ status: 'cancelled', reason: deadline });
    expect(byId.report!.status).toBe('done');
    expect(git(repo, 'show', 'refs/agora/integration/dl-1:report.txt').trim()).toBe('ran');
    expect((await agora(repo, ['orch', 'audit', 'dl-1'])).code).toBe(0);
  });

  it('continue_on_error lets dependents run and the run is done, naming the allowed failure; its audit verifies', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'coe',
        queue: 'default',
        items: [
          cmd('lint', 'echo "style: 3 warnings" >&2; exit 1', { continue_on_error: true }),
          cmd('build', 'echo built > out.txt', { depends_on: ['lint'], resourceLocks: ['out.txt'] }),
          cmd('notify', 'true', { depends_on: ['build'], if: 'always' }),
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.stderr).toContain('run coe-1: done — failures allowed by continue_on_error: lint');
    expect(r.code).toBe(0);
    const s = await status(repo, 'coe-1');
    expect(s.items.map((i) => [i.id, i.status])).toEqual([
      ['lint', 'failed'],
      ['build', 'done'],
      ['notify', 'done'],
    ]);
    const audit = await agora(repo, ['orch', 'audit', 'coe-1']);
    expect(audit.stdout + audit.stderr).not.toContain('FAIL');
    expect(audit.code).toBe(0);
  });
});
