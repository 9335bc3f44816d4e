import { errorMessage } from '../../errors.js';
import type { GitStore, Oid } from '../../git/types.js';
import type { AuditEntry } from '../../log/entry.js';
import { canonicalJson } from '../../log/canonical-json.js';
import type { RunState } from '../../engine/types.js';
import { findDuplicateKey } from '../../json/duplicate-keys.js';
import { dependenciesOf } from '../../plan/dag.js';
import { storedPlan } from '../../plan/matrix.js';
import { readAnchor } from '../../runs/anchor.js';
import { merkleRootHex } from '../../log/merkle.js';
import { SILENT, type Progress } from '../../progress.js';
import type { RunRefs } from '../../runs/refs.js';
import { stateCommits } from '../../runs/run-chain.js';
import { ENTRIES_FILE, readCommitLog, readRunAt, type CommitLog } from '../../runs/state-store.js';
import { planDigest, startRule, type AuditBundle } from '../bundle.js';
import { maxHops, maxItems } from '../../engine/emission.js';
import type { WorkItem } from '../../plan/schema.js';
import type { RootCaller } from './calls.js';
import { recomputeHash } from './chain.js';
import { checkEmittedDefinitions } from './emission.js';
import type { Failures } from './failures.js';
import { checkPatches } from './integration.js';
import { checkStoredParams } from './params.js';
import { sameSet, type ReplayResult } from './replay.js';

/**
 * Step "repository" (with `--repo`, docs/audit.md §8.7): every commit of the run ref's first-parent chain
 * holds entries.jsonl and the same plan.json blob, and their lines are, byte for byte, the canonical JSON of
 * the bundle's entries; the plan in the first state commit has the bundle's digest, items, dependencies and
 * locks and repeats no key, and its run.json the bundle's params; the state at the head (any layout) says
 * what the bundle says, its items in the bundle's order; each done item's patch and the integration chain
 * (integration.ts); the anchor ref, which the bundle names, holds this root, entry count and state commit.
 * The one member that describes the run and that no repository can confirm is `repository` (§8.7).
 */

/** Checks the bundle against the repository; returns true when the anchor ref holds exactly this log. */
export async function checkRepository(
  bundle: AuditBundle,
  entries: readonly AuditEntry[],
  replay: ReplayResult,
  store: GitStore,
  refs: RunRefs,
  terminal: boolean,
  f: Failures,
  progress: Progress = SILENT,
): Promise<boolean> {
  const runId = bundle.runId;
  const head = await store.resolveRef(refs.run(runId));
  let logAt: ReadonlyMap<Oid, number> = new Map();
  if (!head) {
    f.add('chain', `${refs.run(runId)} does not exist: the repository holds no run ${runId}`);
  } else {
    logAt = await checkRunRef(bundle, entries, replay, store, head, f, progress);
  }
  await checkPatches(bundle, replay, store, refs, f, progress);
  return checkAnchor(bundle, store, refs, { head, logAt }, terminal, f);
}

/** The run ref's own chain must hold exactly these entries, its plan this digest, its state this summary. */
async function checkRunRef(
  bundle: AuditBundle,
  entries: readonly AuditEntry[],
  replay: ReplayResult,
  store: GitStore,
  head: Oid,
  f: Failures,
  progress: Progress,
): Promise<ReadonlyMap<Oid, number>> {
  const chain = await checkStoredLog(entries, store, head, f, progress);
  if (!chain) return new Map();
  const { first } = chain;
  const planRead = chain.planBlob !== null && (await checkPlan(bundle, store, first, chain.planBlob, f));
  try {
    const firstRun = await readRunAt(store, bundle.runId, first);
    checkStoredParams(bundle, firstRun.state.params, first, f);
  } catch (error) {
    // An unreadable plan makes the commit unreadable too: that is named once, as the plan's failure.
    if (planRead) f.add('state', `the run's first state commit ${first} cannot be read (§9), so its parameters cannot be compared: ${errorMessage(error)}`);
  }
  try {
    const stored = await readRunAt(store, bundle.runId, head);
    const state = stored.state;
    checkEmittedDefinitions(bundle, replay.emitted, state.emitted ?? [], `the run state at ${head}`, f);
    checkRootCallers(replay.rootCallers, stored.plan.items, f);
    const say = (what: string, repo: unknown, bundled: unknown) =>
      `the run state at ${head} says ${what} ${JSON.stringify(repo)}, the bundle ${JSON.stringify(bundled)}`;
    if (state.status !== bundle.state) f.add('state', say('the run is', state.status, bundle.state));
    if (state.base !== bundle.base) f.add('state', say('base', state.base, bundle.base));
    if (state.integrationHead !== bundle.integrationHead) f.add('state', say('integrationHead', state.integrationHead, bundle.integrationHead));
    checkItems(bundle, stored.plan.items, state.items, head, f);
  } catch (error) {
    f.add('state', `the run state at ${head} cannot be read: ${errorMessage(error)}`);
  }
  return chain.logAt;
}

