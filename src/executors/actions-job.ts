import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid } from '../git/types.js';
import { parseNumericUser } from './docker-spec.js';
import type { WorkerJob } from './types.js';

/** The job name of an attempt, as the worker workflow sets it (examples/workflows/agora-worker.yml). */
export function workerJobName(runId: string, itemId: string, attempt: number): string {
  return `agora ${runId} ${itemId} ${attempt}`;
}

/** The file of a dispatch record's commit (`refs/agora/dispatches/<run>/<item>/<attempt>`) that holds the job. */
const DISPATCH_FILE = 'job.json';

/**
 * The job of an attempt on the `actions` target as it travels in the worker workflow's `job` input: what
 * the App dispatches and what `mode: worker` runs (src/action/worker.ts). No secret values (only the
 * declared names) and no runner labels (they are the dispatch's `runs-on`).
 */
export interface DispatchedJob {
  command: string[];
  env: Record<string, string>;
  /** The names of the secrets the item declares: the job hands the item these, and no other. */
  secrets?: string[];
  stdin?: string;
  /** Container settings: `image` at least (the item always runs in a container on the runner). */
  options: Record<string, unknown>;
}

/**
 * `job` in the form the actions target dispatches it (`ActionsTarget.dispatch`): the worker rebuilds the
 * App's job from the run's plan with buildWorkerJob and compares this form of it with what it was dispatched.
 */
export function dispatchedJob(job: WorkerJob): DispatchedJob {
  const { labels: _labels, ...options } = job.options ?? {};
  return {
    command: job.command,
    env: job.env,
    ...(job.secretNames?.length ? { secrets: job.secretNames } : {}),
    ...(job.stdin !== undefined ? { stdin: job.stdin } : {}),
    options,
  };
}

/**
 * The container networks an item on the `actions` target may have: `none` (the default) or the engine's
 * default `bridge`. Never `host` (the runner's own network: its metadata endpoints, its local services),
 * `container:<id>` (another container's, the runner's own included) or a named network of the runner's engine.
 */
export const ACTIONS_NETWORKS: readonly string[] = ['none', 'bridge'];

/** Why `network` is refused on the actions target, or undefined (left out: `none`). */
export function actionsNetworkProblem(network: unknown): string | undefined {
  if (network === undefined || (typeof network === 'string' && ACTIONS_NETWORKS.includes(network))) return undefined;
  return `network ${JSON.stringify(network)} is not one an item on the actions target may have (${ACTIONS_NETWORKS.join(' or ')})`;
}

/** Why `user` is refused on the actions target (not a numeric uid[:gid], or root's uid or group), or undefined (left out: 65534:65534). */
export function actionsUserProblem(user: unknown): string | undefined {
  if (user === undefined) return undefined;
  const ids = typeof user === 'string' ? parseNumericUser(user) : undefined;
  if (ids === undefined) return `user ${JSON.stringify(user)} is not a numeric uid:gid such as 65534:65534`;
  if (ids.uid === 0 || ids.gid === 0) return `user ${JSON.stringify(user)} is root (uid or gid 0), which an item on the actions target never runs as`;
  return undefined;
}

/**
 * A commit recording `jobText` (the dispatched job, as the workflow's `job` input carries it) for the
 * attempt `name`: what the App makes its dispatch record of, before it dispatches.
 */
export async function dispatchRecord(store: GitStore, name: string, jobText: string, now: number): Promise<Oid> {
  const blob = await store.writeBlob(jobText);
  const tree = await store.writeTree([{ mode: '100644', path: DISPATCH_FILE, oid: blob, type: 'blob' }]);
  const who = agoraIdentity(now);
  return store.writeCommit({ tree, parents: [], message: `agora: dispatch ${name}\n`, author: who, committer: who });
}

/** The job text a dispatch record holds, or null when the commit holds none. */
export async function recordedJobText(store: GitStore, record: Oid): Promise<string | null> {
  const entry = (await store.readTree((await store.readCommit(record)).tree)).find((e) => e.path === DISPATCH_FILE && e.type === 'blob');
  return entry ? new TextDecoder().decode(await store.readBlob(entry.oid)) : null;
}

/**
 * When a dispatch record was made, in ms (its commit's time, to the second), or `fallback` when the commit
 * cannot be read: a process that re-attaches to the attempt counts its start timeout from there.
 */
export async function recordedAt(store: GitStore, record: Oid, fallback: number): Promise<number> {
  try {
    return (await store.readCommit(record)).committer.timestamp * 1000;
  } catch {
    return fallback;
  }
}
