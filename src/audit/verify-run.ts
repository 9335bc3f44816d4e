import { HeldLocks } from '../engine/held-locks.js';
import { TERMINAL_ITEM_STATUSES, type ItemStatus, type RunState } from '../engine/types.js';
import { diffTrees, type TreeChange } from '../git/tree-diff.js';
import type { GitStore, Oid, TreeEntry } from '../git/types.js';
import { findDuplicateKey } from '../json/duplicate-keys.js';
import { dependenciesOf } from '../plan/dag.js';
import { locksOverlap, normalizeLockKey, outOfScope } from '../plan/locks.js';
import { PlanSchema } from '../plan/schema.js';
import type { RunRefs } from '../runs/refs.js';
import { readRunAt } from '../runs/state-store.js';
import { readAnchor } from '../runs/anchor.js';
import {
  auditStatement,
  isTerminalRun,
  planDigest,
  type AuditBundle,
  type AuditFailure,
  type AuditReport,
  type FailureCode,
  type ItemEvidence,
} from './bundle.js';
import { patchCommitOf } from '../log/result-ref.js';
import { entryHash, GENESIS_HASH, type AuditEntry } from '../log/entry.js';
import { fromHex, MerkleAccumulator, toHex, verifyInclusion } from '../log/merkle.js';
import { readRunChain } from '../runs/run-chain.js';
import { pinMismatches, requireBoundPins, type VerifyPins } from './verify-pins.js';
import { verifySigstoreBundle, type VerifiedSigner } from './verify-signature.js';

/**
 * Verification of an audit bundle: the hash chain and the Merkle root (streaming: one pass over the entries,
 * O(log n) extra memory for the root), the run's meaning replayed from the entries (dependency order, locks,
 * attempts, the summary agreeing with the log), and — given the repository — the patches, their scopes, the
 * integration head, the run ref's own chain, the plan digest and the anchor; then the Sigstore signature over
 * the in-toto statement. Every problem becomes a failure with a stable code (docs/audit.md).
 */

export interface VerifyOptions {
  /** The repository the run lives in: enables the patch, scope, integration, chain, plan and anchor checks. */
  store?: GitStore;
  refs?: RunRefs;
  /** The Sigstore bundle (JSON text or parsed) over the bundle's statement. */
  sigstoreBundle?: string | object;
  /** Trust for a key-signed bundle: the signer's public key (SPKI PEM, or a path). */
  publicKeyPem?: string;
  /** Trust for a keyless bundle: the exact certificate identity and OIDC issuer, and a trusted root. */
  certificateIdentity?: string;
  certificateIssuer?: string;
  /** A trusted_root.json object (keyless; or a key-signed bundle with Rekor / TSA witnesses). */
  trustedRoot?: unknown;
  /**
   * Fail when the bundle records a signature but no Sigstore bundle is given to check it (default true).
   * A pin (`publicKeyPem`, `certificateIdentity`, `certificateIssuer`) requires a signature whatever this
   * says: the bundle's own `signature` field is outside the signed digest, so it cannot decide.
   */
  requireSignature?: boolean;
  /**
   * What the bundle must be about (run, plan commit, repository): each pin given is checked, failure code
   * `pin`. A pin nothing binds (no signer pin, and for run and plan commit no repository either) is refused
   * with AgoraError `verify-options` before anything is checked.
   */
  expect?: VerifyPins;
}

/** What the verifier is pinned to, or null: a pin makes a valid signature over the bundle mandatory. */
export function signaturePin(opts: Pick<VerifyOptions, 'publicKeyPem' | 'certificateIdentity' | 'certificateIssuer'>): 'key' | 'identity' | null {
  if (opts.publicKeyPem !== undefined) return 'key';
  if (opts.certificateIdentity !== undefined || opts.certificateIssuer !== undefined) return 'identity';
  return null;
}

/** At most this many failures of one code are listed; the rest are counted in one more failure. */
const MAX_PER_CODE = 25;

class Failures {
  readonly list: AuditFailure[] = [];
  private readonly counts = new Map<FailureCode, number>();

