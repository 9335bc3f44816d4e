import { errorMessage } from '../errors.js';
import type { AuditEntry } from '../log/entry.js';
import { canonicalJson } from '../log/canonical-json.js';
import { newRun } from '../engine/step.js';
import type { EmittedBatch, ItemState, RunParams, RunState, Transition } from '../engine/types.js';
import { planItemCount, planWithEmitted } from '../engine/emission.js';
import { appendEntries } from '../log/entry.js';
import { applyTreeChanges, type PathChange, type TreeAccess } from '../git/tree-edit.js';
import { sortTreeEntries } from '../git/tree-object.js';
import type { GitStore, Oid, RefSwap, TreeEntry } from '../git/types.js';
import { agoraIdentity } from '../git/identity.js';
import { trailers } from '../git/trailers.js';
import { storedPlan } from '../plan/matrix.js';
import type { Plan } from '../plan/schema.js';
import { readStateV1 } from './layout-v1.js';
import type { RunRefs } from './refs.js';
import {
  fanoutDepth,
  findLog,
  itemChanges,
  EMITTED_FILE,
  ITEMS_DIR,
  LAYOUT_EMITTED,
  layoutOf,
  logPath,
  LOGS_DIR,
  parseRunSummary,
  readItems,
  RUN_FILE,
  runSummaryText,
  stateCorrupt,
} from './run-layout.js';

/**
 * The run's state in the repository: `refs/agora/runs/<run>` heads an append-only chain of commits, one
 * per batch of transitions. Each commit's tree holds `plan.json` (as submitted), the `entries.jsonl` it
 * added, and the state in layout 2 (run-layout.ts: `run.json` and one blob per item under `items/`, logs
 * under `logs/`), of which a commit writes only what changed. Runs written before layout 2 hold one
 * `state.json` and a flat `logs/` (layout-v1.ts); they still read, and the next write moves them to
 * layout 2. Nothing is ever rewritten; a write is a compare-and-swap of the ref, so concurrent writers
 * (serve, cancel) never lose each other's changes.
 */

export interface StoredRun {
  runId: string;
  /** The state commit this was read from. */
  head: Oid;
  /** Its root tree (the next write edits it). */
  tree: Oid;
  /** The layout it was written in: 1 (one state.json) or 2 (run.json and items/). */
  layout: 1 | 2 | 3;
  plan: Plan;
  planBlob: Oid;
  state: RunState;
  /** The last audit entry so far (the chain continues from it). */
  last: Pick<AuditEntry, 'seq' | 'hash'> | null;
  logsTree: Oid | null;
}

const decoder = new TextDecoder();
/** Plans are immutable per blob; sharing the parsed object keeps the engine's per-plan index warm. */
const planCache = new Map<Oid, Plan>();

export async function readRun(store: GitStore, refs: RunRefs, runId: string): Promise<StoredRun | null> {
  const head = await store.resolveRef(refs.run(runId));
  return head ? readRunAt(store, runId, head) : null;
}

/** The run as of state commit `head`, in either layout: one walk of its tree. */
export async function readRunAt(store: GitStore, runId: string, head: Oid): Promise<StoredRun> {
  const commit = await store.readCommit(head);
  const entries = byName(await store.readTree(commit.tree));
  const planBlob = need(entries, 'plan.json', head).oid;
  const plan = await readPlan(store, planBlob);
  if (entries.has('state.json') === entries.has(RUN_FILE)) {
    throw stateCorrupt(
      `state commit ${head} holds ${entries.has(RUN_FILE) ? 'both state.json and' : 'neither state.json nor'} ${RUN_FILE}: not an Agora state commit`,
    );
  }
  let layout: 1 | 2 | 3 = 1;
  let state: RunState;
  let runPlan = plan;
  if (entries.has('state.json')) {
    state = await readStateV1(store, need(entries, 'state.json', head).oid);
  } else {
    const where = `${RUN_FILE} of state commit ${head}`;
    const parsed = parseRunSummary(decoder.decode(await store.readBlob(need(entries, RUN_FILE, head).oid)), where);
    layout = parsed.layout;
    const emitted = await readEmitted(store, entries);
    if ((layout === LAYOUT_EMITTED) !== (emitted !== undefined)) {
      throw stateCorrupt(`${where} says layout ${layout}, but the commit ${emitted ? 'holds' : 'has no'} ${EMITTED_FILE}: not an Agora state commit`);
    }
    runPlan = planWithEmitted(plan, emitted);
    state = await readStateV2(store, runPlan, parsed.summary, entries, head);
    if (emitted) state.emitted = emitted;
  }
  const last = await lastEntry(store, head);
  return { runId, head, tree: commit.tree, layout, plan: runPlan, planBlob, state, last, logsTree: entries.get(LOGS_DIR)?.oid ?? null };
}

