import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from '@octokit/rest';
import { quiet, startWorld, type World } from '@agora/github-sim/harness';

describe('GET /installation/repositories', () => {
  let w: World;
  const extra = ['octo/two', 'octo/three', 'octo/four', 'octo/five'];
  beforeAll(async () => {
    w = await startWorld();
    for (const fullName of extra) {
      const [owner, name] = fullName.split('/') as [string, string];
      await w.sim.createRepo(owner, name, { 'README.md': name });
      w.sim.installApp(w.app.appId, fullName);
    }
    // A repository the app is not installed on is never listed.
    await w.sim.createRepo('octo', 'elsewhere', { 'README.md': 'x' });
  });
  afterAll(async () => {
    await w?.close();
  });

  it('lists every repository of the installation, paginated with Link headers', async () => {
    const first = await w.octokit.request('GET /installation/repositories', { per_page: 2 });
    expect(first.data.total_count).toBe(5);
    expect(first.data.repositories).toHaveLength(2);
    expect(first.headers.link).toMatch(/rel="next"/);
    expect(first.headers.link).toMatch(/page=3>; rel="last"/);
    const all = await w.octokit.paginate('GET /installation/repositories', { per_page: 2 });
    expect(all.map((r) => r.full_name).sort()).toEqual(['octo/demo', ...extra].sort());
    const last = await w.octokit.request('GET /installation/repositories', { per_page: 2, page: 3 });
    expect(last.data.repositories).toHaveLength(1);
    expect(last.headers.link).toMatch(/rel="prev"/);
    expect(last.headers.link).not.toMatch(/rel="next"/);
    expect(w.sim.contractViolations).toEqual([]);
  });

  it('a token scoped to some repositories lists only those; the app JWT is refused', async () => {
    const scoped = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, repositories: ['two'] });
    const k = new Octokit({ baseUrl: w.sim.apiUrl, auth: scoped.data.token, log: quiet });
    const res = await k.request('GET /installation/repositories');
    expect(res.data.repositories.map((r) => r.full_name)).toEqual(['octo/two']);
    expect(res.data.total_count).toBe(1);
    const jwt = ((await w.appOctokit.auth({ type: 'app' })) as { token: string }).token;
    const asApp = await fetch(`${w.sim.apiUrl}/installation/repositories`, { headers: { authorization: `bearer ${jwt}` } });
    expect(asApp.status).toBe(403);
  });

  it('answers a matching If-None-Match with 304 that costs no rate-limit budget and is logged as 304', async () => {
    const token = await w.token();
    const h = { authorization: `token ${token}` };
    const url = `${w.sim.apiUrl}/installation/repositories?per_page=100`;
    const first = await fetch(url, { headers: h });
    expect(first.status).toBe(200);
    await first.text();
    const etag = first.headers.get('etag')!;
    const usedBefore = Number(first.headers.get('x-ratelimit-used'));
    const from = w.sim.requests.length;
    for (let i = 0; i < 3; i++) {
      const again = await fetch(url, { headers: { ...h, 'if-none-match': etag } });
      expect(again.status).toBe(304);
      expect(Number(again.headers.get('x-ratelimit-used'))).toBe(usedBefore);
    }
    const logged = w.sim.requests.slice(from);
    expect(logged.map((r) => [r.route, r.status])).toEqual(Array(3).fill(['/installation/repositories', 304]));
    // Installing on one more repository changes the list: the old ETag no longer matches and the answer counts.
    await w.sim.createRepo('octo', 'six', { 'README.md': 'six' });
    w.sim.installApp(w.app.appId, 'octo/six');
    const changed = await fetch(url, { headers: { ...h, 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(Number(changed.headers.get('x-ratelimit-used'))).toBe(usedBefore + 1);
    expect(((await changed.json()) as { total_count: number }).total_count).toBe(6);
  });
});