  add(code: FailureCode, message: string, where: { entry?: number; item?: string } = {}): void {
    const n = (this.counts.get(code) ?? 0) + 1;
    this.counts.set(code, n);
    if (n <= MAX_PER_CODE) this.list.push({ code, message, ...where });
  }

  has(code: FailureCode): boolean {
    return this.counts.has(code);
  }

  finish(): AuditFailure[] {
    for (const [code, n] of this.counts) {
      if (n > MAX_PER_CODE) this.list.push({ code, message: `… and ${n - MAX_PER_CODE} more ${code} failures` });
    }
    return this.list;
  }
}

/** What replaying the log says about one item. */
interface Replayed {
  status: ItemStatus;
  attempts: number;
  locks: string[] | null;
  base: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  resultRef: string | null;
  reason: string | null;
}

interface Start {
  itemId: string;
  seq: number;
  base: string | null;
  /** How many items were done before this start (the integration head it should have run on). */
  doneBefore: number;
}

interface Completion {
  itemId: string;
  seq: number;
  resultRef: string | null;
}

/** Verifies `bundle` and returns the report (the bundle's own `report` is ignored and never trusted). */
export async function verifyBundle(bundle: AuditBundle, opts: VerifyOptions = {}): Promise<AuditReport> {
  requireBoundPins(opts.expect, { signer: signaturePin(opts) !== null, repo: Boolean(opts.store && opts.refs) });
  const f = new Failures();
  for (const message of pinMismatches(bundle, opts.expect)) f.add('pin', message);
  const entries = Array.isArray(bundle.entries) ? bundle.entries : [];
  const replay = replayEntries(bundle, entries, f);
  compareSummary(bundle, replay.items, replay.runStatus, f);

  const terminal = isTerminalRun(bundle);
  if (!terminal) f.add('not-terminal', `run ${bundle.runId} is ${bundle.state}: the audit covers the log so far; it is not anchored until the run ends`);

  let anchorVerified = false;
  if (opts.store && opts.refs) {
    anchorVerified = await checkRepository(bundle, entries, replay, opts.store, opts.refs, terminal, f);
  }
  const signer = await checkSignature(bundle, opts, f);

  const failures = f.finish();
  const intact = failures.every((x) => x.code === 'not-terminal');
  let claim: AuditReport['claim'] = 'none';
  let guarantee: AuditReport['guarantee'] = 'none';
  if (intact) {
    if (signer?.guarantee === 'external-immutable') [claim, guarantee] = ['tamper-evident', 'external-immutable'];
    else if (anchorVerified) [claim, guarantee] = ['tamper-detecting', 'same-repository'];
    else if (signer) [claim, guarantee] = ['tamper-detecting', 'signed'];
  }
  return { intact, claim, guarantee, terminal, failures };
}

// --- chain, root and replay (one pass) ---------------------------------------------------------------

interface ReplayResult {
  items: Map<string, Replayed>;
  runStatus: RunState['status'] | 'submitted';
  starts: Start[];
  completions: Completion[];
}

