import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import { AgoraError } from '../errors.js';
import { DuplicateKeyError, findDuplicateKey } from '../json/duplicate-keys.js';
import { TERMINAL_ITEM_STATUSES, type ItemStatus, type RunState } from '../engine/types.js';
import type { GitStore, Oid } from '../git/types.js';
import { dependenciesOf } from '../plan/dag.js';
import { normalizeLockKey } from '../plan/locks.js';
import type { Plan } from '../plan/schema.js';
import type { RunRefs } from '../runs/refs.js';
import { readRun } from '../runs/state-store.js';
import { anchorRun, readAnchor } from '../runs/anchor.js';
import { canonicalJson } from '../log/canonical-json.js';
import { patchCommitOf } from '../log/result-ref.js';
import { type AuditEntry } from '../log/entry.js';
import { fromHex, inclusionProof, merkleRootHex, toHex } from '../log/merkle.js';
import type { SignatureRecord } from './signers.js';
import { buildStatement, type InTotoStatement, type RepositoryRecord, type StatementVersion } from './statement.js';
import bundleSchema from './bundle-schema.json' with { type: 'json' };
import { readRunChain } from '../runs/run-chain.js';
import { verifyBundle } from './verify-run.js';

/**
 * The audit bundle of one run (`<runId>.audit.json`, DESIGN.md §5): the run's summary, every audit entry, the
 * Merkle root over the entry hashes, the anchor and signature records, and the report of verifying all of it.
 * Everything in it can be recomputed from the repository; verify-run.ts does exactly that.
 */

/**
 * The bundle's format version (docs/audit.md, "Versions"). Every change to what is logged, stored or signed
 * bumps it; `verify` keeps accepting every version Agora has written. v1: the first. v2: the bundle and its
 * signed statement (predicate type `https://agora.dev/audit/v2`) record the GitHub repository (or null).
 */
export const AUDIT_FORMAT_VERSION = 2;
export const AUDIT_FORMAT_NAME = 'agora.audit';
export const AUDIT_FORMAT = 'agora.audit/v2';
export const AUDIT_FORMAT_V1 = 'agora.audit/v1';
export type AuditFormat = typeof AUDIT_FORMAT_V1 | typeof AUDIT_FORMAT;
/** Every format `verify` accepts: each one Agora has written. */
export const ACCEPTED_FORMATS: readonly AuditFormat[] = [AUDIT_FORMAT_V1, AUDIT_FORMAT];
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
  return createHash('sha256').update(canonicalJson(JSON.parse(planText))).digest('hex');
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
  return bundle.format === AUDIT_FORMAT_V1 ? 1 : 2;
}

export function isTerminalRun(bundle: Pick<AuditBundle, 'state' | 'items'>): boolean {
  return bundle.state !== 'running' && bundle.items.every((i) => TERMINAL_ITEM_STATUSES.has(i.status));
}

export interface BuildOptions {
  /** Anchor the root in `refs/agora/anchors/<run>` when the run is terminal (default false). */
  anchor?: boolean;
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
  const chain = await readRunChain(store, stored.head);
  const planText = new TextDecoder().decode(await store.readBlob(stored.planBlob));
  const root = merkleRootHex(chain.entries.map((e) => e.hash));
  const bundle: AuditBundle = {
    format: AUDIT_FORMAT,
    runId,
    repository: opts.repository ? { fullName: opts.repository.fullName, id: opts.repository.id } : null,
    planDigest: planDigest(planText),
    base: stored.state.base,
    integrationHead: stored.state.integrationHead,
    state: stored.state.status,
    items: bundleItems(stored.plan, stored.state, chain.entries),
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
  bundle.report = await verifyBundle(bundle, { store, refs, requireSignature: false });
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
    };
  });
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

// --- reading a bundle a user hands us ------------------------------------------------------------------

const ajv = new Ajv({ allErrors: false, strict: false });
const validateSchema = ajv.compile(bundleSchema);

/** The JSON Schema of the bundle (src/audit/bundle-schema.json). */
export const AUDIT_BUNDLE_SCHEMA: object = bundleSchema;

/** True when `value` satisfies the bundle's JSON Schema; `problem` names the first violation. */
export function checkBundleSchema(value: unknown): { ok: true } | { ok: false; problem: string } {
  if (validateSchema(value)) return { ok: true };
  return { ok: false, problem: describeSchemaError(validateSchema.errors?.[0]) };
}

function describeSchemaError(e: ErrorObject | undefined): string {
  if (!e) return 'does not match the bundle schema';
  const where = e.instancePath === '' ? '$' : `$${e.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
  const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
  return `${where}: ${e.message ?? e.keyword}${extra}`;
}

/**
 * Parses the text of an audit bundle file. Not JSON, a key repeated in one object (DuplicateKeyError
 * `bundle-duplicate-key`: parsers would disagree on which one counts), not an Agora audit bundle, a newer
 * format version, or a shape the schema rejects → AgoraError naming `source` and the problem (one line).
 */
export function parseAuditBundle(text: string, source: string): AuditBundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AgoraError('bundle-invalid', `${source}: not JSON (${(error as Error).message})`, 'pass the file `agora orch audit <run> --out FILE` wrote');
  }
  const dup = findDuplicateKey(text);
  if (dup) {
    throw new DuplicateKeyError(
      'bundle-duplicate-key',
      source,
      dup,
      'a bundle Agora writes never repeats a key: this one was edited after it was written; verify the file `agora orch audit <run> --out FILE` wrote',
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AgoraError('bundle-invalid', `${source}: not an Agora audit bundle (expected a JSON object)`, 'pass the file `agora orch audit <run> --out FILE` wrote');
  }
  const format = (json as { format?: unknown }).format;
  const m = typeof format === 'string' ? /^agora\.audit\/v(\d+)$/.exec(format) : null;
  if (!m) {
    throw new AgoraError(
      'bundle-invalid',
      `${source}: not an Agora audit bundle (format is ${JSON.stringify(format ?? null)}, expected ${ACCEPTED_FORMATS.map((f) => JSON.stringify(f)).join(' or ')})`,
      'pass the file `agora orch audit <run> --out FILE` wrote',
    );
  }
  if (Number(m[1]) > AUDIT_FORMAT_VERSION) {
    throw new AgoraError(
      'bundle-version',
      `${source}: audit bundle format ${String(format)} is newer than this agora understands (${AUDIT_FORMAT})`,
      'upgrade agora to verify it',
    );
  }
  const checked = checkBundleSchema(json);
  if (!checked.ok) throw new AgoraError('bundle-invalid', `${source}: not a valid ${String(format)} bundle: ${checked.problem}`, 'pass the file `agora orch audit <run> --out FILE` wrote, unmodified');
  return json as AuditBundle;
}