/**
 * Step 1: the run ref's first-parent chain, commit by commit. Each commit MUST hold `entries.jsonl` and the
 * same `plan.json` blob as the first; the lines of the `entries.jsonl` files, in chain order, MUST be byte for
 * byte the canonical JSON of the bundle's entries, one per line, each ended by `\n`. Returns the first state
 * commit and its plan blob, and how many entries the log holds at each commit (while they can be placed), or
 * null when the chain cannot be walked.
 */
async function checkStoredLog(
  entries: readonly AuditEntry[],
  store: GitStore,
  head: Oid,
  f: Failures,
  progress: Progress,
): Promise<{ first: Oid; planBlob: Oid | null; logAt: Map<Oid, number> } | null> {
  let commits: Oid[];
  try {
    commits = await stateCommits(store, head, progress);
  } catch (error) {
    f.add('chain', `the run's state chain from ${head} cannot be read: ${errorMessage(error)}`);
    return null;
  }
  const first = commits[0] as Oid;
  let planBlob: Oid | null = null;
  const logAt = new Map<Oid, number>();
  /** Position in the bundle's log of the next stored line. */
  let at = 0;
  /** False once a commit's entries cannot be read: where the later ones sit in the log is unknown. */
  let positioned = true;
  /** Only the first entry that differs is named (every later one follows from it). */
  let named = false;
  progress.phase('state commits read', commits.length);
  for (const [k, commit] of commits.entries()) {
    const which = `state commit ${commit} (${k + 1} of ${commits.length} on the run ref)`;
    let log: CommitLog;
    try {
      log = await readCommitLog(store, commit);
    } catch (error) {
      f.add('chain', `${which} cannot be read: ${errorMessage(error)}`);
      positioned = false;
      progress.advance();
      continue;
    }
    if (k === 0) planBlob = log.planBlob;
    if (log.planBlob === null) f.add('plan-digest', `${which} holds no plan.json: every state commit holds the run's plan`);
    else if (k > 0 && planBlob !== null && log.planBlob !== planBlob) {
      f.add(
        'plan-digest',
        `${which} holds plan.json ${log.planBlob}, the run's first state commit ${first} ${planBlob}: a run's plan is the same blob in every state commit`,
      );
    }
    if (log.text === null) {
      f.add('chain', `${which} holds no ${ENTRIES_FILE}: every state commit holds the entries it added (possibly none), so the log cannot be read past it`);
      positioned = false;
      progress.advance();
      continue;
    }
    const lines = log.text.split('\n');
    // '' when the file ends with a newline, as it must (or is empty): else its last line is still a line.
    const last = lines.pop() as string;
    if (last !== '') lines.push(last);
    if (last !== '' || lines.some((line) => line.length === 0)) {
      f.add('chain', `${ENTRIES_FILE} of ${which} is not one line per entry, each ended by a newline (it has an empty line or no final newline)`);
    }
    for (const line of lines) {
      if (line.length === 0) continue;
      const bundled = entries[at];
      if (positioned && !named && bundled) {
        const why = storedDifference(line, bundled);
        if (why) {
          f.add('chain', `entry ${at} as ${which} stores it is not the bundle's: ${why}`, { entry: at });
          named = true;
        }
      }
      at += 1;
    }
    if (positioned) logAt.set(commit, at);
    progress.advance();
  }
  if (positioned && at !== entries.length) f.add('chain', `the run ref's chain holds ${at} entries, the bundle ${entries.length}`);
  return { first, planBlob, logAt };
}

/** Why a stored line of `entries.jsonl` is not the canonical JSON of the bundle's entry, or null when it is. */
function storedDifference(line: string, bundled: AuditEntry): string | null {
  let expected: string | null = null;
  try {
    expected = canonicalJson(bundled);
  } catch {
    // The bundle's entry has no canonical form (the chain step names it); no line can be it.
  }
  if (line === expected) return null;
  let stored: unknown;
  try {
    stored = JSON.parse(line);
  } catch {
    return 'the stored line is not JSON';
  }
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return 'the stored line is not a JSON object';
  const e = stored as AuditEntry;
  if (e.hash !== bundled.hash) return `it records hash ${String(e.hash)}, the bundle's ${String(bundled.hash)}`;
  const recomputed = recomputeHash(e);
  if (recomputed !== e.hash) return `it records the same hash, but its content hashes to ${recomputed ?? '(no canonical form)'}`;
  let same = false;
  try {
    same = canonicalJson(e) === expected;
  } catch {
    // Not canonical, so not the same.
  }
  return same ? 'the same entry, but not written as its canonical JSON' : 'the same hash, but other content';
}

