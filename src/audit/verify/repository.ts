import { errorMessage } from '../../errors.js';
import type { GitStore, Oid } from '../../git/types.js';
import type { AuditEntry } from '../../log/entry.js';
import { findDuplicateKey } from '../../json/duplicate-keys.js';
import { dependenciesOf } from '../../plan/dag.js';
import { storedPlan } from '../../plan/matrix.js';
import { readAnchor } from '../../runs/anchor.js';
import { SILENT, type Progress } from '../../progress.js';
import type { RunRefs } from '../../runs/refs.js';
import { readRunChain } from '../../runs/run-chain.js';
import { readRunAt } from '../../runs/state-store.js';
import { planDigest, startRule, type AuditBundle } from '../bundle.js';
import { maxHops, maxItems } from '../../engine/emission.js';
import type { WorkItem } from '../../plan/schema.js';
import type { RootCaller } from './calls.js';
import { checkEmittedDefinitions } from './emission.js';
import type { Failures } from './failures.js';
import { checkPatches } from './integration.js';
import { checkStoredParams } from './params.js';
import { sameSet, type ReplayResult } from './replay.js';

/**
 * Step "repository" (with `--repo`): the run ref's first-parent chain holds exactly the bundle's entries;
 * the plan in its first state commit has the bundle's digest, items, dependencies and locks and repeats no
 * key, and its run.json the bundle's params; the state at its head (either layout) says what the bundle says; each done item's patch and the integration chain
 * (integration.ts); the anchor ref holds this root, entry count and state commit.
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
  if (!head) {
    f.add('chain', `${refs.run(runId)} does not exist: the repository holds no run ${runId}`);
  } else {
    await checkRunRef(bundle, entries, replay, store, head, f, progress);
  }
  await checkPatches(bundle, replay, store, refs, f, progress);
  return checkAnchor(bundle, store, refs, head, terminal, f);
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
): Promise<void> {
  let chain;
  try {
    chain = await readRunChain(store, head, progress);
  } catch (error) {
    f.add('chain', `the run's state chain from ${head} cannot be read: ${errorMessage(error)}`);
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
    checkStoredParams(bundle, firstRun.state.params, first, f);
    const text = new TextDecoder().decode(await store.readBlob(firstRun.planBlob));
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
  } catch (error) {
    f.add('plan-digest', `the run's first state commit ${first} holds no readable plan: ${errorMessage(error)}`);
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
    for (const item of bundle.items) {
      const s = state.items[item.id];
      if (!s || s.status !== item.status || s.attempts !== item.attempts || (s.resultRef ?? null) !== item.resultRef || (s.base ?? null) !== item.base) {
        f.add('state', `the run state at ${head} disagrees with the bundle about item ${item.id}`, { item: item.id });
      }
    }
  } catch (error) {
    f.add('state', `the run state at ${head} cannot be read: ${errorMessage(error)}`);
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

/** The anchor ref must hold this run's root, entry count and state commit. Returns true when it does. */
async function checkAnchor(bundle: AuditBundle, store: GitStore, refs: RunRefs, head: Oid | null, terminal: boolean, f: Failures): Promise<boolean> {
  const ref = refs.anchor(bundle.runId);
  const stored = await readAnchor(store, refs, bundle.runId);
  if (!stored) {
    if (terminal || bundle.anchor)
      f.add('anchor-missing', `${ref} does not exist: the root of this finished run is not anchored (run \`agora orch audit ${bundle.runId}\`)`);
    return false;
  }
  const before = f.has('anchor-mismatch');
  const a = stored.record;
  if (!a) {
    f.add('anchor-mismatch', `${ref}: ${stored.problem ?? 'unreadable anchor'}`);
    return false;
  }
  if (a.runId !== bundle.runId) f.add('anchor-mismatch', `${ref} anchors run ${a.runId}, not ${bundle.runId}`);
  if (a.root !== bundle.root)
    f.add('anchor-mismatch', `${ref} anchors root ${a.root} over ${a.entries} entries, but the bundle's root is ${bundle.root} over ${bundle.entries.length}`);
  else if (a.entries !== bundle.entries.length) f.add('anchor-mismatch', `${ref} anchors ${a.entries} entries, the bundle holds ${bundle.entries.length}`);
  if (head && a.stateCommit !== head) f.add('anchor-mismatch', `${ref} anchors state commit ${a.stateCommit}, but the run ref points at ${head}`);
  if (bundle.anchor && bundle.anchor.commit !== stored.commit) {
    f.add('anchor-mismatch', `the bundle records anchor commit ${bundle.anchor.commit}, but ${ref} points at ${stored.commit}`);
  }
  return !before && !f.has('anchor-mismatch');
}
