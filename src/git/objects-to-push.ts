/**
 * The objects a push must carry so that the remote has everything new ref values name, found by
 * walking from the new commits back to commits the remote is known to have, and comparing each new
 * commit's tree with its parent's. A remote that has a commit has everything it reaches (GitHub, like
 * git, refuses a ref whose objects are not all there), so a tree equal to the parent's is skipped without
 * reading it. This is `git rev-list --objects <new> --not <known>` for the shapes Agora writes: linear
 * history a few commits past what the remote has. Anything else (a merge, a history longer than the
 * bounds) answers null, and the caller pushes with the git CLI, which negotiates with the remote.
 *
 * Each new tree or blob that replaces one the remote has at the same path is paired with it: the pack
 * can carry it as a delta against that base (a state tree with one entry changed is mostly the old
 * tree), so what a push sends follows what changed, not how big the trees have grown.
 */
import { splitTreeEntries } from './tree-object.js';
import type { GitObject, Oid } from './types.js';

/** Where the walk reads objects (LocalGitStore: small loose objects in-process, the rest from packs). */
export interface ObjectSource {
  readObject(oid: Oid): Promise<GitObject>;
}

export interface PushObjectBounds {
  /** New commits walked before giving up (default 256). */
  maxCommits?: number;
  /** Objects collected before giving up (default 20,000). */
  maxObjects?: number;
}

const DEFAULT_MAX_COMMITS = 256;
const DEFAULT_MAX_OBJECTS = 20_000;

/** What a push must carry, and for some of it a base the remote has that it may be sent as a delta of. */
export interface PushSet {
  objects: Oid[];
  /** The commits among `objects`. */
  commits: Oid[];
  /** New object → the object the remote has at the same path, of the same type (never one of `objects`). */
  deltaBases: Map<Oid, Oid>;
}

/**
 * Every object reachable from `tips` that is not reachable from a commit `known` says the remote has,
 * or null when the walk leaves the shapes it handles (see the module's comment). Known tips give none.
 */
export async function objectsToPush(
  store: ObjectSource,
  tips: readonly Oid[],
  known: (commit: Oid) => boolean,
  bounds: PushObjectBounds = {},
): Promise<PushSet | null> {
  const maxCommits = bounds.maxCommits ?? DEFAULT_MAX_COMMITS;
  const maxObjects = bounds.maxObjects ?? DEFAULT_MAX_OBJECTS;
  const objects = new Set<Oid>();
  const bases = new Map<Oid, Oid>();
  const walked = new Set<Oid>();
  const commits: Oid[] = [];
  const pending = tips.filter((t) => !known(t));
  while (pending.length > 0) {
    const oid = pending.pop()!;
    if (walked.has(oid)) continue;
    walked.add(oid);
    if (walked.size > maxCommits) return null;
    const commit = await readCommitLinks(store, oid);
    if (commit.parents.length > 1) return null;
    objects.add(oid);
    commits.push(oid);
    const parent = commit.parents[0] ?? null;
    const parentTree = parent === null ? null : (await readCommitLinks(store, parent)).tree;
    if (!(await addNewTreeObjects(store, commit.tree, parentTree, { objects, bases, maxObjects }))) return null;
    if (parent !== null && !known(parent)) pending.push(parent);
  }
  // A base this push also sends (its parent commit is new too) is left out: the remote does not have it
  // yet, and two objects of one path in the same push could otherwise each name the other.
  const deltaBases = new Map<Oid, Oid>();
  for (const [oid, base] of bases) if (!objects.has(base)) deltaBases.set(oid, base);
  return { objects: [...objects], commits, deltaBases };
}

/** Where a walk collects: the objects to send, each one's same-path predecessor, and the bound on their number. */
interface Collected {
  objects: Set<Oid>;
  bases: Map<Oid, Oid>;
  maxObjects: number;
}

/**
 * Adds `tree` and everything in it that `old` (a tree the remote has, or will have from this push) does
 * not have at the same path. False when the objects pass `maxObjects`.
 */
async function addNewTreeObjects(store: ObjectSource, tree: Oid, old: Oid | null, into: Collected): Promise<boolean> {
  if (tree === old || into.objects.has(tree)) return true;
  if (!add(into, tree, old)) return false;
  const before = new Map<string, TreeLink>();
  if (old !== null) for (const e of await readTreeLinks(store, old)) before.set(e.name, e);
  for (const entry of await readTreeLinks(store, tree)) {
    const was = before.get(entry.name);
    if (was?.oid === entry.oid || entry.type === 'commit') continue; // unchanged, or a submodule's commit (not in this repository)
    const base = was?.type === entry.type ? was.oid : null;
    if (entry.type === 'tree') {
      if (!(await addNewTreeObjects(store, entry.oid, base, into))) return false;
    } else if (!add(into, entry.oid, base)) return false;
  }
  return true;
}

/** Collects `oid` (with its base, if it has one and is new here): false once the objects pass the bound. */
function add(into: Collected, oid: Oid, base: Oid | null): boolean {
  if (!into.objects.has(oid)) {
    into.objects.add(oid);
    if (base !== null) into.bases.set(oid, base);
  }
  return into.objects.size <= into.maxObjects;
}

/** A tree entry as the walk needs it: its name, what it names, and whether that is a tree, a blob or a submodule's commit. */
interface TreeLink {
  name: string;
  oid: Oid;
  type: 'tree' | 'blob' | 'commit';
}

/** A commit's tree and parents, as git reads them: `tree <id>` as the first header line, then one `parent <id>` line each. */
async function readCommitLinks(store: ObjectSource, oid: Oid): Promise<{ tree: Oid; parents: Oid[] }> {
  const { type, content } = await store.readObject(oid);
  if (type !== 'commit') throw new Error(`object ${oid} is a ${type}, not a commit`);
  // The tree and parent lines come first, 48 bytes each: a commit with more than one parent is a merge,
  // which the walk gives up on whatever the count, so the start of the header is all it decodes.
  const lines = content.subarray(0, 4096).toString('latin1').split('\n');
  const tree = /^tree ([0-9a-f]{40})$/.exec(lines[0] ?? '')?.[1];
  if (tree === undefined) throw new Error(`commit ${oid} does not start with its tree`);
  const parents: Oid[] = [];
  for (const line of lines.slice(1)) {
    const parent = /^parent ([0-9a-f]{40})$/.exec(line)?.[1];
    if (parent === undefined) break;
    parents.push(parent);
  }
  return { tree, parents };
}

/** A tree's entries: `<octal mode> <name>\0<20-byte id>` each; mode 40000 is a tree, 160000 a submodule's commit. */
async function readTreeLinks(store: ObjectSource, oid: Oid): Promise<TreeLink[]> {
  const { type, content } = await store.readObject(oid);
  if (type !== 'tree') throw new Error(`object ${oid} is a ${type}, not a tree`);
  const stored = splitTreeEntries(content);
  if (!stored) throw new Error(`tree ${oid} is cut short`);
  const entries: TreeLink[] = [];
  for (const e of stored) {
    if (!/^[0-7]+$/.test(e.mode)) throw new Error(`tree ${oid} has an entry of mode "${e.mode}"`);
    const kind = Number.parseInt(e.mode, 8) & 0o170000; // as git reads a mode: a directory, a gitlink, else a blob
    const name = e.name.toString('latin1'); // the name's bytes, one char each: a key, never shown
    entries.push({ name, oid: e.oid, type: kind === 0o040000 ? 'tree' : kind === 0o160000 ? 'commit' : 'blob' });
  }
  return entries;
}
