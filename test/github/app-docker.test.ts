import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { OrchConfig } from '../../src/config/types.js';
import { repositoryScope } from '../../src/executors/targets.js';
import { openLocalStore } from '../../src/git/local-store.js';
import type { AgoraGitHub } from '../../src/github/agora-github.js';
import { RunLease } from '../../src/runs/lease.js';
import { RunRefs } from '../../src/runs/refs.js';
import { BUSYBOX, CONTAINER_GATE_WAIT, DEFAULT_ENGINE, connectEngine, containerGate, managedContainers, uniqueRunId } from '../docker/engine.js';
import { checkRuns, commandPlan, startAppWorld, until, type AppWorld } from './app-world.js';
import { eventually, scaled } from '../support/eventually.js';

/**
 * The app dispatches items to the docker target when its own config (AGORA_CONFIG) says so: a plan of
 * two container items on a pull request, seen through the API, with proof that the workers ran in
 * containers (the engine's own start events, and facts only a container has).
 */

// The app's docker client reads DOCKER_HOST, as `agora app` does; the start script's socket by default.
process.env.DOCKER_HOST ??= DEFAULT_ENGINE;
const engineHost = process.env.DOCKER_HOST;
const docker: Docker | undefined = await connectEngine();

/** What each worker writes: its input (stdin), then where and as whom it ran. */
const NOTE = 'mkdir -p notes && { cat; echo; echo "pwd=$(pwd)"; echo "uid=$(id -u)"; echo "host=$(hostname)"; } > notes/$AGORA_ITEM.txt';

function configText(target: 'docker' | 'local'): string {
  const options = target === 'docker' ? `, docker: { image: '${BUSYBOX}' }` : '';
  return `export const orch = {
  queues: { default: { concurrency: 2 } },
  subagents: { note: { target: '${target}', command: ['sh', '-c', ${JSON.stringify(NOTE)}]${options} } },
};
`;
}

/** The app's config, read from a file as `agora app` reads AGORA_CONFIG. */
async function appConfig(dir: string): Promise<OrchConfig> {
  const file = join(dir, 'agora.config.mjs');
  await writeFile(file, configText('docker'));
  return loadConfig({ file, cwd: dir });
}

function plan(id: string): string {
  const items = [
    { id: 'a', text: 'alpha' },
    { id: 'b', text: 'beta' },
  ].map(({ id, text }) => ({
    id,
    executor: 'dispatch',
    inputs: { subagent: 'note', workerInput: { text } },
    depends_on: [],
    resourceLocks: [`notes/${id}.txt`],
  }));
  return JSON.stringify({ id, queue: 'default', items }, null, 2);
}

/**
 * Container start events of `runId` on the engine since `sinceSeconds`, as [item, container id, scope],
 * once there are at least `count` (the engine's event log can lag behind a busy machine).
 */
async function containerStarts(d: Docker, runId: string, sinceSeconds: number, count: number): Promise<Array<{ item: string; id: string; scope: string }>> {
  return eventually(
    `the engine's event log to show ${count} container start(s) of ${runId}`,
    async () => {
      const starts = await readContainerStarts(d, runId, sinceSeconds);
      return starts.length >= count ? starts : undefined;
    },
    { within: 10_000, every: 250 },
  );
}

