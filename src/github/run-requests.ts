import { mirrorPrefix } from '../git/refspec.js';
import type { RunEvent } from '../engine/types.js';
import { recordRequest } from '../runs/requests.js';
import { handleOf, type ActionOutcome, type CheckActionEvent, type HeadAbandonedEvent, type RepoHandle } from './app-events.js';
import type { AppState } from './app-state.js';
import { decideButton } from './check-buttons.js';
import { readAppRun } from './listed-run.js';
import { intakePlanEvent } from './plan-intake.js';
import type { RepoContext } from './repo-context.js';
import { branchAt, resume } from './run-resume.js';

/**
 * What people ask of a run through GitHub — a button pressed on a check run, a pull request closed or a
 * branch deleted — recorded in the run's state (a leased push), then acted on by whichever process drives
 * the run, or by this one after taking it over.
 */

/** A press on a check run's button (or GitHub's Re-run on it); what it asks for is decided by check-buttons.ts. */
export async function pressButton(app: AppState, ev: CheckActionEvent): Promise<ActionOutcome> {
  if (app.closed) return { kind: 'ignored', code: 'app-stopping', why: 'the app is stopping' };
  const decision = decideButton(ev.checkName, ev.externalId, ev.request);
  if (decision.kind === 'ignored') return decision;
  if (decision.kind === 'rerun-plan') return rerunPlan(app, ev);
  const event: RunEvent = { type: 'retry-item', itemId: decision.itemId, reason: `retried by @${ev.by}` };
  const repo = await app.repoFor(ev);
  await repo.store.fetch([mirrorPrefix(repo.refs.ns)]);
  return recordAndDrive(app, ev, repo, decision.runId, event, ev.branch);
}

/**
 * Cancels every run still going on the abandoned head commit (run ids end in its short sha). A deleted
 * branch's commit that another branch still points at keeps its runs: that branch still wants them.
 */
export async function cancelRunsAt(app: AppState, ev: HeadAbandonedEvent, reason: string): Promise<ActionOutcome[]> {
  const repo = await app.repoFor(ev);
  const holder = ev.cause.kind === 'branch-deleted' ? await branchAt(repo, [ev.headSha]) : null;
  if (holder !== null) return [{ kind: 'ignored', code: 'branch-still-at-commit', why: `branch ${holder} still points at ${ev.headSha.slice(0, 12)}` }];
  await repo.store.fetch([mirrorPrefix(repo.refs.ns)]);
  const outcomes: ActionOutcome[] = [];
  const suffix = `-${ev.headSha.slice(0, 12)}`;
  for (const { ref } of await repo.store.listRefs(repo.refs.runsPrefix)) {
    const runId = ref.slice(repo.refs.runsPrefix.length);
    if (!runId.endsWith(suffix)) continue;
    const run = await readAppRun(app, repo, runId); // null also for a ref that holds no run (said once)
    if (run?.state.base !== ev.headSha) continue; // a run that already ended comes back as no-change
    outcomes.push(await recordAndDrive(app, ev, repo, runId, { type: 'cancel-run', reason }, ev.branch));
  }
  return outcomes;
}

/** Records a person's request in the run's state, then wakes the run's driver here or resumes the run. */
async function recordAndDrive(app: AppState, ev: RepoHandle, repo: RepoContext, runId: string, event: RunEvent, branch: string | null): Promise<ActionOutcome> {
  // recordRequest writes through the mirror: a leased push; when another writer moved the run, the
  // ref is re-fetched and the event applied again to the new state.
  const outcome = await recordRequest(repo.store, repo.refs, runId, event, app.opts.clock);
  if (outcome.kind === 'not-found') return { kind: 'not-found', runId };
  if (outcome.kind === 'no-change') return { kind: 'no-change', runId };
  const active = app.active.get(runId);
  if (active) {
    active.wake();
    return { kind: 'recorded', runId, event: event.type, resumed: false };
  }
  const resumed = await resume(app, ev, repo, outcome.run, branch);
  return { kind: 'recorded', runId, event: event.type, resumed };
}

/**
 * Re-run plan (or Re-run) on the gate: runs the plan at the gate's commit as if it had just been pushed
 * there. The run id comes from the commit, so pressing it twice, or on two replicas, starts one run.
 */
async function rerunPlan(app: AppState, ev: CheckActionEvent): Promise<ActionOutcome> {
  const repo = await app.repoFor(ev);
  const branch = ev.branch ?? (await branchAt(repo, [ev.headSha]));
  if (!branch) return { kind: 'ignored', code: 'no-branch-at-commit', why: `no branch points at ${ev.headSha.slice(0, 12)} any more` };
  const outcome = await intakePlanEvent(app, { ...handleOf(ev), branch, headSha: ev.headSha }, { rerun: true });
  app.emit({ kind: 'plan', outcome });
  return { kind: 'rerun', outcome };
}
