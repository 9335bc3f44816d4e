import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { OrchConfig } from '../../src/config/types.js';
import { BUSYBOX, DEFAULT_ENGINE, connectEngine, managedContainers } from '../docker/engine.js';
import { checkRuns, startAppWorld, type AppWorld } from './app-world.js';

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

/** Container start events of `runId` on the engine since `sinceSeconds`, as [item, container id, scope]. */
async function containerStarts(d: Docker, runId: string, sinceSeconds: number): Promise<Array<{ item: string; id: string; scope: string }>> {
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
  }, 180_000);
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
    for (const [id, text] of [['a', 'alpha'], ['b', 'beta']] as const) {
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

  it('the engine started one container per item, in the mirror’s scope, whose hostnames the files carry, and none is left', async () => {
    const starts = await containerStarts(docker!, runId, since);
    expect(starts.map((s) => s.item).sort()).toEqual(['a', 'b']);
    for (const s of starts) {
      const note = await fileOn(w, `notes/${s.item}.txt`, 'in-containers');
      expect(note).toContain(`host=${s.id.slice(0, 12)}\n`);
    }
    // Scoped to the app's mirror, never the shared default scope.
    expect(new Set(starts.map((s) => s.scope)).size).toBe(1);
    expect(starts[0]!.scope).toMatch(/^[0-9a-f]{16}$/);
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
  }, 120_000);
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