function replayEntries(bundle: AuditBundle, entries: readonly AuditEntry[], f: Failures): ReplayResult {
  const declared = new Map(bundle.items.map((i) => [i.id, i]));
  const items = new Map<string, Replayed>();
  for (const i of bundle.items) {
    items.set(i.id, { status: 'pending', attempts: 0, locks: null, base: null, startedAt: null, finishedAt: null, resultRef: null, reason: null });
  }
  const held = new HeldLocks();
  const running = new Set<string>();
  const starts: Start[] = [];
  const completions: Completion[] = [];
  const acc = new MerkleAccumulator();
  let runStatus: ReplayResult['runStatus'] = 'submitted';
  let prevHash = GENESIS_HASH;

  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AuditEntry;
    // Chain: position, run, link to the previous entry, and the hash of the entry's own content.
    if (e.seq !== i) f.add('chain', `entry ${i} has seq ${String(e.seq)}: the log is not contiguous (dropped, duplicated or reordered entries)`, { entry: i });
    if (e.runId !== bundle.runId) f.add('chain', `entry ${i} belongs to run ${String(e.runId)}, not ${bundle.runId}`, { entry: i });
    if (e.prevHash !== prevHash) f.add('chain', `entry ${i} links to ${String(e.prevHash)}, but the entry before it hashes to ${prevHash}`, { entry: i });
    let recomputed: string | null = null;
    try {
      const { hash: _hash, ...body } = e;
      recomputed = entryHash(body);
    } catch {
      recomputed = null;
    }
    if (recomputed !== e.hash) f.add('chain', `entry ${i}: its content hashes to ${recomputed ?? '(no canonical form)'}, but it records ${String(e.hash)}`, { entry: i });
    acc.push(leafData(e.hash));
    prevHash = typeof e.hash === 'string' ? e.hash : '';

    // Replay: the engine's state machine as the log tells it.
    if (e.kind === 'run') {
      if (e.from !== runStatus) f.add('state', `entry ${i}: the run moves from ${e.from}, but it was ${runStatus}`, { entry: i });
      runStatus = e.to;
      continue;
    }
    if (e.kind !== 'item') {
      f.add('state', `entry ${i} has kind ${JSON.stringify((e as { kind?: unknown }).kind)}: neither an item nor a run transition`, { entry: i });
      continue;
    }
    const id = e.itemId;
    const cur = items.get(id);
    const item = declared.get(id);
    if (!cur || !item) {
      f.add('state', `entry ${i} moves item ${String(id)}, which the run does not have`, { entry: i });
      continue;
    }
    if (e.from !== cur.status) f.add('state', `entry ${i}: item ${id} moves from ${e.from}, but it was ${cur.status}`, { entry: i, item: id });
    if (cur.status === 'running' && e.to !== 'running') {
      held.remove(cur.locks ?? []);
      running.delete(id);
    }
    if (e.to === 'running') {
      if (e.attempt !== cur.attempts + 1) {
        f.add('attempts', `entry ${i}: item ${id} starts attempt ${e.attempt}, but attempt ${cur.attempts + 1} was next`, { entry: i, item: id });
      }
      for (const dep of item.dependsOn) {
        const d = items.get(dep);
        if (d?.status !== 'done') f.add('order', `entry ${i}: item ${id} started while its dependency ${dep} was ${d?.status ?? 'unknown'}`, { entry: i, item: id });
      }
      const locks = Array.isArray(e.locks) ? e.locks.map(normalizeLockKey) : [];
      if (!sameSet(locks, item.locks)) {
        f.add('lock', `entry ${i}: item ${id} took locks [${locks.join(', ')}], but its declared locks are [${item.locks.join(', ')}]`, { entry: i, item: id });
      }
      if (held.conflicts(locks)) {
        const holders = [...running].filter((other) => (items.get(other)?.locks ?? []).some((a) => locks.some((b) => locksOverlap(a, b))));
        f.add('lock', `entry ${i}: item ${id} took [${locks.join(', ')}] while ${holders.join(', ') || 'another item'} held an overlapping lock`, { entry: i, item: id });
      }
      held.add(locks);
      running.add(id);
      cur.locks = locks;
      cur.attempts = e.attempt;
      cur.base = e.base ?? null;
      cur.startedAt = e.at;
      cur.finishedAt = null;
      starts.push({ itemId: id, seq: i, base: e.base ?? null, doneBefore: completions.length });
    } else if (e.attempt !== cur.attempts) {
      f.add('attempts', `entry ${i}: item ${id} moves to ${e.to} as attempt ${e.attempt}, but its current attempt is ${cur.attempts}`, { entry: i, item: id });
    }
    if (e.to === 'done') {
      if (e.from !== 'running') f.add('attempts', `entry ${i}: item ${id} is done without a running attempt`, { entry: i, item: id });
      if (!e.resultRef) f.add('state', `entry ${i}: item ${id} is done but records no result`, { entry: i, item: id });
      cur.resultRef = e.resultRef ?? null;
      completions.push({ itemId: id, seq: i, resultRef: e.resultRef ?? null });
    }
    if (TERMINAL_ITEM_STATUSES.has(e.to)) cur.finishedAt = e.at;
    else if (e.to === 'pending') cur.finishedAt = null;
    cur.reason = e.reason ?? null;
    cur.status = e.to;
  }
  const root = toHex(acc.root());
  if (root !== bundle.root) f.add('root-mismatch', `the entries' Merkle root is ${root}, but the bundle records ${String(bundle.root)}`);
  return { items, runStatus, starts, completions };
}

