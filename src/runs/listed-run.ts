import { errorMessage, isAgoraError } from '../errors.js';
import type { GitStore, Oid } from '../git/types.js';
import { runIdProblem } from '../plan/ids.js';
import type { RunRefs } from './refs.js';
import { stateCorrupt } from './run-layout.js';
import { readRunAt, type StoredRun } from './state-store.js';

/**
 * A run ref met by listing `refs/agora/runs/`, read as a run. Anyone who may push can write a ref there
 * that holds no run: a name Agora never makes (`runs/a-1/x`), a plain commit, a blob, a commit whose
 * `plan.json` or `run.json` is not what Agora writes. A loop over the listed runs (the sweep, superseding,
 * cancelling, the Action's verify, a local serve) skips such a ref, after saying so, and goes on with the others: one
 * such ref must never stop the runs listed after it. Failures of this machine (a corrupt local object, a
 * git process or a system call that failed) still propagate: they are not about the ref.
 */

/** A listed run ref that holds no run Agora can read. */
export interface UnreadableRunRef {
  ref: string;
  /** What the ref pointed at when read; null when its name alone rules it out. */
  oid: Oid | null;
  problem: string;
}

/** The errors that say this machine failed, not that the ref holds no run: they propagate. */
const MACHINE_ERRORS: ReadonlySet<string> = new Set([
  'object-corrupt',
  'object-unreadable',
  'git-failed',
  'git-cli-missing',
  'disk-full',
  'repo-not-found',
  'repo-not-owned',
  'repo-unsupported',
  'interrupted',
]);

export function isMachineError(e: unknown): boolean {
  if (isAgoraError(e)) return MACHINE_ERRORS.has(e.code);
  // A Node system error (EMFILE, EIO, …) names the system call that failed.
  return typeof (e as { syscall?: unknown } | null)?.syscall === 'string';
}

/**
 * The run `refs.run(runId)` holds; null when there is no such ref, or when it holds no run Agora can read
 * (then `onUnreadable` is told why). Throws only what {@link isMachineError} says is this machine's.
 */
export async function readListedRun(store: GitStore, refs: RunRefs, runId: string, onUnreadable: (u: UnreadableRunRef) => void): Promise<StoredRun | null> {
  const ref = refs.run(runId);
  if (runIdProblem(runId) !== undefined) return readListedRunAt(store, ref, runId, null, onUnreadable);
  const head = await store.resolveRef(ref);
  return head === null ? null : readListedRunAt(store, ref, runId, head, onUnreadable);
}

/** {@link readListedRun} of the value a listing gave (`head`; null when the listing gave none). */
export async function readListedRunAt(
  store: GitStore,
  ref: string,
  runId: string,
  head: Oid | null,
  onUnreadable: (u: UnreadableRunRef) => void,
): Promise<StoredRun | null> {
  const named = runIdProblem(runId);
  if (named !== undefined) {
    onUnreadable({ ref, oid: head, problem: `its name is not a run id Agora makes: ${named}` });
    return null;
  }
  if (head === null) return null;
  try {
    return await readCheckedRunAt(store, runId, head);
  } catch (e) {
    if (isMachineError(e)) throw e;
    onUnreadable({ ref, oid: head, problem: errorMessage(e) });
    return null;
  }
}

/**
 * {@link readRunAt}, and then a check of what the loops, settling, recovery and a driver's shutdown read
 * without a further look (layout 1's state.json and layout 2's run.json are read as they are): a ref
 * overwritten with a commit of a run's files, but not a run's state, throws `state-corrupt`.
 */
export async function readCheckedRunAt(store: GitStore, runId: string, head: Oid): Promise<StoredRun> {
  const run = await readRunAt(store, runId, head);
  const problem = stateShapeProblem(run.state);
  if (problem !== undefined) throw stateCorrupt(`state commit ${head} ${problem}: not an Agora state commit`);
  return run;
}

const OID = /^[0-9a-f]{40}$/;

/** What a run's state lacks of what every reader of a listed run relies on, or undefined. */
function stateShapeProblem(value: unknown): string | undefined {
  const state = value as Partial<Record<keyof StoredRun['state'], unknown>> | null;
  if (typeof state !== 'object' || state === null) return 'holds no run state';
  if (typeof state.status !== 'string') return 'names no status';
  if (typeof state.queue !== 'string') return 'names no queue';
  if (typeof state.base !== 'string' || !OID.test(state.base)) return 'names no base commit';
  if (typeof state.integrationHead !== 'string' || !OID.test(state.integrationHead)) return 'names no integration head';
  if (typeof state.acceptedAt !== 'number') return 'names no time of acceptance';
  if (typeof state.items !== 'object' || state.items === null || Array.isArray(state.items)) return 'holds no items';
  for (const [id, item] of Object.entries(state.items as Record<string, unknown>)) {
    const it = item as { id?: unknown; status?: unknown; attempts?: unknown } | null;
    if (typeof it !== 'object' || it === null || it.id !== id || typeof it.status !== 'string' || typeof it.attempts !== 'number') {
      return `holds an item ${JSON.stringify(id)} that is not an item's state`;
    }
  }
  return undefined;
}

// C0 and C1 controls, DEL, line and paragraph separators, bidirectional embeddings, overrides and isolates.
// eslint-disable-next-line no-control-regex
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` quoted on one line, every character that could end the line or reorder what a reader sees escaped. */
function quoted(text: string): string {
  return JSON.stringify(text).replace(UNSHOWABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What a log says of an unreadable run ref (the ref's name and the problem are untrusted: quoted). */
export function unreadableRunText(u: UnreadableRunRef, outcome = 'skipped'): string {
  return `${quoted(u.ref)}${u.oid ? ` (at ${u.oid})` : ''} is not a run Agora can read; ${outcome}: ${quoted(u.problem)}`;
}
