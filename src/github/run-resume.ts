import { errorMessage } from '../errors.js';
import { mirrorRef } from '../git/refspec.js';
import { TERMINAL_ITEM_STATUSES, type ItemStatus } from '../engine/types.js';
import type { Oid } from '../git/types.js';
import { RunLease } from '../runs/lease.js';
import { LeaseKeeper, leaseHoldMs } from '../runs/lease-keeper.js';
import { readRun, type StoredRun } from '../runs/state-store.js';
import { handleOf, type PlanEvent, type RepoHandle } from './app-events.js';
import type { AppState } from './app-state.js';
import { isAgoraCheckName, itemExternalId, runExternalId } from './check-names.js';
import { shownStatus } from './check-plan.js';
import { createRunCheck } from './check-reporter.js';
import { HostedRun } from './hosted-run.js';
import type { RepoContext } from './repo-context.js';

/**
 * Taking a run to drive here: a new one (its `agora` check created, its lease taken), or one no driver in
 * this process drives (after a restart, a lost webhook, a button press on a finished run, a replica's
 * death), found again with its check runs on GitHub. Claims are synchronous, so two paths never drive one run.
 */

/** Starts driving a run just created from a plan commit (nothing when it is claimed here, or another replica holds it). */
export async function startRun(app: AppState, ev: PlanEvent, repo: RepoContext, stored: StoredRun): Promise<void> {
  // A process that is stopping starts nothing more: the run stays on GitHub for the next one to take over.
  if (app.claimed.has(stored.runId) || app.closed) return;
  app.claimed.add(stored.runId);
  try {
    const lease = await takeLease(app, repo, stored.runId);
    if (!lease) {
      app.claimed.delete(stored.runId);
      return;
    }
    let runCheck: number;
    try {
      runCheck = await createRunCheck(ev, stored);
    } catch (e) {
      await lease.stop({ release: !app.killed });
      throw e;
    }
    app.log.info(`agora: ${stored.runId}: run check created`);
    if (app.closed) {
      // close() began meanwhile and stopped the runs it found: this one it did not find, so it never starts.
      await lease.stop({ release: !app.killed });
      app.claimed.delete(stored.runId);
      return;
    }
    // Item checks are created by the reports, none queued (the `agora` check lists what waits): an item's
    // once it has run for the progress delay (`in_progress`), or completed when it ends sooner.
    HostedRun.drive(app, { ev, repo, stored, runCheck, shown: { ids: new Map(), statuses: new Map() }, lease }, (run) =>
      resumeIfReopened(app, run.ev, run.repo, run.runId),
    );
  } catch (e) {
    app.claimed.delete(stored.runId);
    throw e;
  }
}

/**
 * Takes over a run no driver in this process drives: finds its check runs on the plan commit (creating
 * the missing ones, and a new `agora` check when the old one is completed), records the dead process's
 * attempts lost, drives it. False when it is driven already (here: woken; or by another live replica).
 */