/**
 * The run's parameters as of state commit `head`, without reading its items: from `run.json` in layouts 2
 * and 3 (one tree and one blob), from the whole state in layout 1.
 */
export async function readRunParamsAt(store: GitStore, runId: string, head: Oid): Promise<RunState['params']> {
  const entries = byName(await store.readTree((await store.readCommit(head)).tree));
  const summary = entries.get(RUN_FILE);
  if (summary === undefined) return (await readRunAt(store, runId, head)).state.params;
  return parseRunSummary(decoder.decode(await store.readBlob(summary.oid)), `${RUN_FILE} of state commit ${head}`).summary.params;
}

/** `emitted.json`: the batches of items emitted so far (src/engine/emission.ts), absent before the first. */
async function readEmitted(store: GitStore, entries: Map<string, TreeEntry>): Promise<EmittedBatch[] | undefined> {
  const entry = entries.get(EMITTED_FILE);
  return entry ? (JSON.parse(decoder.decode(await store.readBlob(entry.oid))) as EmittedBatch[]) : undefined;
}

async function readPlan(store: GitStore, planBlob: Oid): Promise<Plan> {
  let plan = planCache.get(planBlob);
  if (!plan) {
    plan = storedPlan(JSON.parse(decoder.decode(await store.readBlob(planBlob))));
    planCache.set(planBlob, plan);
  }
  return plan;
}

/** Layouts 2 and 3: `run.json` plus every item under `items/`, put back in the run's plan order. */
async function readStateV2(store: GitStore, plan: Plan, summary: Omit<RunState, 'items'>, entries: Map<string, TreeEntry>, head: Oid): Promise<RunState> {
  const found = new Map<string, ItemState>();
  for (const item of await readItems(store, need(entries, ITEMS_DIR, head).oid, `${ITEMS_DIR} of ${head}`)) {
    if (found.has(item.id)) throw stateCorrupt(`state commit ${head} holds item ${item.id} twice: not an Agora state commit`);
    found.set(item.id, item);
  }
  const items: Record<string, ItemState> = {};
  for (const { id } of plan.items) {
    const item = found.get(id);
    if (!item) throw stateCorrupt(`state commit ${head} has no state for item ${id}: not an Agora state commit`);
    items[id] = item;
  }
  if (found.size !== plan.items.length) throw stateCorrupt(`state commit ${head} holds items its plan does not have: not an Agora state commit`);
  return { ...summary, items } as RunState;
}

export interface RunWrite {
  runId: string;
  /** The run as last read, or null for the first commit of a new run. */
  prev: StoredRun | null;
  /** For the first commit: the plan text exactly as submitted. */
  planText?: string;
  state: RunState;
  entries: readonly AuditEntry[];
  transitions: readonly Transition[];
  /** Attempt logs to add: `logs/<name>`. */
  logs?: ReadonlyArray<{ name: string; oid: Oid }>;
  /** Refs the state names (integration, patches) that move in the same transaction, ahead of the run ref. */
  moveAlso?: readonly RefSwap[];
  /**
   * For the first commit of a run accepted from the local inbox: the inbox entry it was accepted from,
   * named by the commit's `Agora-Submission` trailer (inbox.ts: how `submit` tells its own run).
   */
  submission?: Oid;
  now: number;
}

