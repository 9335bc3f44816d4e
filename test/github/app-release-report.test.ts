import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/audit/keys.js';
import { finishAudit, type AuditArgs } from '../../src/github/audit-release.js';
import { cleanupTempDirs } from '../support/repo.js';
import { checkRuns, runReleases, startAppWorld, type AppWorld } from './app-world.js';
import { finishedRun } from './finished-run.js';

/**
 * The run report as the third asset of a finish's release (issue 19): rendered from the finish's store
 * with the gate's verdict, uploaded with the draft, linked from the gate and the run check's note; not
 * evidence, so a finish tried again, or one that finds a release published without a report, uploads
 * nothing and keeps its gate, and a report that cannot be made leaves the bundle and the gate as they
 * were. Real parts: finished local runs and the app's installation client against the GitHub simulator,
 * assets downloaded from its asset host.
 */

let world: AppWorld | undefined;
afterAll(async () => {
  await world?.close();
  cleanupTempDirs();
});

const RELEASE_WRITES = (w: AppWorld, from: number) =>
  w.sim.requests.slice(from).filter((r) => r.route?.startsWith('/repos/{owner}/{repo}/releases') && r.method !== 'GET');
const signer = { kind: 'key' as const, privateKeyPem: generateSigningKey().privateKeyPem };

async function finished(id: string, report: AuditArgs['report'] | undefined) {
  const w = (world ??= await startAppWorld());
  // The gate on the integration head, as after the patches landed on the branch: green when all is well.
  const { store, refs, run, landedSha: gateSha } = await finishedRun(w, id);
  const args: AuditArgs = {
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
    ...(report ? { report } : {}),
  };
  return { w, args, runId: run.runId, gateSha };
}

async function gateOn(w: AppWorld, sha: string) {
  return (await checkRuns(w, sha)).get('agora / audit') as { conclusion: string; output: { summary: string } };
}

const source = { config: { subagents: {} }, environment: {} };

describe('the run report in the release', () => {
  it('is the third asset, the HTML of the run with the gate verdict; gate and note link it and the release; a second finish uploads nothing and stays as it was', async () => {
    const { w, args, runId, gateSha } = await finished('rep', source);
    const outcome = await finishAudit(args);

    const [rel] = await runReleases(w, runId);
    expect([...rel!.assets.keys()].sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
    const asset = rel!.release.assets.find((a) => a.name === `${runId}.report.html`)!;
    expect(asset.content_type).toBe('text/html');
    const page = rel!.assets.get(`${runId}.report.html`)!;
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain(`Run <code>${runId}</code>`);
    expect(page).toContain('<code class="item-id">a</code>');
    expect(page).toContain('a.txt'); // its patch's diff
    // The verdict it shows is the gate's.
    const gate = await gateOn(w, gateSha);
    expect(page).toContain(`<span id="gate-conclusion" class="verdict ${gate.conclusion === 'success' ? 'intact' : 'broken'}">${gate.conclusion}</span>`);
    expect(gate.conclusion).toBe(outcome.conclusion);
    expect(outcome.conclusion).toBe('success');

    expect(outcome.reportUrl).toBe(asset.browser_download_url);
    const link = `[${runId}.report.html](${asset.browser_download_url})`;
    expect(gate.output.summary).toContain(link);
    expect(gate.output.summary).toContain(`in [its release](${rel!.release.html_url})`);
    expect(outcome.note).toContain(link);

    // A second finish (a retry of the same finish): nothing written to the release, the same gate and link.
    const from = w.sim.requests.length;
    const again = await finishAudit(args);
    expect(RELEASE_WRITES(w, from)).toEqual([]);
    expect(again.conclusion).toBe(outcome.conclusion);
    expect(again.reportUrl).toBe(asset.browser_download_url);
    expect((await gateOn(w, gateSha)).output.summary).toContain(link);
    expect(w.sim.contractViolations).toEqual([]);
  });

  it('a report that cannot be made (a render error, too large) leaves the bundle and a green gate, saying why; a later finish of that release adds none and keeps the gate', async () => {
    // A report whose rendering throws: the release is published without it and the gate is green, saying why.
    const unreadable = {
      environment: {},
      config: {
        get subagents(): never {
          throw new Error('the config cannot be read');
        },
      },
    };
    const first = await finished('bare', unreadable);
    const bare = await finishAudit(first.args);
    expect(bare.reportUrl).toBeNull();
    expect(bare.conclusion).toBe('success');
    expect([...(await runReleases(first.w, first.runId))[0]!.assets.keys()].sort()).toEqual([
      `${first.runId}.audit.json`,
      `${first.runId}.audit.sigstore.json`,
    ]);
    expect((await gateOn(first.w, first.gateSha)).output.summary).toContain('Run report: not attached to [its release]');
    expect(bare.note).toContain('the report could not be rendered: the config cannot be read');
    // A later finish of the same bundle finds the release published without a report: it adds none.
    const from = first.w.sim.requests.length;
    const later = await finishAudit({ ...first.args, report: source });
    expect(RELEASE_WRITES(first.w, from)).toEqual([]);
    expect(later.conclusion).toBe(bare.conclusion);
    expect(later.reportUrl).toBeNull();
    expect((await gateOn(first.w, first.gateSha)).output.summary).toContain('holds none');

    // A report over the limit: the bundle is published as without one, the gate's conclusion is the same.
    const big = await finished('big', { ...source, maxBytes: 1000 });
    const outcome = await finishAudit(big.args);
    expect(outcome.conclusion).toBe(bare.conclusion);
    const [rel] = await runReleases(big.w, big.runId);
    expect([...rel!.assets.keys()].sort()).toEqual([`${big.runId}.audit.json`, `${big.runId}.audit.sigstore.json`]);
    const gate = await gateOn(big.w, big.gateSha);
    expect(gate.conclusion).toBe(bare.conclusion);
    expect(gate.output.summary).toMatch(/Run report: not attached to \[its release\]\(.*\): the report is \d+ bytes, over the App's limit of 1000 bytes/);
    expect(outcome.note).toContain("over the App's limit of 1000 bytes");
    expect(big.w.sim.contractViolations).toEqual([]);
  });
});
