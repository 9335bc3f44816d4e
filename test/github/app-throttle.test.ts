import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Probot } from 'probot';
import { startGitHubSim, type GitHubSim } from '@agora/github-sim';
import { agoraOctokit, type AgoraOctokitClass, type Octokit } from '../../src/github/octokit.js';

/**
 * Octokit's throttling plugin spaces writes a second apart through a queue per key, and its key
 * defaults to one value shared by every client: unless each installation has its own queue, every
 * installation the app serves waits behind every other's writes. The app's client class (main.ts)
 * keeps its write queues; this proves each installation's writes go through a queue of their own.
 */
describe('throttling per installation', () => {
  let sim: GitHubSim;
  let appId: number;
  let privateKey: string;
  const repos: { owner: string; name: string; installationId: number; headSha: string }[] = [];

  beforeAll(async () => {
    sim = await startGitHubSim({ strict: true });
    const app = sim.createApp({ webhookUrl: 'http://127.0.0.1:9/unused', secret: 's', permissions: { checks: 'write', contents: 'read', metadata: 'read' } });
    ({ appId, privateKey } = app);
    for (const owner of ['alpha', 'beta']) {
      const repo = await sim.createRepo(owner, 'work', { 'README.md': owner });
      repos.push({ owner, name: 'work', installationId: sim.installApp(app.appId, repo.fullName), headSha: repo.headSha });
    }
  });
  afterAll(() => sim.close());

  /** Each installation writes one check run through the app's client class; returns the write queues' keys used. */
  async function writeFromEach(Octokit: AgoraOctokitClass): Promise<string[]> {
    const probot = new Probot({ appId, privateKey, baseUrl: sim.apiUrl, Octokit, logLevel: 'fatal' });
    const used: string[] = [];
    Octokit.writeQueues.on('created', (_limiter, key) => used.push(key));
    const results = await Promise.all(
      repos.map(async (r) => {
        const client = (await probot.auth(r.installationId)) as Octokit;
        return client.rest.checks.create({ owner: r.owner, repo: r.name, name: 'throttle probe', head_sha: r.headSha, status: 'queued' });
      }),
    );
    expect(results.map((res) => res.status)).toEqual([201, 201]);
    return used.sort();
  }

  it("each installation's writes wait in a queue of its own", async () => {
    const used = await writeFromEach(agoraOctokit());
    expect(used).toEqual(repos.map((r) => String(r.installationId)).sort());
  });

  it("the client a webhook's context gets (Probot's event auth) writes through its installation's queue too", async () => {
    const Octokit = agoraOctokit();
    const probot = new Probot({ appId, privateKey, baseUrl: sim.apiUrl, Octokit, logLevel: 'fatal' });
    const used: string[] = [];
    Octokit.writeQueues.on('created', (_limiter, key) => used.push(key));
    const statuses: number[] = [];
    probot.on('issues.opened', async (context) => {
      const r = repos.find((x) => x.installationId === context.payload.installation?.id)!;
      statuses.push(
        (await context.octokit.rest.checks.create({ owner: r.owner, repo: r.name, name: 'webhook probe', head_sha: r.headSha, status: 'queued' })).status,
      );
    });
    for (const [i, r] of repos.entries()) {
      const payload = {
        action: 'opened',
        installation: { id: r.installationId },
        repository: { name: r.name, owner: { login: r.owner } },
        issue: { number: 1 },
      };
      await probot.receive({ id: `probe-${i}`, name: 'issues', payload } as unknown as Parameters<Probot['receive']>[0]);
    }
    expect(statuses).toEqual([201, 201]);
    expect(used.sort()).toEqual(repos.map((r) => String(r.installationId)).sort());
  });

  it('a shared key puts them in one queue (the check above can fail)', async () => {
    expect(await writeFromEach(agoraOctokit({ throttle: { id: 'everyone' } }))).toEqual(['everyone']);
  });
});
