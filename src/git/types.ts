/**
 * The storage port (DESIGN.md §2): git objects, refs, and compare-and-swap ref updates.
 * Implementations: a local repository (src/git/local-store.ts) and a remote one (smart HTTP).
 */

export type Oid = string;

export type TreeEntryMode = '100644' | '100755' | '120000' | '040000' | '160000';

export interface TreeEntry {
  mode: TreeEntryMode;
  path: string; // one path component
  oid: Oid;
  type: 'blob' | 'tree' | 'commit';
}

export interface Identity {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** Minutes west of UTC, as `Date.getTimezoneOffset` gives them (UTC+2 is -120; git writes it +0200); 0 for UTC. */
  timezoneOffset: number;
}

export interface CommitData {
  tree: Oid;
  parents: Oid[];
  message: string;
  author: Identity;
  committer: Identity;
}

/** An object as git stores it: its type and its content (without the `<type> <size>\0` header). */
export interface GitObject {
  type: 'blob' | 'tree' | 'commit' | 'tag';
  content: Buffer;
}

/** One ref of a transaction: point `ref` at `next` if it points at `expected` (null: if it does not exist). */
export interface RefSwap {
  ref: string;
  next: Oid;
  expected: Oid | null;
}

export interface GitStore {
  /** The repository's git directory (for adapters that keep local scratch data next to it). */
  readonly gitdir: string;
  readBlob(oid: Oid): Promise<Uint8Array>;
  writeBlob(data: Uint8Array | string): Promise<Oid>;
  readTree(oid: Oid): Promise<TreeEntry[]>;
  writeTree(entries: TreeEntry[]): Promise<Oid>;
  readCommit(oid: Oid): Promise<CommitData>;
  writeCommit(commit: CommitData): Promise<Oid>;
  hasObject(oid: Oid): Promise<boolean>;
  /** Full ref name (`refs/agora/runs/x`, `HEAD`) → object id, or null when it does not exist. */
  resolveRef(ref: string): Promise<Oid | null>;
  /** Every ref under `prefix` (e.g. `refs/agora/runs/`), sorted by name. */
  listRefs(prefix: string): Promise<Array<{ ref: string; oid: Oid }>>;
  /**
   * Compare-and-swap: point `ref` at `next` only if it still points at `expected` (null: only if it does
   * not exist). Safe between processes, including the `git` CLI. Returns false when the ref had moved.
   */
  casRef(ref: string, next: Oid, expected: Oid | null): Promise<boolean>;
  /**
   * Several compare-and-swaps as one transaction: every ref moves, or none does (false: one had moved).
   * Where the refs cannot move at one instant, they move in the order given: put last the ref whose
   * value names the others' commits (a run's state), so it never names a commit before it is in place.
   */
  casRefs(swaps: readonly RefSwap[]): Promise<boolean>;
  /** Delete `ref` only if it still points at `expected`. Returns false when it had moved. */
  deleteRef(ref: string, expected: Oid): Promise<boolean>;
  /**
   * Removes what ref updates of processes killed since left on this host (a store that writes refs
   * through files of its own: ref-temp-sweep.ts); the paths removed. Only a serve looks (it holds the
   * serve lock), at its start and while it serves.
   */
  removeAbandonedRefTemps?(now: number): Promise<string[]>;
}