/**
 * Step 2: `plan.json` in the first state commit. Returns whether it could be read as a plan (its digest,
 * items and limits were compared).
 */
async function checkPlan(bundle: AuditBundle, store: GitStore, first: Oid, planBlob: Oid, f: Failures): Promise<boolean> {
  try {
    const text = new TextDecoder().decode(await store.readBlob(planBlob));
    const dup = findDuplicateKey(text);
    if (dup)
      f.add(
        'plan-digest',
        `plan.json in the run's first state commit ${first} repeats the key ${JSON.stringify(dup.key)} at ${dup.path}: a reader and JSON.parse see different plans`,
      );
    const digest = planDigest(text);
    if (digest !== bundle.planDigest)
      f.add('plan-digest', `plan.json in the run's first state commit ${first} has digest ${digest}, the bundle ${bundle.planDigest}`);
    const plan = storedPlan(JSON.parse(text));
    const planned = new Map(plan.items.map((i) => [i.id, i]));
    // Emitted items (v4, with a parent) are checked against the stored emissions below, not the plan.
    const fromPlan = bundle.items.filter((i) => i.parent === undefined);
    if (planned.size !== fromPlan.length)
      f.add(
        'plan-digest',
        `the plan has ${planned.size} items, the bundle ${fromPlan.length}${fromPlan.length < bundle.items.length ? ' not emitted at run time' : ''}`,
      );
    const limits = { maxHops: maxHops(plan), maxItems: maxItems(plan, plan.items.length) };
    if (bundle.limits && (bundle.limits.maxHops !== limits.maxHops || bundle.limits.maxItems !== limits.maxItems)) {
      f.add('plan-digest', `the bundle's limits ${JSON.stringify(bundle.limits)} are not the plan's ${JSON.stringify(limits)}`);
    }
    for (const item of fromPlan) {
      const p = planned.get(item.id);
      if (!p) {
        f.add('plan-digest', `item ${item.id} is not in the plan`, { item: item.id });
        continue;
      }
      if (!sameSet(dependenciesOf(p), item.dependsOn))
        f.add('plan-digest', `item ${item.id}: the bundle's dependencies differ from the plan's`, { item: item.id });
      if (!sameSet(p.resourceLocks, item.locks)) f.add('plan-digest', `item ${item.id}: the bundle's locks differ from the plan's`, { item: item.id });
      const rule = startRule(p);
      if (rule.always !== item.always || rule.continueOnError !== item.continueOnError) {
        f.add('plan-digest', `item ${item.id}: the bundle's start rule (always, continueOnError) differs from the plan's (if, continue_on_error)`, {
          item: item.id,
        });
      }
    }
    return true;
  } catch (error) {
    f.add('plan-digest', `plan.json in the run's first state commit ${first} is not a readable plan: ${errorMessage(error)}`);
    return false;
  }
}

/**
 * Step 3, the items: the bundle lists the run's items in the run's order (the plan's, matrices expanded,
 * then the emitted ones in the order they joined), each with what the stored state says of it: status,
 * attempts, result, base, reason, start and finish times, and for an emitted item its parent, hops and
 * start rule (the plan's items' start rules are step 2's).
 */
function checkItems(bundle: AuditBundle, definitions: readonly WorkItem[], state: RunState['items'], head: Oid, f: Failures): void {
  const order = definitions.map((i) => i.id);
  const listed = bundle.items.map((i) => i.id);
  // Items missing or extra are named below and by steps 2 and 3's emissions; here only the order.
  if (listed.length === order.length && [...listed].sort().join('\u0000') === [...order].sort().join('\u0000')) {
    const k = listed.findIndex((id, i) => id !== order[i]);
    if (k >= 0) {
      f.add(
        'state',
        `the bundle lists item ${listed[k]} at position ${k}, but the run state at ${head} has ${order[k]} there: a bundle lists the run's items in plan order, then the emitted ones in the order they joined`,
        { item: listed[k] as string },
      );
    }
  }
  const byId = new Map(definitions.map((i) => [i.id, i]));
  for (const item of bundle.items) {
    const s = state[item.id];
    if (!s) {
      f.add('state', `the run state at ${head} has no item ${item.id}`, { item: item.id });
      continue;
    }
    const stored: Record<string, unknown> = {
      status: s.status,
      attempts: s.attempts,
      resultRef: s.resultRef ?? null,
      base: s.base ?? null,
      reason: s.reason ?? null,
      startedAt: s.startedAt ?? null,
      finishedAt: s.finishedAt ?? null,
      parent: s.parent,
      hops: s.parent === undefined ? undefined : (s.hops ?? 1),
    };
    const bundled = item as unknown as Record<string, unknown>;
    const differ = Object.keys(stored).filter((k) => stored[k] !== bundled[k]);
    if (differ.length > 0) {
      const what = differ.map((k) => `${k} ${JSON.stringify(stored[k]) ?? '(none)'}, the bundle ${JSON.stringify(bundled[k]) ?? '(none)'}`).join('; ');
      f.add('state', `the run state at ${head} disagrees with the bundle about item ${item.id}: ${what}`, { item: item.id });
    }
    const definition = byId.get(item.id);
    if (item.parent !== undefined && definition) {
      const rule = startRule(definition);
      if (rule.always !== item.always || rule.continueOnError !== item.continueOnError) {
        f.add(
          'emit-digest',
          `emitted item ${item.id}: the bundle's start rule (always, continueOnError) differs from its definition in the run state at ${head}`,
          {
            item: item.id,
          },
        );
      }
    }
  }
}

