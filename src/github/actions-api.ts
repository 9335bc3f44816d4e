import type { ActionsApi } from '../executors/actions-target.js';
import type { Octokit } from './octokit.js';

/**
 * The `actions` target's REST calls with the installation's client: the dispatch (one write per
 * attempt), the cancel of a stopped attempt's workflow run, the default branch the worker
 * workflow is dispatched on (read once per repository), and the workflow run of the job that claimed an
 * attempt whose job's webhooks did not come here (a re-attached attempt, a claimant never heard of; read at
 * each look until it ends, and at a stop) and its jobs' names (the run must have the attempt's job).
 */
export function actionsApi(client: () => Octokit, owner: string, repo: string): ActionsApi {
  let branch: Promise<string> | undefined;
  return {
    async dispatch(workflow, ref, inputs) {
      await client().request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { owner, repo, workflow_id: workflow, ref, inputs });
    },
    async cancelRun(workflowRunId) {
      await client().request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { owner, repo, run_id: workflowRunId });
    },
    async workflowRun(workflowRunId) {
      const { data } = await client().request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', { owner, repo, run_id: workflowRunId });
      return {
        status: data.status ?? null,
        conclusion: data.conclusion ?? null,
        htmlUrl: data.html_url ?? null,
        path: data.path ?? null,
        event: data.event ?? null,
      };
    },
    async workflowRunJobNames(workflowRunId) {
      const { data } = await client().request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', {
        owner,
        repo,
        run_id: workflowRunId,
        filter: 'all',
        per_page: 100,
      });
      return data.jobs.map((j) => j.name);
    },
    defaultBranch() {
      branch ??= client()
        .request('GET /repos/{owner}/{repo}', { owner, repo })
        .then((r) => r.data.default_branch)
        .catch((e: unknown) => {
          branch = undefined;
          throw e;
        });
      return branch;
    },
  };
}
