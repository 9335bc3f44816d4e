import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { mirrorPrefix } from '../git/refspec.js';
import { diffTrees } from '../git/tree-diff.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { claimedBy } from './actions-claims.js';
import { readAttemptResult } from './actions-result.js';
import { applyChanges } from './actions-workspace.js';
import { EMIT_FILE } from './control-files.js';
import type { WorkerJob, WorkerResult } from './types.js';

/**
 * What an attempt's refs on GitHub say, as the `actions` target waits for it: the item's claims and results
 * are fetched in one go, then the attempt's result is read, checked against the attempt's base and applied
 * to its workspace (`lookAtAttempt`), or its claim is read for the workflow run it names. The target
 * (actions-target.ts) decides what the answers mean.
 */

/** Where the attempt's refs are read: the mirror, its fetch from GitHub, and the ref names. */
export interface RefsOnGitHub {
  store: GitStore;
  refs: RunRefs;
  fetchRefs: (refspecs: readonly string[]) => Promise<void>;
}

/** The attempt's claim ref, once a job pushed it: the workflow run of that job, when its commit names it. */
export interface Claim {
  workflowRunId?: number;
}

/** One look's answer: the result (with the workflow run its commit says it came from), else the claim. */
export interface Look {
  result: { result: WorkerResult; workflowRunId?: number } | null;
  claim: Claim | null;
}

/** One fetch of the item's claims and results (every attempt of it). */
function fetchItemRefs(o: RefsOnGitHub, job: WorkerJob): Promise<void> {
  const { refs } = o;
  return o.fetchRefs([mirrorPrefix(`${refs.claimsPrefix(job.runId)}${job.itemId}/`), mirrorPrefix(`${refs.resultsPrefix(job.runId)}${job.itemId}/`)]);
}

/** The attempt's result and claim refs on GitHub (one fetch), without reading what they name. */
export async function attemptRefs(o: RefsOnGitHub, job: WorkerJob): Promise<{ result: Oid | null; claim: Oid | null }> {
  const { refs, store } = o;
  await fetchItemRefs(o, job);
  return {
    result: await store.resolveRef(refs.result(job.runId, job.itemId, job.attempt)),
    claim: await store.resolveRef(refs.claim(job.runId, job.itemId, job.attempt)),
  };
}

/** The workflow run that claimed the attempt, looked up now; none once its result is in, or when unreadable. */
export async function claimantNow(o: RefsOnGitHub, job: WorkerJob): Promise<number | undefined> {
  const now = await attemptRefs(o, job).catch(() => null);
  if (!now?.claim || now.result) return undefined;
  return claimedBy((await o.store.readCommit(now.claim).catch(() => null))?.message ?? '');
}

/**
 * One look at the attempt's refs, in one fetch of the item's claims and results. The result, once its
 * job pushed one: written into the workspace, its exit status returned, with the workflow run the result
 * commit says it came from (only used to pick which job to link). The claim (when `wantClaim`), once a
 * job pushed it, with the workflow run its commit names (`… claimed by <run id>/<run attempt>/<runner>`).
 */
export async function lookAtAttempt(o: RefsOnGitHub, job: WorkerJob, wantClaim: boolean): Promise<Look> {
  const { refs, store } = o;
  await fetchItemRefs(o, job);
  const oid: Oid | null = await store.resolveRef(refs.result(job.runId, job.itemId, job.attempt));
  if (oid !== null) {
    const from = /^Agora-Worker: (\d+)\//m.exec((await store.readCommit(oid).catch(() => null))?.message ?? '');
    const result = await applyResult(store, job, oid);
    return { result: from ? { result, workflowRunId: Number(from[1]) } : { result }, claim: null };
  }
  const claimed = wantClaim ? await store.resolveRef(refs.claim(job.runId, job.itemId, job.attempt)) : null;
  if (claimed === null) return { result: null, claim: null };
  const by = claimedBy((await store.readCommit(claimed).catch(() => null))?.message ?? '');
  return { result: null, claim: by === undefined ? {} : { workflowRunId: by } };
}

/** The result commit `oid`: checked against the attempt's base, its log written, its changes and emitted items applied. */
async function applyResult(store: GitStore, job: WorkerJob, oid: Oid): Promise<WorkerResult> {
  try {
    const r = await readAttemptResult(store, oid);
    if (job.base !== undefined && r.base !== job.base) {
      return {
        exitCode: null,
        reason: `the worker's result ${oid.slice(0, 12)} was built on ${r.base.slice(0, 12)}, not on the attempt's base ${job.base.slice(0, 12)}: not recorded`,
      };
    }
    job.log.write(r.log, 'stdout');
    if (r.result.exitCode !== 0) return r.result;
    const base = await store.readCommit(r.base);
    await applyChanges(store, job.workspaceDir, await diffTrees(store, base.tree, r.workspace));
    // Checked again, with the rest of the emission, by the attempt (src/runs/emit.ts).
    if (r.emitted !== undefined && job.emitDir !== undefined) await writeFile(join(job.emitDir, EMIT_FILE), r.emitted, { flag: 'wx', mode: 0o600 });
    return { exitCode: 0 };
  } catch (e) {
    return { exitCode: null, reason: `the worker's result ${oid.slice(0, 12)} cannot be used: ${errorMessage(e)}` };
  }
}
