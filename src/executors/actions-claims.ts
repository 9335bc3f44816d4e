import { mirrorPrefix } from '../git/refspec.js';
import type { GitStore } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { runningClaimant, type WorkflowRunApi } from './actions-reattach.js';

/**
 * An attempt's claim ref on the `actions` target: the commit its worker job pushes before it runs the item
 * (src/action/worker.ts), `agora: <attempt> claimed by <run id>/<run attempt>/<runner>`. Here: which
 * workflow run a claim names (`claimedBy`), why an attempt whose claim its job did not push fails
 * (`foreignClaimReason`), and stopping the claimant of an attempt that ended while no process watched it
 * (`stopUnwatchedClaimant`, the target's `stopElsewhere`). Claim refs never move, and anyone who can push
 * writes them: what a claim names is trusted only as actions-reattach.ts says.
 */

/** The workflow run a claim commit's message names. */
export function claimedBy(message: string): number | undefined {
  const by = / claimed by (\d+)(?:\/|\s|$)/.exec(message);
  return by ? Number(by[1]) : undefined;
}

/** Why an attempt whose claim was not pushed by its worker job fails (retried as an infrastructure failure). */
export function foreignClaimReason(name: string, what: string): string {
  return `the claim of the worker job ${name} ${what}: it was not pushed by a worker job (anyone who can push can write the ref), so this attempt's job could not claim it and can never push a result; the item is retried per its policy`;
}

/** How long one fetch of a run's claims and results serves the stops of one recovery. */
const FETCH_REUSE_MS = 5_000;

/**
 * The claims and results of every item of a run, in one fetch shared by the calls of one recovery (a
 * takeover asks about each ended item in turn): fetched again once a few seconds have passed.
 */
export class RunClaimsFetch {
  private last: { runId: string; at: number; done: Promise<void> } | undefined;

  constructor(
    private readonly refs: RunRefs,
    private readonly fetchRefs: (refspecs: readonly string[]) => Promise<void>,
    private readonly clock: () => number,
  ) {}

  fetch(runId: string): Promise<void> {
    const now = this.clock();
    if (this.last?.runId === runId && now - this.last.at < FETCH_REUSE_MS) return this.last.done;
    const done = this.fetchRefs([mirrorPrefix(this.refs.claimsPrefix(runId)), mirrorPrefix(this.refs.resultsPrefix(runId))]);
    this.last = { runId, at: now, done };
    done.catch(() => {
      if (this.last?.done === done) this.last = undefined;
    });
    return done;
  }
}

/**
 * An attempt that ended while no process watched its job (cancelled after a hand-over or a crash): the job
 * that claimed it is cancelled while it still runs, when GitHub says it is a dispatch of the worker
 * workflow. A job not started yet needs nothing: it finds the attempt stale and runs nothing.
 */
export async function stopUnwatchedClaimant(
  o: {
    store: GitStore;
    refs: RunRefs;
    claims: RunClaimsFetch;
    api: () => Promise<WorkflowRunApi & { cancelRun(id: number): Promise<void> }>;
    workflow: string;
  },
  runId: string,
  itemId: string,
  attempt: number,
): Promise<void> {
  const { refs, store } = o;
  await o.claims.fetch(runId);
  if ((await store.resolveRef(refs.result(runId, itemId, attempt))) !== null) return; // it ended
  const claimed = await store.resolveRef(refs.claim(runId, itemId, attempt));
  if (claimed === null) return;
  const claimant = claimedBy((await store.readCommit(claimed).catch(() => null))?.message ?? '');
  if (claimant === undefined) return;
  const api = await o.api();
  if (await runningClaimant(api, o.workflow, claimant, [])) await api.cancelRun(claimant).catch(() => undefined);
}
