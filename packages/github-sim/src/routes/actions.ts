/** workflow_dispatch (a run of the Actions runtime, or with it off only the runner hooks) and repository_dispatch. */
import { HttpError, notFound } from '../http.js';
import { userJson, webhookRepoJson } from '../shapes.js';
import type { Route, RouteResult } from '../route.js';
import type { Sim } from '../sim.js';

/** 204, or the injected 502 of a dispatch that took effect anyway (`dispatchErrorAfterEffectRate`). */
function afterEffect(sim: Sim): RouteResult {
  if (sim.faults.dispatchErrorAfterEffect()) throw new HttpError(502, 'Server Error');
  return { status: 204 };
}

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export const actionRoutes: Route[] = [
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches',
    auth: 'installation',
    permission: { actions: 'write' },
    handle: async (req, sim) => {
      const repo = req.repo;
      const body = req.body as { ref: string; inputs?: Record<string, unknown> };
      const inputs = body.inputs ?? {};
      if (Object.keys(inputs).length > 25) throw new HttpError(422, 'you may only define up to 25 `inputs` for a `workflow_dispatch` event');
      const workflowId = req.params.workflow_id!;
      if (req.caller.kind !== 'installation') throw notFound();
      if (sim.actionsEnabled) {
        const sender = req.caller.app.bot;
        const payload = { workflow: workflowId, repository: webhookRepoJson(repo, sim.urls), sender: userJson(sender, sim.urls) };
        await sim.actions.dispatch(repo, workflowId, body.ref, inputs, sender, payload);
        sim.recordDispatch({
          kind: 'workflow_dispatch',
          repo: repo.fullName,
          installationId: req.caller.installation.id,
          workflowId,
          ref: body.ref,
          inputs,
          at: now(),
        });
        return afterEffect(sim);
      }
      const commit = await repo.git.resolve(body.ref, 'commit');
      if (!commit) throw new HttpError(422, `No ref found for: ${body.ref}`);
      const path = /^\d+$/.test(workflowId) ? null : `.github/workflows/${workflowId}`;
      if (path) {
        const file = await repo.git.text(['cat-file', '-p', `${commit}:${path}`]).catch(() => null);
        if (file === null) throw notFound();
        if (!/workflow_dispatch/.test(file)) throw new HttpError(422, "Workflow does not have 'workflow_dispatch' trigger");
      }
      sim.recordDispatch({
        kind: 'workflow_dispatch',
        repo: repo.fullName,
        installationId: req.caller.installation.id,
        workflowId,
        ref: body.ref,
        inputs,
        at: now(),
      });
      return afterEffect(sim);
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/dispatches',
    auth: 'installation',
    permission: { contents: 'write' },
    handle: async (req, sim) => {
      const repo = req.repo;
      const body = req.body as { event_type: string; client_payload?: Record<string, unknown> };
      const payload = body.client_payload ?? {};
      if (Object.keys(payload).length > 10)
        throw new HttpError(422, 'No more than 10 properties are allowed; ' + Object.keys(payload).length + ' were supplied.');
      if (req.caller.kind !== 'installation') throw notFound();
      sim.recordDispatch({
        kind: 'repository_dispatch',
        repo: repo.fullName,
        installationId: req.caller.installation.id,
        eventType: body.event_type,
        clientPayload: payload,
        at: now(),
      });
      sim.emitToRepo(repo, 'repository_dispatch', () => ({
        action: body.event_type,
        branch: repo.defaultBranch,
        client_payload: payload,
        repository: webhookRepoJson(repo, sim.urls),
        sender: userJson(req.caller.app.bot, sim.urls),
      }));
      return { status: 204 };
    },
  },
];
