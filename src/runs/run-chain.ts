import type { GitStore, Oid } from '../git/types.js';
import { entriesOf } from './state-store.js';
import type { AuditEntry } from '../log/entry.js';
import { SILENT, type Progress } from '../progress.js';

/** A run's state chain as stored: every state commit (oldest first) and every entry they added, in order. */
export interface RunChain {
  /** State commits, oldest (the accepting commit, which holds plan.json as submitted) first. */
  commits: Oid[];
  entries: AuditEntry[];
}

/** Walks the first-parent chain from `head` back to the run's first state commit. */
export async function readRunChain(store: GitStore, head: Oid, progress: Progress = SILENT): Promise<RunChain> {
  const commits = await stateCommits(store, head, progress);
  const entries: AuditEntry[] = [];
  progress.phase('state commits read', commits.length);
  for (const commit of commits) {
    for (const e of await entriesOf(store, commit)) entries.push(e);
    progress.advance();
  }
  return { commits, entries };
}

/** The state commits of the chain that ends at `head`, oldest first (by first parent, the first one having none). */
export async function stateCommits(store: GitStore, head: Oid, progress: Progress = SILENT): Promise<Oid[]> {
  const commits: Oid[] = [];
  progress.phase('state commits walked');
  for (let at: Oid | undefined = head; at;) {
    commits.push(at);
    at = (await store.readCommit(at)).parents[0];
    progress.advance();
  }
  return commits.reverse();
}
