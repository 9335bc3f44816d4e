/** Check runs and check suites, with GitHub's limits on output, annotations and action buttons. */
import { HttpError, notFound } from '../http.js';
import { checkSuiteJson } from '../shapes.js';
import type { Route, RouteRequest } from '../route.js';
import type { Sim } from '../sim.js';
import type { CheckAction, CheckAnnotation, CheckRun, CheckStatus } from '../state.js';

const MAX_TEXT = 65_535;
const MAX_ANNOTATIONS = 50;
const MAX_ACTIONS = 3;

interface CheckBody {
  name?: string;
  head_sha?: string;
  details_url?: string;
  external_id?: string;
  status?: CheckStatus;
  conclusion?: string;
  started_at?: string;
  completed_at?: string;
  output?: { title?: string; summary?: string; text?: string; annotations?: CheckAnnotation[] };
  actions?: CheckAction[];
}

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** GitHub's 422s for over-long output, too many annotations, bad action buttons. */
function checkLimits(body: CheckBody): void {
  for (const field of ['summary', 'text'] as const) {
    const v = body.output?.[field];
    // GitHub's documented "65535 characters" is enforced on the UTF-8 bytes.
    if (typeof v === 'string' && Buffer.byteLength(v, 'utf8') > MAX_TEXT) {
      throw new HttpError(422, `Invalid request.\n\noutput.${field} exceeds a maximum bytesize of ${MAX_TEXT}.`, {
        errors: [{ resource: 'CheckRun', field: `output.${field}`, code: 'too_long' }],
      });
    }
  }
  const annotations = body.output?.annotations ?? [];
  if (annotations.length > MAX_ANNOTATIONS) {
    throw new HttpError(422, `Invalid request.\n\nOnly ${MAX_ANNOTATIONS} annotations are allowed per request; ${annotations.length} were supplied.`, {
      errors: [{ resource: 'CheckRun', field: 'output.annotations', code: 'too_long' }],
    });
  }
  const actions = body.actions ?? [];
  if (actions.length > MAX_ACTIONS) {
    throw new HttpError(422, `Invalid request.\n\nOnly ${MAX_ACTIONS} actions are allowed; ${actions.length} were supplied.`, {
      errors: [{ resource: 'CheckRun', field: 'actions', code: 'too_long' }],
    });
  }
  for (const a of actions) {
    if (a.label.length > 20 || a.identifier.length > 20 || a.description.length > 40) {
      throw new HttpError(422, 'Invalid request.\n\nAction label and identifier may be at most 20 characters, description at most 40.', {
        errors: [{ resource: 'CheckRun', field: 'actions', code: 'too_long' }],
      });
    }
  }
  if (body.status === 'completed' && !body.conclusion) {
    throw new HttpError(422, 'Invalid request.\n\n"conclusion" is required when "status" is "completed".');
  }
}

function findRun(req: RouteRequest, sim: Sim): CheckRun {
  const run = sim.state.checkRuns.get(Number(req.params.check_run_id));
  if (!run || run.repo !== req.repo.fullName) throw notFound();
  return run;
}

/** A check run that asks for action must say where: GitHub refuses `action_required` without a `details_url`. */
function requireDetailsForAction(body: CheckBody, existing: string | null): void {
  if (body.conclusion === 'action_required' && !(body.details_url ?? existing)) {
    throw new HttpError(422, 'Invalid request.\n\n`details_url` is required when `conclusion` is `action_required`.', {
      errors: [{ resource: 'CheckRun', field: 'details_url', code: 'missing_field' }],
    });
  }
}

/** Applies create/update fields to a run; returns true when it just became completed. */
function apply(run: CheckRun, body: CheckBody): boolean {
  const wasCompleted = run.status === 'completed';
  if (body.name !== undefined) run.name = body.name;
  if (body.details_url !== undefined) run.detailsUrl = body.details_url;
  if (body.external_id !== undefined) run.externalId = body.external_id;
  if (body.started_at !== undefined) run.startedAt = body.started_at;
  if (body.output) {
    if (body.output.title !== undefined) run.output.title = body.output.title;
    if (body.output.summary !== undefined) run.output.summary = body.output.summary;
    if (body.output.text !== undefined) run.output.text = body.output.text;
    run.annotations.push(...(body.output.annotations ?? []));
  }
  if (body.actions !== undefined) run.actions = body.actions;
  if (body.conclusion !== undefined) {
    run.conclusion = body.conclusion;
    run.status = 'completed';
  } else if (body.status !== undefined) {
    run.status = body.status;
    if (body.status !== 'completed') run.conclusion = null;
  }
  if (run.status === 'completed') run.completedAt = body.completed_at ?? run.completedAt ?? now();
  return !wasCompleted && run.status === 'completed';
}