/** Leaf data of an entry hash; a malformed hash still yields a leaf (the chain check already failed it). */
function leafData(hash: unknown): Uint8Array {
  if (typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) return fromHex(hash);
  return new TextEncoder().encode(String(hash));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a.map(normalizeLockKey));
  const sb = new Set(b.map(normalizeLockKey));
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** The bundle's summary (run status, items) must be what the log replays to. */
function compareSummary(bundle: AuditBundle, items: Map<string, Replayed>, runStatus: ReplayResult['runStatus'], f: Failures): void {
  if (runStatus !== bundle.state) f.add('state', `the bundle says the run is ${bundle.state}, but its log ends with the run ${runStatus}`);
  const seen = new Set<string>();
  for (const item of bundle.items) {
    if (seen.has(item.id)) f.add('state', `item ${item.id} is listed twice`, { item: item.id });
    seen.add(item.id);
    const r = items.get(item.id);
    if (!r) continue;
    const say = (field: string, bundled: unknown, replayed: unknown) =>
      `item ${item.id}: the bundle says ${field} ${JSON.stringify(bundled)}, but the log replays to ${JSON.stringify(replayed)}`;
    if (r.status !== item.status) f.add('state', say('status', item.status, r.status), { item: item.id });
    if (r.attempts !== item.attempts) f.add('attempts', say('attempts', item.attempts, r.attempts), { item: item.id });
    if (r.resultRef !== item.resultRef) f.add('state', say('resultRef', item.resultRef, r.resultRef), { item: item.id });
    if (r.base !== item.base) f.add('state', say('base', item.base, r.base), { item: item.id });
    if (r.startedAt !== item.startedAt) f.add('state', say('startedAt', item.startedAt, r.startedAt), { item: item.id });
    if (r.finishedAt !== item.finishedAt) f.add('state', say('finishedAt', item.finishedAt, r.finishedAt), { item: item.id });
    const explained = item.status === 'failed' || item.status === 'skipped' || item.status === 'cancelled';
    if (explained && r.reason !== item.reason) f.add('state', say('reason', item.reason, r.reason), { item: item.id });
    if (item.status === 'done' && item.reason !== null) f.add('state', `item ${item.id} is done but carries reason ${JSON.stringify(item.reason)}`, { item: item.id });
  }
}

// --- the repository ----------------------------------------------------------------------------------

/** Checks the bundle against the repository; returns true when the anchor ref holds exactly this log. */
async function checkRepository(
  bundle: AuditBundle,
  entries: readonly AuditEntry[],
  replay: ReplayResult,
  store: GitStore,
  refs: RunRefs,
  terminal: boolean,
  f: Failures,
): Promise<boolean> {
  const runId = bundle.runId;
  const head = await store.resolveRef(refs.run(runId));
  if (!head) {
    f.add('chain', `${refs.run(runId)} does not exist: the repository holds no run ${runId}`);
  } else {
    await checkRunRef(bundle, entries, store, head, f);
  }
  await checkPatches(bundle, replay, store, refs, f);
  return checkAnchor(bundle, store, refs, head, terminal, f);
}

