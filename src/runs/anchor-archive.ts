import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import { ANCHOR_FILE } from './anchor.js';
import { AgoraError, errorMessage } from '../errors.js';
import { isMachineError } from './listed-run.js';
import { runIdProblem } from '../plan/ids.js';
import type { RunRefs } from './refs.js';
import { sortTree } from './state-store.js';

/**
 * The anchors of runs `agora orch gc` pruned: `refs/agora/anchor-archive` points at a commit whose tree
 * holds each such run's anchor.json as `<run>.json` (the same blob its anchor ref held), each gc adding
 * a commit. One ref for every pruned run: a push lists every ref of a repository, so a ref per past run
 * would keep each push's cost growing. An entry is never overwritten.
 */

/** The run ids the archive holds. */
export async function archivedRuns(store: GitStore, refs: RunRefs): Promise<string[]> {
  const head = await store.resolveRef(refs.anchorArchive);
  if (!head) return [];
  const tree = await archiveTree(store, refs, head);
  return tree.filter((e) => e.type === 'blob' && e.path.endsWith('.json')).map((e) => e.path.slice(0, -'.json'.length));
}

/** How every archive commit's message begins. */
const ARCHIVE_MESSAGE = 'agora: archive the anchors of ';

/**
 * The files of archive commit `head`. Anyone who may push can point the ref elsewhere; then which run ids
 * gc pruned is unknown, and no run id can be given out or accepted safely (a pruned run's id would reach
 * what is still kept under it on this host): a typed error naming the ref, which holds up submissions
 * and gc until a person restores or removes it. An archive is a commit whose message begins as gc writes
 * it and whose tree holds only files `<run id>.json`. Failures of this machine propagate as they are.
 */
async function archiveTree(store: GitStore, refs: RunRefs, head: Oid): Promise<TreeEntry[]> {
  let problem: string;
  try {
    const commit = await store.readCommit(head);
    const tree = await store.readTree(commit.tree);
    const stray = tree.find((e) => e.type !== 'blob' || !e.path.endsWith('.json') || runIdProblem(e.path.slice(0, -'.json'.length)) !== undefined);
    if (!commit.message.startsWith(ARCHIVE_MESSAGE)) problem = `its message does not begin "${ARCHIVE_MESSAGE.trim()}"`;
    else if (stray !== undefined) problem = `it holds ${JSON.stringify(stray.path)}, which is not a file <run id>.json`;
    else return tree;
  } catch (e) {
    if (isMachineError(e)) throw e;
    problem = errorMessage(e);
  }
  throw new AgoraError(
    'anchor-archive-unreadable',
    `${refs.anchorArchive} (${head}) is not the archive of pruned runs' anchors that \`agora orch gc\` writes: ${problem}`,
    `restore it to the archive commit gc wrote (\`git reflog ${refs.anchorArchive}\`, or a clone), or, if this repository never pruned a run, delete it: git update-ref -d ${refs.anchorArchive}`,
  );
}

/**
 * Adds each run's anchor.json to the archive commit as `<run>.json` (compare-and-swap on the archive
 * ref, tried again if another gc moved it), then removes the anchor refs it holds. Returns those runs.
 */
export async function archiveAnchors(store: GitStore, refs: RunRefs, runIds: readonly string[], now: number): Promise<string[]> {
  if (runIds.length === 0) return [];
  return retryOnConflict(refs.anchorArchive, 10, async (): Promise<string[] | typeof LOST_RACE> => {
    const head = await store.resolveRef(refs.anchorArchive);
    const files = new Map<string, TreeEntry>();
    if (head) for (const e of await archiveTree(store, refs, head)) files.set(e.path, e);
    const moved: Array<{ runId: string; ref: string; oid: Oid }> = [];
    for (const runId of runIds) {
      const ref = refs.anchor(runId);
      const oid = await store.resolveRef(ref);
      if (!oid) continue;
      const file = (await store.readTree((await store.readCommit(oid)).tree)).find((e) => e.path === ANCHOR_FILE && e.type === 'blob');
      if (!file) continue; // not an anchor Agora wrote: left where it is, for a person to look at
      const archived = files.get(`${runId}.json`);
      if (archived && archived.oid !== file.oid) continue; // another run of that id was archived: never overwritten
      files.set(`${runId}.json`, { mode: '100644', path: `${runId}.json`, oid: file.oid, type: 'blob' });
      moved.push({ runId, ref, oid });
    }
    if (moved.length === 0) return [];
    const who = agoraIdentity(now);
    const tree = await store.writeTree(sortTree([...files.values()]));
    const message = `${ARCHIVE_MESSAGE}${moved.length} pruned run${moved.length === 1 ? '' : 's'}\n\n${moved.map((m) => m.runId).join('\n')}\n`;
    const commit = await store.writeCommit({ tree, parents: head ? [head] : [], message, author: who, committer: who });
    if (!(await store.casRef(refs.anchorArchive, commit, head))) return LOST_RACE;
    const archived: string[] = [];
    for (const m of moved) if (await store.deleteRef(m.ref, m.oid)) archived.push(m.runId);
    return archived;
  });
}
