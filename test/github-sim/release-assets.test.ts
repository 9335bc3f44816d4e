import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from '@octokit/rest';
import { quiet, startWorld, type World } from '@agora/github-sim/harness';

describe('DELETE /repos/{owner}/{repo}/releases/assets/{asset_id}', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r' } });
    await w.sim.createRepo('octo', 'other', { 'README.md': 'o' });
    w.sim.installApp(w.app.appId, 'octo/other');
  });
  afterAll(async () => {
    await w?.close();
  });

  async function upload(releaseId: number, uploadUrl: string, name: string, data: string): Promise<number> {
    const up = await w.octokit.repos.uploadReleaseAsset({ ...o, release_id: releaseId, url: uploadUrl, name, data, headers: { 'content-type': 'text/plain' } });
    return up.data.id;
  }

  it('removes the asset (204): gone from the release, its listing and its URL; the name can be uploaded again', async () => {
    const rel = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-d1', prerelease: true })).data;
    const first = await upload(rel.id, rel.upload_url, 'r.audit.json', 'old');
    const keep = await upload(rel.id, rel.upload_url, 'keep.txt', 'k');
    const del = await w.octokit.repos.deleteReleaseAsset({ ...o, asset_id: first });
    expect(del.status).toBe(204);
    expect((await w.octokit.repos.getRelease({ ...o, release_id: rel.id })).data.assets.map((a) => a.id)).toEqual([keep]);
    expect((await w.octokit.repos.listReleaseAssets({ ...o, release_id: rel.id })).data.map((a) => a.name)).toEqual(['keep.txt']);
    await expect(w.octokit.repos.getReleaseAsset({ ...o, asset_id: first })).rejects.toMatchObject({ status: 404 });
    await expect(w.octokit.repos.deleteReleaseAsset({ ...o, asset_id: first })).rejects.toMatchObject({ status: 404 });

    const second = await upload(rel.id, rel.upload_url, 'r.audit.json', 'new');
    expect(second).not.toBe(first);
    const dl = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      ...o,
      asset_id: second,
      headers: { accept: 'application/octet-stream' },
    });
    expect(Buffer.from(dl.data as unknown as ArrayBuffer).toString()).toBe('new');
    const logged = w.sim.requests.filter((r) => r.method === 'DELETE' && r.route === '/repos/{owner}/{repo}/releases/assets/{asset_id}');
    expect(logged.map((r) => r.status)).toEqual([204, 404]);
    expect(w.sim.contractViolations).toEqual([]);
  });

  it('refuses an asset of another repository (404) and a token without contents: write (403)', async () => {
    const rel = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-d2' })).data;
    const id = await upload(rel.id, rel.upload_url, 'x.txt', 'x');
    await expect(w.octokit.repos.deleteReleaseAsset({ owner: 'octo', repo: 'other', asset_id: id })).rejects.toMatchObject({ status: 404 });
    const down = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, permissions: { contents: 'read' } });
    const reader = new Octokit({ baseUrl: w.sim.apiUrl, auth: down.data.token, log: quiet });
    await expect(reader.repos.deleteReleaseAsset({ ...o, asset_id: id })).rejects.toMatchObject({ status: 403 });
    expect((await w.octokit.repos.getReleaseAsset({ ...o, asset_id: id })).data.name).toBe('x.txt');
  });
});

