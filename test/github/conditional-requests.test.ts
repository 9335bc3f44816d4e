import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import Bottleneck from 'bottleneck';
import { Probot } from 'probot';
import { agoraOctokit } from '../../src/github/octokit.js';
import { ConditionalRequestCache } from '../../src/github/conditional-requests.js';
import { repoAccess } from '../../src/github/app.js';
import type { Octokit } from '../../src/github/agora-github.js';
import { startWorld, type World } from '@agora/github-sim/harness';

/** What went over the wire: method, URL and the request's conditional header. */
interface Sent {
  method: string;
  url: string;
  ifNoneMatch: string | null;
  authorization: string | null;
}

describe('conditional requests against the simulator', () => {
  let w: World;
  let cache: ConditionalRequestCache;
  let probot: Probot;
  let k: Octokit;
  const sent: Sent[] = [];
  const spy: typeof fetch = async (input, init) => {
    const h = new Headers(init?.headers);
    sent.push({ method: init?.method ?? 'GET', url: String(input), ifNoneMatch: h.get('if-none-match'), authorization: h.get('authorization') });
    return fetch(input, init);
  };
  const o = { owner: 'octo', repo: 'demo' };
  /** The simulator's log of what it answered since `from` (API routes only, no token minting). */
  const answered = (from: number) =>
    w.sim.requests
      .slice(from)
      .filter((r) => r.route !== '/app/installations/{installation_id}/access_tokens')
      .map((r) => [r.method, r.route, r.status]);

  const newProbot = (c: ConditionalRequestCache | false) =>
    new Probot({
      appId: w.app.appId,
      privateKey: w.app.privateKey,
      baseUrl: w.sim.apiUrl,
      logLevel: 'fatal',
      request: { fetch: spy },
      Octokit: agoraOctokit({
        throttle: { retryAfterBaseValue: 10, write: new Bottleneck.Group({ maxConcurrent: 1, minTime: 10 }) },
        retry: { retryAfterBaseValue: 10 },
        conditionalRequests: c === false ? false : { cache: c },
      }),
    });

  beforeAll(async () => {
    w = await startWorld();
    for (const name of ['two', 'three', 'four', 'five']) {
      await w.sim.createRepo('octo', name, { 'README.md': name });
      w.sim.installApp(w.app.appId, `octo/${name}`);
    }
  });
  afterAll(async () => {
    await w?.close();
  });
  beforeEach(async () => {
    cache = new ConditionalRequestCache();
    probot = newProbot(cache);
    k = (await probot.auth(w.installationId)) as Octokit;
    sent.length = 0;
  });

  it('sends If-None-Match on the second identical GET, gets a 304 and returns the same data as a 200', async () => {
    const first = await k.rest.repos.get(o);
    const from = w.sim.requests.length;
    const second = await k.rest.repos.get(o);
    expect(second.status).toBe(200);
    expect(second.data).toEqual(first.data);
    expect(second.headers.etag).toBe(first.headers.etag);
    expect(second.url).toBe(first.url);
    const gets = sent.filter((s) => s.url.endsWith('/repos/octo/demo'));
    expect(gets.map((s) => s.ifNoneMatch)).toEqual([null, first.headers.etag]);
    expect(answered(from)).toEqual([['GET', '/repos/{owner}/{repo}', 304]]);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, stores: 1, entries: 1 });
  });

  it('after a change the list comes back 200 with the new data, then 304 again', async () => {
    const sha = w.repo.headSha;
    const before = await k.rest.checks.listForRef({ ...o, ref: sha });
    const created = await k.rest.checks.create({ ...o, name: `cr-${Date.now()}`, head_sha: sha });
    const from = w.sim.requests.length;
    const after = await k.rest.checks.listForRef({ ...o, ref: sha });
    expect(after.status).toBe(200);
    expect(after.data.total_count).toBe(before.data.total_count + 1);
    expect(after.data.check_runs.map((r) => r.id)).toContain(created.data.id);
    const again = await k.rest.checks.listForRef({ ...o, ref: sha });
    expect(again.data).toEqual(after.data);
    expect(answered(from)).toEqual([
      ['GET', '/repos/{owner}/{repo}/commits/{ref}/check-runs', 200],
      ['GET', '/repos/{owner}/{repo}/commits/{ref}/check-runs', 304],
    ]);
    // The changed answer went out conditional (with the old ETag) and replaced the entry.
    const lists = sent.filter((s) => s.method === 'GET' && s.url.includes('/check-runs'));
    expect(lists.map((s) => s.ifNoneMatch)).toEqual([null, before.headers.etag, after.headers.etag]);
    expect(cache.stats()).toMatchObject({ hits: 1, stores: 2, entries: 1 });
  });

  it('never caches a POST, an error, or a response to a caller that sends its own validator', async () => {
    const name = `post-${Date.now()}`;
    await k.rest.checks.create({ ...o, name, head_sha: w.repo.headSha });
    await k.rest.checks.create({ ...o, name, head_sha: w.repo.headSha });
    const posts = sent.filter((s) => s.method === 'POST' && s.url.endsWith('/check-runs'));
    expect(posts).toHaveLength(2);
    expect(posts.every((s) => s.ifNoneMatch === null)).toBe(true);
    for (let i = 0; i < 2; i++) await expect(k.rest.checks.get({ ...o, check_run_id: 987654321 })).rejects.toMatchObject({ status: 404 });
    expect(sent.filter((s) => s.url.endsWith('/987654321')).map((s) => s.ifNoneMatch)).toEqual([null, null]);
    expect(cache.stats()).toMatchObject({ stores: 0, entries: 0 });
    // Its own If-None-Match: Octokit's usual 304 error, nothing kept.
    const etag = (await w.octokit.rest.repos.get(o)).headers.etag!;
    await expect(k.rest.repos.get({ ...o, headers: { 'if-none-match': etag } })).rejects.toMatchObject({ status: 304 });
    expect(cache.stats().entries).toBe(0);
  });

  it('two installations never share an entry, even for the same URL', async () => {
    await w.sim.createRepo('other', 'solo', { 'README.md': 'solo' });
    const otherId = w.sim.installApp(w.app.appId, 'other/solo');
    const k2 = (await probot.auth(otherId)) as Octokit;
    const mine = await k.request('GET /installation/repositories');
    const theirs = await k2.request('GET /installation/repositories');
    expect(theirs.data.repositories.map((r) => r.full_name)).toEqual(['other/solo']);
    expect(mine.data.repositories.map((r) => r.full_name)).not.toContain('other/solo');
    const calls = sent.filter((s) => s.url.endsWith('/installation/repositories'));
    expect(calls.map((s) => s.ifNoneMatch)).toEqual([null, null]); // the second identity had nothing to revalidate
    expect(new Set(calls.map((s) => s.authorization)).size).toBe(2);
    // Each identity revalidates its own entry.
    expect((await k2.request('GET /installation/repositories')).data).toEqual(theirs.data);
    expect((await k.request('GET /installation/repositories')).data).toEqual(mine.data);
    expect(cache.stats()).toMatchObject({ hits: 2, entries: 2 });
    // Keys hold a hash of the identity, never a token.
    const tokens = calls.map((s) => s.authorization!.split(' ')[1]!);
    for (const key of cache.keys()) for (const t of tokens) expect(key).not.toContain(t);
  });

  it('paginates through the cache: a repeated walk costs only 304s, a change shows up', async () => {
    const walk = async () => (await k.paginate(k.rest.apps.listReposAccessibleToInstallation, { per_page: 2 })).map((r) => r.full_name).sort();
    const first = await walk();
    expect(first.length).toBeGreaterThanOrEqual(5);
    const from = w.sim.requests.length;
    const second = await walk();
    expect(second).toEqual(first);
    const pages = Math.ceil(first.length / 2);
    expect(answered(from)).toEqual(Array(pages).fill(['GET', '/installation/repositories', 304]));
    await w.sim.createRepo('octo', `more${Date.now()}`, { 'README.md': 'm' }).then((r) => w.sim.installApp(w.app.appId, r.fullName));
    const third = await walk();
    expect(third.length).toBe(first.length + 1);
  });

  it('a 304 costs no rate-limit budget in the simulator', async () => {
    await k.rest.pulls.list(o);
    const actor = `installation:${w.installationId}`;
    const used = w.sim.sim.limiter.snapshot(actor, Date.now()).used;
    let last: Awaited<ReturnType<typeof k.rest.pulls.list>> | undefined;
    for (let i = 0; i < 5; i++) last = await k.rest.pulls.list(o);
    expect(w.sim.sim.limiter.snapshot(actor, Date.now()).used).toBe(used);
    // The headers the caller sees are the 304's fresh ones, not the kept response's.
    expect(Number(last!.headers['x-ratelimit-used'])).toBe(used);
    expect(cache.stats().hits).toBe(5);
  });

  it('the app JWT client revalidates too (keyed by the app, not by each freshly signed JWT)', async () => {
    const appClient = (await probot.auth()) as Octokit;
    await appClient.rest.apps.listInstallations();
    // A new second by the clock (not by waiting for one): auth-app signs a different JWT.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 1100, shouldAdvanceTime: true });
    const from = w.sim.requests.length;
    try {
      await appClient.rest.apps.listInstallations();
    } finally {
      vi.useRealTimers();
    }
    expect(answered(from)).toEqual([['GET', '/app/installations', 304]]);
    const jwts = sent.filter((s) => s.url.endsWith('/app/installations')).map((s) => s.authorization);
    expect(jwts[0]).not.toBe(jwts[1]);
  });

  it('stays within maxEntries (least recently used goes first); off when disabled', async () => {
    const small = new ConditionalRequestCache({ maxEntries: 2 });
    const c = (await newProbot(small).auth(w.installationId)) as Octokit;
    for (const repo of ['demo', 'two', 'three']) await c.rest.repos.get({ owner: 'octo', repo });
    expect(small.stats()).toMatchObject({ entries: 2, evictions: 1 });
    sent.length = 0;
    await c.rest.repos.get({ owner: 'octo', repo: 'demo' }); // evicted: goes out plain
    await c.rest.repos.get({ owner: 'octo', repo: 'three' }); // kept: conditional
    expect(sent.map((s) => s.ifNoneMatch === null)).toEqual([true, false]);
    const tiny = new ConditionalRequestCache({ maxBytes: 100 });
    const t = (await newProbot(tiny).auth(w.installationId)) as Octokit;
    await t.rest.repos.get(o);
    expect(tiny.stats()).toMatchObject({ entries: 0, bytes: 0 });
    const off = (await newProbot(false).auth(w.installationId)) as Octokit;
    sent.length = 0;
    await off.rest.repos.get(o);
    await off.rest.repos.get(o);
    expect(sent.filter((s) => s.url.endsWith('/repos/octo/demo')).map((s) => s.ifNoneMatch)).toEqual([null, null]);
  });
});