/**
 * The first state commit of a new run: every item pending, the run's `submitted → running` entry. Null if
 * the run exists, or the submission's inbox entry is no longer in place.
 */
export async function writeNewRun(
  store: GitStore,
  refs: RunRefs,
  r: {
    runId: string;
    plan: Plan;
    planText: string;
    base: Oid;
    concurrency: number;
    now: number;
    params?: RunParams;
    /** The inbox entry the run is accepted from: named by the first commit, and still in place when the run ref is created (a withdrawn entry makes no run). */
    submission?: { ref: string; commit: Oid };
  },
): Promise<StoredRun | null> {
  const created = newRun(r.plan, { runId: r.runId, base: r.base, concurrency: r.concurrency, now: r.now });
  return writeRun(store, refs, {
    runId: r.runId,
    prev: null,
    ...(r.submission
      ? { submission: r.submission.commit, moveAlso: [{ ref: r.submission.ref, next: r.submission.commit, expected: r.submission.commit }] }
      : {}),
    planText: r.planText,
    state: r.params ? { ...created.run.state, params: r.params } : created.run.state,
    entries: appendEntries(null, r.runId, created.transitions),
    transitions: created.transitions,
    now: r.now,
  });
}

/**
 * Writes the next state commit and moves the run ref to it, only if the ref still points at `prev.head`,
 * in one transaction with `moveAlso` (all move or none does; the run ref last). The new tree is the previous one with only the changed paths rewritten: the entries, run.json, the
 * items whose state differs and the new logs. A run read in layout 1 is written whole, in layout 2.
 */
export async function writeRun(store: GitStore, refs: RunRefs, w: RunWrite): Promise<StoredRun | null> {
  const planBlob = w.prev ? w.prev.planBlob : await store.writeBlob(requirePlanText(w));
  const submitted = w.prev ? await readPlan(store, planBlob) : storedPlan(JSON.parse(requirePlanText(w)));
  // The run's plan: plan.json (never rewritten) and the items emitted so far, kept in emitted.json.
  const sameEmitted = (w.prev?.state.emitted?.length ?? 0) === (w.state.emitted?.length ?? 0);
  const plan = w.prev && sameEmitted ? w.prev.plan : planWithEmitted(submitted, w.state.emitted);
  // The fan-out follows the plan's own items, so emitted items never move the paths of the others.
  const depth = fanoutDepth(planItemCount(w.state));
  const incremental = w.prev && w.prev.layout !== 1 ? w.prev : null;
  const blob = async (text: string) => ({ mode: '100644' as const, oid: await store.writeBlob(text) });
  // The new blobs are independent of one another: written concurrently.
  const [entriesBlob, runBlob, items] = await Promise.all([
    blob(w.entries.map((e) => `${canonicalJson(e)}\n`).join('')),
    blob(runSummaryText(w.state)),
    itemChanges(store, incremental?.state ?? null, w.state, depth),
  ]);
  const changes: PathChange[] = [
    { path: ENTRIES_FILE, entry: entriesBlob },
    { path: RUN_FILE, entry: runBlob },
    ...items,
    ...(w.logs ?? []).map((l) => ({ path: logPath(l.name, depth), entry: { mode: '100644' as const, oid: l.oid } })),
  ];
  if (w.state.emitted && w.state.emitted.length > 0 && (!incremental || !sameEmitted)) {
    changes.push({ path: EMITTED_FILE, entry: await blob(`${JSON.stringify(w.state.emitted)}\n`) });
  }
  if (!incremental) {
    changes.push({ path: 'plan.json', entry: { mode: '100644', oid: planBlob } });
    // A run moving from layout 1: its flat logs go under the fan-out too.
    const added = new Set((w.logs ?? []).map((l) => l.name));
    for (const l of w.prev?.logsTree ? await store.readTree(w.prev.logsTree) : []) {
      if (l.type === 'blob' && !added.has(l.path)) changes.push({ path: logPath(l.path, depth), entry: { mode: '100644', oid: l.oid } });
    }
  }
  const trees = treesOf(store);
  const tree = await applyTreeChanges(trees, incremental?.tree ?? null, changes);
  const who = agoraIdentity(w.now);
  const head = await store.writeCommit({
    tree,
    parents: w.prev ? [w.prev.head] : [],
    message: `agora: ${w.runId} ${summarize(w.transitions)}\n\nAgora-Run: ${w.runId}\n${!w.prev && w.submission ? `${SUBMISSION_TRAILER}: ${w.submission}\n` : ''}`,
    author: who,
    committer: who,
  });
  const ok = await store.casRefs([...(w.moveAlso ?? []), { ref: refs.run(w.runId), next: head, expected: w.prev ? w.prev.head : null }]);
  if (!ok) return null;
  const last = w.entries.length > 0 ? w.entries[w.entries.length - 1]! : (w.prev?.last ?? null);
  planCache.set(planBlob, submitted);
  const logsTree = (await trees.readTree(tree)).find((e) => e.path === LOGS_DIR)?.oid ?? null;
  return {
    runId: w.runId,
    head,
    tree,
    layout: layoutOf(w.state),
    plan,
    planBlob,
    state: w.state,
    last: last ? { seq: last.seq, hash: last.hash } : null,
    logsTree,
  };
}

