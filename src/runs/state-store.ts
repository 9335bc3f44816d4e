import type { AuditEntry } from '../log/entry.js';
import { canonicalJson } from '../log/canonical-json.js';
import { newRun } from '../engine/step.js';
import type { RunState, Transition } from '../engine/types.js';
import { appendEntries } from '../log/entry.js';
import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import { agoraIdentity } from '../git/identity.js';
import { PlanSchema, type Plan } from '../plan/schema.js';
import type { RunRefs } from './refs.js';

/**
 * The run's state in the repository: `refs/agora/runs/<run>` heads an append-only chain of commits, one
 * per batch of transitions. Each commit's tree holds `plan.json` (as submitted), `state.json`, the
 * `entries.jsonl` it added and `logs/` (attempt logs). Nothing is ever rewritten; a write is a
 * compare-and-swap of the ref, so concurrent writers (serve, cancel) never lose each other's changes.
 */

export interface StoredRun {
  runId: string;
  /** The state commit this was read from. */
  head: Oid;
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

export async function readRunAt(store: GitStore, runId: string, head: Oid): Promise<StoredRun> {
  const commit = await store.readCommit(head);
  const entries = byName(await store.readTree(commit.tree));
  const planBlob = need(entries, 'plan.json', head).oid;
  let plan = planCache.get(planBlob);
  if (!plan) {
    plan = PlanSchema.parse(JSON.parse(decoder.decode(await store.readBlob(planBlob))));
    planCache.set(planBlob, plan);
  }
  const state = JSON.parse(decoder.decode(await store.readBlob(need(entries, 'state.json', head).oid))) as RunState;
  const last = await lastEntry(store, head);
  return { runId, head, plan, planBlob, state, last, logsTree: entries.get('logs')?.oid ?? null };
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
  now: number;
}

/** The first state commit of a new run: every item pending, the run's `submitted → running` entry. Null if the run exists. */
export async function writeNewRun(
  store: GitStore,
  refs: RunRefs,
  r: { runId: string; plan: Plan; planText: string; base: Oid; concurrency: number; now: number },
): Promise<StoredRun | null> {
  const created = newRun(r.plan, { runId: r.runId, base: r.base, concurrency: r.concurrency, now: r.now });
  return writeRun(store, refs, {
    runId: r.runId,
    prev: null,
    planText: r.planText,
    state: created.run.state,
    entries: appendEntries(null, r.runId, created.transitions),
    transitions: created.transitions,
    now: r.now,
  });
}

/** Writes the next state commit and moves the run ref to it, only if the ref still points at `prev.head`. */
export async function writeRun(store: GitStore, refs: RunRefs, w: RunWrite): Promise<StoredRun | null> {
  const planBlob = w.prev ? w.prev.planBlob : await store.writeBlob(requirePlanText(w));
  const stateBlob = await store.writeBlob(`${JSON.stringify(w.state, null, 2)}\n`);
  const entriesBlob = await store.writeBlob(w.entries.map((e) => `${canonicalJson(e)}\n`).join(''));
  let logsTree = w.prev?.logsTree ?? null;
  if (w.logs && w.logs.length > 0) {
    const logEntries = logsTree ? await store.readTree(logsTree) : [];
    const merged = new Map(logEntries.map((e) => [e.path, e]));
    for (const l of w.logs) merged.set(l.name, { mode: '100644', path: l.name, oid: l.oid, type: 'blob' });
    logsTree = await store.writeTree(sortTree([...merged.values()]));
  }
  const tree: TreeEntry[] = [
    { mode: '100644', path: 'entries.jsonl', oid: entriesBlob, type: 'blob' },
    { mode: '100644', path: 'plan.json', oid: planBlob, type: 'blob' },
    { mode: '100644', path: 'state.json', oid: stateBlob, type: 'blob' },
  ];
  if (logsTree) tree.push({ mode: '040000', path: 'logs', oid: logsTree, type: 'tree' });
  const who = agoraIdentity(w.now);
  const head = await store.writeCommit({
    tree: await store.writeTree(sortTree(tree)),
    parents: w.prev ? [w.prev.head] : [],
    message: `agora: ${w.runId} ${summarize(w.transitions)}\n\nAgora-Run: ${w.runId}\n`,
    author: who,
    committer: who,
  });
  const ok = await store.casRef(refs.run(w.runId), head, w.prev ? w.prev.head : null);
  if (!ok) return null;
  const last = w.entries.length > 0 ? w.entries[w.entries.length - 1]! : (w.prev?.last ?? null);
  const plan = w.prev ? w.prev.plan : PlanSchema.parse(JSON.parse(requirePlanText(w)));
  planCache.set(planBlob, plan);
  return {
    runId: w.runId,
    head,
    plan,
    planBlob,
    state: w.state,
    last: last ? { seq: last.seq, hash: last.hash } : null,
    logsTree,
  };
}

/** Every audit entry of the run, oldest first, by walking the state chain from `head`. */
export async function readEntries(store: GitStore, head: Oid): Promise<AuditEntry[]> {
  const chain: Oid[] = [];
  for (let at: Oid | undefined = head; at; ) {
    chain.push(at);
    at = (await store.readCommit(at)).parents[0];
  }
  const out: AuditEntry[] = [];
  for (const commit of chain.reverse()) out.push(...(await entriesOf(store, commit)));
  return out;
}

/** The entries one state commit added. */
export async function entriesOf(store: GitStore, commit: Oid): Promise<AuditEntry[]> {
  const tree = byName(await store.readTree((await store.readCommit(commit)).tree));
  const blob = tree.get('entries.jsonl');
  if (!blob) return [];
  return decoder
    .decode(await store.readBlob(blob.oid))
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AuditEntry);
}

export async function readLog(store: GitStore, logsTree: Oid | null, name: string): Promise<string | null> {
  if (!logsTree) return null;
  const entry = (await store.readTree(logsTree)).find((e) => e.path === name);
  return entry ? decoder.decode(await store.readBlob(entry.oid)) : null;
}

export function logName(itemId: string, attempt: number): string {
  return `${itemId}.${attempt}.log`;
}

async function lastEntry(store: GitStore, head: Oid): Promise<Pick<AuditEntry, 'seq' | 'hash'> | null> {
  for (let at: Oid | undefined = head; at; ) {
    const entries = await entriesOf(store, at);
    const last = entries[entries.length - 1];
    if (last) return { seq: last.seq, hash: last.hash };
    at = (await store.readCommit(at)).parents[0];
  }
  return null;
}

function summarize(transitions: readonly Transition[]): string {
  const parts = transitions.map((t) => (t.kind === 'run' ? `run ${t.from}→${t.to}` : `${t.itemId} ${t.from}→${t.to}`));
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
  if (!e) throw new Error(`state commit ${commit} has no ${name}: not an Agora state commit`);
  return e;
}

/** git's tree order: by name, with trees compared as if their name ended in `/`. */
export function sortTree(entries: TreeEntry[]): TreeEntry[] {
  const key = (e: TreeEntry) => (e.type === 'tree' ? `${e.path}/` : e.path);
  return entries.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