async function readContainerStarts(d: Docker, runId: string, sinceSeconds: number): Promise<Array<{ item: string; id: string; scope: string }>> {
  const stream = (await d.getEvents({
    since: sinceSeconds,
    until: Math.floor(Date.now() / 1000) + 1,
    filters: JSON.stringify({ type: ['container'], event: ['start'], label: [`agora.run=${runId}`] }),
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { id: string; Action: string; Actor: { Attributes: Record<string, string> } })
    .filter((e) => e.Action === 'start')
    .map((e) => ({ item: e.Actor.Attributes['agora.item']!, id: e.id, scope: e.Actor.Attributes['agora.scope']! }));
}

async function fileOn(w: AppWorld, path: string, ref: string): Promise<string> {
  const file = await w.octokit.rest.repos.getContent({ owner: w.owner, repo: w.repo, path, ref });
  return Buffer.from((file.data as { content: string }).content, 'base64').toString();
}

describe.skipIf(!docker)('the app runs items on the docker target its config names', () => {
  let w: AppWorld;
  let dir: string;
  let planSha: string;
  let prNumber: number;
  let runId: string;
  const since = Math.floor(Date.now() / 1000) - 5;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agora-app-docker-'));
    w = await startAppWorld({ config: await appConfig(dir) });
    const planId = `dock-${process.pid}`;
    planSha = await w.sim.push(w.fullName, {
      branch: 'in-containers',
      files: {
        'plan.json': plan(planId),
        // A repository's own config is never read by the app: this one would run `note` locally.
        'agora.config.mjs': configText('local'),
      },
      message: 'Notes in containers',
    });
    runId = `${planId}-${planSha.slice(0, 12)}`;
    prNumber = (await w.sim.openPullRequest(w.fullName, { head: 'in-containers', base: 'main', title: 'Notes' })).number;
    await w.quiesce();
  }, scaled(180_000));
  afterAll(async () => {
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('each item check and the run check complete success', async () => {
    const checks = await checkRuns(w, planSha);
    for (const name of ['agora / a', 'agora / b', 'agora']) {
      expect(checks.get(name), name).toMatchObject({ status: 'completed', conclusion: 'success' });
    }
    expect(checks.get('agora / a')!.output.summary).toContain('`notes/a.txt`');
  });

  it("the PR branch gains one commit per item carrying the container worker's file", async () => {
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: prNumber })).data;
    expect(commits[0]!.sha).toBe(planSha);
    expect(commits.slice(1)).toHaveLength(2);
    for (const [id, text] of [
      ['a', 'alpha'],
      ['b', 'beta'],
    ] as const) {
      const note = await fileOn(w, `notes/${id}.txt`, 'in-containers');
      const [input, ...facts] = note.trim().split('\n');
      expect(JSON.parse(input!)).toEqual({ text });
      const fact = Object.fromEntries(facts.map((l) => l.split('=') as [string, string]));
      // The container's workspace mount and unprivileged user; a local worker runs in a host temp dir as us.
      expect(fact.pwd).toBe('/workspace');
      expect(fact.uid).toBe('65534');
      expect(fact.host).toMatch(/^[0-9a-f]{12}$/);
      expect(fact.host).not.toBe(hostname());
    }
  });

  it('the engine started one container per item, in the repository’s scope, whose hostnames the files carry, and none is left', async () => {
    const starts = await containerStarts(docker!, runId, since, 2);
    expect(starts.map((s) => s.item).sort()).toEqual(['a', 'b']);
    for (const s of starts) {
      const note = await fileOn(w, `notes/${s.item}.txt`, 'in-containers');
      expect(note).toContain(`host=${s.id.slice(0, 12)}\n`);
    }
    // Scoped to the repository on its GitHub host (what every replica shares), never the shared default scope.
    expect(new Set(starts.map((s) => s.scope)).size).toBe(1);
    const cloneUrl = (await w.octokit.rest.repos.get({ owner: w.owner, repo: w.repo })).data.clone_url;
    expect(starts[0]!.scope).toBe(repositoryScope({ cloneUrl, fullName: w.fullName, refNamespace: 'refs/agora/' }));
    expect(await managedContainers(docker!, runId)).toEqual([]);
  });

  it('agora / audit on the new head is success, and the app logged no error', async () => {
    const head = (await w.octokit.rest.pulls.get({ owner: w.owner, repo: w.repo, pull_number: prNumber })).data.head.sha;
    expect(head).not.toBe(planSha);
    expect((await checkRuns(w, head)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(w.errors).toEqual([]);
    expect(w.sim.contractViolations).toEqual([]);
  });
});

describe('the app with a docker config and no engine reachable', () => {
  let w: AppWorld;
  let dir: string;
  let planSha: string;
  const missing = join(tmpdir(), `agora-no-engine-${process.pid}.sock`);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agora-app-noengine-'));
    process.env.DOCKER_HOST = `unix://${missing}`;
    w = await startAppWorld({ config: await appConfig(dir) });
    planSha = await w.sim.push(w.fullName, { branch: 'no-engine', files: { 'plan.json': plan('noengine') }, message: 'Notes without an engine' });
    await w.sim.openPullRequest(w.fullName, { head: 'no-engine', base: 'main', title: 'No engine' });
    await w.quiesce();
  }, scaled(120_000));
  afterAll(async () => {
    process.env.DOCKER_HOST = engineHost;
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("fails each item's check saying the engine is unreachable, where it looked, and how to fix it", async () => {
    const checks = await checkRuns(w, planSha);
    for (const name of ['agora / a', 'agora / b']) {
      const check = checks.get(name)!;
      expect(check, name).toMatchObject({ status: 'completed', conclusion: 'failure' });
      expect(check.output.summary).toContain(`docker engine unreachable at unix://${missing}: `);
      expect(check.output.summary).toContain('set DOCKER_HOST to a reachable one');
    }
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'failure' });
  });
});

/**
 * A unix socket in front of the engine that can go down and come back: the app's docker clients talk
 * through it, so a replica "killed" while it is down cannot reach the engine, as a crashed process cannot
 * (`kill()` aborts the replica's workers, which would otherwise stop and remove their containers).
 */
async function engineProxy(upstreamPath: string): Promise<{ host: string; down: () => Promise<void>; up: () => Promise<void>; close: () => Promise<void> }> {
  const path = join(tmpdir(), `agora-app-engine-proxy-${process.pid}-${Date.now()}.sock`);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPath);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const listen = () => new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, () => resolve()));
  const down = async () => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
    await rm(path, { force: true });
  };
  await listen();
  return { host: `unix://${path}`, down, up: async () => (server.listening ? undefined : listen()), close: down };
}

/** Who holds a run's lease, as the repository on GitHub says. */
async function leaseHolder(w: AppWorld, runId: string): Promise<string | undefined> {
  const store = await openLocalStore(w.sim.repoDir(w.fullName));
  return (await RunLease.read(store, new RunRefs(), runId))?.holder;
}

