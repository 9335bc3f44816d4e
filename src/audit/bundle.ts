import { createHash } from 'node:crypto';
import { AgoraError } from '../errors.js';
import { TERMINAL_ITEM_STATUSES, type ItemStatus, type ParamValue, type RunState } from '../engine/types.js';
import { canonicalJson } from '../log/canonical-json.js';
import type { AuditEntry } from '../log/entry.js';
import { fromHex, inclusionProof, toHex } from '../log/merkle.js';
import { patchCommitOf } from '../log/result-ref.js';
import type { SignatureRecord } from './signers.js';
import type { WorkItem } from '../plan/schema.js';
import { buildStatement, type InTotoStatement, type RepositoryRecord, type StatementVersion } from './statement.js';

/**
 * The audit bundle of one run (`<runId>.audit.json`, DESIGN.md §5): the run's summary, every audit entry, the
 * Merkle root over the entry hashes, the anchor and signature records, and the report of verifying all of it;
 * and what is derived from a bundle alone (its digest, its statement). Pure: build-bundle.ts assembles one
 * from the repository, verify/ checks one (verify/parse.ts reads one from a file).
 */

/**
 * The bundle's format version (docs/audit.md, "Versions"). Every change to what is logged, stored or signed
 * bumps it; `verify` keeps accepting every version Agora has written. v1: the first. v2: the bundle and its
 * signed statement (predicate type `https://agora.dev/audit/v2`) record the GitHub repository (or null).
 * v3: an item may carry `always` or `continueOnError` (its start rule differs); written only by runs whose
 * plan has such an item, every other run's bundle stays v2. v4: `emit` entries (items added at run time by
 * an item), items carrying `parent` and `hops`, and the run's `limits`; written only by runs with an emit entry.
 * v5: `call` entries (child attempts: an attempt's calls to its subagent's dependencies) and the run's
 * parameters (`params`); written only by runs with a call entry or parameters.
 */
export const AUDIT_FORMAT_VERSION = 5;
export const AUDIT_FORMAT_NAME = 'agora.audit';
/** The format of a bundle none of whose items carries a v3 member. */
export const AUDIT_FORMAT = 'agora.audit/v2';
export const AUDIT_FORMAT_V1 = 'agora.audit/v1';
export const AUDIT_FORMAT_V3 = 'agora.audit/v3';
export const AUDIT_FORMAT_V4 = 'agora.audit/v4';
export const AUDIT_FORMAT_V5 = 'agora.audit/v5';
/** The newest format this Agora reads. */
export const AUDIT_FORMAT_NEWEST = AUDIT_FORMAT_V5;
export type AuditFormat = typeof AUDIT_FORMAT_V1 | typeof AUDIT_FORMAT | typeof AUDIT_FORMAT_V3 | typeof AUDIT_FORMAT_V4 | typeof AUDIT_FORMAT_V5;
/** Every format `verify` accepts: each one Agora has written. */
export const ACCEPTED_FORMATS: readonly AuditFormat[] = [AUDIT_FORMAT_V1, AUDIT_FORMAT, AUDIT_FORMAT_V3, AUDIT_FORMAT_V4, AUDIT_FORMAT_V5];
/** The format of `agora orch audit <run> --item <id>`: one item's entries with their inclusion proofs. */
export const ITEM_EVIDENCE_FORMAT = 'agora.audit.item/v1';

/**
 * Stable failure codes (docs/audit.md, "Bundle format"). `not-terminal` is informational: it never makes a
 * report non-intact.
 */
