/** Workflow runs and jobs of the Actions runtime: list, get, cancel, re-run, job logs. */
import { HttpError, notFound } from '../http.js';
import { minimalRepoJson, nodeId, simpleCommitJson, userJson } from '../shapes.js';
import type { Route, RouteResult } from '../route.js';
import type { Sim } from '../sim.js';
import type { Repo } from '../state.js';
import type { JobRecord, RunRecord } from '../actions/model.js';
import { paginate } from './apps.js';

const R = '/repos/{owner}/{repo}/actions';

function runOf(sim: Sim, repo: Repo, id: string): RunRecord {
  const run = sim.actions.runs.get(Number(id));
  if (!run || run.repo !== repo.fullName) throw notFound();
  return run;
}

function jobOf(sim: Sim, repo: Repo, id: string): JobRecord {
  const job = sim.actions.jobs.get(Number(id));
  if (!job || sim.actions.runs.get(job.runId)?.repo !== repo.fullName) throw notFound();
  return job;
}

/** The REST `workflow-run`. */
async function runJson(sim: Sim, repo: Repo, run: RunRecord): Promise<Record<string, unknown>> {
  const a = `${sim.urls.api}/repos/${repo.fullName}`;
  const head = await repo.git.readCommit(run.headSha);
  return {
    id: run.id,
    name: run.name,
    node_id: nodeId('WorkflowRun', run.id),
    check_suite_id: run.id,
    check_suite_node_id: nodeId('CheckSuite', run.id),
    head_branch: run.headBranch,
    head_sha: run.headSha,
    path: run.workflow.path,
    display_title: run.name,
    run_number: run.runNumber,
    run_attempt: run.runAttempt,
    referenced_workflows: [],
    event: run.event,
    status: run.status,
    conclusion: run.conclusion,
    workflow_id: run.workflowId,
    url: `${a}/actions/runs/${run.id}`,
    html_url: `${sim.urls.html}/${repo.fullName}/actions/runs/${run.id}`,
    pull_requests: [],
    created_at: run.createdAt,
    updated_at: run.updatedAt,
    actor: userJson(run.actor, sim.urls),
    triggering_actor: userJson(run.actor, sim.urls),
    run_started_at: run.runStartedAt,
    jobs_url: `${a}/actions/runs/${run.id}/jobs`,
    logs_url: `${a}/actions/runs/${run.id}/logs`,
    check_suite_url: `${a}/check-suites/${run.id}`,
    artifacts_url: `${a}/actions/runs/${run.id}/artifacts`,
    cancel_url: `${a}/actions/runs/${run.id}/cancel`,
    rerun_url: `${a}/actions/runs/${run.id}/rerun`,
    previous_attempt_url: run.runAttempt > 1 ? `${a}/actions/runs/${run.id}/attempts/${run.runAttempt - 1}` : null,
    workflow_url: `${a}/actions/workflows/${run.workflowId}`,
    head_commit: simpleCommitJson(head),
    repository: minimalRepoJson(repo, sim.urls),
    head_repository: minimalRepoJson(repo, sim.urls),
    head_repository_id: repo.id,
  };
}

/** The REST `job`. */
function jobJson(sim: Sim, repo: Repo, job: JobRecord): Record<string, unknown> {
  const run = sim.actions.runs.get(job.runId)!;
  const a = `${sim.urls.api}/repos/${repo.fullName}/actions`;
  const running = job.status !== 'queued';
  return {
    id: job.id,
    run_id: run.id,
    run_url: `${a}/runs/${run.id}`,
    run_attempt: job.runAttempt,
    node_id: nodeId('WorkflowJob', job.id),
    head_sha: run.headSha,
    head_branch: run.headBranch,
    url: `${a}/jobs/${job.id}`,
    html_url: `${sim.urls.html}/${repo.fullName}/actions/runs/${run.id}/job/${job.id}`,
    status: job.status,
    conclusion: job.conclusion,
    created_at: job.createdAt,
    started_at: job.startedAt,
    completed_at: job.completedAt,
    name: job.name,
    steps: job.steps.map((s) => ({
      name: s.name,
      number: s.number,
      status: s.status,
      conclusion: s.conclusion,
      started_at: s.startedAt,
      completed_at: s.completedAt,
    })),
    check_run_url: `${sim.urls.api}/repos/${repo.fullName}/check-runs/${job.id}`,
    labels: job.labels,
    runner_id: running ? (job.runner?.id ?? null) : null,
    runner_name: running ? (job.runner?.name ?? null) : null,
    runner_group_id: running ? 1 : null,
    runner_group_name: running ? 'Default' : null,
    workflow_name: run.name,
  };
}

