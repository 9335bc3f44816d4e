import { mirrorPrefix, mirrorRef } from '../git/refspec.js';
import { RunLease } from '../runs/lease.js';
import { readRun } from '../runs/state-store.js';
import { handleOf, type PlanEvent } from './app-events.js';
import type { AppState } from './app-state.js';
import { resume } from './run-resume.js';
import { finishPending, leaseLive } from './unfinished-run.js';

/** What taking a run over came to. */
export type TakeOver =
  /** Driven here now (until it ends: the caller waits for the App's background work). */
  | { kind: 'resumed' }
  /** Nothing to take over: the run has ended and its finish is over (or it has no state). */
  | { kind: 'ended' }
  /** Another process still held the run's lease at the deadline. */
  | { kind: 'held'; holder: string; until: number };

/**
 * Takes over the running run `runId` of `ev`'s plan commit, which another process started and may have
 * died driving (the Action's `mode: run` when the workflow runs again for the same head): as soon as its
 * lease is free or expired it is resumed as the sweep resumes runs (run-resume.ts: the dead attempts
 * recorded lost, the checks found again). While a live holder renews the lease this waits, looking again
 * when the lease would expire, up to `deadline` (by the App's clock).
 *
 * A run that has ended may still need its finish (patches pushed, audit released, gate set): the earlier
 * job died after the run's final state commit. Once its lease has run out it is finished here, as the
 * sweep finishes such runs (unfinished-run.ts); only an ended run whose finish is over is `ended`.
 */
export async function takeOver(app: AppState, ev: PlanEvent, runId: string, deadline: number): Promise<TakeOver> {
  const { clock, lease } = app.opts;
  const repo = await app.repoFor(ev);
  for (;;) {
    await repo.store.fetch([mirrorRef(repo.refs.run(runId))]);
    let stored = await readRun(repo.store, repo.refs, runId);
    if (!stored) return { kind: 'ended' };
    if (stored.state.status !== 'running') {
      // The finish needs the run's other refs (lease, patches, integration), as the sweep fetches them.
      await repo.store.fetch([mirrorPrefix(repo.refs.ns)]);
      stored = (await readRun(repo.store, repo.refs, runId))!;
      const live = leaseLive(app, await RunLease.read(repo.store, repo.refs, runId));
      if (!live && !(await finishPending(app, handleOf(ev), repo, stored))) return { kind: 'ended' };
      if (!live && (await resume(app, handleOf(ev), repo, stored, ev.branch || null))) return { kind: 'resumed' };
    } else if (await resume(app, handleOf(ev), repo, stored, ev.branch || null)) return { kind: 'resumed' };
    if (app.active.has(runId)) return { kind: 'resumed' };
    // The failed take (a leased push refused) fetched the holder's lease into the mirror.
    const held = await RunLease.read(repo.store, repo.refs, runId);
    const now = clock();
    if (now >= deadline || app.closed) return { kind: 'held', holder: held?.holder ?? '(unknown)', until: held?.until ?? 0 };
    // Just after the holder's lease (and the skew allowed between clocks) runs out, but at most 5 s on.
    const wait = Math.max(200, Math.min((held?.until ?? now) + lease.skewMs + 100 - now, deadline - now, 5_000));
    app.log.info(
      `agora: ${runId}: driven by ${held?.holder ?? 'another process'} until ${new Date(held?.until ?? now).toISOString()}; looking again in ${Math.round(wait / 1000)} s`,
    );
    await new Promise((r) => setTimeout(r, wait));
  }
}
