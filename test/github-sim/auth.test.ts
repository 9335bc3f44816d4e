import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSign } from 'node:crypto';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { quiet, startWorld, type World } from '@agora/github-sim/harness';
import { generateAppKey } from '@agora/github-sim/auth';

function jwt(privateKey: string, claims: Record<string, unknown>, alg = 'RS256'): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${enc({ alg, typ: 'JWT' })}.${enc(claims)}`;
  const sig = createSign('RSA-SHA256').update(data).sign(privateKey).toString('base64url');
  return `${data}.${sig}`;
}

async function call(
  w: World,
  path: string,
  auth?: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${w.sim.apiUrl}${path}`, { ...init, headers: { ...(auth ? { authorization: auth } : {}), ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

describe('GitHub App auth', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    expect(w.sim.contractViolations.filter((v) => v.kind !== 'request')).toEqual([]);
    await w.close();
  });

  const now = (): number => Math.floor(Date.now() / 1000);

  it('accepts a valid app JWT for GET /app and rejects malformed, expired, future and foreign ones', async () => {
    const good = jwt(w.app.privateKey, { iat: now() - 30, exp: now() + 300, iss: String(w.app.appId) });
    const ok = await call(w, '/app', `Bearer ${good}`);
    expect(ok.status).toBe(200);
    expect(ok.body.id).toBe(w.app.appId);
    expect(ok.body.installations_count).toBe(1);

    const cases: [string, string][] = [
      ['garbage', 'Bearer eyJ.not.ajwt'],
      ['expired', `Bearer ${jwt(w.app.privateKey, { iat: now() - 700, exp: now() - 100, iss: w.app.appId })}`],
      ['exp too far', `Bearer ${jwt(w.app.privateKey, { iat: now(), exp: now() + 3600, iss: w.app.appId })}`],
      ['iat in the future', `Bearer ${jwt(w.app.privateKey, { iat: now() + 300, exp: now() + 500, iss: w.app.appId })}`],
      ['unknown issuer', `Bearer ${jwt(w.app.privateKey, { iat: now(), exp: now() + 300, iss: 999999 })}`],
      ['foreign key', `Bearer ${jwt(generateAppKey().privateKey, { iat: now(), exp: now() + 300, iss: w.app.appId })}`],
      ['HS256', `Bearer ${jwt(w.app.privateKey, { iat: now(), exp: now() + 300, iss: w.app.appId }, 'HS256')}`],
      ['no iat', `Bearer ${jwt(w.app.privateKey, { exp: now() + 300, iss: w.app.appId })}`],
    ];
    for (const [label, auth] of cases) {
      const res = await call(w, '/app', auth);
      expect(res.status, label).toBe(401);
      expect(res.body).toMatchObject({ documentation_url: expect.any(String), status: '401' });
      expect(typeof res.body.message, label).toBe('string');
    }
  });

  it('issues installation tokens with an expiry and the app permissions, via @octokit/auth-app', async () => {
    const res = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId });
    expect(res.status).toBe(201);
    expect(res.data.token).toMatch(/^ghs_[A-Za-z0-9]{36}$/);
    const ttl = Date.parse(res.data.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(55 * 60_000);
    expect(ttl).toBeLessThanOrEqual(60 * 60_000);
    expect(res.data.permissions).toMatchObject({ contents: 'write', checks: 'write', metadata: 'read' });
    const repo = await w.octokit.repos.get({ owner: w.owner, repo: w.name });
    expect(repo.data.full_name).toBe('octo/demo');
  });

  it('answers 401 without or with a bad token, in GitHub error shape', async () => {
    const none = await call(w, '/repos/octo/demo');
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ message: 'Requires authentication', documentation_url: expect.any(String), status: '401' });
    const bad = await call(w, '/repos/octo/demo', 'token ghs_notarealtoken');
    expect(bad.status).toBe(401);
    expect(bad.body.message).toBe('Bad credentials');
    expect(bad.headers.get('x-ratelimit-limit')).toBeTruthy();
  });

  it('rejects an expired installation token', async () => {
    const token = await w.token();
    expect((await call(w, '/repos/octo/demo', `token ${token}`)).status).toBe(200);
    w.sim.expireToken(token);
    expect((await call(w, '/repos/octo/demo', `token ${token}`)).status).toBe(401);
  });

  it('keeps app JWTs and installation tokens to their own routes', async () => {
    const token = await w.token();
    const appWithToken = await call(w, '/app', `token ${token}`);
    expect(appWithToken.status).toBe(401);
    const good = jwt(w.app.privateKey, { iat: now() - 30, exp: now() + 300, iss: w.app.appId });
    const repoWithJwt = await call(w, '/repos/octo/demo', `Bearer ${good}`);
    expect(repoWithJwt.status).toBe(403);
    const inst = await w.appOctokit.apps.getRepoInstallation({ owner: 'octo', repo: 'demo' });
    expect(inst.data.id).toBe(w.installationId);
    const missing = await call(w, '/repos/octo/nope/installation', `Bearer ${good}`);
    expect(missing.status).toBe(404);
  });

  it('answers 403 beyond the token permissions and 404 for repositories outside the installation', async () => {
    const down = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, permissions: { contents: 'read' } });
    const ro = new Octokit({ auth: down.data.token, baseUrl: w.sim.apiUrl, log: quiet });
    await expect(ro.git.createBlob({ owner: 'octo', repo: 'demo', content: 'x' })).rejects.toMatchObject({
      status: 403,
      response: { data: { message: 'Resource not accessible by integration' } },
    });
    await expect(ro.checks.create({ owner: 'octo', repo: 'demo', name: 'n', head_sha: w.repo.headSha })).rejects.toMatchObject({ status: 403 });
    expect((await ro.repos.getContent({ owner: 'octo', repo: 'demo', path: 'README.md' })).status).toBe(200);
    await expect(
      w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, permissions: { administration: 'write' } }),
    ).rejects.toMatchObject({ status: 422 });

    await w.sim.createRepo('octo', 'other', { 'x.txt': 'x' });
    await expect(w.octokit.repos.get({ owner: 'octo', repo: 'other' })).rejects.toMatchObject({ status: 404 });
    w.sim.installApp(w.app.appId, 'octo/other');
    const scoped = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, repositories: ['demo'] });
    expect(scoped.data.repositories?.map((r) => r.full_name)).toEqual(['octo/demo']);
    const scopedClient = new Octokit({ auth: scoped.data.token, baseUrl: w.sim.apiUrl, log: quiet });
    await expect(scopedClient.repos.get({ owner: 'octo', repo: 'other' })).rejects.toMatchObject({ status: 404 });
    expect((await w.octokit.repos.get({ owner: 'octo', repo: 'other' })).status).toBe(200);
  });

  it('an app created with narrow permissions cannot exceed them', async () => {
    const narrow = w.sim.createApp({ webhookUrl: w.receiver.url, secret: 's', permissions: { contents: 'read' } });
    const inst = w.sim.installApp(narrow.appId, 'octo/demo');
    const client = new Octokit({
      baseUrl: w.sim.apiUrl,
      authStrategy: createAppAuth,
      auth: { appId: narrow.appId, privateKey: narrow.privateKey, installationId: inst },
      log: quiet,
    });
    await expect(client.pulls.list({ owner: 'octo', repo: 'demo' })).rejects.toMatchObject({ status: 403 });
    expect((await client.git.getRef({ owner: 'octo', repo: 'demo', ref: 'heads/main' })).data.object.sha).toBe(w.repo.headSha);
  });
});