export async function resume(app: AppState, handle: RepoHandle, repo: RepoContext, stored: StoredRun, branch: string | null): Promise<boolean> {
  const active = app.active.get(stored.runId);
  if (active) {
    active.wake();
    return false;
  }
  if (app.claimed.has(stored.runId) || app.closed) return false;
  app.claimed.add(stored.runId);
  let lease: LeaseKeeper | null = null;
  try {
    // Another live replica drives it: that one sees what was recorded at its next refresh.
    lease = await takeLease(app, repo, stored.runId);
    if (!lease) {
      app.claimed.delete(stored.runId);
      return false;
    }
    // The newest state, now that nobody else drives it.
    await repo.store.fetch([mirrorRef(repo.refs.run(stored.runId))]);
    stored = (await readRun(repo.store, repo.refs, stored.runId)) ?? stored;
    const { state, plan } = stored;
    if (!(await repo.store.hasObject(state.base))) await repo.store.fetch([state.base]);
    const ev: PlanEvent = { ...handle, headSha: state.base, branch: branch ?? (await branchAt(repo, [state.base, state.integrationHead])) ?? '' };
    const existing = await ev.octokit.paginate(ev.octokit.rest.checks.listForRef, {
      owner: ev.owner,
      repo: ev.repo,
      ref: state.base,
      filter: 'latest',
      per_page: 100,
    });
    const byExternal = new Map(existing.filter((c) => isAgoraCheckName(c.name)).map((c) => [c.external_id ?? '', c]));
    const old = byExternal.get(runExternalId(stored.runId));
    const runCheck = old && old.status !== 'completed' ? old.id : await createRunCheck(ev, stored);
    const ids = new Map<string, number>();
    const statuses = new Map<string, ItemStatus>();
    const attempts = new Map<string, number>();
    // An item without a check gets one from the reports, once it runs or ends (none is created queued).
    for (const item of plan.items) {
      const c = byExternal.get(itemExternalId(stored.runId, item.id));
      if (!c) continue;
      ids.set(item.id, c.id);
      const shows = shownStatus(c);
      if (shows) statuses.set(item.id, shows);
      // Open again (a Retry): the completed check shows an earlier attempt; the report gives it a new check.
      if (c.status === 'completed' && !TERMINAL_ITEM_STATUSES.has(state.items[item.id]!.status)) attempts.set(item.id, -1);
    }
    if (app.closed) {
      // close() began meanwhile and stopped the runs it found: this one it did not find, so it is not driven here.
      app.claimed.delete(stored.runId);
      await lease.stop({ release: !app.killed && stored.state.status === 'running' });
      return false;
    }
    HostedRun.drive(app, { ev, repo, stored, runCheck, shown: { ids, statuses, attempts }, lease, recover: true }, (r) =>
      resumeIfReopened(app, r.ev, r.repo, r.runId),
    );
    app.log.info(`agora: ${stored.runId}: resumed on ${ev.branch || '(no branch)'}`);
    return true;
  } catch (e) {
    if (!app.active.has(stored.runId)) {
      app.claimed.delete(stored.runId);
      // An ended run taken to be finished keeps its lease until it expires: given back, it would read as
      // finished, and no later sweep would look at it again (unfinished-run.ts).
      await lease?.stop({ release: !app.killed && stored.state.status === 'running' });
    }
    throw e;
  }
}

/** Drives the run again when its state on GitHub says it is running (a Retry reopened it). */
async function resumeIfReopened(app: AppState, ev: PlanEvent, repo: RepoContext, runId: string): Promise<void> {
  await repo.store.fetch([mirrorRef(repo.refs.run(runId))]);
  const after = await readRun(repo.store, repo.refs, runId);
  if (after && after.state.status === 'running') await resume(app, handleOf(ev), repo, after, ev.branch || null);
}

/**
 * This process's lease on a run, kept alive from now on by its own timer, or null (logged) while another
 * live replica holds it. The lease is written for at least the configured ttl, longer when round trips
 * to GitHub are slow (see lease-keeper.ts), so it never lands already expired.
 */
async function takeLease(app: AppState, repo: RepoContext, runId: string): Promise<LeaseKeeper | null> {
  const { lease, clock } = app.opts;
  const roundTrips = repo.store.roundTrips;
  const got = await RunLease.acquire(repo.store, repo.refs, runId, {
    holder: lease.holder,
    ttlMs: leaseHoldMs(lease.ttlMs, roundTrips),
    now: clock(),
    skewMs: lease.skewMs,
  });
  if (!got.ok) {
    app.log.info(`agora: ${runId}: driven by ${got.holder} (lease until ${new Date(got.until).toISOString()})`);
    return null;
  }
  return new LeaseKeeper(got.lease, {
    clock,
    ttlMs: lease.ttlMs,
    roundTrips,
    onLost: () => app.active.get(runId)?.wake(),
    onError: (e) => app.log.warn(`agora: ${runId}: renewing the lease failed (will retry): ${errorMessage(e)}`),
  });
}

/** The branch (on GitHub) whose head is one of `shas`, tried in order; null when none is. */
export async function branchAt(repo: RepoContext, shas: readonly Oid[]): Promise<string | null> {
  const heads = await repo.store.mirror.listRemoteRefs('refs/heads/');
  for (const sha of shas) {
    for (const [ref, oid] of heads) if (oid === sha) return ref.slice('refs/heads/'.length);
  }
  return null;
}