/**
 * Two replicas of the app on one engine: the one driving a run dies while its item's container runs; the
 * other takes the run over once the lease expires and re-attaches to that container (the replicas share
 * the docker scope of the repository), so the item succeeds after one attempt, not a rerun from scratch.
 */
describe.skipIf(!docker)('a replica taking a run over re-attaches to the dead replica’s container', () => {
  let w: AppWorld;
  let dir: string;
  let proxy: Awaited<ReturnType<typeof engineProxy>>;
  let runId: string | undefined;
  const since = Math.floor(Date.now() / 1000) - 5;
  beforeAll(async () => {
    if (!engineHost?.startsWith('unix://')) throw new Error(`DOCKER_HOST must be a unix socket for this test, not ${engineHost}`);
    proxy = await engineProxy(engineHost.slice('unix://'.length));
    // The app's targets are created on the first event, reading DOCKER_HOST then: every replica goes through the proxy.
    process.env.DOCKER_HOST = proxy.host;
    dir = await mkdtemp(join(tmpdir(), 'agora-app-docker-replicas-'));
    const file = join(dir, 'agora.config.mjs');
    await writeFile(file, `export const orch = { queues: { default: { concurrency: 2 } }, commandTarget: 'docker', commandImage: '${BUSYBOX}' };\n`);
    const config = await loadConfig({ file, cwd: dir });
    // A 3 s lease: a dead driver's run is taken over ~3.5 s after its last renewal, while the 8 s container still runs.
    w = await startAppWorld({ config, replicas: 2, delivery: 'all', sweepMs: 300, agoraOptions: { lease: { ttlMs: 3000, refreshMs: 200, skewMs: 500 } } });
  }, scaled(60_000));
  afterAll(async () => {
    process.env.DOCKER_HOST = engineHost;
    await w?.close();
    await proxy?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    // A failed run may leave the dead replica's container behind: never let it outlive the suite.
    if (runId) for (const c of await managedContainers(docker!, runId)) await docker!.getContainer(c.Id).remove({ force: true, v: true });
  });

  it(
    'the item ends success after 1 attempt, in the one container it started in, and the gate is green',
    async () => {
      // The run id is the plan id and the simulator's deterministic commit: the plan id makes it this
      // process's own, so a suite sharing the engine never sees (or cleans up) this run's container.
      const planId = uniqueRunId('takeover');
      const text = commandPlan(planId, [{ id: 'slow', run: `${CONTAINER_GATE_WAIT}; echo "host=$(hostname)" > slow.txt`, locks: ['slow.txt'] }]);
      const sha = await w.sim.push(w.fullName, { branch: 'takeover', files: { 'plan.json': text }, message: 'Slow plan in a container' });
      const pr = await w.sim.openPullRequest(w.fullName, { head: 'takeover', base: 'main', title: 'Takeover' });
      runId = `${planId}-${sha.slice(0, 12)}`;
      const id = runId;
      await until('slow to run', async () => (await checkRuns(w, sha)).get('agora / slow')?.status === 'in_progress', w);
      await until('its container to run', async () => (await managedContainers(docker!, id)).some((c) => c.State === 'running'), w, 30_000);

      const holder = await leaseHolder(w, id);
      const dead: AgoraGitHub = w.replicas.find((a) => a.holder === holder)!;
      expect(dead).toBeDefined();
      // A crash: the process (and its engine connection) vanishes; nothing stops or removes its container.
      await proxy.down();
      await dead.kill();
      w.removeReplica(dead);
      const left = await managedContainers(docker!, id);
      expect(left.map((c) => [c.Labels['agora.attempt'], c.State])).toEqual([['1', 'running']]);
      await proxy.up();
      await containerGate(docker!, id).open(); // the container's work happens only after its replica died

      await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w, 45_000);
      await w.quiesce();
      const taker = await leaseHolder(w, id);
      expect(taker).not.toBe(holder);
      expect(w.replicas.map((a) => a.holder)).toContain(taker);

      const checks = await checkRuns(w, sha);
      for (const name of ['agora', 'agora / slow']) expect(checks.get(name), name).toMatchObject({ status: 'completed', conclusion: 'success' });
      // Re-attached, not rerun: a container the taker did not find would be recorded lost, and a second attempt run.
      expect(checks.get('agora / slow')!.output.summary).toContain('**done** after 1 attempt.');
      const starts = await containerStarts(docker!, id, since, 1);
      expect(starts.map((s) => s.item)).toEqual(['slow']);
      expect(starts[0]!.scope).toBe(left[0]!.Labels['agora.scope']);

      const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
      expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['Slow plan in a container', expect.stringMatching(/^slow: /)]);
      // The file the dead replica's container wrote, collected by the taker.
      expect(await fileOn(w, 'slow.txt', 'takeover')).toBe(`host=${starts[0]!.id.slice(0, 12)}\n`);
      expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
      expect(await managedContainers(docker!, id)).toEqual([]);
      expect(w.sim.contractViolations).toEqual([]);
      expect(w.errors).toEqual([]);
    },
    scaled(90_000),
  );
});
