import { RunLease } from '../runs/lease.js';
import type { StoredRun } from '../runs/state-store.js';
import type { RepoHandle } from './app-events.js';
import type { AppState } from './app-state.js';
import { RUN_CHECK_NAME, runExternalId } from './check-names.js';
import type { RepoContext } from './repo-context.js';

/**
 * Whether an ended run still needs its finish (patches pushed, audit published, gate posted, `agora`
 * check completed), because the process that drove it died between the run's final state commit and
 * the end of its finish.
 *
 * A driver gives its lease back (`until` 0) only once the finish is over (done, or given up on with a red
 * gate), and the last step of a finish completes the `agora` check. So: an ended run whose lease was never
 * given back and has expired is looked up on GitHub (one request); its `agora` check not completed (or gone)
 * means the finish is pending. A completed one means the driver died after finishing: its lease is given
 * back here, so the next sweep does not ask again. Runs without a lease (never driven by the App) and runs
 * whose lease is still live are left alone, without a request.
 */
export async function finishPending(app: AppState, handle: RepoHandle, repo: RepoContext, run: StoredRun): Promise<boolean> {
  const { clock, lease: opts } = app.opts;
  const held = await RunLease.read(repo.store, repo.refs, run.runId);
  if (!held || held.until === 0 || leaseLive(app, held)) return false;
  const { octokit, owner, repo: name } = handle;
  const checks = await octokit.paginate(octokit.rest.checks.listForRef, {
    owner,
    repo: name,
    ref: run.state.base,
    check_name: RUN_CHECK_NAME,
    filter: 'all',
    per_page: 100,
  });
  const own = checks.filter((c) => c.external_id === runExternalId(run.runId));
  if (own.length === 0 || own.some((c) => c.status !== 'completed')) return true;
  const got = await RunLease.acquire(repo.store, repo.refs, run.runId, { holder: opts.holder, ttlMs: opts.ttlMs, now: clock(), skewMs: opts.skewMs });
  if (got.ok) await got.lease.release(clock());
  return false;
}

/** Whether a lease (as read from the mirror) is still held: not given back, and not expired by the App's clock and the skew allowed between clocks. */
export function leaseLive(app: AppState, held: { until: number } | null): boolean {
  return held !== null && held.until !== 0 && held.until + app.opts.lease.skewMs > app.opts.clock();
}