/** A page of the repository's runs (of one workflow when `workflowId` is set), newest first, with the list filters GitHub takes. */
export async function listRuns(sim: Sim, repo: Repo, q: URLSearchParams, workflowId: number | null, url: string): Promise<RouteResult> {
  const runs = [...sim.actions.runs.values()]
    .filter((r) => r.repo === repo.fullName && (workflowId === null || r.workflowId === workflowId))
    .filter(
      (r) =>
        (!q.get('event') || r.event === q.get('event')) &&
        (!q.get('branch') || r.headBranch === q.get('branch')) &&
        (!q.get('head_sha') || r.headSha === q.get('head_sha')),
    )
    .filter((r) => !q.get('status') || r.status === q.get('status') || r.conclusion === q.get('status'))
    .sort((x, y) => y.id - x.id);
  const { page, headers } = paginate(runs, q, url);
  return { status: 200, headers, body: { total_count: runs.length, workflow_runs: await Promise.all(page.map((r) => runJson(sim, repo, r))) } };
}

export const actionRunRoutes: Route[] = [
  {
    method: 'GET',
    template: `${R}/runs`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => listRuns(sim, req.repo, req.query, null, `${sim.urls.api}/repos/${req.repo.fullName}/actions/runs`),
  },
  {
    method: 'GET',
    template: `${R}/runs/{run_id}`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => ({ status: 200, body: await runJson(sim, req.repo, runOf(sim, req.repo, req.params.run_id!)) }),
  },
  {
    method: 'GET',
    template: `${R}/runs/{run_id}/jobs`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => {
      const run = runOf(sim, req.repo, req.params.run_id!);
      const all = req.query.get('filter') === 'all';
      const jobs = [...sim.actions.jobs.values()].filter((j) => j.runId === run.id && (all || j.runAttempt === run.runAttempt)).sort((x, y) => x.id - y.id);
      const { page, headers } = paginate(jobs, req.query, `${sim.urls.api}/repos/${req.repo.fullName}/actions/runs/${run.id}/jobs`);
      return { status: 200, headers, body: { total_count: jobs.length, jobs: page.map((j) => jobJson(sim, req.repo, j)) } };
    },
  },
  {
    method: 'POST',
    template: `${R}/runs/{run_id}/cancel`,
    auth: 'installation',
    permission: { actions: 'write' },
    handle: async (req, sim) => {
      await sim.actions.cancel(runOf(sim, req.repo, req.params.run_id!));
      return { status: 202, body: {} };
    },
  },
  {
    method: 'POST',
    template: `${R}/runs/{run_id}/rerun`,
    auth: 'installation',
    permission: { actions: 'write' },
    handle: async (req, sim) => {
      await sim.actions.rerun(runOf(sim, req.repo, req.params.run_id!));
      return { status: 201, body: {} };
    },
  },
  {
    method: 'GET',
    template: `${R}/jobs/{job_id}`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => ({ status: 200, body: jobJson(sim, req.repo, jobOf(sim, req.repo, req.params.job_id!)) }),
  },
  {
    method: 'GET',
    template: `${R}/jobs/{job_id}/logs`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => {
      const job = jobOf(sim, req.repo, req.params.job_id!);
      if (job.status === 'queued') throw new HttpError(404, 'Not Found');
      // As GitHub: a redirect to a short-lived download URL that needs no credentials.
      return { status: 302, headers: { location: `${sim.urls.api}/_sim/logs/${sim.actions.logKey(job)}` } };
    },
  },
];
