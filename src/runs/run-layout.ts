import { AgoraError } from '../errors.js';
import { createHash } from 'node:crypto';
import type { ItemState, RunState } from '../engine/types.js';
import type { PathChange } from '../git/tree-edit.js';
import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import { limiter } from '../git/limiter.js';

/**
 * Layout 2 of a state commit's tree (docs/audit.md §9): the run without its items in `run.json`, one
 * blob per item under a fan-out of trees, `items/<h1>/…/<hd>/<itemId>.json`, and attempt logs under
 * the same kind of fan-out, `logs/<h1>/…/<hd>/<item>.<attempt>.log`. `h1…hd` are the first d hex
 * digits of sha256(file name without `.json`), one digit per level; d follows from the plan's item
 * count, so every tree holds at most 16 subtrees and leaves about 8 files on average whatever the run's
 * size. A state commit therefore rewrites only the blobs of what changed and the trees on their paths.
 */

export const LAYOUT = 2;
/**
 * Layout 3: layout 2 plus `emitted.json` (items emitted at run time). Written only once a run has emitted
 * items, so every other run stays layout 2; an Agora that reads only layout 2 refuses it by its number
 * rather than finding items its plan does not have.
 */
export const LAYOUT_EMITTED = 3;

/** The layout a state is written in. */
export function layoutOf(state: Pick<RunState, 'emitted'>): 2 | 3 {
  return state.emitted && state.emitted.length > 0 ? LAYOUT_EMITTED : LAYOUT;
}
export const RUN_FILE = 'run.json';
export const ITEMS_DIR = 'items';
export const LOGS_DIR = 'logs';
/** The items emitted at run time (the state's `emitted` batches), once there are any. */
export const EMITTED_FILE = 'emitted.json';

/** Levels of fan-out for a run of `items` items: the smallest d ≥ 1 with items ≤ 8·16^d. */
export function fanoutDepth(items: number): number {
  let d = 1;
  while (items > 8 * 16 ** d) d += 1;
  return d;
}

/** The fan-out directories of a file named `name` (sha256 of `key`), e.g. `a/3`. */
function fanout(key: string, depth: number): string {
  return createHash('sha256').update(key).digest('hex').slice(0, depth).split('').join('/');
}

export function itemPath(itemId: string, depth: number): string {
  return `${ITEMS_DIR}/${fanout(itemId, depth)}/${itemId}.json`;
}

export function logPath(name: string, depth: number): string {
  return `${LOGS_DIR}/${fanout(name, depth)}/${name}`;
}

/** `run.json`: the layout number and every member of the run's state but `items`. */
export function runSummaryText(state: RunState): string {
  const { items: _items, emitted: _emitted, ...rest } = state;
  return `${JSON.stringify({ layout: layoutOf(state), ...rest })}\n`;
}

export function itemText(item: ItemState): string {
  return `${JSON.stringify(item)}\n`;
}

/** The path changes that take a state from `before` (null: nothing written yet) to `after`. */
export async function itemChanges(store: GitStore, before: RunState | null, after: RunState, depth: number): Promise<PathChange[]> {
  // Concurrently, but a bounded number at a time: a run's first commit writes every item.
  const limit = limiter(16);
  const writes: Array<Promise<PathChange>> = [];
  for (const [id, item] of Object.entries(after.items)) {
    const old = before?.items[id];
    // The engine copies an item before changing it, so an untouched item is the very same object.
    if (old === item || (old && itemText(old) === itemText(item))) continue;
    writes.push(limit(() => store.writeBlob(itemText(item))).then((oid) => ({ path: itemPath(id, depth), entry: { mode: '100644', oid } })));
  }
  return Promise.all(writes);
}

const decoder = new TextDecoder();
/** Item states by the id of the tree (below `items/`) that holds them: trees are immutable, so a walk reuses what it has read. */
const subtreeCache = new Map<Oid, readonly ItemState[]>();
const CACHE_LIMIT = 50_000;

/** Every item state below `tree` (the `items/` tree or one below it), read in one walk. */
export async function readItems(store: GitStore, tree: Oid, where: string): Promise<readonly ItemState[]> {
  const cached = subtreeCache.get(tree);
  if (cached) return cached;
  const parts = await Promise.all(
    (await store.readTree(tree)).map(async (e: TreeEntry): Promise<readonly ItemState[]> => {
      if (e.type === 'tree') return readItems(store, e.oid, `${where}/${e.path}`);
      const item = JSON.parse(decoder.decode(await store.readBlob(e.oid))) as ItemState;
      if (`${item.id}.json` !== e.path) throw stateCorrupt(`${where}/${e.path} holds the state of item ${JSON.stringify(item.id)}: not an Agora state commit`);
      return [item];
    }),
  );
  const items = parts.flat();
  if (subtreeCache.size >= CACHE_LIMIT) subtreeCache.clear();
  subtreeCache.set(tree, items);
  return items;
}

/** The run summary of `run.json`, checked to be layout 2 or 3, and the layout it says. */
export function parseRunSummary(text: string, where: string): { summary: Omit<RunState, 'items'>; layout: 2 | 3 } {
  const { layout, ...rest } = JSON.parse(text) as Omit<RunState, 'items'> & { layout?: unknown };
  if (layout !== LAYOUT && layout !== LAYOUT_EMITTED) {
    throw new AgoraError(
      'state-layout',
      `${where} says layout ${JSON.stringify(layout)}, this Agora reads layouts ${LAYOUT} and ${LAYOUT_EMITTED}`,
      'upgrade Agora to read this run',
    );
  }
  return { summary: rest, layout };
}

/** Finds a log file by name in a `logs/` tree of either layout (flat in layout 1, fanned out in 2). */
export async function findLog(store: GitStore, logsTree: Oid, name: string): Promise<Oid | null> {
  const digits = createHash('sha256').update(name).digest('hex');
  let tree = logsTree;
  for (let level = 0; ; level += 1) {
    const entries = await store.readTree(tree);
    const file = entries.find((e) => e.path === name && e.type === 'blob');
    if (file) return file.oid;
    const next = entries.find((e) => e.path === digits[level] && e.type === 'tree');
    if (!next || level >= digits.length) return null;
    tree = next.oid;
  }
}

/**
 * A state commit that is not one Agora wrote: someone pushed or edited `refs/agora/runs/<run>`. Typed, so
 * the CLI and the App say so instead of reporting a bug.
 */
export function stateCorrupt(message: string): AgoraError {
  return new AgoraError(
    'state-corrupt',
    message,
    "restore the run's ref from a clone that has it, or remove the run; `agora verify --repo` shows what differs from its audit log",
  );
}
