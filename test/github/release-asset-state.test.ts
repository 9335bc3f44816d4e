import type { Octokit as RestOctokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishedBundle } from '../../src/github/published-bundle.js';
import { publishRelease, releaseTag } from '../../src/github/run-release.js';
import { scaled } from '../support/eventually.js';
import { startAppWorld, type AppWorld } from './app-world.js';

/**
 * A release asset whose upload did not complete is listed by GitHub with the bytes it has but a state
 * other than `uploaded`: it is never taken for the bundle. The simulator stands for such an upload by
 * setting the asset's state in its domain model (its API then lists it as `open`, the value GitHub's
 * OpenAPI description gives).
 */
describe('release assets that are not fully uploaded', () => {
  let w: AppWorld;
  let target: string;
  const BUNDLE = '{"format":"agora.audit/v2","note":"the bytes of a bundle"}\n';

  beforeAll(async () => {
    w = await startAppWorld();
    target = await w.sim.push(w.fullName, { branch: 'releases', files: { 'notes.txt': 'released\n' }, message: 'A commit to tag' });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  /** A release of `tag` holding `name` with BUNDLE's bytes, the asset's upload left unfinished. */
  async function releaseWithUnfinishedAsset(tag: string, name: string, draft: boolean) {
    const o = { owner: w.owner, repo: w.repo };
    const rel = (await w.octokit.rest.repos.createRelease({ ...o, tag_name: tag, target_commitish: target, draft: true, prerelease: true })).data;
    const asset = (
      await w.octokit.rest.repos.uploadReleaseAsset({
        ...o,
        release_id: rel.id,
        url: rel.upload_url,
        name,
        data: BUNDLE,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BUNDLE) },
      })
    ).data;
    if (!draft) await w.octokit.rest.repos.updateRelease({ ...o, release_id: rel.id, draft: false });
    w.sim.sim.state.assets.get(asset.id)!.state = 'open';
    return { releaseId: rel.id, assetId: asset.id };
  }

  it('a published bundle asset still uploading is no bundle: verify and gc read "no uploaded asset", and read it once it is uploaded', async () => {
    const root = 'ab'.repeat(32);
    const tag = releaseTag('half-1', root);
    const { assetId } = await releaseWithUnfinishedAsset(tag, 'half-1.audit.json', false);
    const found = await publishedBundle(w.octokit as unknown as RestOctokit, w.fullName, 'half-1', root);
    expect(found).toEqual({ ok: false, pending: false, problem: `release ${tag} has no uploaded asset half-1.audit.json` });
    w.sim.sim.state.assets.get(assetId)!.state = 'uploaded';
    expect(await publishedBundle(w.octokit as unknown as RestOctokit, w.fullName, 'half-1', root)).toMatchObject({ ok: true, bundle: BUNDLE });
  });

  it("an earlier try's draft with the right bytes in an unfinished asset: the asset is uploaded again before the draft is published", async () => {
    const tag = releaseTag('half-2', 'cd'.repeat(32));
    const { releaseId, assetId } = await releaseWithUnfinishedAsset(tag, 'half-2.audit.json', true);
    const out = await publishRelease({ octokit: w.octokit, owner: w.owner, repo: w.repo, target, title: 'half-2', body: 'audit', draftsSince: 0 }, tag, [
      { name: 'half-2.audit.json', data: BUNDLE },
    ]);
    expect(out).toMatchObject({ tag, foreign: false, differs: [], assets: ['half-2.audit.json'] });
    const rel = (await w.octokit.rest.repos.getRelease({ owner: w.owner, repo: w.repo, release_id: releaseId })).data;
    expect(rel.draft).toBe(false);
    expect(rel.assets.map((a) => [a.name, a.state, a.id === assetId])).toEqual([['half-2.audit.json', 'uploaded', false]]);
  });

  it('a published release whose asset has the right bytes but is unfinished does not hold the bundle: it is reported as differing', async () => {
    const tag = releaseTag('half-3', 'ef'.repeat(32));
    await releaseWithUnfinishedAsset(tag, 'half-3.audit.json', false);
    const out = await publishRelease({ octokit: w.octokit, owner: w.owner, repo: w.repo, target, title: 'half-3', body: 'audit', draftsSince: 0 }, tag, [
      { name: 'half-3.audit.json', data: BUNDLE },
    ]);
    expect(out).toMatchObject({ tag, foreign: true, differs: ['half-3.audit.json'] });
    expect(w.sim.contractViolations).toEqual([]);
  });
});
