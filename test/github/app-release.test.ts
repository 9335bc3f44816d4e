import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RETRY_ACTION } from '../../src/github/agora-github.js';
import { publishRelease } from '../../src/github/audit-release.js';
import { commandPlan, checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';

const ASSET_ROUTE = '/repos/{owner}/{repo}/releases/assets/{asset_id}';

/** The release's assets as the API lists them, and each one's bytes downloaded through the API. */
async function releaseAssets(w: AppWorld, tag: string) {
  const rel = (await w.octokit.rest.repos.getReleaseByTag({ owner: w.owner, repo: w.repo, tag })).data;
  const listed = (await w.octokit.rest.repos.listReleaseAssets({ owner: w.owner, repo: w.repo, release_id: rel.id, per_page: 100 })).data;
  const out: Array<{ id: number; name: string; text: string }> = [];
  for (const a of listed) {
    const dl = await w.octokit.request(`GET ${ASSET_ROUTE}`, { owner: w.owner, repo: w.repo, asset_id: a.id, headers: { accept: 'application/octet-stream' } });
    out.push({ id: a.id, name: a.name, text: Buffer.from(dl.data as unknown as ArrayBuffer).toString('utf8') });
  }
  return out;
}

type Bundle = {
  runId: string;
  state: string;
  items: Array<{ id: string; status: string; attempts: number }>;
  entries: Array<{ kind: string; itemId?: string; from?: string; to?: string; attempt?: number }>;
};

describe('the run release after a retry', () => {
  let w: AppWorld;
  const marker = join(tmpdir(), `agora-release-${randomUUID()}`);
  beforeAll(async () => {
    w = await startAppWorld({ sign: true });
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await rm(marker, { force: true });
  });

  it('carries the second finish’s bundle (replacing the first), one asset of each name, and the gate is green', async () => {
    const flaky = `if [ -f ${marker} ]; then echo fixed > fixed.txt; else echo x > ${marker}; echo first try fails; exit 1; fi`;
    const text = commandPlan('relflaky', [{ id: 'flaky', run: flaky, locks: ['fixed.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'relflaky', files: { 'plan.json': text }, message: 'A flaky plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'relflaky', base: 'main', title: 'Flaky' });
    await w.quiesce();
    const failed = (await checkRuns(w, sha)).get('agora / flaky')!;
    expect(failed.conclusion).toBe('failure');
    const rel = w.sim.sim.state.releases;
    const tag = [...rel.values()].map((r) => r.tagName).find((t) => t.startsWith('agora-run-relflaky-'))!;
    expect(tag).toBeDefined();
    const runId = tag.slice('agora-run-'.length);
    const before = await releaseAssets(w, tag);
    expect(before.map((a) => a.name).sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`]);
    const first = JSON.parse(before.find((a) => a.name === `${runId}.audit.json`)!.text) as Bundle;
    expect(first.state).toBe('failed');

    const from = w.sim.requests.length;
    w.sim.clickCheckRunButton(w.fullName, failed.id, RETRY_ACTION.identifier, 'octo');
    await w.quiesce();

    const after = await releaseAssets(w, tag);
    const names = after.map((a) => a.name);
    expect(names.sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`]); // exactly one of each
    const second = JSON.parse(after.find((a) => a.name === `${runId}.audit.json`)!.text) as Bundle;
    expect(second.runId).toBe(runId);
    expect(second.state).toBe('done');
    expect(second.items.find((i) => i.id === 'flaky')).toMatchObject({ status: 'done' });
    // The retry's transitions are in the published log: flaky leaves `failed`, and a later attempt reaches `done`.
    const flakyEntries = second.entries.filter((e) => e.kind === 'item' && e.itemId === 'flaky');
    expect(flakyEntries.some((e) => e.from === 'failed')).toBe(true);
    expect(flakyEntries.find((e) => e.to === 'done')!.attempt).toBeGreaterThan(Math.max(...first.entries.filter((e) => e.kind === 'item' && e.itemId === 'flaky').map((e) => e.attempt ?? 0)));
    expect(second.entries.length).toBeGreaterThan(first.entries.length);
    // Both assets changed (the signature covers the new bundle), so both were replaced: 2 deletes, 2 uploads.
    const touched = w.sim.requests.slice(from).filter((r) => r.route === ASSET_ROUTE || r.route === '/repos/{owner}/{repo}/releases/{release_id}/assets');
    expect(touched.filter((r) => r.method === 'DELETE').map((r) => r.status)).toEqual([204, 204]);
    expect(touched.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([201, 201]);

    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    const gate = (await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')!;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(gate.output.summary).toContain(`${second.entries.length} entries`);
    expect(w.sim.contractViolations).toEqual([]);
    expect(w.errors).toEqual([]);
  });

  it('publishing identical bytes again deletes nothing; different bytes replace the asset; racing publishers leave one asset', async () => {
    const main = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: 'heads/main' })).data.object.sha;
    const a = { octokit: w.octokit, owner: w.owner, repo: w.repo, gateSha: main, run: { runId: `unit-${randomUUID().slice(0, 8)}`, state: { status: 'done' } } };
    const tag = `agora-run-${a.run.runId}`;
    const name = `${a.run.runId}.audit.json`;
    const count = (since: number) => {
      const rs = w.sim.requests.slice(since);
      return {
        del: rs.filter((r) => r.method === 'DELETE' && r.route === ASSET_ROUTE).length,
        up: rs.filter((r) => r.method === 'POST' && r.route === '/repos/{owner}/{repo}/releases/{release_id}/assets').length,
      };
    };

    let from = w.sim.requests.length;
    const out = await publishRelease(a, [{ name, data: '{"v":1}\n' }]);
    expect(out.assets).toEqual([name]);
    expect(count(from)).toEqual({ del: 0, up: 1 });
    const id1 = (await releaseAssets(w, tag))[0]!.id;

    from = w.sim.requests.length;
    await publishRelease(a, [{ name, data: '{"v":1}\n' }]);
    expect(count(from)).toEqual({ del: 0, up: 0 });
    expect((await releaseAssets(w, tag)).map((x) => [x.id, x.text])).toEqual([[id1, '{"v":1}\n']]);

    // Same size, different bytes: found only by comparing the content.
    from = w.sim.requests.length;
    await publishRelease(a, [{ name, data: '{"v":2}\n' }]);
    expect(count(from)).toEqual({ del: 1, up: 1 });
    expect((await releaseAssets(w, tag)).map((x) => x.text)).toEqual(['{"v":2}\n']);

    // Two replicas at once with different bytes: the loser's upload is refused (422), it re-reads and replaces.
    from = w.sim.requests.length;
    const datas = ['{"replica":"a"}\n', '{"replica":"bb"}\n'];
    await Promise.all(datas.map((data) => publishRelease(a, [{ name, data }])));
    const final = await releaseAssets(w, tag);
    expect(final.map((x) => x.name)).toEqual([name]);
    expect(datas).toContain(final[0]!.text);
    expect(w.sim.contractViolations).toEqual([]);
  });
});