export const FAILURE_CODES = [
  'chain',
  'root-mismatch',
  'anchor-missing',
  'anchor-mismatch',
  'signature',
  'patch-missing',
  'scope',
  'order',
  'lock',
  'attempts',
  'state',
  'integration',
  'plan-digest',
  'pin',
  'emit-missing',
  'emit-parent',
  'emit-duplicate',
  'emit-hops',
  'emit-budget',
  'emit-digest',
  'call-parent',
  'call-dependency',
  'call-hops',
  'call-time',
  'params-digest',
  'params-mismatch',
  'not-terminal',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export interface AuditFailure {
  code: FailureCode;
  message: string;
  /** The entry's `seq` (its index in `entries`), when one entry is at fault. */
  entry?: number;
  item?: string;
}

export type AuditClaimLevel = 'tamper-detecting' | 'tamper-evident' | 'none';
/**
 * What backs the claim: an anchor in the same repository, a transparency log outside it, only a signature by
 * a key (no witness), or nothing.
 */
export type AuditGuaranteeLevel = 'same-repository' | 'external-immutable' | 'signed' | 'none';

export interface AuditReport {
  /** True when no check failed (`not-terminal` does not count). */
  intact: boolean;
  claim: AuditClaimLevel;
  guarantee: AuditGuaranteeLevel;
  /** True when the run and every item had reached a terminal state. */
  terminal: boolean;
  failures: AuditFailure[];
}

export interface BundleItem {
  id: string;
  status: ItemStatus;
  reason: string | null;
  attempts: number;
  resultRef: string | null;
  base: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** The item's write scope / lock keys, normalised as the engine holds them. */
  locks: string[];
  /** The items it waits for (depends_on and needs), so the order check needs nothing but the bundle. */
  dependsOn: string[];
  /** v3, present only when true: the item (`if: always`) starts once every item in dependsOn has ended, in any state. */
  always?: true;
  /** v3, present only when true: a failure of this item (`continue_on_error`) lets its dependents start. */
  continueOnError?: true;
  /** v4, only on an item emitted at run time: the item that emitted it. */
  parent?: string;
  /** v4, only on an emitted item: how many creations it is from the plan (its parent's hops + 1). */
  hops?: number;
}

/** v4: the bounds every emitted item was held to (the plan's `max_hops` and `max_items`, defaults resolved). */
export interface BundleLimits {
  maxHops: number;
  maxItems: number;
}

/**
 * v5, present only when the run was given parameters (`agora orch run --data`): the values exactly as the
 * run's state records them (a secret's value as `***`) and the sha256 (hex) of their canonical JSON.
 */
export interface BundleParams {
  values: Record<string, ParamValue>;
  digest: string;
}

export interface AnchorRecord {
  kind: 'git-ref';
  ref: string;
  commit: string;
}

export interface AuditBundle {
  format: AuditFormat;
  runId: string;
  /**
   * v2: the GitHub repository the run was made in (recorded by the App; null for a local run). Inside the
   * bundle digest and the signed statement, so `verify --repository` can rely on it. Absent in v1.
   */
  repository?: RepositoryRecord | null;
  /** sha256 (hex) of the canonical JSON (RFC 8785) of plan.json as submitted. */
  planDigest: string;
  base: string;
  integrationHead: string;
  state: RunState['status'];
  items: BundleItem[];
  /** v4 (required there): the limits of items emitted at run time. */
  limits?: BundleLimits;
  /** v5: the run's parameters, when it had any. */
  params?: BundleParams;
  entries: AuditEntry[];
  /** RFC 6962 root over the entry hashes, hex. */
  root: string;
  anchor: AnchorRecord | null;
  signature: SignatureRecord | null;
  report: AuditReport;
}

/** Item evidence: one item's entries, each with an RFC 6962 audit path to the bundle's root. */
export interface ItemEvidence {
  format: typeof ITEM_EVIDENCE_FORMAT;
  runId: string;
  itemId: string;
  root: string;
  treeSize: number;
  entries: Array<{ index: number; entry: AuditEntry; proof: string[] }>;
}

/** sha256 (hex) of a plan's canonical JSON. `planText` is plan.json exactly as submitted. */
export function planDigest(planText: string): string {
  return createHash('sha256')
    .update(canonicalJson(JSON.parse(planText)))
    .digest('hex');
}

/** sha256 (hex) of the canonical JSON of a run's recorded parameter values: the bundle's `params.digest`. */
export function paramsDigest(values: Record<string, ParamValue>): string {
  return createHash('sha256').update(canonicalJson(values)).digest('hex');
}

/**
 * The digest the signed statement names for the bundle: sha256 of the bundle's canonical JSON with
 * `signature` and `report` set to null. Those two are written after signing (the signature record) or
 * recomputed by every verifier (the report), so they cannot be inside what is signed; everything else is.
 */
export function bundleDigest(bundle: AuditBundle): string {
  return createHash('sha256')
    .update(canonicalJson({ ...bundle, signature: null, report: null }))
    .digest('hex');
}

/** The in-toto statement that signs `bundle`: its digest, its root, the run, the plan and every patch commit. */
export function auditStatement(bundle: AuditBundle): InTotoStatement {
  const patches: Array<{ itemId: string; commit: string }> = [];
  for (const item of bundle.items) {
    const commit = item.status === 'done' ? patchCommitOf(item.resultRef) : null;
    if (commit) patches.push({ itemId: item.id, commit });
  }
  const version = formatVersion(bundle);
  return buildStatement({
    bundleSha256: bundleDigest(bundle),
    runId: bundle.runId,
    root: bundle.root,
    patches,
    planDigest: bundle.planDigest,
    entries: bundle.entries.length,
    version,
    ...(version >= 2 ? { repository: bundle.repository ?? null } : {}),
  });
}

/** The format version of a parsed bundle (its statement has the same version). */
export function formatVersion(bundle: Pick<AuditBundle, 'format'>): StatementVersion {
  const versions: Partial<Record<string, StatementVersion>> = { [AUDIT_FORMAT_V1]: 1, [AUDIT_FORMAT_V3]: 3, [AUDIT_FORMAT_V4]: 4, [AUDIT_FORMAT_V5]: 5 };
  return versions[bundle.format] ?? 2;
}

export function isTerminalRun(bundle: Pick<AuditBundle, 'state' | 'items'>): boolean {
  return bundle.state !== 'running' && bundle.items.every((i) => TERMINAL_ITEM_STATUSES.has(i.status));
}

/** One item's entries with inclusion proofs against the bundle's root (`--item`). */
export function itemEvidence(bundle: AuditBundle, itemId: string): ItemEvidence {
  if (!bundle.items.some((i) => i.id === itemId)) {
    throw new AgoraError('item-not-found', `run ${bundle.runId} has no item ${itemId}`, `items: ${bundle.items.map((i) => i.id).join(', ')}`);
  }
  const leaves = bundle.entries.map((e) => fromHex(e.hash));
  const entries: ItemEvidence['entries'] = [];
  bundle.entries.forEach((entry, index) => {
    if (entry.kind === 'item' && entry.itemId === itemId) {
      entries.push({ index, entry, proof: inclusionProof(leaves, index).map(toHex) });
    }
  });
  return { format: ITEM_EVIDENCE_FORMAT, runId: bundle.runId, itemId, root: bundle.root, treeSize: leaves.length, entries };
}

/** The v3 members of an item whose start rule is not "every dependency done". */
export function startRule(item: Pick<WorkItem, 'if' | 'continue_on_error'>): Pick<BundleItem, 'always' | 'continueOnError'> {
  return { ...(item.if === 'always' ? { always: true as const } : {}), ...(item.continue_on_error ? { continueOnError: true as const } : {}) };
}