/** The run ref's own chain must hold exactly these entries, its plan this digest, its state this summary. */
async function checkRunRef(bundle: AuditBundle, entries: readonly AuditEntry[], store: GitStore, head: Oid, f: Failures): Promise<void> {
  let chain;
  try {
    chain = await readRunChain(store, head);
  } catch (error) {
    f.add('chain', `the run's state chain from ${head} cannot be read: ${(error as Error).message}`);
    return;
  }
  if (chain.entries.length !== entries.length) {
    f.add('chain', `the run ref's chain holds ${chain.entries.length} entries, the bundle ${entries.length}`);
  }
  const n = Math.min(chain.entries.length, entries.length);
  for (let i = 0; i < n; i++) {
    if (chain.entries[i]?.hash !== entries[i]?.hash) {
      f.add('chain', `entry ${i} differs from the run ref's chain (${chain.entries[i]?.hash} in the repository)`, { entry: i });
      break;
    }
  }
  const first = chain.commits[0] as Oid;
  try {
    const firstRun = await readRunAt(store, bundle.runId, first);
    const text = new TextDecoder().decode(await store.readBlob(firstRun.planBlob));
    const dup = findDuplicateKey(text);
    if (dup) f.add('plan-digest', `plan.json in the run's first state commit ${first} repeats the key ${JSON.stringify(dup.key)} at ${dup.path}: a reader and JSON.parse see different plans`);
    const digest = planDigest(text);
    if (digest !== bundle.planDigest) f.add('plan-digest', `plan.json in the run's first state commit ${first} has digest ${digest}, the bundle ${bundle.planDigest}`);
    const plan = PlanSchema.parse(JSON.parse(text));
    const planned = new Map(plan.items.map((i) => [i.id, i]));
    if (planned.size !== bundle.items.length) f.add('plan-digest', `the plan has ${planned.size} items, the bundle ${bundle.items.length}`);
    for (const item of bundle.items) {
      const p = planned.get(item.id);
      if (!p) {
        f.add('plan-digest', `item ${item.id} is not in the plan`, { item: item.id });
        continue;
      }
      if (!sameSet(dependenciesOf(p), item.dependsOn)) f.add('plan-digest', `item ${item.id}: the bundle's dependencies differ from the plan's`, { item: item.id });
      if (!sameSet(p.resourceLocks, item.locks)) f.add('plan-digest', `item ${item.id}: the bundle's locks differ from the plan's`, { item: item.id });
    }
  } catch (error) {
    f.add('plan-digest', `the run's first state commit ${first} holds no readable plan: ${(error as Error).message}`);
  }
  try {
    const state = (await readRunAt(store, bundle.runId, head)).state;
    const say = (what: string, repo: unknown, bundled: unknown) =>
      `state.json at ${head} says ${what} ${JSON.stringify(repo)}, the bundle ${JSON.stringify(bundled)}`;
    if (state.status !== bundle.state) f.add('state', say('the run is', state.status, bundle.state));
    if (state.base !== bundle.base) f.add('state', say('base', state.base, bundle.base));
    if (state.integrationHead !== bundle.integrationHead) f.add('state', say('integrationHead', state.integrationHead, bundle.integrationHead));
    for (const item of bundle.items) {
      const s = state.items[item.id];
      if (!s || s.status !== item.status || s.attempts !== item.attempts || (s.resultRef ?? null) !== item.resultRef || (s.base ?? null) !== item.base) {
        f.add('state', `state.json at ${head} disagrees with the bundle about item ${item.id}`, { item: item.id });
      }
    }
  } catch (error) {
    f.add('state', `state.json at ${head} cannot be read: ${(error as Error).message}`);
  }
}

