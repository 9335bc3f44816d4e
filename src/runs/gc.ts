import { crashPoint } from '../crash-points.js';
import { errorMessage } from '../errors.js';
import type { GitStore, Oid } from '../git/types.js';
import { runIdProblem } from '../plan/ids.js';
import { SILENT, type Progress } from '../progress.js';
import { archiveAnchors, archivedRuns } from './anchor-archive.js';
import { ClaimsLedger } from './claims.js';
import { RunLease } from './lease.js';
import type { RunRefs } from './refs.js';
import { readRun } from './state-store.js';

/**
 * Retention of finished runs: `agora orch gc --older-than` removes the refs of runs that ended before a
 * cut-off, once their audit bundle is kept elsewhere, so the refs a repository advertises (and the app
 * fetches per event) grow with the runs still of interest, not with every run ever made.
 *
 * What goes: `runs/<run>` (the state and the log), `patches/<run>/*`, `integration/<run>`,
 * `leases/<run>`, the `actions` target's `attempt-claims/<run>/*`, `dispatches/<run>/*` and `results/<run>/*`, and the run's
 * entries in the shared `claims` document (void once the run ended, but still listed); rejections (`rejected/<id>`) older than the cut-off. What stays: each run's anchored
 * Merkle root, the repository's own record of what the run was, moved from its ref `anchors/<run>` into
 * one archive commit (`anchor-archive`, a tree of `<run>.json` files, the same anchor.json blobs): a ref
 * per past run would still be listed by every push (receive-pack advertises every ref).
 * Running runs, runs whose lease is still held (a process may be finishing them), runs whose bundle
 * could not be kept and refs whose names are not run ids Agora makes are never touched.
 *
 * Order: the bundle is kept first (durable before anything is removed); then `runs/<run>` is removed by
 * compare-and-swap against the value read (a run reopened meanwhile by a Retry is left alone); then the
 * run's other refs and the host-local file of its secret parameters (if any); then its anchor is archived (the archive commit first, then the ref's removal); then
 * the entries of every run pruned or finished now leave the claims document (one compare-and-swap). A
 * crash in between leaves refs whose run is gone but whose anchor ref exists: the next gc finishes them
 * (it never touches refs of a run without an anchor, such as a submission not yet accepted).
 */

/** What keeping a run's bundle came to: kept (where), or why it could not be. */
export type KeepOutcome = { kept: true; where: string } | { kept: false; why: string };

export interface GcOptions {
  /** Runs that finished before this time (epoch ms) are pruned. */
  before: number;
  /** Keeps the run's audit bundle somewhere outside the repository's refs; called before any removal. */
  keepBundle(runId: string): Promise<KeepOutcome>;
  /** Report what would go, remove nothing. */
  dryRun?: boolean;
  /** The archive commit's time (epoch ms). */
  now: number;
  /** Told how many runs have been looked at. */
  progress?: Progress;
  /**
   * Removes the host-local store of a pruned run's secret parameters (`run.json` `params.secretStore`);
   * true when there was one. Called once the run's refs are gone, never in a dry run. Absent: kept.
   */
  removeSecretParams?(token: string, runId: string): Promise<boolean>;
}

export interface GcReport {
  pruned: Array<{ runId: string; status: string; finishedAt: number; bundle: string }>;
  /** Finished before the cut-off but kept, and why. */
  skipped: Array<{ runId: string; why: string }>;
  /** Refs left behind by an earlier, interrupted gc, removed now. */
  leftovers: string[];
  /** Runs whose anchor ref was moved into the archive. */
  archived: string[];
  rejections: string[];
  /** Entries of pruned runs removed from the claims document (`refs/agora/claims`), or why they could not be. */
  claims: { dropped: number; problem?: string };
  /** Pruned runs whose secret parameters' host-local file was removed. */
  secretParams: string[];
}

export async function collectGarbage(store: GitStore, refs: RunRefs, opts: GcOptions): Promise<GcReport> {
  const report: GcReport = { pruned: [], skipped: [], leftovers: [], archived: [], rejections: [], claims: { dropped: 0 }, secretParams: [] };
  // The archive is where the anchors of the runs pruned below go: one that is not Agora's (anyone who may
  // push can point the ref elsewhere) fails here, typed, before any run is pruned.
  await archivedRuns(store, refs);
  const runs = await store.listRefs(refs.runsPrefix);
  const progress = opts.progress ?? SILENT;
  progress.phase('runs looked at', runs.length);
  for (const { ref, oid } of runs) {
    progress.advance();
    const runId = ref.slice(refs.runsPrefix.length);
    try {
      const skip = await pruneRun(store, refs, opts, runId, ref, oid, report);
      if (skip) report.skipped.push({ runId, why: skip });
    } catch (e) {
      report.skipped.push({ runId, why: `could not be pruned: ${errorMessage(e)}` });
    }
  }
  const orphans = await orphanedAnchors(store, refs);
  if (opts.dryRun) report.leftovers = orphans.map((runId) => refs.run(runId));
  else {
    for (const runId of orphans) report.leftovers.push(...(await removeRunRefs(store, refs, runId)));
    report.archived = await archiveAnchors(store, refs, orphans, opts.now);
  }
  report.claims = await dropClaims(store, refs, new Set([...report.pruned.map((p) => p.runId), ...orphans]), opts);
  for (const { ref, oid } of await store.listRefs(refs.rejectedPrefix)) {
    const at = (await store.readCommit(oid)).committer.timestamp * 1000;
    if (at >= opts.before) continue;
    if (opts.dryRun || (await store.deleteRef(ref, oid))) report.rejections.push(ref.slice(refs.rejectedPrefix.length));
  }
  return report;
}

