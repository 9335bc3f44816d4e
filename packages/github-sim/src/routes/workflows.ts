/** The repository's workflows: list, get by id or file name, and the runs of one workflow. */
import { nodeId } from '../shapes.js';
import type { Route } from '../route.js';
import type { Sim } from '../sim.js';
import type { Repo } from '../state.js';
import type { RepoWorkflow } from '../actions/runtime.js';
import { paginate } from './apps.js';
import { listRuns } from './action-runs.js';

const R = '/repos/{owner}/{repo}/actions/workflows';

/** The REST `workflow`. */
function workflowJson(sim: Sim, repo: Repo, w: RepoWorkflow): Record<string, unknown> {
  return {
    id: w.id,
    node_id: nodeId('Workflow', w.id),
    name: w.name,
    path: w.path,
    state: w.state,
    created_at: w.createdAt,
    updated_at: w.createdAt,
    url: `${sim.urls.api}/repos/${repo.fullName}/actions/workflows/${w.id}`,
    html_url: `${sim.urls.html}/${repo.fullName}/blob/${repo.defaultBranch}/${w.path}`,
    badge_url: `${sim.urls.html}/${repo.fullName}/workflows/${encodeURIComponent(w.name)}/badge.svg`,
  };
}

export const workflowRoutes: Route[] = [
  {
    method: 'GET',
    template: R,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => {
      const all = await sim.actions.workflows(req.repo);
      const { page, headers } = paginate(all, req.query, `${sim.urls.api}/repos/${req.repo.fullName}/actions/workflows`);
      return { status: 200, headers, body: { total_count: all.length, workflows: page.map((w) => workflowJson(sim, req.repo, w)) } };
    },
  },
  {
    method: 'GET',
    template: `${R}/{workflow_id}`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => ({ status: 200, body: workflowJson(sim, req.repo, await sim.actions.workflow(req.repo, req.params.workflow_id!)) }),
  },
  {
    method: 'GET',
    template: `${R}/{workflow_id}/runs`,
    auth: 'installation',
    permission: { actions: 'read' },
    handle: async (req, sim) => {
      const w = await sim.actions.workflow(req.repo, req.params.workflow_id!);
      return listRuns(sim, req.repo, req.query, w.id, `${sim.urls.api}/repos/${req.repo.fullName}/actions/workflows/${req.params.workflow_id}/runs`);
    },
  },
];
