/** Workflow commands on a step's stdout and the runner's environment files, as a workflow author sees them in the job. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startWorld, type World } from '@agora/github-sim/harness';

const o = { owner: 'octo', repo: 'demo' };

const WORKFLOW = `on: workflow_dispatch
jobs:
  cmds:
    runs-on: [self-hosted, build]
    steps:
      - id: one
        name: commands
        run: |
          echo "::add-mask::s3cret-value"
          echo "the secret is s3cret-value"
          echo "::error file=src/a.ts,line=3,col=5,title=Bad thing::it broke"
          echo "::warning::careful"
          echo "::notice file=README.md,line=1::fyi"
          echo "::group::Details"
          echo inside
          echo "::endgroup::"
          echo "::stop-commands::pause123"
          echo "::error::not an annotation"
          echo "::pause123::"
          echo "::set-output name=old::value"
          echo "token is \${{ secrets.GITHUB_TOKEN }}"
          {
            echo "multi<<EOF_X"
            echo "line one"
            echo "line two"
            echo "EOF_X"
          } >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=yes" >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/bin"
          printf '#!/bin/sh\\necho tool-ran\\n' > "$RUNNER_TEMP/bin/mytool"
          chmod +x "$RUNNER_TEMP/bin/mytool"
          echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
          echo "## Summary of one" >> "$GITHUB_STEP_SUMMARY"
      - run: |
          echo "old=[\${{ steps.one.outputs.old }}]"
          echo "multi=[\${{ steps.one.outputs.multi }}]"
          echo "env=$FROM_ENV"
          mytool
`;

// A repository secret read three ways: as an expression in a script, mapped into a step's env, and all of
// them at once as toJSON(secrets) (the way a step hands every secret to an action).
const SECRETS_WORKFLOW = `on: workflow_dispatch
jobs:
  sec:
    runs-on: [self-hosted, build]
    steps:
      - env:
          MAPPED: \${{ secrets.canary_secret }}
          ALL: \${{ toJSON(secrets) }}
        run: |
          echo "inline=\${{ secrets.CANARY_SECRET }}"
          echo "mapped=$MAPPED"
          echo "$ALL" | grep -q 'C1anary-value-9' && echo "all holds it"
          echo "$ALL" | grep -q '"OTHER_SECRET"' && echo "all names OTHER_SECRET"
          echo "unset=[\${{ secrets.NOT_SET }}]"
`;

describe('actions: workflow commands and environment files', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r', '.github/workflows/cmds.yml': WORKFLOW, '.github/workflows/sec.yml': SECRETS_WORKFLOW } });
    w.sim.addRunner({ labels: ['build'] });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  it('masks, annotations, groups, stop-commands, the disabled set-output, and GITHUB_OUTPUT (name<<DELIM) / GITHUB_ENV / GITHUB_PATH / GITHUB_STEP_SUMMARY', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'cmds.yml', ref: 'main' });
    const run = await eventually(
      'the run completes',
      async () => {
        const r = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'cmds.yml' })).data
          .workflow_runs[0];
        return r?.status === 'completed' ? r : undefined;
      },
      { within: 60_000 },
    );
    expect(run.conclusion).toBe('success');
    const [job] = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(run.id) })).data.jobs;
    const log = String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: Number(job!.id) })).data);
    const record = w.sim.sim.actions.jobs.get(Number(job!.id))!;
    expect(log).toContain('the secret is ***');
    expect(log).not.toContain('s3cret-value');
    expect(log).toContain('token is ***');
    expect(log).not.toContain(record.token!);
    expect(log).toMatch(/##\[group\]Details\n\S+ inside\n\S+ ##\[endgroup\]/);
    expect(log).toContain('##[error]it broke');
    expect(log).toContain('::error::not an annotation');
    expect(log).not.toContain('::pause123::');
    expect(log).toContain("##[error]Unable to process command '::set-output name=old::value' successfully.");
    expect(log).toContain('old=[]');
    expect(log).toMatch(/multi=\[line one\n\S+ line two\]/);
    expect(log).toContain('env=yes');
    expect(log).toContain('tool-ran');
    expect(record.summary).toBe('## Summary of one\n');
    expect(record.annotations).toEqual([
      { level: 'failure', message: 'it broke', title: 'Bad thing', file: 'src/a.ts', line: 3, endLine: 3, column: 5, endColumn: 5 },
      { level: 'warning', message: 'careful', title: null, file: null, line: null, endLine: null, column: null, endColumn: null },
      { level: 'notice', message: 'fyi', title: null, file: 'README.md', line: 1, endLine: 1, column: null, endColumn: null },
    ]);
  });

  it('the job is a check run of the GitHub Actions app (its check_run_url) carrying the annotations as GitHub shows them', async () => {
    const [run] = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'cmds.yml' })).data
      .workflow_runs;
    const [job] = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(run!.id) })).data.jobs;
    const check = (await w.octokit.request('GET /repos/{owner}/{repo}/check-runs/{check_run_id}', { ...o, check_run_id: Number(job!.id) })).data;
    expect(check).toMatchObject({
      url: job!.check_run_url,
      name: 'cmds',
      status: 'completed',
      conclusion: 'success',
      head_sha: run!.head_sha,
      app: { slug: 'github-actions' },
      output: { annotations_count: 3 },
    });
    const annotations = (await w.octokit.request('GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations', { ...o, check_run_id: check.id })).data;
    // No file: GitHub files it under `.github` at line 1.
    expect(annotations).toEqual([
      expect.objectContaining({
        path: 'src/a.ts',
        start_line: 3,
        end_line: 3,
        start_column: 5,
        end_column: 5,
        annotation_level: 'failure',
        title: 'Bad thing',
        message: 'it broke',
      }),
      expect.objectContaining({
        path: '.github',
        start_line: 1,
        end_line: 1,
        start_column: null,
        end_column: null,
        annotation_level: 'warning',
        title: null,
        message: 'careful',
      }),
      expect.objectContaining({ path: 'README.md', start_line: 1, end_line: 1, start_column: null, annotation_level: 'notice', title: null, message: 'fyi' }),
    ]);
    const suites = (await w.octokit.request('GET /repos/{owner}/{repo}/commits/{ref}/check-suites', { ...o, ref: run!.head_sha })).data.check_suites;
    expect(suites.find((s) => s.id === check.check_suite!.id)).toMatchObject({ app: { slug: 'github-actions' }, status: 'completed', conclusion: 'success' });
  });

  it('repository Actions secrets: the secrets context (any case, toJSON), a step env, masked in the log; an unset one is empty; GITHUB_ names refused', async () => {
    w.sim.setActionsSecret('octo/demo', 'CANARY_SECRET', 'C1anary-value-9');
    w.sim.setActionsSecret('octo/demo', 'other_secret', 'other-value-77');
    expect(() => w.sim.setActionsSecret('octo/demo', 'GITHUB_X', 'v')).toThrow(/GITHUB_/);
    expect(() => w.sim.setActionsSecret('octo/demo', '1X', 'v')).toThrow(/invalid/);
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'sec.yml', ref: 'main' });
    const run = await eventually(
      'the secrets run completes',
      async () => {
        const r = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'sec.yml' })).data
          .workflow_runs[0];
        return r?.status === 'completed' ? r : undefined;
      },
      { within: 60_000 },
    );
    const [job] = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(run.id) })).data.jobs;
    const log = String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: Number(job!.id) })).data);
    expect(run.conclusion, log).toBe('success');
    expect(log).toContain('inline=***');
    expect(log).toContain('mapped=***');
    expect(log).toContain('all holds it');
    expect(log).toContain('all names OTHER_SECRET');
    expect(log).toContain('unset=[]');
    expect(log).not.toContain('C1anary-value-9');
    expect(log).not.toContain('other-value-77');
  });
});
