import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPrivateKey } from '../../src/audit/keys.js';
import { node24 } from '@agora/github-sim/actions/node24';
import { scaled } from '../support/eventually.js';
import { appManifest } from '../github/app-manifest.js';
import { checkRuns, examplePlan, runBound, startAppWorld, until, type AppWorld } from '../github/app-world.js';

/**
 * `mode: verify` as a user runs it: the App drives the offload-fanout plan of a pull request on the
 * simulator and publishes its signed audit bundle; the repository's pull_request workflow is
 * examples/workflows/agora-verify.yml as shipped, whose step `uses: agora-orchestrator/agora/action@v1`
 * runs the committed action/dist under Node 24 on a simulated runner. Green on the audited head; red on
 * a tampered bundle and on a human commit after the patches, with a job summary naming why.
 */
const ACTION_REPO = { owner: 'agora-orchestrator', name: 'agora' };

describe('the Agora Action, mode: verify, on a pull request', () => {
  let w: AppWorld;
  let head: string;
  beforeAll(async () => {
    await node24();
    // The installation's client reads (and re-runs) workflow runs as a user would: actions: write on top of the App's grant.
    w = await startAppWorld({ sign: true, permissions: { ...appManifest().permissions, actions: 'write' } });
    // The Action as a user references it: action/ of agora-orchestrator/agora at v1.
    const files: Record<string, string> = {};
    for (const f of ['action.yml', 'dist/index.js', 'dist/package.json']) files[`action/${f}`] = await readFile(join('action', f), 'utf8');
    const actionRepo = await w.sim.createRepo(ACTION_REPO.owner, ACTION_REPO.name, files);
    await w.sim.push(actionRepo.fullName, { branch: 'v1', files: {}, message: 'v1' });
    // The repository adopts the gate: the example workflow, and the App's public key on the base branch.
    const publicKeyPem = (await loadPrivateKey((w.signer as { privateKeyPem: string }).privateKeyPem)).publicKeyPem;
    await w.sim.push(w.fullName, {
      branch: 'main',
      files: {
        '.github/workflows/agora-verify.yml': await readFile('examples/workflows/agora-verify.yml', 'utf8'),
        '.github/agora-signing.pub.pem': publicKeyPem,
      },
      message: 'Require the Agora audit',
    });
    w.sim.addRunner({ labels: ['ubuntu-latest'], name: 'runner-1' });
    await w.sim.push(w.fullName, { branch: 'run-fanout', files: { 'plan.json': await examplePlan() }, message: 'Add the fan-out plan' });
    await w.sim.openPullRequest(w.fullName, { head: 'run-fanout', base: 'main', title: 'Fan out' });
    await until(
      'the audit gate on the patched head',
      async () => {
        head = (await w.sim.sim.repo(w.fullName).git.resolve('refs/heads/run-fanout', 'commit'))!;
        return (await checkRuns(w, head)).get('agora / audit')?.status === 'completed';
      },
      w,
      runBound(4, 2),
    );
    await w.quiesce();
  }, scaled(300_000));
  afterAll(async () => w?.close());

  const workflowRuns = async (sha: string) =>
    (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', { owner: w.owner, repo: w.repo })).data.workflow_runs.filter(
      (r) => r.head_sha === sha && r.path === '.github/workflows/agora-verify.yml',
    );
  /** The verify job of the workflow run for `sha` once its `attempt` completed: conclusion, summary, log. */
  const verifyJob = async (sha: string, attempt = 1) => {
    let run: Awaited<ReturnType<typeof workflowRuns>>[number] | undefined;
    await until(
      `the agora-verify run of ${sha.slice(0, 12)} (attempt ${attempt}) to complete`,
      async () => {
        run = (await workflowRuns(sha)).find((r) => r.run_attempt === attempt && r.status === 'completed');
        return run !== undefined;
      },
      w,
      120_000,
    );
    const jobs = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { owner: w.owner, repo: w.repo, run_id: Number(run!.id) }))
      .data.jobs;
    const job = jobs[0]!;
    const log = String(
      (await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { owner: w.owner, repo: w.repo, job_id: Number(job.id) })).data,
    );
    return { run: run!, conclusion: job.conclusion, summary: w.sim.sim.actions.jobs.get(Number(job.id))!.summary, log };
  };

  it(
    'is green on the audited head: the signed bundle verifies and every commit after the plan commit is a patch',
    async () => {
      expect((await checkRuns(w, head)).get('agora / audit')?.conclusion).toBe('success');
      const job = await verifyJob(head);
      expect(job.log).toMatch(/node24 under .*node/);
      expect(job.conclusion, job.log).toBe('success');
      expect(job.summary).toContain('## Agora audit: verified');
      expect(job.summary).toContain('Signature: checked against the pinned signer');
      expect(job.summary).toMatch(/claim \*\*tamper-detecting/);
      // The step's outputs reached the next step.
      expect(job.log).toMatch(/agora verified run=(fanout-1-[0-9a-f]{12}) bundle=\S+\/\1\.audit\.json/);
    },
    scaled(180_000),
  );

  it(
    'is red when the published bundle was tampered with, naming the failure',
    async () => {
      const o = { owner: w.owner, repo: w.repo };
      const releases = (await w.octokit.rest.repos.listReleases(o)).data.filter((r) => r.tag_name.startsWith('agora-run-'));
      expect(releases).toHaveLength(1);
      const release = releases[0]!;
      const asset = release.assets.find((a) => a.name.endsWith('.audit.json'))!;
      const original = Buffer.from(
        (
          await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
            ...o,
            asset_id: asset.id,
            headers: { accept: 'application/octet-stream' },
          })
        ).data as unknown as ArrayBuffer,
      );
      const bundle = JSON.parse(original.toString('utf8')) as { items: Array<{ id: string; attempts: number }> };
      bundle.items[0]!.attempts += 1; // one more attempt than the log records
      const replace = async (data: string) => {
        const current = (await w.octokit.rest.repos.getRelease({ ...o, release_id: release.id })).data.assets.find((a) => a.name === asset.name)!;
        await w.octokit.rest.repos.deleteReleaseAsset({ ...o, asset_id: current.id });
        await w.octokit.rest.repos.uploadReleaseAsset({
          ...o,
          release_id: release.id,
          url: release.upload_url,
          name: asset.name,
          data,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        });
      };
      await replace(`${JSON.stringify(bundle, null, 2)}\n`);
      try {
        const [first] = await workflowRuns(head);
        await w.octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun', { ...o, run_id: Number(first!.id) });
        const job = await verifyJob(head, 2);
        expect(job.conclusion).toBe('failure');
        expect(job.summary).toContain('## Agora audit: NOT verified');
        expect(job.summary).toMatch(/audit signature/);
        expect(job.log).toContain('is not audited');
      } finally {
        await replace(original.toString('utf8'));
      }
    },
    scaled(180_000),
  );

  it(
    'is red on a human commit after the patches, naming the commit',
    async () => {
      const human = await w.sim.push(w.fullName, {
        branch: 'run-fanout',
        files: { 'README.md': '# demo\n\nedited by hand\n' },
        message: 'Hand edit after the run',
      });
      const job = await verifyJob(human);
      expect(job.conclusion).toBe('failure');
      expect(job.summary).toContain('## Agora audit: NOT verified');
      expect(job.summary).toContain(human.slice(0, 12));
      expect(job.summary).not.toMatch(/audit (signature|chain|summary)/);
    },
    scaled(180_000),
  );
});
