import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import { ANCHOR_FILE } from './anchor.js';
import type { RunRefs } from './refs.js';
import { readRun, sortTree } from './state-store.js';

/**
 * Retention of finished runs: `agora orch gc --older-than` removes the refs of runs that ended before a
 * cut-off, once their audit bundle is kept elsewhere, so the refs a repository advertises (and the app
 * fetches per event) grow with the runs still of interest, not with every run ever made.
 *
 * What goes: `runs/<run>` (the state and the log), `patches/<run>/*`, `integration/<run>`, `inbox/<run>`
 * and `leases/<run>`; rejections (`rejected/<id>`) older than the cut-off. What stays: each run's anchored
 * Merkle root, the repository's own record of what the run was, moved from its ref `anchors/<run>` into
 * one archive commit (`anchor-archive`, a tree of `<run>.json` files, the same anchor.json blobs): a ref
 * per past run would still be listed by every push (receive-pack advertises every ref).
 * Running runs and runs whose bundle could not be kept are never touched.
 *
 * Order: the bundle is kept first (durable before anything is removed); then `runs/<run>` is removed by
 * compare-and-swap against the value read (a run reopened meanwhile by a Retry is left alone); then the
 * run's other refs; then its anchor is archived (the archive commit first, then the ref's removal). A
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
}

export async function collectGarbage(store: GitStore, refs: RunRefs, opts: GcOptions): Promise<GcReport> {
  const report: GcReport = { pruned: [], skipped: [], leftovers: [], archived: [], rejections: [] };
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
  if (!opts.dryRun) {
    const orphans = await orphanedAnchors(store, refs);
    for (const runId of orphans) report.leftovers.push(...(await removeRunRefs(store, refs, runId)));
    report.archived = await archiveAnchors(store, refs, orphans, opts.now);
  }
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

/** Runs with an anchor ref but no state ref: pruned now, or by an earlier gc that was interrupted. */
async function orphanedAnchors(store: GitStore, refs: RunRefs): Promise<string[]> {
  const anchorsPrefix = refs.anchor('');
  const orphans: string[] = [];
  for (const { ref } of await store.listRefs(anchorsPrefix)) {
    const runId = ref.slice(anchorsPrefix.length);
    if (!(await store.resolveRef(refs.run(runId)))) orphans.push(runId);
  }
  return orphans;
}

/**
 * Adds each run's anchor.json to the archive commit as `<run>.json` (compare-and-swap on the archive
 * ref, tried again if another gc moved it), then removes the anchor refs it holds. Returns those runs.
 */
async function archiveAnchors(store: GitStore, refs: RunRefs, runIds: readonly string[], now: number): Promise<string[]> {
  if (runIds.length === 0) return [];
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const head = await store.resolveRef(refs.anchorArchive);
    const files = new Map<string, TreeEntry>();
    if (head) for (const e of await store.readTree((await store.readCommit(head)).tree)) files.set(e.path, e);
    const moved: Array<{ runId: string; ref: string; oid: Oid }> = [];
    for (const runId of runIds) {
      const ref = refs.anchor(runId);
      const oid = await store.resolveRef(ref);
      if (!oid) continue;
      const file = (await store.readTree((await store.readCommit(oid)).tree)).find((e) => e.path === ANCHOR_FILE && e.type === 'blob');
      if (!file) continue; // not an anchor Agora wrote: left where it is, for a person to look at
      files.set(`${runId}.json`, { mode: '100644', path: `${runId}.json`, oid: file.oid, type: 'blob' });
      moved.push({ runId, ref, oid });
    }
    if (moved.length === 0) return [];
    const who = agoraIdentity(now);
    const tree = await store.writeTree(sortTree([...files.values()]));
    const message = `agora: archive the anchors of ${moved.length} pruned run${moved.length === 1 ? '' : 's'}\n\n${moved.map((m) => m.runId).join('\n')}\n`;
    const commit = await store.writeCommit({ tree, parents: head ? [head] : [], message, author: who, committer: who });
    if (!(await store.casRef(refs.anchorArchive, commit, head))) continue;
    const archived: string[] = [];
    for (const m of moved) if (await store.deleteRef(m.ref, m.oid)) archived.push(m.runId);
    return archived;
  }
  return [];
}