/**
 * v5: a call its item's own worker made names the item's subagent as the caller; the plan (with the items
 * emitted at run time) says which subagent that is: the item must dispatch to it.
 */
function checkRootCallers(roots: readonly RootCaller[], items: readonly WorkItem[], f: Failures): void {
  const byId = new Map(items.map((i) => [i.id, i]));
  for (const r of roots) {
    const item = byId.get(r.itemId);
    const subagent = item?.executor === 'dispatch' ? item.inputs.subagent : undefined;
    if (subagent !== r.caller) {
      const what = !item ? 'is not in the plan' : subagent === undefined ? 'does not dispatch to a subagent' : `dispatches to ${String(subagent)}`;
      f.add('call-parent', `entry ${r.entry}: a call of ${r.itemId}.${r.attempt} says ${r.caller} called, but item ${r.itemId} ${what}`, {
        entry: r.entry,
        item: r.itemId,
      });
    }
  }
}

/**
 * The anchor ref must hold this run's root, entry count and state commit. Returns true when it does. A run
 * that is not terminal may hold the anchor of an earlier end instead (a retry reopened it; it is anchored
 * again when it ends): that anchor must then cover a prefix of this log, its root over the log's first
 * entries and its state commit the run ref's commit where the log had that many; it is not a failure, and
 * not a verified anchor of this log (false).
 */
async function checkAnchor(
  bundle: AuditBundle,
  store: GitStore,
  refs: RunRefs,
  chain: { head: Oid | null; logAt: ReadonlyMap<Oid, number> },
  terminal: boolean,
  f: Failures,
): Promise<boolean> {
  const { head } = chain;
  const ref = refs.anchor(bundle.runId);
  const before = f.has('anchor-mismatch');
  if (bundle.anchor && bundle.anchor.ref !== ref)
    f.add('anchor-mismatch', `the bundle records anchor ref ${bundle.anchor.ref}, but this run's anchor ref is ${ref}`);
  const stored = await readAnchor(store, refs, bundle.runId);
  if (!stored) {
    if (terminal || bundle.anchor)
      f.add('anchor-missing', `${ref} does not exist: the root of this finished run is not anchored (run \`agora orch audit ${bundle.runId}\`)`);
    return false;
  }
  const a = stored.record;
  if (!a) {
    f.add('anchor-mismatch', `${ref}: ${stored.problem ?? 'unreadable anchor'}`);
    return false;
  }
  if (a.runId !== bundle.runId) f.add('anchor-mismatch', `${ref} anchors run ${a.runId}, not ${bundle.runId}`);
  const earlier = !terminal && a.entries < bundle.entries.length;
  if (earlier) {
    const prefixRoot = a.entries > 0 ? merkleRootHex(bundle.entries.slice(0, a.entries).map((e) => e.hash)) : null;
    if (a.root !== prefixRoot)
      f.add('anchor-mismatch', `${ref} anchors root ${a.root} over the first ${a.entries} entries of this unfinished run, but their root is ${prefixRoot}`);
    else if (chain.logAt.get(a.stateCommit) !== a.entries)
      f.add('anchor-mismatch', `${ref} anchors state commit ${a.stateCommit}, which is not the run ref's commit holding its first ${a.entries} entries`);
  } else if (a.root !== bundle.root)
    f.add('anchor-mismatch', `${ref} anchors root ${a.root} over ${a.entries} entries, but the bundle's root is ${bundle.root} over ${bundle.entries.length}`);
  else if (a.entries !== bundle.entries.length) f.add('anchor-mismatch', `${ref} anchors ${a.entries} entries, the bundle holds ${bundle.entries.length}`);
  if (!earlier && head && a.stateCommit !== head) f.add('anchor-mismatch', `${ref} anchors state commit ${a.stateCommit}, but the run ref points at ${head}`);
  if (bundle.anchor && bundle.anchor.commit !== stored.commit) {
    f.add('anchor-mismatch', `the bundle records anchor commit ${bundle.anchor.commit}, but ${ref} points at ${stored.commit}`);
  }
  return !earlier && !before && !f.has('anchor-mismatch');
}
