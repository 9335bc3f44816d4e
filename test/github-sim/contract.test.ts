import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Octokit } from '@octokit/rest';
import { quiet, startWorld, type World } from '@agora/github-sim/harness';
import { normaliseNullable, OpenApiValidator, startGitHubSim } from '@agora/github-sim';
import { eventually } from '../support/eventually.js';
import { IMPLEMENTED_OPERATIONS } from '@agora/github-sim/openapi/operations';
import { PINNED_VERSION } from '@agora/github-sim/openapi/generate';
import { ROUTES } from '@agora/github-sim/server';

const simRoot = dirname(createRequire(import.meta.url).resolve('@agora/github-sim/package.json'));
const subsetPath = join(simRoot, 'openapi/subset.json');
const sourcePath = join(simRoot, 'openapi/source.json');

describe('OpenAPI contract', () => {
  it('normalises nullable into type unions', () => {
    expect(normaliseNullable({ type: 'string', nullable: true })).toEqual({ type: ['string', 'null'] });
    expect(normaliseNullable({ type: 'string', enum: ['a'], nullable: true })).toEqual({ type: ['string', 'null'], enum: ['a', null] });
    expect(normaliseNullable({ allOf: [{ $ref: '#/x' }], nullable: true })).toEqual({ anyOf: [{ allOf: [{ $ref: '#/x' }] }, { type: 'null' }] });
    expect(normaliseNullable({ properties: { a: { type: 'integer', nullable: true } }, required: ['a'] })).toEqual({
      properties: { a: { type: ['integer', 'null'] } },
      required: ['a'],
    });
  });

  it('the committed subset holds exactly the implemented operations and records its source version', () => {
    const subset = JSON.parse(readFileSync(subsetPath, 'utf8')) as { paths: Record<string, Record<string, unknown>>; info: { version: string } };
    const source = JSON.parse(readFileSync(sourcePath, 'utf8')) as { package: string; version: string; specInfoVersion: string };
    expect(source).toMatchObject({ package: '@octokit/openapi', version: PINNED_VERSION });
    expect(subset.info.version).toBe(source.specInfoVersion);
    const inSubset = Object.entries(subset.paths).flatMap(([p, item]) =>
      Object.keys(item)
        .filter((k) => k !== 'parameters')
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    const implemented = IMPLEMENTED_OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path}`);
    expect(inSubset.sort()).toEqual([...implemented].sort());
    const routed = ROUTES.map((r) => `${r.method} ${r.template}`);
    expect([...routed].sort()).toEqual([...implemented].sort());
  });

  it('detects a wrong response shape', () => {
    const v = new OpenApiValidator();
    expect(v.response('get', '/repos/{owner}/{repo}/git/ref/{ref}', 200, { ref: 'refs/heads/x' }).length).toBeGreaterThan(0);
    expect(v.response('get', '/repos/{owner}/{repo}/git/ref/{ref}', 418, {})).toEqual([expect.stringContaining('418')]);
    expect(v.request('post', '/repos/{owner}/{repo}/git/refs', { ref: 'refs/heads/x' }).length).toBeGreaterThan(0);
    expect(v.request('post', '/repos/{owner}/{repo}/git/refs', { ref: 'refs/heads/x', sha: 'a'.repeat(40) })).toEqual([]);
  });

  it('strict mode fails a request whose response breaks the contract with 500; lax mode only records it', async () => {
    for (const strict of [true, false]) {
      const w = await startWorld({ strict });
      try {
        const run = await w.octokit.checks.create({ owner: 'octo', repo: 'demo', name: 'n', head_sha: w.repo.headSha });
        const stored = w.sim.sim.state.checkRuns.get(run.data.id)!;
        (stored as { status: string }).status = 'bogus';
        const res = await fetch(`${w.sim.apiUrl}/repos/octo/demo/check-runs/${run.data.id}`, { headers: { authorization: `token ${await w.token()}` } });
        expect(res.status).toBe(strict ? 500 : 200);
        expect(w.sim.contractViolations).toEqual([
          expect.objectContaining({ kind: 'response', operation: 'GET /repos/{owner}/{repo}/check-runs/{check_run_id}', status: 200 }),
        ]);
      } finally {
        await w.close();
      }
    }
  });
});

describe('webhook contract', () => {
  it('strict mode throws where a schema-breaking webhook is caused; every violation is recorded', async () => {
    const w = await startWorld({ strict: true });
    try {
      const run = await w.octokit.checks.create({
        owner: 'octo',
        repo: 'demo',
        name: 'n',
        head_sha: w.repo.headSha,
        actions: [{ label: 'Go', identifier: 'go', description: 'd' }],
      });
      Object.assign(w.sim.sim.state.checkRuns.get(run.data.id)!, { status: 'completed', conclusion: 'bogus' });
      expect(() => w.sim.clickCheckRunButton('octo/demo', run.data.id, 'go')).toThrow(/webhooks-schemas/);
      expect(w.sim.contractViolations).toEqual([expect.objectContaining({ kind: 'webhook', operation: 'check_run.requested_action' })]);
    } finally {
      await w.close();
    }
  });
});

const TOUR_WORKFLOW = 'on: workflow_dispatch\njobs:\n  one:\n    runs-on: [self-hosted, tour]\n    steps:\n      - run: echo tour\n';

describe('contract tour: every implemented operation answers 2xx and passes the contract', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r', 'dir/f.txt': 'f', '.github/workflows/agora.yml': TOUR_WORKFLOW } });
    w.sim.addRunner({ labels: ['tour'] });
  });
  afterAll(async () => {
    await w.close();
  });

  it('walks all operations', async () => {
    const o = { owner: 'octo', repo: 'demo' };
    const app = w.appOctokit;
    const k = w.octokit;
    await app.request('GET /app');
    await app.request('GET /app/installations');
    await app.request('GET /app/installations/{installation_id}', { installation_id: w.installationId });
    await app.request('POST /app/installations/{installation_id}/access_tokens', { installation_id: w.installationId });
    await app.request('GET /repos/{owner}/{repo}/installation', o);
    await k.request('GET /rate_limit');
    await k.request('GET /installation/repositories');
    await k.request('GET /repos/{owner}/{repo}', o);
    await k.request('GET /repos/{owner}/{repo}/contents/{path}', { ...o, path: 'dir' });
    const blob = await k.request('POST /repos/{owner}/{repo}/git/blobs', { ...o, content: 'x' });
    await k.request('GET /repos/{owner}/{repo}/git/blobs/{file_sha}', { ...o, file_sha: blob.data.sha });
    const tree = await k.request('POST /repos/{owner}/{repo}/git/trees', { ...o, tree: [{ path: 'x', mode: '100644', type: 'blob', sha: blob.data.sha }] });
    await k.request('GET /repos/{owner}/{repo}/git/trees/{tree_sha}', { ...o, tree_sha: tree.data.sha });
    const commit = await k.request('POST /repos/{owner}/{repo}/git/commits', { ...o, message: 'm', tree: tree.data.sha, parents: [w.repo.headSha] });
    await k.request('GET /repos/{owner}/{repo}/git/commits/{commit_sha}', { ...o, commit_sha: commit.data.sha });
    await k.request('POST /repos/{owner}/{repo}/git/refs', { ...o, ref: 'refs/heads/topic', sha: commit.data.sha });
    await k.request('GET /repos/{owner}/{repo}/git/ref/{ref}', { ...o, ref: 'heads/topic' });
    await k.request('GET /repos/{owner}/{repo}/git/matching-refs/{ref}', { ...o, ref: 'heads/' });
    await k.request('POST /repos/{owner}/{repo}/git/refs', { ...o, ref: 'refs/agora/tmp/x', sha: commit.data.sha });
    await k.request('PATCH /repos/{owner}/{repo}/git/refs/{ref}', { ...o, ref: 'agora/tmp/x', sha: w.repo.headSha, force: true });
    await k.request('DELETE /repos/{owner}/{repo}/git/refs/{ref}', { ...o, ref: 'agora/tmp/x' });
    const run = await k.request('POST /repos/{owner}/{repo}/check-runs', { ...o, name: 'agora', head_sha: commit.data.sha, status: 'in_progress' });
    await k.request('GET /repos/{owner}/{repo}/check-runs/{check_run_id}', { ...o, check_run_id: run.data.id });
    await k.request('PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}', {
      ...o,
      check_run_id: run.data.id,
      conclusion: 'success',
      output: { title: 't', summary: 's', annotations: [{ path: 'x', start_line: 1, end_line: 1, annotation_level: 'failure', message: 'm' }] },
    });
    await k.request('GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations', { ...o, check_run_id: run.data.id });
    await k.request('POST /repos/{owner}/{repo}/check-runs/{check_run_id}/rerequest', { ...o, check_run_id: run.data.id });
    const suiteId = run.data.check_suite!.id;
    await k.request('GET /repos/{owner}/{repo}/check-suites/{check_suite_id}', { ...o, check_suite_id: suiteId });
    await k.request('GET /repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs', { ...o, check_suite_id: suiteId });
    await k.request('POST /repos/{owner}/{repo}/check-suites/{check_suite_id}/rerequest', { ...o, check_suite_id: suiteId });
    await k.request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', { ...o, ref: 'topic' });
    await k.request('GET /repos/{owner}/{repo}/commits/{ref}/check-suites', { ...o, ref: 'topic' });
    const pr = await k.request('POST /repos/{owner}/{repo}/pulls', { ...o, head: 'topic', base: 'main', title: 't' });
    await k.request('GET /repos/{owner}/{repo}/pulls', o);
    await k.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { ...o, pull_number: pr.data.number });
    await k.request('PATCH /repos/{owner}/{repo}/pulls/{pull_number}', { ...o, pull_number: pr.data.number, title: 'T' });
    await k.request('GET /repos/{owner}/{repo}/pulls/{pull_number}/commits', { ...o, pull_number: pr.data.number });
    const rel = await k.request('POST /repos/{owner}/{repo}/releases', { ...o, tag_name: 'v1' });
    await k.request('GET /repos/{owner}/{repo}/releases', o);
    await k.request('GET /repos/{owner}/{repo}/releases/{release_id}', { ...o, release_id: rel.data.id });
    await k.request('PATCH /repos/{owner}/{repo}/releases/{release_id}', { ...o, release_id: rel.data.id, body: 'notes' });
    await k.request('GET /repos/{owner}/{repo}/releases/tags/{tag}', { ...o, tag: 'v1' });
    const asset = await k.request({ method: 'POST', url: rel.data.upload_url, name: 'a.txt', data: 'abc', headers: { 'content-type': 'text/plain' } });
    await k.request('GET /repos/{owner}/{repo}/releases/{release_id}/assets', { ...o, release_id: rel.data.id });
    await k.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', { ...o, asset_id: (asset.data as { id: number }).id });
    await k.request('DELETE /repos/{owner}/{repo}/releases/assets/{asset_id}', { ...o, asset_id: (asset.data as { id: number }).id });
    await k.request('DELETE /repos/{owner}/{repo}/releases/{release_id}', { ...o, release_id: rel.data.id });
    const workflows = await k.request('GET /repos/{owner}/{repo}/actions/workflows', o);
    await k.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', { ...o, workflow_id: workflows.data.workflows[0]!.id });
    await k.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'agora.yml', ref: 'main' });
    await k.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'agora.yml' });
    await k.request('POST /repos/{owner}/{repo}/dispatches', { ...o, event_type: 'go' });
    const runs = await eventually('the dispatched run completes', async () => {
      const r = await k.request('GET /repos/{owner}/{repo}/actions/runs', o);
      return r.data.workflow_runs[0]?.status === 'completed' ? r.data.workflow_runs : undefined;
    });
    await k.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', { ...o, run_id: Number(runs[0]!.id) });
    const jobs = await k.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(runs[0]!.id) });
    await k.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}', { ...o, job_id: Number(jobs.data.jobs[0]!.id) });
    const logs = await k.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: Number(jobs.data.jobs[0]!.id) });
    expect(String(logs.data)).toContain('tour');
    await k.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun', { ...o, run_id: Number(runs[0]!.id) });
    await k.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { ...o, run_id: Number(runs[0]!.id) });
    await w.sim.settle();
    const deliveries = await app.request('GET /app/hook/deliveries');
    await app.request('GET /app/hook/deliveries/{delivery_id}', { delivery_id: Number(deliveries.data[0]!.id) });
    await app.request('POST /app/hook/deliveries/{delivery_id}/attempts', { delivery_id: Number(deliveries.data[0]!.id) });
    await w.sim.settle();

    // The job-log operation's only documented answer is a 302 to the download URL.
    const ok = new Set(
      w.sim.requests
        .filter((r) => (r.status >= 200 && r.status < 300) || (r.status === 302 && r.route?.endsWith('/logs')))
        .map((r) => `${r.method} ${r.route}`),
    );
    const missing = IMPLEMENTED_OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path}`).filter((op) => !ok.has(op));
    expect(missing).toEqual([]);
    expect(w.sim.contractViolations).toEqual([]);
    expect(w.receiver.rejected).toEqual([]);
    const events = new Set(w.receiver.received.map((r) => r.name));
    for (const e of ['installation', 'push', 'check_suite', 'check_run', 'pull_request', 'repository_dispatch', 'workflow_run', 'workflow_job'])
      expect(events, e).toContain(e);
  });

  it('an unauthenticated Octokit gets 401 on every route', async () => {
    const anon = new Octokit({ baseUrl: w.sim.apiUrl, log: quiet });
    await expect(anon.request('GET /repos/{owner}/{repo}', { owner: 'octo', repo: 'demo' })).rejects.toMatchObject({ status: 401 });
    const sim = await startGitHubSim();
    await sim.close();
  });
});