/**
 * The trees of state commits this process wrote or read, by id, per store. The next state commit of a
 * run rewrites the trees on the paths the previous one wrote: with them at hand it reads none of them
 * back (and parses none of them again). Trees are immutable, so an entry is never stale; the map is
 * emptied when it grows past its bound.
 */
const stateTrees = new WeakMap<GitStore, Map<Oid, TreeEntry[]>>();
const STATE_TREES_LIMIT = 20_000;

function treesOf(store: GitStore): TreeAccess {
  let known = stateTrees.get(store);
  if (!known) stateTrees.set(store, (known = new Map()));
  const remember = (oid: Oid, entries: TreeEntry[]) => {
    if (known.size >= STATE_TREES_LIMIT) known.clear();
    known.set(oid, entries);
  };
  return {
    async readTree(oid) {
      const hit = known.get(oid);
      if (hit) return [...hit];
      const entries = await store.readTree(oid);
      remember(oid, [...entries]);
      return entries;
    },
    async writeTree(entries) {
      const oid = await store.writeTree(entries);
      remember(oid, sortTreeEntries([...entries]));
      return oid;
    },
  };
}

/** Every audit entry of the run, oldest first, by walking the state chain from `head`. */
export async function readEntries(store: GitStore, head: Oid): Promise<AuditEntry[]> {
  const chain: Oid[] = [];
  for (let at: Oid | undefined = head; at;) {
    chain.push(at);
    at = (await store.readCommit(at)).parents[0];
  }
  const out: AuditEntry[] = [];
  for (const commit of chain.reverse()) out.push(...(await entriesOf(store, commit)));
  return out;
}

/** The file of a state commit that holds the entries it added (§9 of docs/audit.md): every layout has one. */
export const ENTRIES_FILE = 'entries.jsonl';

/** The trailer by which a run's first state commit names the inbox entry it was accepted from (inbox.ts). */
export const SUBMISSION_TRAILER = 'Agora-Submission';

/** How many state commits {@link acceptedSubmission} follows back: a run accepted a moment ago has a few. */
const SUBMISSION_WALK_LIMIT = 1000;

/**
 * The inbox entry the run at `head` was accepted from: the `Agora-Submission` trailer of its first state
 * commit, reached by following the chain back from `head`. Undefined when that commit names none (a run
 * written by an earlier Agora, or by the App) or lies more than `limit` commits back.
 */
export async function acceptedSubmission(store: GitStore, head: Oid, limit = SUBMISSION_WALK_LIMIT): Promise<Oid | undefined> {
  let commit = await store.readCommit(head);
  for (let walked = 0; commit.parents.length > 0; walked += 1) {
    if (walked >= limit) return undefined;
    commit = await store.readCommit(commit.parents[0]!);
  }
  return trailers(commit.message).get(SUBMISSION_TRAILER);
}