/** Each done item's patch, its scope, and the integration chain built from the patches in completion order. */
async function checkPatches(bundle: AuditBundle, replay: ReplayResult, store: GitStore, refs: RunRefs, f: Failures): Promise<void> {
  const byId = new Map(bundle.items.map((i) => [i.id, i]));
  /** Per completion, its changes (null when the patch could not be read). */
  const changes: Array<TreeChange[] | null> = [];
  for (const done of replay.completions) {
    const item = byId.get(done.itemId);
    const id = done.itemId;
    const commit = patchCommitOf(done.resultRef);
    if (!item || !commit) {
      f.add('patch-missing', `item ${id}: result ${JSON.stringify(done.resultRef)} names no patch commit`, { item: id });
      changes.push(null);
      continue;
    }
    let patch;
    try {
      patch = await store.readCommit(commit);
    } catch {
      f.add('patch-missing', `item ${id}: patch commit ${commit} is not in the repository`, { item: id });
      changes.push(null);
      continue;
    }
    const ref = refs.patch(bundle.runId, id);
    const atRef = await store.resolveRef(ref);
    if (atRef !== commit) f.add('patch-missing', `item ${id}: ${ref} points at ${atRef ?? 'nothing'}, not at its patch commit ${commit}`, { item: id });
    const parent = patch.parents[0] ?? null;
    if (parent !== item.base) f.add('patch-missing', `item ${id}: patch commit ${commit} has parent ${parent ?? 'none'}, but the item ran on ${String(item.base)}`, { item: id });
    let diff: TreeChange[];
    try {
      diff = await diffTrees(store, parent ? (await store.readCommit(parent)).tree : null, patch.tree);
    } catch (error) {
      f.add('patch-missing', `item ${id}: patch ${commit} cannot be read: ${(error as Error).message}`, { item: id });
      changes.push(null);
      continue;
    }
    const locks = replay.items.get(id)?.locks ?? item.locks;
    const outside = outOfScope(
      diff.map((c) => c.path),
      locks,
    );
    if (outside.length > 0) {
      f.add('scope', `item ${id}: patch ${commit} changes ${outside.slice(0, 5).join(', ')}${outside.length > 5 ? ` (+${outside.length - 5})` : ''} outside its locks [${locks.join(', ')}]`, { item: id });
    }
    changes.push(diff);
  }
  await checkIntegration(bundle, replay, changes, store, refs, f);
}

/**
 * The integration head = base + each done item's patch replayed in completion order (an empty patch adds no
 * commit): walk the integration chain back from the head, check that every step changed exactly what its
 * patch changed, that it ends at the base, and that every item started on the integration head of its time.
 */
async function checkIntegration(
  bundle: AuditBundle,
  replay: ReplayResult,
  changes: ReadonlyArray<TreeChange[] | null>,
  store: GitStore,
  refs: RunRefs,
  f: Failures,
): Promise<void> {
  const ref = refs.integration(bundle.runId);
  const atRef = await store.resolveRef(ref);
  // Before any patch is integrated the ref may not exist yet (it follows the state); then the head is the base.
  const notYet = atRef === null && bundle.integrationHead === bundle.base;
  if (atRef !== bundle.integrationHead && !notYet) f.add('integration', `${ref} points at ${atRef ?? 'nothing'}, but the run's integration head is ${bundle.integrationHead}`);
  if (changes.some((c) => c === null)) return; // a missing patch is already reported; the replay cannot be checked
  const steps = changes.filter((c) => (c as TreeChange[]).length > 0) as TreeChange[][];
  // chain[k] = the integration head after k non-empty patches; chain[0] must be the base.
  const chain: Oid[] = [bundle.integrationHead];
  try {
    for (let k = 0; k < steps.length; k++) {
      const parent = (await store.readCommit(chain[0] as Oid)).parents[0];
      if (!parent) {
        f.add('integration', `the integration chain from ${bundle.integrationHead} ends after ${k} commits; ${steps.length} patches changed something`);
        return;
      }
      chain.unshift(parent);
    }
  } catch (error) {
    f.add('integration', `the integration chain from ${bundle.integrationHead} cannot be read: ${(error as Error).message}`);
    return;
  }
  if (chain[0] !== bundle.base) {
    f.add('integration', `${steps.length} patches replayed back from ${bundle.integrationHead} lead to ${chain[0]}, not to the run's base ${bundle.base}`);
    return;
  }
  for (let k = 0; k < steps.length; k++) {
    const problem = await stepProblem(store, chain[k] as Oid, chain[k + 1] as Oid, steps[k] as TreeChange[]);
    if (problem) {
      const itemId = replay.completions.filter((_, j) => (changes[j] as TreeChange[]).length > 0)[k]?.itemId;
      f.add('integration', `integration commit ${chain[k + 1]} (${itemId ?? '?'}) ${problem}`, itemId ? { item: itemId } : {});
    }
  }
  // Each start ran on the integration head of its moment: base + the non-empty patches done before it.
  const nonEmptyBefore: number[] = [0];
  for (const c of changes) nonEmptyBefore.push((nonEmptyBefore[nonEmptyBefore.length - 1] as number) + ((c as TreeChange[]).length > 0 ? 1 : 0));
  for (const s of replay.starts) {
    const expected = chain[nonEmptyBefore[s.doneBefore] as number];
    if (s.base !== expected) {
      f.add('integration', `entry ${s.seq}: item ${s.itemId} started on ${String(s.base)}, but the integration head then was ${expected}`, { entry: s.seq, item: s.itemId });
    }
  }
}

