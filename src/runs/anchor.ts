import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { AgoraError, errorMessage } from '../errors.js';
import { TERMINAL_ITEM_STATUSES } from '../engine/types.js';
import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from './refs.js';
import { readRun } from './state-store.js';
import { merkleRootHex } from '../log/merkle.js';
import { readRunChain } from './run-chain.js';

/**
 * The git-ref anchor (the `tamper-detecting` tier, guarantee `same-repository`): `refs/agora/anchors/<run>`
 * points at a commit whose tree holds `anchor.json` { runId, root, entries, stateCommit }. Once written it
 * only ever moves forward to an extension of the same log (a run that was reopened and finished again): a
 * different root over the same entries is tampering and is refused.
 */

export const ANCHOR_FILE = 'anchor.json';

export interface AnchorFile {
  runId: string;
  /** RFC 6962 root over the first `entries` entry hashes, hex. */
  root: string;
  entries: number;
  /** The run's state commit the root was computed at. */
  stateCommit: Oid;
}

export interface StoredAnchor {
  /** The anchor commit the ref points at. */
  commit: Oid;
  /** The parsed anchor.json, or null when the commit holds none or an unreadable one. */
  record: AnchorFile | null;
  /** Why `record` is null. */
  problem?: string;
}

export type AnchorOutcome =
  | { status: 'created'; commit: Oid }
  | { status: 'unchanged'; commit: Oid }
  /** The run was reopened and finished again: the new anchor extends the old one (its parent). */
  | { status: 'extended'; commit: Oid; previous: Oid };

const decoder = new TextDecoder();

/** Reads the anchor of `runId`, or null when the ref does not exist. Never throws for a malformed anchor. */
export async function readAnchor(store: GitStore, refs: RunRefs, runId: string): Promise<StoredAnchor | null> {
  const commit = await store.resolveRef(refs.anchor(runId));
  if (!commit) return null;
  try {
    const tree = await store.readTree((await store.readCommit(commit)).tree);
    const file = tree.find((e) => e.path === ANCHOR_FILE && e.type === 'blob');
    if (!file) return { commit, record: null, problem: `anchor commit ${commit} holds no ${ANCHOR_FILE}` };
    const json = JSON.parse(decoder.decode(await store.readBlob(file.oid))) as Partial<AnchorFile>;
    if (typeof json.runId !== 'string' || typeof json.root !== 'string' || typeof json.entries !== 'number' || typeof json.stateCommit !== 'string') {
      return { commit, record: null, problem: `${ANCHOR_FILE} in anchor commit ${commit} lacks runId, root, entries or stateCommit` };
    }
    return { commit, record: { runId: json.runId, root: json.root, entries: json.entries, stateCommit: json.stateCommit } };
  } catch (error) {
    return { commit, record: null, problem: `anchor commit ${commit} cannot be read: ${errorMessage(error)}` };
  }
}

/**
 * Anchors `root` for the terminal run `runId`: writes a commit holding anchor.json and moves
 * `refs/agora/anchors/<run>` to it by compare-and-swap. The same root again is a no-op. A different root is
 * accepted only when the existing anchor covers a prefix of the same log and an earlier state commit of the
 * same chain (the run was reopened); anything else throws AgoraError `anchor-conflict`. `root` must be the root
 * of the run's entries as the repository holds them (else `anchor-root-mismatch`).
 */
export async function anchorRun(store: GitStore, refs: RunRefs, runId: string, root: string, now: number): Promise<AnchorOutcome> {
  const run = await readRun(store, refs, runId);
  if (!run) throw new AgoraError('run-not-found', `no run ${runId} in this repository`, 'list runs with `agora orch status`');
  const terminal = run.state.status !== 'running' && Object.values(run.state.items).every((i) => TERMINAL_ITEM_STATUSES.has(i.status));
  if (!terminal) {
    throw new AgoraError(
      'run-not-terminal',
      `run ${runId} is ${run.state.status}: only a finished run is anchored`,
      'wait for the run to end (agora orch watch), then audit it',
    );
  }
  const chain = await readRunChain(store, run.head);
  const hashes = chain.entries.map((e) => e.hash);
  const actual = merkleRootHex(hashes);
  if (actual !== root) {
    throw new AgoraError('anchor-root-mismatch', `refusing to anchor root ${root} for run ${runId}: its entries in the repository have root ${actual}`);
  }
  const record: AnchorFile = { runId, root, entries: hashes.length, stateCommit: run.head };
  const ref = refs.anchor(runId);
  return retryOnConflict(
    ref,
    10,
    async (): Promise<AnchorOutcome | typeof LOST_RACE> => {
      const existing = await readAnchor(store, refs, runId);
      if (existing?.record && existing.record.root === root && existing.record.runId === runId) return { status: 'unchanged', commit: existing.commit };
      if (existing) {
        const why = extensionProblem(existing, record, hashes, chain.commits);
        if (why) {
          throw new AgoraError(
            'anchor-conflict',
            `${ref} already anchors ${existing.record ? `root ${existing.record.root}` : 'something unreadable'}, not ${root}: ${why}; refusing to move it (the run's log or the anchor was tampered with)`,
            'investigate the repository: an anchor is never rewritten',
          );
        }
      }
      const commit = await writeAnchorCommit(store, record, existing?.commit ?? null, now);
      if (!(await store.casRef(ref, commit, existing?.commit ?? null))) return LOST_RACE;
      return existing ? { status: 'extended', commit, previous: existing.commit } : { status: 'created', commit };
    },
    'run the audit again',
  );
}

/** Why `next` does not legitimately extend `existing` (a prefix of the same log, an earlier commit of the chain). */
function extensionProblem(existing: StoredAnchor, next: AnchorFile, hashes: readonly string[], commits: readonly Oid[]): string | undefined {
  const old = existing.record;
  if (!old) return existing.problem ?? 'the existing anchor is unreadable';
  if (old.runId !== next.runId) return `the existing anchor is for run ${old.runId}`;
  if (!Number.isSafeInteger(old.entries) || old.entries < 0 || old.entries >= next.entries) {
    return `the existing anchor covers ${old.entries} entries and the log has ${next.entries}`;
  }
  if (merkleRootHex(hashes.slice(0, old.entries)) !== old.root) return `the first ${old.entries} entries no longer have the anchored root`;
  if (!commits.includes(old.stateCommit)) return `the anchored state commit ${old.stateCommit} is not in the run's chain`;
  return undefined;
}

async function writeAnchorCommit(store: GitStore, record: AnchorFile, parent: Oid | null, now: number): Promise<Oid> {
  const blob = await store.writeBlob(`${JSON.stringify(record, null, 2)}\n`);
  const tree = await store.writeTree([{ mode: '100644', path: ANCHOR_FILE, oid: blob, type: 'blob' }]);
  const who = agoraIdentity(now);
  return store.writeCommit({
    tree,
    parents: parent ? [parent] : [],
    message: `agora: anchor ${record.runId} ${record.root}\n\n${record.entries} entries at state commit ${record.stateCommit}\n\nAgora-Run: ${record.runId}\n`,
    author: who,
    committer: who,
  });
}