function mustBeOwner(req: RouteRequest, run: CheckRun): void {
  if (run.appId !== req.caller.app.id)
    throw new HttpError(403, 'Invalid app_id `' + req.caller.app.id + '` - check run can only be modified by the GitHub App that created it.');
}

async function listRuns(req: RouteRequest, sim: Sim, runs: CheckRun[]): Promise<Record<string, unknown>> {
  const name = req.query.get('check_name');
  const status = req.query.get('status');
  const appId = req.query.get('app_id');
  const filter = req.query.get('filter') ?? 'latest';
  let list = runs.filter((r) => (!name || r.name === name) && (!status || r.status === status) && (!appId || String(r.appId) === appId));
  if (filter === 'latest') {
    const latest = new Map<string, CheckRun>();
    for (const r of list) {
      const key = `${r.appId}\0${r.name}`;
      const prev = latest.get(key);
      if (!prev || prev.id < r.id) latest.set(key, r);
    }
    list = [...latest.values()];
  }
  list.sort((a, b) => b.id - a.id);
  const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 30) || 30));
  const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
  return { total_count: list.length, check_runs: list.slice((page - 1) * perPage, page * perPage).map((r) => sim.checkRunRest(r)) };
}

async function suiteJson(sim: Sim, req: RouteRequest, suiteId: number): Promise<Record<string, unknown>> {
  const suite = sim.state.checkSuites.get(suiteId)!;
  const head = await req.repo.git.readCommit(suite.headSha);
  return checkSuiteJson(suite, sim.app(suite.appId), req.repo, head, sim.runsOf(suite).length, sim.pullsForSha(req.repo, suite.headSha), sim.urls);
}

