import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe } from '../support/repo.js';
import { eventually } from '../support/eventually.js';
import { isGone, parentOf } from '../support/process.js';
import { workerGate } from '../support/gate.js';

const servers: ChildProcess[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
});
afterAll(cleanupTempDirs);

interface Status {
  status: string;
  items: Array<{ id: string; status: string; attempts: number; reason?: string }>;
}

async function status(repo: string, runId: string): Promise<Status | undefined> {
  const r = await agora(repo, ['orch', 'status', runId]);
  if (r.code !== 0) return undefined;
  const s = JSON.parse(r.stdout) as Status & { status: string };
  return s.items ? s : undefined;
}

function itemOf(s: Status, id: string) {
  return s.items.find((i) => i.id === id)!;
}

function plan(id: string, items: unknown[]): string {
  return JSON.stringify({ id, queue: 'default', items });
}

describe('agora orch serve', () => {
  it('resumes after SIGKILL: finished items are not rerun, the running one runs again as a new attempt, nothing is lost', async () => {
    const marker = `/tmp/agora-slow-${process.pid}-${Date.now()}`;
    const gate = workerGate(); // slow runs until the first serve is dead
    const repo = makeRepo({
      'plan.json': plan('crash', [
        { id: 'quick', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] },
        {
          id: 'slow',
          executor: 'command',
          inputs: { run: `echo $$ > ${marker}.$AGORA_ATTEMPT; ${gate.wait}; echo b > b.txt` },
          depends_on: [],
          resourceLocks: ['b.txt'],
        },
        { id: 'after', executor: 'command', inputs: { run: 'cat a.txt b.txt > c.txt' }, depends_on: ['quick', 'slow'], resourceLocks: ['c.txt'] },
      ]),
    });
    const first = startServe(repo);
    servers.push(first);
    const submitted = await agora(repo, ['orch', 'submit', 'plan.json']);
    expect(submitted.stdout.trim()).toBe('crash-1');
    await eventually('quick done and slow running', async () => {
      const s = await status(repo, 'crash-1');
      return s && itemOf(s, 'quick').status === 'done' && itemOf(s, 'slow').status === 'running';
    });
    await eventually('the slow worker to start', () => {
      try {
        return Number(readFileSync(`${marker}.1`, 'utf8')) || undefined;
      } catch {
        return undefined;
      }
    });
    const oldWorker = Number(readFileSync(`${marker}.1`, 'utf8'));
    first.kill('SIGKILL');
    await exited(first);
    await gate.open();

    const second = startServe(repo);
    servers.push(second);
    const final = await eventually('the run to finish after the restart', async () => {
      const s = await status(repo, 'crash-1');
      return s && s.status !== 'running' ? s : undefined;
    });
    expect(final.status).toBe('done');
    expect(itemOf(final, 'quick').attempts).toBe(1);
    expect(itemOf(final, 'slow').attempts).toBe(2);
    expect(itemOf(final, 'after').attempts).toBe(1);
    expect(isGone(oldWorker)).toBe(true); // the orphan of the killed serve was reaped
    const head = git(repo, 'rev-parse', 'refs/agora/integration/crash-1').trim();
    expect(git(repo, 'show', `${head}:c.txt`)).toBe('a\nb\n');
    // The audit log runs on without a gap, and records the lost attempt.
    const seqs: number[] = [];
    const lost: string[] = [];
    for (const commit of git(repo, 'rev-list', '--reverse', 'refs/agora/runs/crash-1').trim().split('\n')) {
      for (const line of git(repo, 'show', `${commit}:entries.jsonl`).split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as { seq: number; itemId?: string; reason?: string; from: string; to: string };
        seqs.push(e.seq);
        if (e.itemId === 'slow' && e.from === 'running' && e.to === 'ready') lost.push(e.reason ?? '');
      }
    }
    expect(seqs).toEqual(seqs.map((_, i) => i));
    expect(lost).toEqual(['attempt 1 lost: the worker did not survive a restart of agora serve; running it again']);
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
  });

  it("`orch run` between a killed serve and its restart kills that serve's local workers, which nobody can collect; the restart runs the item again", async () => {
    const marker = `/tmp/agora-orphan-${process.pid}-${Date.now()}`;
    const gate = workerGate(); // slow runs until the test lets it
    const repo = makeRepo({
      'plan.json': plan('kept', [
        {
          id: 'slow',
          executor: 'command',
          inputs: { run: `echo $$ > ${marker}.$AGORA_ATTEMPT; ${gate.wait}; echo b > b.txt` },
          depends_on: [],
          resourceLocks: ['b.txt'],
        },
      ]),
      'other.json': plan('other', [{ id: 'q', executor: 'command', inputs: { run: 'echo q > q.txt' }, depends_on: [], resourceLocks: ['q.txt'] }]),
    });
    const first = startServe(repo);
    servers.push(first);
    await agora(repo, ['orch', 'submit', 'plan.json']);
    const worker = await eventually('the slow worker to start', () => {
      try {
        return Number(readFileSync(`${marker}.1`, 'utf8')) || undefined;
      } catch {
        return undefined;
      }
    });
    // Killed with its launcher, as a kill of the whole process tree does: the worker (a session of its
    // own) outlives both, and only its pidfile says whose it is. Stopped first, the serve cannot see
    // the launcher go and record the attempt's end. The worker can be running before the serve has
    // written its pidfile (a busy machine): the kill comes once it is there.
    await eventually('the slow worker’s pidfile', () => existsSync(join(repo, '.git', 'agora', 'pids', 'kept-1', 'slow.1.pid')) || undefined);
    const launcher = parentOf(worker);
    expect(parentOf(launcher)).toBe(first.pid);
    first.kill('SIGSTOP');
    process.kill(launcher, 'SIGKILL');
    first.kill('SIGKILL');
    await exited(first);
    await eventually('the launcher to be gone', () => isGone(launcher) || undefined);
    expect(isGone(worker)).toBe(false);

    const other = await agora(repo, ['orch', 'run', 'other.json']);
    expect(other.code).toBe(0);
    // A local worker is never re-attached (its output went to the dead launcher): the restart would
    // kill it anyway, and left running it could write into a workspace of this run's pool. (Killed by
    // `run`'s start; on a busy machine it may take a moment to be gone after the signal.)
    await eventually('the orphaned worker to be killed by run', () => isGone(worker) || undefined);
    expect(itemOf((await status(repo, 'kept-1'))!, 'slow')).toMatchObject({ status: 'running', attempts: 1 }); // not driven by `run`

    await gate.open();
    const second = startServe(repo);
    servers.push(second);
    const final = await eventually('the run to finish after the restart', async () => {
      const s = await status(repo, 'kept-1');
      return s && s.status !== 'running' ? s : undefined;
    });
    expect(final.status).toBe('done');
    expect(itemOf(final, 'slow').attempts).toBe(2);
    expect(itemOf(final, 'slow').reason).toBeUndefined();
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
    await gate.remove();
  });

  it('refuses a second serve on the same repository, naming the first', async () => {
    const repo = makeRepo({});
    const first = startServe(repo);
    servers.push(first);
    await eventually('serve to start', () => first.output().includes('serving') || undefined);
    const second = await agora(repo, ['orch', 'serve']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another agora serve (pid ${first.pid}`);
    expect(second.stderr).toContain('hint:');
    expect(second.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('cancel stops a running worker and ends the run cancelled; watch follows it to the end', async () => {
    const marker = `/tmp/agora-cancel-${process.pid}-${Date.now()}`;
    const repo = makeRepo({
      'plan.json': plan('long', [
        { id: 'forever', executor: 'command', inputs: { run: `echo $$ > ${marker}; sleep 300` }, depends_on: [], resourceLocks: [] },
        { id: 'then', executor: 'command', inputs: { run: 'true' }, depends_on: ['forever'], resourceLocks: [] },
      ]),
    });
    const serve = startServe(repo);
    servers.push(serve);
    await agora(repo, ['orch', 'submit', 'plan.json']);
    const watching = agora(repo, ['orch', 'watch', 'long-1']);
    await eventually('the worker to start', () => {
      try {
        return Number(readFileSync(marker, 'utf8')) || undefined;
      } catch {
        return undefined;
      }
    });
    const pid = Number(readFileSync(marker, 'utf8'));
    const cancel = await agora(repo, ['orch', 'cancel', 'long-1', '--reason', 'changed my mind']);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain('long-1: cancelled');
    const watched = await watching;
    expect(watched.code).toBe(1);
    const lines = watched.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string; items: Record<string, string> });
    expect(lines[lines.length - 1]).toMatchObject({ status: 'cancelled', items: { forever: 'cancelled', then: 'cancelled' } });
    await eventually('the worker to be killed', () => isGone(pid) || undefined, { within: 15_000 });
    const s = (await status(repo, 'long-1'))!;
    expect(itemOf(s, 'forever').reason).toBe('run cancelled: changed my mind');
    // Cancelling again is harmless.
    expect((await agora(repo, ['orch', 'cancel', 'long-1'])).stdout).toContain('already cancelled');
  });

  it('SIGTERM stops the workers, records them as interrupted and exits cleanly; the next serve finishes the run', async () => {
    const gate = workerGate(); // nap runs until the first serve has stopped
    const repo = makeRepo({
      'plan.json': plan('term', [
        { id: 'nap', executor: 'command', inputs: { run: `${gate.wait}; echo done > nap.txt` }, depends_on: [], resourceLocks: ['nap.txt'] },
      ]),
    });
    const serve = startServe(repo);
    servers.push(serve);
    await agora(repo, ['orch', 'submit', 'plan.json']);
    await eventually('nap running', async () => {
      const s = await status(repo, 'term-1');
      return s && itemOf(s, 'nap').status === 'running';
    });
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    const s = (await status(repo, 'term-1'))!;
    expect(itemOf(s, 'nap')).toMatchObject({ status: 'ready', attempts: 1 });
    expect(itemOf(s, 'nap').reason).toContain('agora serve stopped (SIGTERM)');
    await gate.open();
    const again = startServe(repo);
    servers.push(again);
    const done = await eventually('term-1 done', async () => {
      const x = await status(repo, 'term-1');
      return x && x.status === 'done' ? x : undefined;
    });
    expect(itemOf(done, 'nap').attempts).toBe(2);
  });

  it('records an invalid submission as rejected with its problems', async () => {
    // Valid for the config submit was given, but serve runs with no config: no such subagent there.
    const repo = makeRepo({
      'plan.json': plan('rej', [{ id: 'x', executor: 'dispatch', inputs: { subagent: 'ghost' }, depends_on: [], resourceLocks: [] }]),
      'submit.config.mjs': "export const orch = { subagents: { ghost: { command: ['true'] } } };\n",
    });
    expect((await agora(repo, ['orch', 'submit', 'plan.json', '--config', 'submit.config.mjs'])).stdout.trim()).toBe('rej-1');
    const serve = startServe(repo);
    servers.push(serve);
    const r = await eventually('rejection', async () => {
      const x = await agora(repo, ['orch', 'status', 'rej-1']);
      return x.stdout.includes('rejected') ? x : undefined;
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('$.items[0].inputs.subagent');
    expect(serve.output()).toContain('rejected rej-1');
  });

  it('retry reruns a failed item and the items skipped because of it; serve picks up the reopened run', async () => {
    const marker = `/tmp/agora-flaky-${process.pid}-${Date.now()}`;
    const repo = makeRepo({
      'plan.json': plan('flaky', [
        {
          id: 'flaky',
          executor: 'command',
          inputs: { run: `test -f ${marker} || { touch ${marker}; echo 'first time fails' >&2; exit 1; }` },
          depends_on: [],
          resourceLocks: [],
        },
        { id: 'next', executor: 'command', inputs: { run: 'echo ok > next.txt' }, depends_on: ['flaky'], resourceLocks: ['next.txt'] },
      ]),
    });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(1);
    expect(itemOf((await status(repo, 'flaky-1'))!, 'next').status).toBe('skipped');
    const refused = await agora(repo, ['orch', 'retry', 'flaky-1', 'next']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('only a failed or cancelled item');
    const retry = await agora(repo, ['orch', 'retry', 'flaky-1', 'flaky']);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toContain('2 items reopened');
    const serve = startServe(repo);
    servers.push(serve);
    const done = await eventually('the retried run to finish', async () => {
      const x = await status(repo, 'flaky-1');
      return x && x.status !== 'running' ? x : undefined;
    });
    expect(done.status).toBe('done');
    expect(itemOf(done, 'flaky').attempts).toBe(2);
    expect(itemOf(done, 'next').status).toBe('done');
  });

  it('keeps serving when whoever read its output goes away (a closed stderr pipe is not fatal)', async () => {
    const repo = makeRepo({
      'plan.json': plan('orphaned', [{ id: 'one', executor: 'command', inputs: { run: 'echo one > one.txt' }, depends_on: [], resourceLocks: ['one.txt'] }]),
    });
    const serve = startServe(repo);
    servers.push(serve);
    await eventually('serve to start', () => serve.output().includes('serving') || undefined);
    // The terminal or log collector that read serve's output is gone: its next writes meet EPIPE.
    serve.stdout!.destroy();
    serve.stderr!.destroy();
    await agora(repo, ['orch', 'submit', 'plan.json']); // serve reports accepting it, and each transition, to its stderr
    const done = await eventually('the run to finish', async () => {
      const x = await status(repo, 'orphaned-1');
      return x && x.status !== 'running' ? x : undefined;
    });
    expect(done.status).toBe('done');
    expect(serve.exitCode).toBeNull(); // still serving
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
  });
});
