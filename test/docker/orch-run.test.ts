import type { ChildProcess } from 'node:child_process';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe } from '../support/repo.js';
import { eventually, scaled } from '../support/eventually.js';
import { BUSYBOX, CONTAINER_GATE_WAIT, DEFAULT_ENGINE, connectEngine, containerGate, managedContainers } from './engine.js';

/** `agora orch run` / `serve` with items on the docker target, against the real engine. */

const docker: Docker | undefined = await connectEngine();
const env = { DOCKER_HOST: process.env.DOCKER_HOST ?? DEFAULT_ENGINE };
const servers: ChildProcess[] = [];
const tag = `${process.pid}${Date.now().toString(36)}`;

afterEach(() => {
  for (const s of servers.splice(0)) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
});
afterAll(cleanupTempDirs);
beforeAll(() => {
  if (!docker) console.warn('docker orch tests skipped');
});

const config = `export const orch = {
  queues: { default: { concurrency: 3 } },
  subagents: {
    write: { target: 'docker', command: ['sh', '-c', 'mkdir -p out && cat > out/$AGORA_ITEM.json'], docker: { image: '${BUSYBOX}' } },
    fan: {
      target: 'docker',
      command: ['sh', '-c', 'mkdir -p out && cat "$AGORA_PARAMS" > out/params.json && cp frag.json "$AGORA_EMIT/items.json"'],
      docker: { image: '${BUSYBOX}' },
    },
    slow: { target: 'docker', command: ['sh', '-c', '${CONTAINER_GATE_WAIT}; echo slow > slow.txt'], docker: { image: '${BUSYBOX}' } },
    token: { target: 'docker', command: ['sh', '-c', 'cat /proc/sys/kernel/random/uuid > token.txt && cat token.txt'], docker: { image: '${BUSYBOX}' } },
  },
};
`;

interface Status {
  status: string;
  items: Array<{ id: string; status: string; attempts: number; reason?: string }>;
}

async function status(repo: string, runId: string): Promise<Status | undefined> {
  const r = await agora(repo, ['orch', 'status', runId], env);
  if (r.code !== 0) return undefined;
  const s = JSON.parse(r.stdout) as Status;
  return s.items ? s : undefined;
}

/** The run's status once it is no longer running (a serve is driving it). */
function finished(repo: string, runId: string): Promise<Status> {
  return eventually(
    'the run to finish',
    async () => {
      const s = await status(repo, runId);
      return s && s.status !== 'running' ? s : undefined;
    },
    { within: 90_000 },
  );
}

