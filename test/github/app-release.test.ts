import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPrivateKey } from '../../src/audit/keys.js';
import { verifyVerb } from '../../src/cli/audit.js';
import { RETRY_ACTION } from '../../src/github/agora-github.js';
import { publishRelease } from '../../src/github/run-release.js';
import { tempDir } from '../support/repo.js';
import { commandPlan, checkRuns, runReleases, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';

const ASSET_ROUTE = '/repos/{owner}/{repo}/releases/assets/{asset_id}';
const UPLOAD_ROUTE = '/repos/{owner}/{repo}/releases/{release_id}/assets';

type Bundle = {
  runId: string;
  root: string;
  state: string;
  items: Array<{ id: string; status: string; attempts: number }>;
  entries: Array<{ kind: string; itemId?: string; from?: string; to?: string; attempt?: number }>;
};

/** `agora verify <bundle> --key <app key> --run <run>` on the assets as downloaded: exit code and output. */
async function verifyAssets(w: AppWorld, runId: string, assets: Map<string, string>) {
  const dir = tempDir('agora-release-verify-');
  for (const [name, text] of assets) await writeFile(join(dir, name), text);
  const keyPath = join(dir, 'app.pub.pem');
  await writeFile(keyPath, (await loadPrivateKey((w.signer as { privateKeyPem: string }).privateKeyPem)).publicKeyPem);
  const out: string[] = [];
  const code = await verifyVerb(
    join(dir, `${runId}.audit.json`),
    { key: keyPath, run: runId },
    { tty: false, out: (t) => out.push(t), err: (t) => out.push(t) },
  );
  return { code, text: out.join('\n') };
}

describe('the run releases', () => {
  let w: AppWorld;
  const marker = join(tmpdir(), `agora-release-${randomUUID()}`);
  beforeAll(async () => {
    w = await startAppWorld({ sign: true });
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await rm(marker, { force: true });
  });

  it('with immutable releases on, a run and its Retry each publish their own release (draft, assets, then published); nothing is deleted; both verify; the gate is green', async () => {
    w.sim.setImmutableReleases(w.fullName, true);
    const flaky = `if [ -f ${marker} ]; then echo fixed > fixed.txt; else echo x > ${marker}; echo first try fails; exit 1; fi`;
    const text = commandPlan('relflaky', [{ id: 'flaky', run: flaky, locks: ['fixed.txt'] }]);
    const from = w.sim.requests.length;
    const sha = await w.sim.push(w.fullName, { branch: 'relflaky', files: { 'plan.json': text }, message: 'A flaky plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'relflaky', base: 'main', title: 'Flaky' });
    await w.quiesce();
    const runId = `relflaky-${sha.slice(0, 12)}`;
    const failed = (await checkRuns(w, sha)).get('agora / flaky')!;
    expect(failed.conclusion).toBe('failure');
    const before = await runReleases(w, runId);
    expect(before).toHaveLength(1);
    const first = JSON.parse(before[0]!.assets.get(`${runId}.audit.json`)!) as Bundle;
    expect(first.state).toBe('failed');
    expect(before[0]!.release).toMatchObject({ tag_name: `agora-run-${runId}-${first.root.slice(0, 12)}`, immutable: true, prerelease: true });
    expect([...before[0]!.assets.keys()].sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
    const firstGate = (await checkRuns(w, sha)).get('agora / audit')!;
    expect(firstGate.conclusion).toBe('failure');
    expect(firstGate.output.summary).toContain(before[0]!.release.html_url);
    expect(firstGate.output.summary).toContain('the run is failed: flaky failed');

    w.sim.clickCheckRunButton(w.fullName, failed.id, RETRY_ACTION.identifier, 'octo');
    await w.quiesce();

    const after = await runReleases(w, runId);
    expect(after).toHaveLength(2);
    // The first finish's release is untouched: same assets, same bytes.
    expect(after[0]!.release.id).toBe(before[0]!.release.id);
    expect(after[0]!.assets).toEqual(before[0]!.assets);
    const second = JSON.parse(after[1]!.assets.get(`${runId}.audit.json`)!) as Bundle;
    expect(second.state).toBe('done');
    expect(second.root).not.toBe(first.root);
    expect(after[1]!.release).toMatchObject({ tag_name: `agora-run-${runId}-${second.root.slice(0, 12)}`, immutable: true });
    expect([...after[1]!.assets.keys()].sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
    // The retry's transitions are in the second bundle: flaky leaves `failed` and a later attempt reaches `done`.
    const flakyEntries = second.entries.filter((e) => e.kind === 'item' && e.itemId === 'flaky');
    expect(flakyEntries.some((e) => e.from === 'failed')).toBe(true);
    expect(second.entries.length).toBeGreaterThan(first.entries.length);
    for (const { assets } of after) {
      const verified = await verifyAssets(w, runId, assets);
      expect(verified.text).toContain('signature');
      expect(verified.code, verified.text).toBe(0);
    }

    // Draft, upload, publish: no asset was ever deleted, and GitHub refused nothing.
    const releaseRequests = w.sim.requests.slice(from).filter((r) => r.route?.startsWith('/repos/{owner}/{repo}/releases'));
    expect(releaseRequests.filter((r) => r.method === 'DELETE')).toEqual([]);
    // (A lookup by tag before a release exists is a 404: not a refusal.)
    expect(releaseRequests.filter((r) => r.status >= 400 && !(r.status === 404 && r.route === '/repos/{owner}/{repo}/releases/tags/{tag}'))).toEqual([]);
    expect(releaseRequests.filter((r) => r.method === 'POST' && r.route === UPLOAD_ROUTE).map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);

    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    const gate = (await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')!;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(gate.output.summary).toContain(after[1]!.release.html_url);
    expect(gate.output.summary).toContain(`${second.entries.length} entries`);
    // Each release's report shows its finish: the first the failed try and a red gate, the second the retry and a green one.
    const pages = [before[0]!, after[1]!].map((r) => r.assets.get(`${runId}.report.html`)!);
    expect(pages[0]).toContain('<span id="gate-conclusion" class="verdict broken">failure</span>');
    expect(pages[1]).toContain('<span id="gate-conclusion" class="verdict intact">success</span>');
    for (const page of pages) expect(page).toContain('<code class="item-id">flaky</code>');
    // The gate and the run check `agora` link the report of the last finish, and its release.
    const reportUrl = after[1]!.release.assets.find((a) => a.name === `${runId}.report.html`)!.browser_download_url;
    const link = `[${runId}.report.html](${reportUrl}) in [its release](${after[1]!.release.html_url})`;
    expect(gate.output.summary).toContain(link);
    expect((await checkRuns(w, sha)).get('agora')!.output.summary).toContain(link);
    expect(w.sim.contractViolations).toEqual([]);
    expect(w.errors).toEqual([]);
    w.sim.setImmutableReleases(w.fullName, false);
  });

  it('publishing the same tag again uploads and deletes nothing; a draft left by an earlier try is completed and published; racing publishers leave one release', async () => {
    const main = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: 'heads/main' })).data.object.sha;
    const c = { octokit: w.octokit, owner: w.owner, repo: w.repo, target: main, title: 'Agora run unit', body: 'unit' };
    const tag = `agora-run-unit-${randomUUID().slice(0, 8)}`;
    const name = 'unit.audit.json';
    const count = (since: number) => {
      const rs = w.sim.requests.slice(since);
      return {
        del: rs.filter((r) => r.method === 'DELETE' && r.route === ASSET_ROUTE).length,
        up: rs.filter((r) => r.method === 'POST' && r.route === UPLOAD_ROUTE).length,
      };
    };
    const published = () => [...w.sim.sim.state.releases.values()].filter((r) => r.tagName === tag && !r.draft);

    let from = w.sim.requests.length;
    const out = await publishRelease(c, tag, [{ name, data: '{"v":1}\n' }]);
    expect(out).toMatchObject({ tag, assets: [name] });
    expect(count(from)).toEqual({ del: 0, up: 1 });
    from = w.sim.requests.length;
    await publishRelease(c, tag, [{ name, data: '{"v":2}\n' }]); // published: what it holds stands
    expect(count(from)).toEqual({ del: 0, up: 0 });
    // A companion file (the report) the published release lacks is neither added nor a difference.
    from = w.sim.requests.length;
    const again = await publishRelease(c, tag, [
      { name, data: '{"v":1}\n' },
      { name: 'unit.report.html', data: '<p>', contentType: 'text/html', companion: true },
    ]);
    expect(again).toMatchObject({ assets: [name], differs: [] });
    expect(count(from)).toEqual({ del: 0, up: 0 });
    expect(published().map((r) => r.assets.map((a) => a.data.toString()))).toEqual([['{"v":1}\n']]);

    // An earlier try left a draft with a half-written asset (same size, other bytes): it is replaced in the draft, then published.
    const tag2 = `${tag}-b`;
    const draft = (await w.octokit.rest.repos.createRelease({ owner: w.owner, repo: w.repo, tag_name: tag2, draft: true })).data;
    await w.octokit.rest.repos.uploadReleaseAsset({
      owner: w.owner,
      repo: w.repo,
      release_id: draft.id,
      url: draft.upload_url,
      name,
      data: '{"v":0}\n',
      headers: { 'content-type': 'application/json' },
    });
    from = w.sim.requests.length;
    const seen = w.sim.objectRequests.length;
    await publishRelease(c, tag2, [{ name, data: '{"v":3}\n' }]);
    expect(count(from)).toEqual({ del: 1, up: 1 });
    // Telling the bytes apart took a download, answered by the asset host, which got no credential.
    expect(w.sim.objectRequests.slice(seen).map((r) => [r.authorization, r.status])).toEqual([[false, 200]]);
    const rel2 = w.sim.sim.state.releases.get(draft.id)!;
    expect({ draft: rel2.draft, data: rel2.assets.map((a) => a.data.toString()) }).toEqual({ draft: false, data: ['{"v":3}\n'] });

    // Two writers of one tag at once: one release is published, holding one of the two.
    const tag3 = `${tag}-c`;
    const datas = ['{"replica":"a"}\n', '{"replica":"bb"}\n'];
    await Promise.all(datas.map((data) => publishRelease(c, tag3, [{ name, data }])));
    const final = [...w.sim.sim.state.releases.values()].filter((r) => r.tagName === tag3 && !r.draft);
    expect(final).toHaveLength(1);
    expect(datas).toContain(final[0]!.assets.map((a) => a.data.toString())[0]);
    expect(w.sim.contractViolations).toEqual([]);
  });

  it('a published release of the tag without the file is never added to: it is reported as foreign, lacking the file, with no upload tried', async () => {
    w.sim.setImmutableReleases(w.fullName, true);
    try {
      const main = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: 'heads/main' })).data.object.sha;
      const tag = `agora-run-imm-${randomUUID().slice(0, 8)}`;
      await w.octokit.rest.repos.createRelease({ owner: w.owner, repo: w.repo, tag_name: tag, target_commitish: main }); // published empty, immutable
      const from = w.sim.requests.length;
      const c = { octokit: w.octokit, owner: w.owner, repo: w.repo, target: main, title: 't', body: 'b' };
      const published = await publishRelease(c, tag, [{ name: 'x.audit.json', data: '{}' }]);
      expect(published).toMatchObject({ tag, foreign: true, differs: ['x.audit.json'], assets: [] });
      expect(w.sim.requests.slice(from).filter((r) => r.method === 'POST' && r.route === UPLOAD_ROUTE)).toEqual([]);
    } finally {
      w.sim.setImmutableReleases(w.fullName, false);
    }
  });
});