/** Why commit `next` is not `prev` + `patch` (file level), or undefined when it is exactly that. */
async function stepProblem(store: GitStore, prev: Oid, next: Oid, patch: readonly TreeChange[]): Promise<string | undefined> {
  const prevTree = (await store.readCommit(prev)).tree;
  const nextTree = (await store.readCommit(next)).tree;
  const step = await diffTrees(store, prevTree, nextTree);
  const wanted = new Map(patch.map((c) => [c.path, c.after]));
  for (const c of step) {
    if (!wanted.has(c.path)) return `changes ${c.path}, which its patch does not`;
    if (!sameSide(wanted.get(c.path) ?? null, c.after)) return `sets ${c.path} to other content than its patch`;
  }
  const stepped = new Set(step.map((c) => c.path));
  for (const c of patch) {
    if (stepped.has(c.path)) continue;
    // Not in the step's diff: the previous head must already have held the patch's content there.
    if (!sameSide(c.after, await entryAt(store, nextTree, c.path))) return `does not apply its patch's change to ${c.path}`;
  }
  return undefined;
}

function sameSide(a: { mode: string; oid: string } | null, b: { mode: string; oid: string } | null): boolean {
  return a === null || b === null ? a === b : a.mode === b.mode && a.oid === b.oid;
}

async function entryAt(store: GitStore, tree: Oid, path: string): Promise<TreeEntry | null> {
  const parts = path.split('/');
  let at: Oid = tree;
  for (let i = 0; i < parts.length; i++) {
    const entry = (await store.readTree(at)).find((e) => e.path === parts[i]);
    if (!entry) return null;
    if (i === parts.length - 1) return entry;
    if (entry.type !== 'tree') return null;
    at = entry.oid;
  }
  return null;
}

/** The anchor ref must hold this run's root, entry count and state commit. Returns true when it does. */
async function checkAnchor(bundle: AuditBundle, store: GitStore, refs: RunRefs, head: Oid | null, terminal: boolean, f: Failures): Promise<boolean> {
  const ref = refs.anchor(bundle.runId);
  const stored = await readAnchor(store, refs, bundle.runId);
  if (!stored) {
    if (terminal || bundle.anchor) f.add('anchor-missing', `${ref} does not exist: the root of this finished run is not anchored (run \`agora orch audit ${bundle.runId}\`)`);
    return false;
  }
  const before = f.has('anchor-mismatch');
  const a = stored.record;
  if (!a) {
    f.add('anchor-mismatch', `${ref}: ${stored.problem ?? 'unreadable anchor'}`);
    return false;
  }
  if (a.runId !== bundle.runId) f.add('anchor-mismatch', `${ref} anchors run ${a.runId}, not ${bundle.runId}`);
  if (a.root !== bundle.root) f.add('anchor-mismatch', `${ref} anchors root ${a.root} over ${a.entries} entries, but the bundle's root is ${bundle.root} over ${bundle.entries.length}`);
  else if (a.entries !== bundle.entries.length) f.add('anchor-mismatch', `${ref} anchors ${a.entries} entries, the bundle holds ${bundle.entries.length}`);
  if (head && a.stateCommit !== head) f.add('anchor-mismatch', `${ref} anchors state commit ${a.stateCommit}, but the run ref points at ${head}`);
  if (bundle.anchor && bundle.anchor.commit !== stored.commit) {
    f.add('anchor-mismatch', `the bundle records anchor commit ${bundle.anchor.commit}, but ${ref} points at ${stored.commit}`);
  }
  return !before && !f.has('anchor-mismatch');
}

