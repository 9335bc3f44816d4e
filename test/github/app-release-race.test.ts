import { afterAll, describe, expect, it } from 'vitest';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { generateSigningKey } from '../../src/audit/keys.js';
import { finishAudit, type AuditArgs } from '../../src/github/audit-release.js';
import { ReleaseRefused, releaseTag } from '../../src/github/run-release.js';
import { cleanupTempDirs } from '../support/repo.js';
import { checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { finishedRun } from './finished-run.js';

/**
 * Two writers of one release (replicas finishing the same run): the simulator's `beforeRequest` hook lets
 * the other writer act at exactly the moment that matters. A race is never a refusal (the finish is tried
 * again and goes on), the loser never adds to the winner's release and deletes its own draft, and its gate
 * checks the bytes that were published.
 */

const UPLOAD = '/repos/{owner}/{repo}/releases/{release_id}/assets';
const RELEASE = '/repos/{owner}/{repo}/releases/{release_id}';

let w: AppWorld | undefined;
afterAll(async () => {
  await w?.close();
  cleanupTempDirs();
});

async function world(): Promise<AppWorld> {
  // Creating 100 releases is more than GitHub's 80 content-creating requests a minute.
  return (w ??= await startAppWorld({ limits: { contentCreationPerMinute: 10_000, contentCreationPerHour: 10_000 } }));
}

async function finishArgs(
  w: AppWorld,
  id: string,
  signer = { kind: 'key' as const, privateKeyPem: generateSigningKey().privateKeyPem },
): Promise<AuditArgs & { gateSha: string }> {
  const { store, refs, run, gateSha } = await finishedRun(w, id);
  // With the run report: each writer renders its own (at another moment, so other bytes), a companion never compared.
  return {
    octokit: w.octokit,
    owner: w.owner,
    repo: w.repo,
    htmlUrl: 'http://example.invalid',
    store,
    refs,
    run,
    gateSha,
    clock: Date.now,
    signer,
    report: { config: { subagents: {} }, environment: {} },
  };
}

async function releasesOf(w: AppWorld, tag: string) {
  const all = await w.octokit.paginate(w.octokit.rest.repos.listReleases, { owner: w.owner, repo: w.repo, per_page: 100 });
  return all.filter((r) => r.tag_name === tag);
}

/**
 * The problems of a finish about its release or the bundle's bytes and signature. (A finished local run's
 * patches are not on the branch the gate is about, so the gate is red for that reason in every test here.)
 */
function releaseProblems(o: { problems: string[] }): string[] {
  return o.problems.filter((p) => /release|publish|sign|^audit /.test(p));
}

async function gates(w: AppWorld, sha: string) {
  return (await w.octokit.rest.checks.listForRef({ owner: w.owner, repo: w.repo, ref: sha, check_name: 'agora / audit', filter: 'all' })).data.check_runs;
}

describe('racing writers of one release', () => {
  it('an upload race that outlasts the asset retries is no refusal: no red gate, and the finish tried again publishes', async () => {
    const w = await world();
    const args = await finishArgs(w, 'upl');
    // Another writer uploads the same asset name, with other bytes, just before each of ours (5 times: as
    // many as one finish tries); its own requests pass through.
    let raced = 0;
    let inHook = false;
    w.sim.setFaults({
      beforeRequest: async (r) => {
        if (inHook || r.method !== 'POST' || r.route !== UPLOAD || raced >= 5) return;
        inHook = true;
        raced += 1;
        try {
          const rel = (await w.octokit.rest.repos.getRelease({ owner: w.owner, repo: w.repo, release_id: Number(r.params.release_id) })).data;
          await w.octokit.rest.repos.uploadReleaseAsset({
            owner: w.owner,
            repo: w.repo,
            release_id: rel.id,
            url: rel.upload_url,
            name: 'upl-1.audit.json',
            data: `{"other": ${raced}}`,
          });
        } finally {
          inHook = false;
        }
      },
    });
    try {
      const first = await finishAudit(args).then(
        (o) => o,
        (e: unknown) => e,
      );
      expect(first).toBeInstanceOf(Error);
      expect(first).not.toBeInstanceOf(ReleaseRefused);
      expect(await gates(w, args.gateSha)).toEqual([]); // no red gate for a race
      expect(raced).toBe(5);
      const again = await finishAudit(args);
      expect(releaseProblems(again)).toEqual([]);
      expect(again.releaseUrl).not.toBeNull();
      expect((await checkRuns(w, args.gateSha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: again.conclusion });
    } finally {
      w.sim.setFaults({});
    }
    expect(w.sim.contractViolations).toEqual([]);
  });

  it.each([
    ['before it creates its draft (each writes its own draft)', 'pub', 'POST', '/repos/{owner}/{repo}/releases'],
    ['before it publishes its draft (the other finds that draft, replaces its files and publishes it)', 'shared', 'PATCH', RELEASE],
  ])(
    'the writer that loses the publish race, %s, leaves no draft, adds nothing to the published release, and its gate checks the published bytes',
    async (_when, id, method, route) => {
      const w = await world();
      const args = await finishArgs(w, id);
      const tag = releaseTag(`${id}-1`, (await buildAuditBundle(args.store, args.refs, `${id}-1`)).root);
      // At that moment another replica (same key, so another signature of the same root) finishes the same
      // run completely and publishes the tag.
      let winner: Awaited<ReturnType<typeof finishAudit>> | undefined;
      let inHook = false;
      let hookError: unknown;
      let hookDone: Promise<void> | undefined;
      w.sim.setFaults({
        beforeRequest: (r) => {
          if (inHook || winner || r.method !== method || r.route !== route) return;
          inHook = true;
          hookDone = finishAudit(args).then(
            (o) => {
              winner = o;
            },
            (e: unknown) => {
              hookError = e;
            },
          );
          return hookDone.finally(() => {
            inHook = false;
          });
        },
      });
      let loser: Awaited<ReturnType<typeof finishAudit>>;
      const from = w.sim.requests.length;
      try {
        loser = await finishAudit(args);
      } finally {
        w.sim.setFaults({});
      }
      // On a loaded machine the loser's request can outlast its client and be sent again past the hook:
      // the other writer's finish is then still under way when the loser's ends. Judge both once both ended.
      await hookDone;
      expect(hookError).toBeUndefined();
      // The other writer runs inside the loser's first request of that kind: a finish that never sent one
      // (it did not get as far as its release) says why in its problems.
      expect(winner, `the loser never sent ${method} ${route}: ${JSON.stringify(loser)}`).toBeDefined();
      expect(releaseProblems(winner!)).toEqual([]);
      expect(releaseProblems(loser)).toEqual([]);
      expect(loser.releaseUrl).toBe(winner!.releaseUrl);
      // One report in the release, the one both gates link, whichever writer's it is.
      expect(winner!.reportUrl).not.toBeNull();
      expect(loser.reportUrl).toBe(winner!.reportUrl);
      const rels = await releasesOf(w, tag);
      expect(rels.map((r) => r.draft)).toEqual([false]); // the loser's draft is gone
      const published = rels[0]!;
      expect(published.assets.map((a) => a.name).sort()).toEqual([`${id}-1.audit.json`, `${id}-1.audit.sigstore.json`, `${id}-1.report.html`]);
      // Nothing was uploaded to the published release after it was published (the winner's uploads came first).
      const publishedAt = w.sim.requests.findIndex(
        (r, i) => i >= from && r.method === 'PATCH' && r.route === RELEASE && r.path.endsWith(`/${published.id}`) && r.status === 200,
      );
      expect(publishedAt).toBeGreaterThan(-1);
      expect(w.sim.requests.slice(publishedAt + 1).filter((r) => r.method === 'POST' && r.route === UPLOAD && r.path.includes(`/${published.id}/`))).toEqual(
        [],
      );
      // The loser's gate says it lost, and describes the published bytes: its root, checked against the winner's signature.
      const all = await gates(w, args.gateSha);
      expect(all).toHaveLength(2);
      const loserGate = all.find((g) => g.output.summary?.includes('Another writer published release'));
      expect(loserGate).toMatchObject({ conclusion: loser.conclusion });
      expect(loserGate!.output.summary).toContain(`\`${tag}\``);
      expect(loserGate!.output.summary).toContain("Signed with the app's key");
      expect(w.sim.contractViolations).toEqual([]);
    },
  );

  it("an earlier try's draft behind more than 100 newer releases is found and completed, not written again", async () => {
    const w = await world();
    const args = await finishArgs(w, 'old');
    const tag = releaseTag('old-1', (await buildAuditBundle(args.store, args.refs, 'old-1')).root);
    const o = { owner: w.owner, repo: w.repo };
    // An earlier try got as far as its draft; 100 releases were published since (the list is newest first).
    const draft = (await w.octokit.rest.repos.createRelease({ ...o, tag_name: tag, target_commitish: args.gateSha, draft: true, prerelease: true })).data;
    for (let i = 0; i < 100; i += 1) await w.octokit.rest.repos.createRelease({ ...o, tag_name: `other-${i}`, target_commitish: args.gateSha });
    const outcome = await finishAudit(args);
    expect(releaseProblems(outcome)).toEqual([]);
    const rels = await releasesOf(w, tag);
    expect(rels.map((r) => [r.id, r.draft])).toEqual([[draft.id, false]]);
    expect(w.sim.contractViolations).toEqual([]);
  });
});