/** One state commit's share of the log, as stored: what a verifier compares with an audit bundle. */
export interface CommitLog {
  commit: Oid;
  /**
   * `entries.jsonl` exactly as stored (Agora writes one canonical JSON object per line, each ended by `\n`),
   * or null when the commit has none.
   */
  text: string | null;
  /** The `plan.json` blob the commit's tree names, or null when it names none. */
  planBlob: Oid | null;
}

/** The files of one state commit that hold its share of the log and the plan, as stored; nothing is parsed. */
export async function readCommitLog(store: GitStore, commit: Oid): Promise<CommitLog> {
  const tree = byName(await store.readTree((await store.readCommit(commit)).tree));
  const file = tree.get(ENTRIES_FILE);
  const plan = tree.get('plan.json');
  return {
    commit,
    text: file?.type === 'blob' ? decoder.decode(await store.readBlob(file.oid)) : null,
    planBlob: plan?.type === 'blob' ? plan.oid : null,
  };
}

/**
 * The entries one state commit added. Throws AgoraError `state-corrupt` when the commit has no
 * `entries.jsonl` (every state commit of every layout holds one, possibly empty: a missing one is not an
 * empty one) or when a line of it is not a JSON object.
 */
export async function entriesOf(store: GitStore, commit: Oid): Promise<AuditEntry[]> {
  const log = await readCommitLog(store, commit);
  if (log.text === null) throw stateCorrupt(`state commit ${commit} has no ${ENTRIES_FILE}: not an Agora state commit`);
  return parseEntries(log.text, commit);
}

function parseEntries(text: string, commit: Oid): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.length === 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw stateCorrupt(`line ${i + 1} of ${ENTRIES_FILE} in state commit ${commit} is not JSON (${errorMessage(error)}): not an Agora state commit`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw stateCorrupt(`line ${i + 1} of ${ENTRIES_FILE} in state commit ${commit} is not a JSON object: not an Agora state commit`);
    }
    out.push(value as AuditEntry);
  }
  return out;
}

export async function readLog(store: GitStore, logsTree: Oid | null, name: string): Promise<string | null> {
  const oid = logsTree ? await findLog(store, logsTree, name) : null;
  return oid ? decoder.decode(await store.readBlob(oid)) : null;
}

export function logName(itemId: string, attempt: number): string {
  return `${itemId}.${attempt}.log`;
}

async function lastEntry(store: GitStore, head: Oid): Promise<Pick<AuditEntry, 'seq' | 'hash'> | null> {
  for (let at: Oid | undefined = head; at;) {
    const entries = await entriesOf(store, at);
    const last = entries[entries.length - 1];
    if (last) return { seq: last.seq, hash: last.hash };
    at = (await store.readCommit(at)).parents[0];
  }
  return null;
}

function summarize(transitions: readonly Transition[]): string {
  const parts = transitions.map((t) =>
    t.kind === 'run'
      ? `run ${t.from}→${t.to}`
      : t.kind === 'emit'
        ? `${t.itemId} emitted ${t.items.length}`
        : t.kind === 'call'
          ? `${t.itemId} called ${t.subagent}`
          : `${t.itemId} ${t.from}→${t.to}`,
  );
  return parts.length <= 4 ? parts.join(', ') : `${parts.slice(0, 4).join(', ')} (+${parts.length - 4} more)`;
}

function requirePlanText(w: RunWrite): string {
  if (w.planText === undefined) throw new Error(`writeRun: the first commit of run ${w.runId} needs the plan text`);
  return w.planText;
}

function byName(entries: TreeEntry[]): Map<string, TreeEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}

function need(entries: Map<string, TreeEntry>, name: string, commit: Oid): TreeEntry {
  const e = entries.get(name);
  if (!e) throw stateCorrupt(`state commit ${commit} has no ${name}: not an Agora state commit`);
  return e;
}

/** git's tree order: by name, with trees compared as if their name ended in `/`. */
export function sortTree(entries: TreeEntry[]): TreeEntry[] {
  const key = (e: TreeEntry) => (e.type === 'tree' ? `${e.path}/` : e.path);
  return entries.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