// --- signature ---------------------------------------------------------------------------------------

async function checkSignature(bundle: AuditBundle, opts: VerifyOptions, f: Failures): Promise<VerifiedSigner | null> {
  if (opts.sigstoreBundle === undefined) {
    const pin = signaturePin(opts);
    if (pin) {
      f.add(
        'signature',
        `a signature is required: the verifier is pinned to ${pin === 'key' ? 'a public key' : 'a certificate identity and issuer'}, but no Sigstore bundle was given; ` +
          'pass the .sigstore.json that `agora orch audit --sign` wrote (agora verify --sigstore FILE; by default <bundle>.sigstore.json next to the bundle)',
      );
    } else if (bundle.signature && opts.requireSignature !== false) {
      f.add('signature', `the bundle records a ${bundle.signature.kind} signature, but no Sigstore bundle was given to check it`);
    }
    return null;
  }
  let expected;
  try {
    expected = { statement: auditStatement(bundle) };
  } catch (error) {
    f.add('signature', `the bundle's statement cannot be built: ${(error as Error).message}`);
    return null;
  }
  let result;
  if (opts.publicKeyPem !== undefined) {
    result = await verifySigstoreBundle(opts.sigstoreBundle, {
      expected,
      publicKeyPem: opts.publicKeyPem,
      ...(opts.trustedRoot === undefined ? {} : { trustedRoot: opts.trustedRoot }),
    });
  } else if (opts.certificateIdentity !== undefined || opts.certificateIssuer !== undefined) {
    if (!opts.certificateIdentity || !opts.certificateIssuer || opts.trustedRoot === undefined) {
      f.add('signature', 'keyless verification needs the certificate identity, the OIDC issuer and a trusted root');
      return null;
    }
    result = await verifySigstoreBundle(opts.sigstoreBundle, {
      expected,
      certificateIdentity: opts.certificateIdentity,
      certificateIssuer: opts.certificateIssuer,
      trustedRoot: opts.trustedRoot,
    });
  } else {
    f.add('signature', 'a Sigstore bundle was given but nothing to trust: pass the public key, or the certificate identity, issuer and trusted root');
    return null;
  }
  if (!result.ok) {
    f.add('signature', result.reason);
    return null;
  }
  const rec = bundle.signature;
  if (rec && rec.kind !== result.signer.kind) {
    f.add('signature', `the bundle records a ${rec.kind} signature, but the Sigstore bundle is ${result.signer.kind}-signed`);
  }
  return result.signer;
}

// --- item evidence -----------------------------------------------------------------------------------

/**
 * Checks item evidence alone: each entry's hash is its content's, belongs to the item, and its audit path
 * leads to `root` (compare that root with the signed or anchored one). Returns the problems (empty: valid).
 */
export function verifyItemEvidence(evidence: ItemEvidence, root = evidence.root): string[] {
  const problems: string[] = [];
  for (const { index, entry, proof } of evidence.entries) {
    const { hash, ...body } = entry;
    let recomputed: string | null = null;
    try {
      recomputed = entryHash(body);
    } catch {
      recomputed = null;
    }
    if (recomputed !== hash) problems.push(`entry ${index}: content hashes to ${recomputed ?? '(none)'}, it records ${hash}`);
    if (entry.kind !== 'item' || entry.itemId !== evidence.itemId) problems.push(`entry ${index} is not a transition of item ${evidence.itemId}`);
    let ok = false;
    try {
      ok = verifyInclusion(fromHex(hash), index, evidence.treeSize, proof.map(fromHex), fromHex(root));
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`entry ${index}: its inclusion proof does not lead to root ${root}`);
  }
  return problems;
}