export const checkRoutes: Route[] = [
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/check-runs',
    auth: 'installation',
    permission: { checks: 'write' },
    creates: true,
    handle: async (req, sim) => {
      const body = req.body as CheckBody & { name: string; head_sha: string };
      checkLimits(body);
      requireDetailsForAction(body, null);
      const repo = req.repo;
      const sha = /^[0-9a-f]{40}$/.test(body.head_sha) && (await repo.git.objectType(body.head_sha)) === 'commit' ? body.head_sha : null;
      if (!sha) throw new HttpError(422, `No commit found for SHA: ${body.head_sha}`);
      const app = req.caller.app;
      const suite = await sim.suiteFor(repo, sha, app.id);
      // GitHub keeps the newest 1,000 check runs of one name in a suite and deletes older ones (no event).
      const sameName = sim.runsOf(suite).filter((r) => r.name === body.name);
      for (const gone of sameName.slice(0, Math.max(0, sameName.length - (sim.options.checkRunsPerName ?? 1000) + 1))) sim.state.checkRuns.delete(gone.id);
      if (sim.runsOf(suite).length >= 50_000) throw new HttpError(422, 'Invalid request.\n\nA check suite may hold at most 50000 check runs.');
      const run: CheckRun = {
        id: sim.state.nextId(),
        suiteId: suite.id,
        repo: repo.fullName,
        appId: app.id,
        name: body.name,
        headSha: sha,
        status: 'queued',
        conclusion: null,
        startedAt: now(),
        completedAt: null,
        detailsUrl: null,
        externalId: null,
        output: { title: null, summary: null, text: null },
        annotations: [],
        actions: [],
      };
      const completed = apply(run, body);
      sim.state.checkRuns.set(run.id, run);
      sim.emitCheckRun(run, 'created', app.bot);
      if (completed) sim.emitCheckRun(run, 'completed', app.bot);
      await sim.refreshSuite(repo, suite, app.bot);
      return { status: 201, body: sim.checkRunRest(run) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/check-runs/{check_run_id}',
    auth: 'installation',
    permission: { checks: 'read' },
    handle: async (req, sim) => ({ status: 200, body: sim.checkRunRest(findRun(req, sim)) }),
  },
  {
    method: 'PATCH',
    template: '/repos/{owner}/{repo}/check-runs/{check_run_id}',
    auth: 'installation',
    permission: { checks: 'write' },
    handle: async (req, sim) => {
      const run = findRun(req, sim);
      mustBeOwner(req, run);
      const body = req.body as CheckBody;
      checkLimits(body);
      requireDetailsForAction(body, run.detailsUrl);
      const completed = apply(run, body);
      const app = req.caller.app;
      if (completed) sim.emitCheckRun(run, 'completed', app.bot);
      await sim.refreshSuite(req.repo, sim.state.checkSuites.get(run.suiteId)!, app.bot);
      return { status: 200, body: sim.checkRunRest(run) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations',
    auth: 'installation',
    permission: { checks: 'read' },
    handle: async (req, sim) => {
      const run = findRun(req, sim);
      const blob = `${sim.urls.html}/${run.repo}/blob/${run.headSha}`;
      return {
        status: 200,
        body: run.annotations.map((a) => ({
          path: a.path,
          blob_href: `${blob}/${a.path}`,
          start_line: a.start_line,
          end_line: a.end_line,
          start_column: a.start_column ?? null,
          end_column: a.end_column ?? null,
          annotation_level: a.annotation_level,
          title: a.title ?? null,
          message: a.message,
          raw_details: a.raw_details ?? null,
        })),
      };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/check-runs/{check_run_id}/rerequest',
    auth: 'installation',
    permission: { checks: 'write' },
    handle: async (req, sim) => {
      const run = findRun(req, sim);
      mustBeOwner(req, run);
      sim.assertRerequestable(run);
      sim.emitCheckRun(run, 'rerequested', req.caller.app.bot);
      return { status: 201, body: {} };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/check-suites/{check_suite_id}',
    auth: 'installation',
    permission: { checks: 'read' },
    handle: async (req, sim) => {
      const suite = sim.state.checkSuites.get(Number(req.params.check_suite_id));
      if (!suite || suite.repo !== req.repo.fullName) throw notFound();
      return { status: 200, body: await suiteJson(sim, req, suite.id) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs',
    auth: 'installation',
    permission: { checks: 'read' },
    handle: async (req, sim) => {
      const suite = sim.state.checkSuites.get(Number(req.params.check_suite_id));
      if (!suite || suite.repo !== req.repo.fullName) throw notFound();
      return { status: 200, body: await listRuns(req, sim, sim.runsOf(suite)) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/check-suites/{check_suite_id}/rerequest',
    auth: 'installation',
    permission: { checks: 'write' },
    handle: async (req, sim) => {
      const suite = sim.state.checkSuites.get(Number(req.params.check_suite_id));
      if (!suite || suite.repo !== req.repo.fullName) throw notFound();
      await sim.emitSuite(req.repo, suite, 'rerequested', req.caller.app.bot);
      return { status: 201, body: {} };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/commits/{ref}/check-runs',
    auth: 'installation',
    permission: { checks: 'read' },
    handle: async (req, sim) => {
      const sha = await req.repo.git.resolve(req.params.ref!, 'commit');
      if (!sha) throw new HttpError(422, `No commit found for SHA: ${req.params.ref}`);
      const runs = [...sim.state.checkRuns.values()].filter((r) => r.repo === req.repo.fullName && r.headSha === sha);
      return { status: 200, body: await listRuns(req, sim, runs) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/commits/{ref}/check-suites',
    auth: 'installation',
    permission: { checks: 'read' },
    handle: async (req, sim) => {
      const sha = await req.repo.git.resolve(req.params.ref!, 'commit');
      if (!sha) throw new HttpError(422, `No commit found for SHA: ${req.params.ref}`);
      const appId = req.query.get('app_id');
      const suites = [...sim.state.checkSuites.values()].filter(
        (s) => s.repo === req.repo.fullName && s.headSha === sha && (!appId || String(s.appId) === appId),
      );
      return { status: 200, body: { total_count: suites.length, check_suites: await Promise.all(suites.map((s) => suiteJson(sim, req, s.id))) } };
    },
  },
];