/** Prunes one run if it is due; returns why not when it is due but kept (undefined otherwise). */
async function pruneRun(store: GitStore, refs: RunRefs, opts: GcOptions, runId: string, ref: string, oid: Oid, report: GcReport): Promise<string | undefined> {
  // A ref under runs/ that Agora would not have named (anyone who may push can make one) is left alone.
  const problem = runIdProblem(runId);
  if (problem) return `${ref} is not a run id Agora makes (${problem}); left alone`;
  const run = await readRun(store, refs, runId);
  if (!run || run.state.status === 'running') return undefined;
  const finishedAt = run.state.finishedAt ?? (await store.readCommit(oid)).committer.timestamp * 1000;
  if (finishedAt >= opts.before) return undefined;
  // Finished, but a process may still be finishing it (landing patches, publishing the audit).
  const lease = await RunLease.read(store, refs, runId);
  if (lease && lease.until > opts.now) return `its lease is held by ${lease.holder} until ${new Date(lease.until).toISOString()}; it stays`;
  const kept = await opts.keepBundle(runId);
  if (!kept.kept) return kept.why;
  if (!opts.dryRun) {
    // The run's secret parameter values live in a file on this host, not in a ref: they go with the run,
    // and first, since once its ref is gone nothing names that file (a crash between would leave it).
    const token = run.state.params?.secretStore;
    const secretsRemoved = token !== undefined && opts.removeSecretParams !== undefined && (await opts.removeSecretParams(token, runId));
    if (!(await store.deleteRef(ref, oid)))
      return `${ref} moved while gc ran (a Retry reopened it?); it stays${secretsRemoved ? ', without its secret parameters (give them again to run it)' : ''}`;
    crashPoint('run-ref-deleted');
    await removeRunRefs(store, refs, runId);
    if (secretsRemoved) report.secretParams.push(runId);
  }
  report.pruned.push({ runId, status: run.state.status, finishedAt, bundle: kept.where });
  return undefined;
}

/**
 * Every ref of `runId` but its state and its anchor. Not its inbox entry: that is a submission's, and an
 * inbox ref of a pruned run's id can only be a new submission (serve removes the entry it accepts).
 */
async function runRefs(store: GitStore, refs: RunRefs, runId: string): Promise<Array<{ ref: string; oid: Oid }>> {
  const single = [refs.integration(runId), refs.lease(runId)];
  const found: Array<{ ref: string; oid: Oid }> = [];
  for (const ref of single) {
    const oid = await store.resolveRef(ref);
    if (oid) found.push({ ref, oid });
  }
  for (const prefix of [refs.patch(runId, ''), refs.claimsPrefix(runId), refs.dispatchesPrefix(runId), refs.resultsPrefix(runId)])
    found.push(...(await store.listRefs(prefix)));
  return found;
}

/** Removes the runs' entries from the claims document; a document Agora did not write is reported, not fatal. */
async function dropClaims(store: GitStore, refs: RunRefs, runs: ReadonlySet<string>, opts: GcOptions): Promise<GcReport['claims']> {
  if (runs.size === 0) return { dropped: 0 };
  try {
    return { dropped: await new ClaimsLedger(store, refs).dropRuns(runs, opts.now, opts.dryRun) };
  } catch (e) {
    return { dropped: 0, problem: errorMessage(e) };
  }
}

async function removeRunRefs(store: GitStore, refs: RunRefs, runId: string): Promise<string[]> {
  const removed: string[] = [];
  for (const { ref, oid } of await runRefs(store, refs, runId)) if (await store.deleteRef(ref, oid)) removed.push(ref);
  return removed;
}

/** Runs with an anchor ref but no state ref: pruned now, or by an earlier gc that was interrupted. */
async function orphanedAnchors(store: GitStore, refs: RunRefs): Promise<string[]> {
  const anchorsPrefix = refs.anchor('');
  const orphans: string[] = [];
  for (const { ref } of await store.listRefs(anchorsPrefix)) {
    const runId = ref.slice(anchorsPrefix.length);
    if (runIdProblem(runId)) continue;
    if (!(await store.resolveRef(refs.run(runId)))) orphans.push(runId);
  }
  return orphans;
}
