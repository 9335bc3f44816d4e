import { afterAll, describe, expect, it } from 'vitest';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { generateSigningKey } from '../../src/audit/keys.js';
import { finishAudit } from '../../src/github/audit-release.js';
import { releaseTag } from '../../src/github/run-release.js';
import { cleanupTempDirs } from '../support/repo.js';
import { checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { finishedRun as finishedRunOn } from './finished-run.js';

/**
 * A finish whose release cannot be written (issue 13, item 2): the repository has immutable releases on
 * and an immutable release already holds the bundle's tag without the bundle. Nothing is added to a
 * published release; the gate is completed red, naming the release, instead of a finish retried until
 * it gives up. Real parts: a finished
 * local run and the app's installation client against the GitHub simulator.
 */

let w: AppWorld | undefined;
afterAll(async () => {
  await w?.close();
  cleanupTempDirs();
});

/** A finished run on a world whose repository has immutable releases on. */
async function finishedRun(id: string) {
  const world = (w ??= await startAppWorld());
  world.sim.setImmutableReleases(world.fullName, true);
  return { w: world, ...(await finishedRunOn(world, id)) };
}

describe('the audit gate when the release cannot be written', () => {
  it('is completed red when the tag is published without the bundle, naming the release, and nothing is added to it', async () => {
    const { w, store, refs, run, gateSha } = await finishedRun('imm');
    const tag = releaseTag('imm-1', (await buildAuditBundle(store, refs, 'imm-1')).root);
    // Someone published the tag first, empty: with immutable releases no asset can be added to it.
    await w.octokit.rest.repos.createRelease({ owner: w.owner, repo: w.repo, tag_name: tag, target_commitish: gateSha });

    const outcome = await finishAudit({
      octokit: w.octokit,
      owner: w.owner,
      repo: w.repo,
      htmlUrl: 'http://example.invalid',
      store,
      refs,
      run,
      gateSha,
      clock: Date.now,
    });
    expect(outcome.conclusion).toBe('failure');
    expect(outcome.releaseUrl).toBeNull();
    const gate = (await checkRuns(w, gateSha)).get('agora / audit') as
      { status: string; conclusion: string; output: { title: string; summary: string } } | undefined;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure', output: { title: expect.stringMatching(/^Not audited: /) } });
    expect(gate!.output.summary).toContain(`release ${tag} is published without this bundle's imm-1.audit.json`);
    expect(gate!.output.summary).toContain('Agora never changes a published release');
    expect(gate!.output.summary).toContain('Release: not published.');
    const rel = (await w.octokit.rest.repos.getReleaseByTag({ owner: w.owner, repo: w.repo, tag })).data;
    expect(rel.assets).toEqual([]);
    expect(w.sim.requests.filter((r) => r.route === '/repos/{owner}/{repo}/releases/{release_id}/assets' && r.method === 'POST')).toEqual([]);
    expect(w.sim.contractViolations).toEqual([]);
  });

  it('a finish tried again after it published finds its own release: nothing uploaded or deleted, the published bytes (fetched from the asset host without credentials) are what the gate checks', async () => {
    const { w, store, refs, run, gateSha } = await finishedRun('again');
    const args = {
      octokit: w.octokit,
      owner: w.owner,
      repo: w.repo,
      htmlUrl: 'http://example.invalid',
      store,
      refs,
      run,
      gateSha,
      clock: Date.now,
      signer: { kind: 'key' as const, privateKeyPem: generateSigningKey().privateKeyPem },
    };

    const first = await finishAudit(args);
    expect(first.releaseUrl).not.toBeNull();
    const from = w.sim.requests.length;
    const seen = w.sim.objectRequests.length;
    const again = await finishAudit(args);
    expect(again.releaseUrl).toBe(first.releaseUrl);
    expect(again.conclusion).toBe(first.conclusion);
    const writes = w.sim.requests.slice(from).filter((r) => r.route?.startsWith('/repos/{owner}/{repo}/releases') && r.method !== 'GET');
    expect(writes).toEqual([]);
    // Both assets were read from the asset host, and no credential went there.
    expect(w.sim.objectRequests.slice(seen).map((r) => [r.authorization, r.status])).toEqual([
      [false, 200],
      [false, 200],
    ]);
    const gates = (await w.octokit.rest.checks.listForRef({ owner: w.owner, repo: w.repo, ref: gateSha, check_name: 'agora / audit', filter: 'all' })).data
      .check_runs;
    expect(gates).toHaveLength(2);
    for (const g of gates) expect(g.output.summary).toContain("Signed with the app's key");
    expect(gates[0]!.output.summary).toContain(first.releaseUrl!);
    expect(gates[1]!.output.summary).toContain(first.releaseUrl!);
    expect(w.sim.contractViolations).toEqual([]);
  });
});
