import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from './refs.js';
import { readRun } from './state-store.js';

/**
 * Retention of finished runs: `agora orch gc --older-than` removes the refs of runs that ended before a
 * cut-off, once their audit bundle is kept elsewhere, so the refs a repository advertises (and the app
 * fetches per event) grow with the runs still of interest, not with every run ever made.
 *
 * What goes: `runs/<run>` (the state and the log), `patches/<run>/*`, `integration/<run>`, `inbox/<run>`
 * and `leases/<run>`; rejections (`rejected/<id>`) older than the cut-off. What stays: `anchors/<run>`, the
 * repository's own record of each run's Merkle root, so a kept bundle still proves what the run was.
 * Running runs and runs whose bundle could not be kept are never touched.
 *
 * Order: the bundle is kept first (durable before anything is removed); then `runs/<run>` is removed by
 * compare-and-swap against the value read (a run reopened meanwhile by a Retry is left alone); then the
 * run's other refs. A crash after the first removal leaves refs whose run is gone but whose anchor
 * exists: the next gc removes them (it never touches refs of a run without an anchor, such as a
 * submission not yet accepted).
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
}

export interface GcReport {
  pruned: Array<{ runId: string; status: string; finishedAt: number; bundle: string }>;
  /** Finished before the cut-off but kept, and why. */
  skipped: Array<{ runId: string; why: string }>;
  /** Refs left behind by an earlier, interrupted gc, removed now. */
  leftovers: string[];
  rejections: string[];
}

export async function collectGarbage(store: GitStore, refs: RunRefs, opts: GcOptions): Promise<GcReport> {
  const report: GcReport = { pruned: [], skipped: [], leftovers: [], rejections: [] };
  for (const { ref, oid } of await store.listRefs(refs.runsPrefix)) {
    const runId = ref.slice(refs.runsPrefix.length);
    const run = await readRun(store, refs, runId);
    if (!run || run.state.status === 'running') continue;
    const finishedAt = run.state.finishedAt ?? (await store.readCommit(oid)).committer.timestamp * 1000;
    if (finishedAt >= opts.before) continue;
    const kept = await opts.keepBundle(runId);
    if (!kept.kept) {
      report.skipped.push({ runId, why: kept.why });
      continue;
    }
    if (!opts.dryRun) {
      if (!(await store.deleteRef(ref, oid))) {
        report.skipped.push({ runId, why: `${ref} moved while gc ran (a Retry reopened it?); it stays` });
        continue;
      }
      await removeRunRefs(store, refs, runId);
    }
    report.pruned.push({ runId, status: run.state.status, finishedAt, bundle: kept.where });
  }
  if (!opts.dryRun) report.leftovers = await removeLeftovers(store, refs);
  for (const { ref, oid } of await store.listRefs(refs.rejectedPrefix)) {
    const at = (await store.readCommit(oid)).committer.timestamp * 1000;
    if (at >= opts.before) continue;
    if (opts.dryRun || (await store.deleteRef(ref, oid))) report.rejections.push(ref.slice(refs.rejectedPrefix.length));
  }
  return report;
}

/** Every ref of `runId` but its state and its anchor. */
async function runRefs(store: GitStore, refs: RunRefs, runId: string): Promise<Array<{ ref: string; oid: Oid }>> {
  const single = [refs.integration(runId), refs.inbox(runId), refs.lease(runId)];
  const found: Array<{ ref: string; oid: Oid }> = [];
  for (const ref of single) {
    const oid = await store.resolveRef(ref);
    if (oid) found.push({ ref, oid });
  }
  found.push(...(await store.listRefs(`${refs.patch(runId, '')}`)));
  return found;
}

async function removeRunRefs(store: GitStore, refs: RunRefs, runId: string): Promise<string[]> {
  const removed: string[] = [];
  for (const { ref, oid } of await runRefs(store, refs, runId)) if (await store.deleteRef(ref, oid)) removed.push(ref);
  return removed;
}

/** Refs of anchored runs whose state ref is gone: what an interrupted gc left. */
async function removeLeftovers(store: GitStore, refs: RunRefs): Promise<string[]> {
  const anchorsPrefix = refs.anchor('');
  const removed: string[] = [];
  for (const { ref } of await store.listRefs(anchorsPrefix)) {
    const runId = ref.slice(anchorsPrefix.length);
    if (await store.resolveRef(refs.run(runId))) continue;
    removed.push(...(await removeRunRefs(store, refs, runId)));
  }
  return removed;
}
