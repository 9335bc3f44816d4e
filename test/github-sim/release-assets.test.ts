import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from '@octokit/rest';
import { quiet, startWorld, type World } from './harness.js';

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
    const dl = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', { ...o, asset_id: second, headers: { accept: 'application/octet-stream' } });
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
    const up = await w.octokit.repos.uploadReleaseAsset({ ...o, release_id: draft.id, url: draft.upload_url, name: 'a.json', data: 'a', headers: { 'content-type': 'application/json' } });
    const published = (await w.octokit.repos.updateRelease({ ...o, release_id: draft.id, draft: false })).data;
    expect(published).toMatchObject({ draft: false, immutable: true, assets: [expect.objectContaining({ name: 'a.json' })] });
    expect((await w.sim.sim.repo('octo/demo').git.refs()).has('refs/tags/agora-run-i1')).toBe(true);

    const refused = { status: 422, response: { data: { errors: [expect.objectContaining({ field: 'immutable' })] } } };
    await expect(
      w.octokit.repos.uploadReleaseAsset({ ...o, release_id: draft.id, url: draft.upload_url, name: 'b.json', data: 'b', headers: { 'content-type': 'application/json' } }),
    ).rejects.toMatchObject(refused);
    await expect(w.octokit.repos.deleteReleaseAsset({ ...o, asset_id: up.data.id })).rejects.toMatchObject(refused);
    await expect(w.octokit.repos.updateRelease({ ...o, release_id: draft.id, tag_name: 'moved' })).rejects.toMatchObject(refused);
    expect((await w.octokit.repos.updateRelease({ ...o, release_id: draft.id, body: 'notes may change' })).data.body).toBe('notes may change');
    // Published directly, a release is immutable at once.
    const direct = (await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-i2' })).data;
    expect(direct.immutable).toBe(true);
    expect(w.sim.contractViolations).toEqual([]);
  });
});