describe('immutable releases (the repository setting)', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r' } });
    w.sim.setImmutableReleases('octo/demo', true);
  });
  afterAll(async () => {
    await w?.close();
  });

  it('a draft takes assets and is then published with them; after that no asset is added or deleted (422) and the tag stays', async () => {
    const draft = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-i1', draft: true })).data;
    expect(draft).toMatchObject({ draft: true, immutable: false, published_at: null });
    expect((await w.sim.sim.repo('octo/demo').git.refs()).has('refs/tags/agora-run-i1')).toBe(false); // a draft is not tagged
    const up = await w.octokit.repos.uploadReleaseAsset({
      ...o,
      release_id: draft.id,
      url: draft.upload_url,
      name: 'a.json',
      data: 'a',
      headers: { 'content-type': 'application/json' },
    });
    const published = (await w.octokit.repos.updateRelease({ ...o, release_id: draft.id, draft: false })).data;
    expect(published).toMatchObject({ draft: false, immutable: true, assets: [expect.objectContaining({ name: 'a.json' })] });
    expect((await w.sim.sim.repo('octo/demo').git.refs()).has('refs/tags/agora-run-i1')).toBe(true);

    const refused = { status: 422, response: { data: { errors: [expect.objectContaining({ field: 'immutable' })] } } };
    await expect(
      w.octokit.repos.uploadReleaseAsset({
        ...o,
        release_id: draft.id,
        url: draft.upload_url,
        name: 'b.json',
        data: 'b',
        headers: { 'content-type': 'application/json' },
      }),
    ).rejects.toMatchObject(refused);
    await expect(w.octokit.repos.deleteReleaseAsset({ ...o, asset_id: up.data.id })).rejects.toMatchObject(refused);
    await expect(w.octokit.repos.updateRelease({ ...o, release_id: draft.id, tag_name: 'moved' })).rejects.toMatchObject(refused);
    expect((await w.octokit.repos.updateRelease({ ...o, release_id: draft.id, body: 'notes may change' })).data.body).toBe('notes may change');
    // Published directly, a release is immutable at once.
    const direct = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-i2' })).data;
    expect(direct.immutable).toBe(true);
    expect(w.sim.contractViolations).toEqual([]);
  });

  it('drafts: several may name one tag; only push access sees them (listed or by id, never by tag); a published tag refuses a second publish (already_exists)', async () => {
    const one = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-d', draft: true })).data;
    const two = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-d', draft: true })).data;
    expect(two.id).not.toBe(one.id);
    await expect(w.octokit.repos.getReleaseByTag({ ...o, tag: 'agora-run-d' })).rejects.toMatchObject({ status: 404 });
    const listed = (await w.octokit.repos.listReleases({ ...o, per_page: 100 })).data.filter((r) => r.tag_name === 'agora-run-d');
    expect(listed.map((r) => [r.id, r.draft])).toEqual([
      [two.id, true],
      [one.id, true],
    ]);
    const down = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, permissions: { contents: 'read' } });
    const reader = new Octokit({ baseUrl: w.sim.apiUrl, auth: down.data.token, log: quiet });
    expect((await reader.repos.listReleases({ ...o, per_page: 100 })).data.filter((r) => r.tag_name === 'agora-run-d')).toEqual([]);
    await expect(reader.repos.getRelease({ ...o, release_id: one.id })).rejects.toMatchObject({ status: 404 });

    expect((await w.octokit.repos.updateRelease({ ...o, release_id: one.id, draft: false })).data).toMatchObject({ draft: false, immutable: true });
    expect((await w.octokit.repos.getReleaseByTag({ ...o, tag: 'agora-run-d' })).data.id).toBe(one.id);
    await expect(w.octokit.repos.updateRelease({ ...o, release_id: two.id, draft: false })).rejects.toMatchObject({
      status: 422,
      response: { data: { errors: [expect.objectContaining({ code: 'already_exists', field: 'tag_name' })] } },
    });
    await expect(w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-d' })).rejects.toMatchObject({ status: 422 });
    // The losing draft is still a draft, still listed to push access.
    expect((await w.octokit.repos.getRelease({ ...o, release_id: two.id })).data).toMatchObject({ draft: true, tag_name: 'agora-run-d' });
    expect(w.sim.contractViolations).toEqual([]);
  });
});

describe('asset downloads are redirected to another host', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r' } });
  });
  afterAll(async () => {
    await w?.close();
  });

  it('octet-stream answers 302 to a signed URL on the objects host, which serves the bytes without credentials and refuses an Authorization header', async () => {
    const rel = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-r1' })).data;
    const up = await w.octokit.repos.uploadReleaseAsset({
      ...o,
      release_id: rel.id,
      url: rel.upload_url,
      name: 'r.json',
      data: '{"r":1}',
      headers: { 'content-type': 'application/json' },
    });
    const token = await w.token();
    const api = `${w.sim.apiUrl}/repos/octo/demo/releases/assets/${up.data.id}`;
    const first = await fetch(api, { headers: { authorization: `token ${token}`, accept: 'application/octet-stream' }, redirect: 'manual' });
    expect(first.status).toBe(302);
    const location = first.headers.get('location')!;
    expect(new URL(location).origin).toBe(w.sim.objectsUrl);
    expect(new URL(location).origin).not.toBe(new URL(w.sim.apiUrl).origin);
    // The signed URL is the credential: an Authorization header there is refused, a forged signature too.
    expect((await fetch(location, { headers: { authorization: `token ${token}` } })).status).toBe(400);
    expect((await fetch(location.replace(/signature=[0-9a-f]/, 'signature=g'))).status).toBe(403);
    const bytes = await fetch(location);
    expect(bytes.status).toBe(200);
    expect(await bytes.text()).toBe('{"r":1}');
    // Octokit follows the redirect; the other host sees no Authorization header.
    const seen = w.sim.objectRequests.length;
    const dl = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      ...o,
      asset_id: up.data.id,
      headers: { accept: 'application/octet-stream' },
    });
    expect(Buffer.from(dl.data as unknown as ArrayBuffer).toString()).toBe('{"r":1}');
    expect(w.sim.objectRequests.slice(seen)).toEqual([{ path: `/release-assets/${up.data.id}`, authorization: false, status: 200 }]);
    // The JSON description is not redirected.
    expect((await w.octokit.repos.getReleaseAsset({ ...o, asset_id: up.data.id })).data.name).toBe('r.json');
    expect(w.sim.contractViolations).toEqual([]);
  });
});
