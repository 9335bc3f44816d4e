import { AgoraError } from '../errors.js';
import type { RunState } from '../engine/types.js';
import type { GitStore } from '../git/types.js';
import type { AuditEntry } from '../log/entry.js';
import { merkleRootHex } from '../log/merkle.js';
import { dependenciesOf } from '../plan/dag.js';
import { normalizeLockKey } from '../plan/locks.js';
import type { Plan } from '../plan/schema.js';
import type { Progress } from '../progress.js';
import { anchorRun, readAnchor } from '../runs/anchor.js';
import type { RunRefs } from '../runs/refs.js';
import { readRunChain } from '../runs/run-chain.js';
import { readRun } from '../runs/state-store.js';
import { maxHops, maxItems, planItemCount } from '../engine/emission.js';
import {
  AUDIT_FORMAT,
  AUDIT_FORMAT_V3,
  AUDIT_FORMAT_V4,
  AUDIT_FORMAT_V5,
  isTerminalRun,
  paramsDigest,
  planDigest,
  startRule,
  type AuditBundle,
  type BundleItem,
} from './bundle.js';
import type { RepositoryRecord } from './statement.js';
import { verifyBundle } from './verify/pipeline.js';

export interface BuildOptions {
  /** Anchor the root in `refs/agora/anchors/<run>` when the run is terminal (default false). */
  anchor?: boolean;
  /** Told how far reading and checking the run got. */
  progress?: Progress;
  /** Clock for the anchor commit (epoch ms). */
  now?: number;
  /** The GitHub repository the run was made in (the App); a local run records none. */
  repository?: RepositoryRecord;
}

/**
 * Assembles the bundle of `runId` from the repository: the run ref's state and whole entry chain, the root,
 * the anchor (written first when `anchor` is set and the run is terminal), then the report of verifying it
 * all against the same repository. Throws AgoraError `run-not-found` when there is no such run.
 */
export async function buildAuditBundle(store: GitStore, refs: RunRefs, runId: string, opts: BuildOptions = {}): Promise<AuditBundle> {
  const stored = await readRun(store, refs, runId);
  if (!stored) {
    throw new AgoraError('run-not-found', `no run ${runId} in this repository (${refs.run(runId)} does not exist)`, 'list runs with `agora orch status`');
  }
  const chain = await readRunChain(store, stored.head, opts.progress);
  const planText = new TextDecoder().decode(await store.readBlob(stored.planBlob));
  const root = merkleRootHex(chain.entries.map((e) => e.hash));
  const items = bundleItems(stored.plan, stored.state, chain.entries);
  // v4 only when items were emitted, v3 only when an item carries a start rule, so every other run's
  // bundle reads in older verifiers.
  const emitted = chain.entries.some((e) => e.kind === 'emit');
  // v5 only when an attempt called a dependency (a call entry) or the run has parameters; v5 also reads
  // emit entries and start rules.
  const called = chain.entries.some((e) => e.kind === 'call');
  const params = stored.state.params;
  const bundle: AuditBundle = {
    format: called || params ? AUDIT_FORMAT_V5 : emitted ? AUDIT_FORMAT_V4 : items.some((i) => i.always || i.continueOnError) ? AUDIT_FORMAT_V3 : AUDIT_FORMAT,
    runId,
    repository: opts.repository ? { fullName: opts.repository.fullName, id: opts.repository.id } : null,
    planDigest: planDigest(planText),
    base: stored.state.base,
    integrationHead: stored.state.integrationHead,
    state: stored.state.status,
    items,
    ...(emitted ? { limits: { maxHops: maxHops(stored.plan), maxItems: maxItems(stored.plan, planItemCount(stored.state)) } } : {}),
    ...(params ? { params: { values: params.values, digest: paramsDigest(params.values) } } : {}),
    entries: chain.entries,
    root,
    anchor: null,
    signature: null,
    report: { intact: false, claim: 'none', guarantee: 'none', terminal: false, failures: [] },
  };
  if (opts.anchor && isTerminalRun(bundle)) {
    // A refusal (an anchor for another root) is not thrown: verification below reports it as tampering.
    await anchorRun(store, refs, runId, root, opts.now ?? Date.now()).catch((error: unknown) => {
      if (!(error instanceof AgoraError) || error.code !== 'anchor-conflict') throw error;
    });
  }
  const anchor = await readAnchor(store, refs, runId);
  if (anchor) bundle.anchor = { kind: 'git-ref', ref: refs.anchor(runId), commit: anchor.commit };
  bundle.report = await verifyBundle(bundle, { store, refs, requireSignature: false, ...(opts.progress ? { progress: opts.progress } : {}) });
  return bundle;
}

function bundleItems(plan: Plan, state: RunState, entries: readonly AuditEntry[]): BundleItem[] {
  // The locks an item actually took are in its running transitions; the plan's (normalised, deduplicated,
  // as the engine holds them) stand for items that never started.
  const took = new Map<string, string[]>();
  for (const e of entries) if (e.kind === 'item' && e.to === 'running' && e.locks) took.set(e.itemId, e.locks);
  return plan.items.map((planItem) => {
    const s = state.items[planItem.id];
    return {
      id: planItem.id,
      status: s?.status ?? 'pending',
      reason: s?.reason ?? null,
      attempts: s?.attempts ?? 0,
      resultRef: s?.resultRef ?? null,
      base: s?.base ?? null,
      startedAt: s?.startedAt ?? null,
      finishedAt: s?.finishedAt ?? null,
      locks: took.get(planItem.id) ?? [...new Set(planItem.resourceLocks.map(normalizeLockKey))],
      dependsOn: dependenciesOf(planItem),
      ...startRule(planItem),
      ...(s?.parent === undefined ? {} : { parent: s.parent, hops: s.hops ?? 1 }),
    };
  });
}
