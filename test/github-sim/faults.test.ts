import { afterEach, describe, expect, it } from 'vitest';
import { startWorld, type World } from '@agora/github-sim/harness';
import { SECONDARY_LIMIT_MESSAGE } from '@agora/github-sim/limits';

const o = { owner: 'octo', repo: 'demo' };

describe('rate limits and seeded faults', () => {
  let w: World | undefined;
  afterEach(async () => {
    if (w) expect(w.sim.contractViolations.filter((v) => v.kind !== 'request')).toEqual([]);
    await w?.close();
    w = undefined;
  });

  async function raw(world: World, path: string, init: RequestInit = {}): Promise<Response> {
    const token = await world.token();
    return fetch(`${world.sim.apiUrl}${path}`, {
      ...init,
      headers: { authorization: `token ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
    });
  }

  it('answers content creation beyond the per-minute limit with 403, retry-after and the secondary-limit message', async () => {
    w = await startWorld({ limits: { contentCreationPerMinute: 3 } });
    const token = await w.token();
    const post = (): Promise<Response> =>
      fetch(`${w!.sim.apiUrl}/repos/octo/demo/check-runs`, {
        method: 'POST',
        headers: { authorization: `token ${token}` },
        body: JSON.stringify({ name: 'n', head_sha: w!.repo.headSha }),
      });
    for (let i = 0; i < 3; i++) expect((await post()).status).toBe(201);
    const limited = await post();
    expect(limited.status).toBe(403);
    const retry = Number(limited.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    expect(await limited.json()).toMatchObject({ message: SECONDARY_LIMIT_MESSAGE, documentation_url: expect.stringContaining('secondary-rate-limits') });
    expect((await raw(w, '/repos/octo/demo')).status).toBe(200);
    const log = w.sim.requests.filter((r) => r.route === '/repos/{owner}/{repo}/check-runs');
    expect(log.map((r) => [r.status, r.write, r.contentCreation])).toEqual([
      [201, true, true],
      [201, true, true],
      [201, true, true],
      [403, true, true],
    ]);
  });

  it('enforces the per-hour content-creation limit independently', async () => {
    w = await startWorld({ limits: { contentCreationPerMinute: 100, contentCreationPerHour: 2 } });
    await w.octokit.git.createRef({ ...o, ref: 'refs/agora/a/1', sha: w.repo.headSha });
    await w.octokit.git.createRef({ ...o, ref: 'refs/agora/a/2', sha: w.repo.headSha });
    const third = w.octokit.git.createRef({ ...o, ref: 'refs/agora/a/3', sha: w.repo.headSha });
    await expect(third).rejects.toMatchObject({ status: 403, response: { headers: { 'retry-after': expect.any(String) } } });
    const error = (await third.then(
      () => null,
      (e: unknown) => e,
    )) as { response: { headers: Record<string, string> } };
    expect(Number(error.response.headers['retry-after'])).toBeGreaterThan(60);
  });

  it('refuses requests beyond the concurrency limit', async () => {
    w = await startWorld({ limits: { concurrentRequests: 2 } });
    const token = await w.token();
    w.sim.setFaults({ latencyMs: 300 });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${w!.sim.apiUrl}/repos/octo/demo`, { headers: { authorization: `token ${token}` } })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 403, 403, 403]);
    const refused = results.find((r) => r.status === 403)!;
    expect(refused.headers.get('retry-after')).toBeTruthy();
  });

  it('answers past the primary limit with 403 and x-ratelimit-remaining 0', async () => {
    w = await startWorld({ limits: { requestsPerHour: 3 } });
    const token = await w.token();
    const get = (): Promise<Response> => fetch(`${w!.sim.apiUrl}/repos/octo/demo`, { headers: { authorization: `token ${token}` } });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) remaining.push((await get()).headers.get('x-ratelimit-remaining')!);
    expect(remaining).toEqual(['2', '1', '0']);
    const over = await get();
    expect(over.status).toBe(403);
    expect(((await over.json()) as { message: string }).message).toMatch(/^API rate limit exceeded for installation ID \d+\.$/);
  });

  it('injects 5xx at a seeded rate: the same seed gives the same sequence', async () => {
    const sequence = async (seed: number): Promise<number[]> => {
      const world = await startWorld({ seed });
      try {
        const token = await world.token();
        world.sim.setFaults({ serverErrorRate: 0.3 });
        const out: number[] = [];
        for (let i = 0; i < 30; i++) out.push((await fetch(`${world.sim.apiUrl}/repos/octo/demo`, { headers: { authorization: `token ${token}` } })).status);
        return out;
      } finally {
        await world.close();
      }
    };
    const a = await sequence(42);
    expect(await sequence(42)).toEqual(a);
    expect(a.filter((s) => s >= 500).length).toBeGreaterThan(2);
    expect(a.filter((s) => s === 200).length).toBeGreaterThan(10);
    expect(new Set(a.filter((s) => s >= 500)).size).toBeGreaterThanOrEqual(1);
    expect(await sequence(43)).not.toEqual(a);
  });

  it('adds latency', async () => {
    w = await startWorld();
    const token = await w.token();
    w.sim.setFaults({ latencyMs: [120, 160] });
    const t0 = performance.now();
    const res = await fetch(`${w.sim.apiUrl}/repos/octo/demo`, { headers: { authorization: `token ${token}` } });
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(115);
  });
});
