/** Pull requests: create, get, list, update (close/reopen), list commits. */
import { notFound } from '../http.js';
import { commitJson, pullJson } from '../shapes.js';
import type { Route, RouteRequest } from '../route.js';
import type { Sim } from '../sim.js';
import type { Pull } from '../state.js';

function findPull(req: RouteRequest, sim: Sim): Pull {
  const pull = sim.state.pull(req.repo.fullName, Number(req.params.pull_number));
  if (!pull) throw notFound();
  return pull;
}

async function fullPull(req: RouteRequest, sim: Sim, pull: Pull): Promise<Record<string, unknown>> {
  return pullJson(pull, req.repo, sim.urls, await sim.pullStats(req.repo, pull));
}

export const pullRoutes: Route[] = [
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/pulls',
    auth: 'installation',
    permission: { pull_requests: 'read' },
    handle: async (req, sim) => {
      const state = req.query.get('state') ?? 'open';
      const head = req.query.get('head');
      const base = req.query.get('base');
      let list = sim.state.pullsOf(req.repo.fullName).filter((p) => state === 'all' || p.state === state);
      if (head) list = list.filter((p) => `${req.repo.owner.login}:${p.headRef}` === head || p.headRef === head);
      if (base) list = list.filter((p) => p.baseRef === base);
      list.sort((a, b) => b.number - a.number);
      const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 30) || 30));
      const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
      return { status: 200, body: list.slice((page - 1) * perPage, page * perPage).map((p) => pullJson(p, req.repo, sim.urls, null)) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/pulls',
    auth: 'installation',
    permission: { pull_requests: 'write' },
    creates: true,
    handle: async (req, sim) => {
      const body = req.body as { head: string; base: string; title?: string; body?: string; draft?: boolean };
      const pull = await sim.createPull(req.repo, req.caller.app.bot, {
        head: body.head,
        base: body.base,
        title: body.title ?? body.head,
        body: body.body ?? null,
        draft: body.draft ?? false,
      });
      return { status: 201, body: await fullPull(req, sim, pull), headers: { location: `${sim.urls.api}/repos/${req.repo.fullName}/pulls/${pull.number}` } };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/pulls/{pull_number}',
    auth: 'installation',
    permission: { pull_requests: 'read' },
    handle: async (req, sim) => ({ status: 200, body: await fullPull(req, sim, findPull(req, sim)) }),
  },
  {
    method: 'PATCH',
    template: '/repos/{owner}/{repo}/pulls/{pull_number}',
    auth: 'installation',
    permission: { pull_requests: 'write' },
    handle: async (req, sim) => {
      const pull = findPull(req, sim);
      const body = req.body as { title?: string; body?: string; state?: 'open' | 'closed' };
      if (body.title !== undefined) pull.title = body.title;
      if (body.body !== undefined) pull.body = body.body;
      if (body.state) await sim.changePullState(req.repo, pull, body.state, req.caller.app.bot);
      return { status: 200, body: await fullPull(req, sim, pull) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/pulls/{pull_number}/commits',
    auth: 'installation',
    permission: { pull_requests: 'read' },
    handle: async (req, sim) => {
      const pull = findPull(req, sim);
      const shas = await req.repo.git.revList(pull.headSha, [pull.baseSha], 250);
      const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 30) || 30));
      const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
      const slice = shas.slice((page - 1) * perPage, page * perPage);
      const commits = await Promise.all(slice.map(async (s) => commitJson(await req.repo.git.readCommit(s), req.repo.fullName, sim.urls)));
      return { status: 200, body: commits };
    },
  },
];