describe.skipIf(!docker)('agora orch on the docker target', () => {
  it('fans out container items in parallel, each with its own patch, and leaves no container behind', async () => {
    const planId = `dock${tag}`;
    const items = ['a', 'b', 'c'].map((id) => ({
      id,
      executor: 'dispatch',
      inputs: { subagent: 'write', workerInput: { item: id } },
      depends_on: [],
      resourceLocks: [`out/${id}.json`],
    }));
    const repo = makeRepo({ 'agora.config.mjs': config, 'plan.json': JSON.stringify({ id: planId, queue: 'default', items }) });
    const r = await agora(repo, ['orch', 'run', 'plan.json'], env, scaled(180_000));
    expect(r.stderr).toContain(`run ${planId}-1: done`);
    expect(r.code).toBe(0);
    const head = git(repo, 'rev-parse', `refs/agora/integration/${planId}-1`).trim();
    for (const id of ['a', 'b', 'c']) expect(JSON.parse(git(repo, 'show', `${head}:out/${id}.json`))).toEqual({ item: id });
    // They overlapped in time: every item started before any finished.
    const order: string[] = [];
    for (const commit of git(repo, 'rev-list', '--reverse', `refs/agora/runs/${planId}-1`).trim().split('\n')) {
      for (const line of git(repo, 'show', `${commit}:entries.jsonl`).split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as { kind: string; itemId?: string; to: string };
        if (e.kind === 'item' && (e.to === 'running' || e.to === 'done')) order.push(`${e.to}:${e.itemId}`);
      }
    }
    expect(order).toHaveLength(6); // three starts and three completions were read
    expect(order.slice(0, 3).every((x) => x.startsWith('running:'))).toBe(true);
    expect(await managedContainers(docker!, `${planId}-1`)).toEqual([]);
  });

  it('a container item reads the run parameters and emits an item that joins the run, runs in its own container and lands', async () => {
    const planId = `emit${tag}`;
    const leaf = {
      id: 'leaf',
      executor: 'dispatch',
      inputs: { subagent: 'write', workerInput: { from: 'fan' } },
      depends_on: [],
      resourceLocks: ['out/leaf.json'],
    };
    const repo = makeRepo({
      'agora.config.mjs': config,
      'frag.json': JSON.stringify({ items: [leaf] }),
      'plan.json': JSON.stringify({
        id: planId,
        queue: 'default',
        items: [{ id: 'fan', executor: 'dispatch', inputs: { subagent: 'fan' }, depends_on: [], resourceLocks: ['out/'] }],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json', '--data', 'region=eu', '--data', 'shards=2'], env, scaled(180_000));
    expect(r.stderr).toContain(`run ${planId}-1: done`);
    expect(r.code).toBe(0);
    const s = (await status(repo, `${planId}-1`))!;
    expect(s.items.map((i) => [i.id, i.status])).toEqual([
      ['fan', 'done'],
      ['leaf', 'done'],
    ]);
    const head = `refs/agora/integration/${planId}-1`;
    expect(JSON.parse(git(repo, 'show', `${head}:out/params.json`))).toEqual({ region: 'eu', shards: '2' }); // --data values are strings
    expect(JSON.parse(git(repo, 'show', `${head}:out/leaf.json`))).toEqual({ from: 'fan' });
    // The control files are not part of the emitter's patch.
    expect(git(repo, 'ls-tree', '-r', '--name-only', `refs/agora/patches/${planId}-1/fan`).trim().split('\n')).toEqual([
      'agora.config.mjs',
      'frag.json',
      'out/params.json',
      'plan.json',
    ]);
    expect(await managedContainers(docker!, `${planId}-1`)).toEqual([]);
  });

  it('re-attaches to a container that outlived a killed serve: same attempt, result collected, nothing left', async () => {
    const planId = `reattach${tag}`;
    const repo = makeRepo({
      'agora.config.mjs': config,
      'plan.json': JSON.stringify({
        id: planId,
        queue: 'default',
        items: [{ id: 'long', executor: 'dispatch', inputs: { subagent: 'slow' }, depends_on: [], resourceLocks: ['slow.txt'] }],
      }),
    });
    const runId = `${planId}-1`;
    const first = startServe(repo, env);
    servers.push(first);
    await agora(repo, ['orch', 'submit', 'plan.json'], env);
    await eventually(
      'the container to run',
      async () => {
        const running = await managedContainers(docker!, runId);
        return running.some((c) => c.State === 'running') || undefined;
      },
      { within: 60_000 },
    );
    first.kill('SIGKILL');
    await exited(first);
    expect((await managedContainers(docker!, runId)).length).toBe(1); // it survived the server

    const second = startServe(repo, env);
    servers.push(second);
    await containerGate(docker!, runId).open(); // its work happens only after the first serve is gone
    const done = await finished(repo, runId);
    expect(done.status).toBe('done');
    expect(done.items[0]!.attempts).toBe(1); // re-attached, not run again
    expect(git(repo, 'show', `refs/agora/integration/${runId}:slow.txt`)).toBe('slow\n');
    await eventually('the container to be removed', async () => (await managedContainers(docker!, runId)).length === 0 || undefined, { within: 30_000 });
  });

  it(
    "`orch run` of another plan, between a killed serve and its restart, leaves the killed serve's containers to the restart",
    async () => {
      const planId = `spared${tag}`;
      const runId = `${planId}-1`;
      const repo = makeRepo({
        'agora.config.mjs': config,
        'plan.json': JSON.stringify({
          id: planId,
          queue: 'default',
          items: [{ id: 'long', executor: 'dispatch', inputs: { subagent: 'slow' }, depends_on: [], resourceLocks: ['slow.txt'] }],
        }),
        'other.json': JSON.stringify({
          id: `other${tag}`,
          queue: 'default',
          items: [{ id: 'q', executor: 'command', inputs: { run: 'echo q > q.txt' }, depends_on: [], resourceLocks: ['q.txt'] }],
        }),
      });
      const first = startServe(repo, env);
      servers.push(first);
      await agora(repo, ['orch', 'submit', 'plan.json'], env);
      const running = async () => (await managedContainers(docker!, runId)).some((c) => c.State === 'running') || undefined;
      await eventually('the container to run', running, { within: 60_000 });
      first.kill('SIGKILL');
      await exited(first);

      // Same repository, so the same container scope: its start reaps what no running run claims.
      const other = await agora(repo, ['orch', 'run', 'other.json'], env, scaled(120_000));
      expect(other.code).toBe(0);
      expect((await managedContainers(docker!, runId)).map((c) => c.State)).toEqual(['running']); // still there for the restart
      expect((await status(repo, runId))?.items.map((i) => [i.id, i.status, i.attempts])).toEqual([['long', 'running', 1]]); // not driven by `run`

      const second = startServe(repo, env);
      servers.push(second);
      await containerGate(docker!, runId).open(); // its work happens only after `run` has started and ended
      const done = await finished(repo, runId);
      expect(done.items.map((i) => [i.id, i.status, i.attempts])).toEqual([['long', 'done', 1]]); // re-attached, not run again
      expect(git(repo, 'show', `refs/agora/integration/${runId}:slow.txt`)).toBe('slow\n');
      await eventually('the container to be removed', async () => (await managedContainers(docker!, runId)).length === 0 || undefined, { within: 30_000 });
    },
    scaled(240_000), // two serves, a whole `run` and two container starts
  );

  it('a serve killed after its worker finished, before the outcome was committed, leaves the container: the restart collects it', async () => {
    const planId = `kept${tag}`;
    const runId = `${planId}-1`;
    const repo = makeRepo({
      'agora.config.mjs': config,
      'plan.json': JSON.stringify({
        id: planId,
        queue: 'default',
        items: [{ id: 'once', executor: 'dispatch', inputs: { subagent: 'token' }, depends_on: [], resourceLocks: ['token.txt'] }],
      }),
    });
    // SIGKILLs itself once the worker's result is collected and its workspace captured: no state commit records it.
    const first = startServe(repo, { ...env, AGORA_CRASH_AT: 'workspace-captured:1' });
    servers.push(first);
    expect((await agora(repo, ['orch', 'submit', 'plan.json'], env)).code).toBe(0);
    await eventually('the serve to kill itself after the workspace was captured', () => first.signalCode === 'SIGKILL' || undefined, { within: 90_000 });
    expect((await status(repo, runId))?.items.map((i) => [i.id, i.status, i.attempts])).toEqual([['once', 'running', 1]]);
    const kept = await managedContainers(docker!, runId);
    expect(kept.map((c) => c.State)).toEqual(['exited']); // the finished worker outlived the crash
    // Its output is the token it wrote: a second run of the worker would write another.
    const output = (await docker!.getContainer(kept[0]!.Id).logs({ stdout: true })).toString('utf8');
    const token = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(output)?.[0];
    expect(token).toBeDefined();

    const second = startServe(repo, env);
    servers.push(second);
    const done = await finished(repo, runId);
    expect(done.items.map((i) => [i.id, i.status, i.attempts])).toEqual([['once', 'done', 1]]); // collected, not run again
    expect(git(repo, 'show', `refs/agora/patches/${runId}/once:token.txt`)).toBe(`${token}\n`);
    const gone = async () => (await managedContainers(docker!, runId)).length === 0 || undefined;
    await eventually('the container to be removed once the outcome was committed', gone, { within: 30_000 });
  });

  it("a serve starting up reaps only its own repository's orphans, never another's containers", async () => {
    const { createDockerTarget } = await import('../../src/executors/docker-target.js');
    const { makeJob } = await import('./engine.js');
    const other = createDockerTarget({ docker: docker!, scope: `elsewhere-${tag}`, stopGraceSeconds: 1 });
    const runId = `foreign-${tag}`;
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const job = makeJob({ runId, itemId: 'x', workspaceDir: await mkdtemp(join(tmpdir(), 'agora-foreign-')), command: ['sleep', '600'] }); // outlives the run below however slow it is; stopped by the abort
    const abort = new AbortController();
    const running = other.run(job, abort.signal);
    await eventually('the foreign container to run', async () => (await managedContainers(docker!, runId)).some((c) => c.State === 'running') || undefined, {
      within: 60_000,
    });
    const repo = makeRepo({
      'agora.config.mjs': config,
      'plan.json': JSON.stringify({
        id: `mine${tag}`,
        queue: 'default',
        items: [{ id: 'a', executor: 'dispatch', inputs: { subagent: 'write', workerInput: {} }, depends_on: [], resourceLocks: ['out/a.json'] }],
      }),
    });
    expect((await agora(repo, ['orch', 'run', 'plan.json'], env, scaled(120_000))).code).toBe(0);
    expect((await managedContainers(docker!, runId)).map((c) => c.State)).toEqual(['running']);
    abort.abort('test over');
    await running;
    expect(await managedContainers(docker!, runId)).toEqual([]);
  });
});