describe('repoAccess(...).list()', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
    await w.sim.createRepo('octo', 'second', { 'README.md': 's' });
    w.sim.installApp(w.app.appId, 'octo/second');
    await w.sim.createRepo('acme', 'tools', { 'README.md': 't' });
    w.sim.installApp(w.app.appId, 'acme/tools');
    await w.sim.createRepo('acme', 'private', { 'README.md': 'not installed' });
  });
  afterAll(async () => {
    await w?.close();
  });

  it('returns every repository of every installation; a repeated sweep costs only 304s', async () => {
    const probot = new Probot({ appId: w.app.appId, privateKey: w.app.privateKey, baseUrl: w.sim.apiUrl, logLevel: 'fatal', Octokit: agoraOctokit() });
    const refuse = async (): Promise<never> => {
      throw new Error('listing must not need a git token');
    };
    const noGit = () => ({ token: refuse, permissions: refuse });
    const access = repoAccess(probot, noGit);
    expect((await access.list!()).sort()).toEqual(['acme/tools', 'octo/demo', 'octo/second']);
    const from = w.sim.requests.length;
    expect((await access.list!()).sort()).toEqual(['acme/tools', 'octo/demo', 'octo/second']);
    const reads = w.sim.requests.slice(from).filter((r) => r.method === 'GET');
    expect(reads.map((r) => r.route).sort()).toEqual(['/app/installations', '/installation/repositories', '/installation/repositories']);
    expect(reads.every((r) => r.status === 304)).toBe(true);
    // A new installation shows up on the next sweep.
    await w.sim.createRepo('third', 'x', { 'README.md': 'x' });
    w.sim.installApp(w.app.appId, 'third/x');
    expect(await access.list!()).toContain('third/x');
  });
});
