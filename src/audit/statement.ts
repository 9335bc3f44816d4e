import { errorMessage } from '../errors.js';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { findDuplicateKey } from '../json/duplicate-keys.js';
import { canonicalJson } from '../log/canonical-json.js';

/**
 * The in-toto Statement v1 that Agora signs at the end of a run. Its subjects are the audit bundle file (by
 * sha256) and every patch commit (by git commit id); its predicate carries the Merkle root over the audit
 * entries, so the signature covers the whole log through one hash.
 */

export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/**
 * The statement's format version is its predicate type's: `https://agora.dev/audit/v<n>` goes with bundle
 * format `agora.audit/v<n>`. v1: runId, merkleRoot, planDigest, entries. v2 adds `repository` (the GitHub
 * repository a run was made in, or null for a local run).
 */
export const AGORA_AUDIT_PREDICATE_TYPE_V1 = 'https://agora.dev/audit/v1';
export const AGORA_AUDIT_PREDICATE_TYPE_V2 = 'https://agora.dev/audit/v2';
/** v3: the same predicate as v2; the bundle's items may carry start rules (`always`, `continueOnError`). */
export const AGORA_AUDIT_PREDICATE_TYPE_V3 = 'https://agora.dev/audit/v3';
/** v4: the same predicate as v2; the bundle records items emitted at run time (`emit` entries, `parent`, `limits`). */
export const AGORA_AUDIT_PREDICATE_TYPE_V4 = 'https://agora.dev/audit/v4';
/** v5: the same predicate as v2; the log records child attempts (`call` entries). */
export const AGORA_AUDIT_PREDICATE_TYPE_V5 = 'https://agora.dev/audit/v5';
/** The predicate type Agora signs today. */
export const AGORA_AUDIT_PREDICATE_TYPE = AGORA_AUDIT_PREDICATE_TYPE_V2;
export type AgoraAuditPredicateType =
  | typeof AGORA_AUDIT_PREDICATE_TYPE_V1
  | typeof AGORA_AUDIT_PREDICATE_TYPE_V2
  | typeof AGORA_AUDIT_PREDICATE_TYPE_V3
  | typeof AGORA_AUDIT_PREDICATE_TYPE_V4
  | typeof AGORA_AUDIT_PREDICATE_TYPE_V5;
/** The statement versions a verifier accepts (every one Agora has signed). */
export type StatementVersion = 1 | 2 | 3 | 4 | 5;
/** DSSE payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface StatementSubject {
  name: string;
  digest: { sha256: string } | { gitCommit: string };
}

export interface AgoraAuditPredicate {
  runId: string;
  /** RFC 6962 root over the entry hashes, hex. */
  merkleRoot: string;
  /** Digest of the plan as submitted. */
  planDigest: string;
  /** Number of audit entries (the tree size the root is for), when known. */
  entries?: number;
  /** v2: the GitHub repository the run was made in (null: a local run). Absent in v1. */
  repository?: RepositoryRecord | null;
}

/**
 * A GitHub repository as the App knew it when the run ended: its full name (what people pin, `--repository`)
 * and its numeric id (what survives a rename, and what a transferred name does not carry along).
 */
export interface RepositoryRecord {
  /** `owner/name`, as GitHub spells it. */
  fullName: string;
  id: number;
}

export interface InTotoStatement {
  _type: typeof IN_TOTO_STATEMENT_TYPE;
  subject: StatementSubject[];
  predicateType: AgoraAuditPredicateType;
  predicate: AgoraAuditPredicate;
}

export interface StatementInput {
  /** sha256 (hex) of the audit bundle file `<runId>.audit.json`. */
  bundleSha256: string;
  runId: string;
  /** Merkle root, hex. */
  root: string;
  patches: ReadonlyArray<{ itemId: string; commit: string }>;
  planDigest: string;
  entries?: number;
  /** The statement version (default: the current one, 2). */
  version?: StatementVersion;
  /** v2 only: the repository the run was made in; null or absent for a local run. */
  repository?: RepositoryRecord | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const SHA1_HEX = /^[0-9a-f]{40}$/;

/** The name of the bundle subject for a run. */
export function bundleSubjectName(runId: string): string {
  return `${runId}.audit.json`;
}

/**
 * Builds the statement. Patch subjects are sorted by item id so the same run always yields the same bytes.
 * Throws a TypeError on a malformed digest (these come from Agora itself, never from a user).
 */
export function buildStatement(input: StatementInput): InTotoStatement {
  if (!SHA256_HEX.test(input.bundleSha256)) throw new TypeError(`bundleSha256 must be 64 lower-case hex digits, got ${JSON.stringify(input.bundleSha256)}`);
  if (!SHA256_HEX.test(input.root)) throw new TypeError(`root must be 64 lower-case hex digits, got ${JSON.stringify(input.root)}`);
  const seen = new Set<string>();
  for (const p of input.patches) {
    if (!SHA1_HEX.test(p.commit)) throw new TypeError(`patch ${p.itemId}: commit must be a 40-digit git commit id, got ${JSON.stringify(p.commit)}`);
    if (seen.has(p.itemId)) throw new TypeError(`patch ${p.itemId} listed twice`);
    seen.add(p.itemId);
  }
  const patches = [...input.patches].sort((a, b) => (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0));
  const version = input.version ?? 2;
  if (version === 1 && input.repository) throw new TypeError('a v1 statement records no repository');
  if (input.repository && !repositoryRecordValid(input.repository))
    throw new TypeError(`repository must be { fullName: "owner/name", id }, got ${JSON.stringify(input.repository)}`);
  const predicate: AgoraAuditPredicate = { runId: input.runId, merkleRoot: input.root, planDigest: input.planDigest };
  if (input.entries !== undefined) predicate.entries = input.entries;
  if (version >= 2) predicate.repository = input.repository ?? null;
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [
      { name: bundleSubjectName(input.runId), digest: { sha256: input.bundleSha256 } },
      ...patches.map((p) => ({ name: `patch:${p.itemId}`, digest: { gitCommit: p.commit } })),
    ],
    predicateType:
      version === 1
        ? AGORA_AUDIT_PREDICATE_TYPE_V1
        : version === 3
          ? AGORA_AUDIT_PREDICATE_TYPE_V3
          : version === 4
            ? AGORA_AUDIT_PREDICATE_TYPE_V4
            : version === 5
              ? AGORA_AUDIT_PREDICATE_TYPE_V5
              : AGORA_AUDIT_PREDICATE_TYPE_V2,
    predicate,
  };
}

/** `owner/name`: GitHub's characters for an owner and a repository name, one slash. */
export const REPOSITORY_FULL_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;

function repositoryRecordValid(r: RepositoryRecord): boolean {
  return REPOSITORY_FULL_NAME.test(r.fullName) && Number.isSafeInteger(r.id) && r.id > 0;
}

/** The exact bytes that get signed: the statement as canonical JSON (RFC 8785). */
export function statementPayload(statement: InTotoStatement): Buffer {
  return Buffer.from(canonicalJson(statement), 'utf8');
}

/** sha256 (hex) of the statement's canonical payload. */
export function statementDigest(statement: InTotoStatement): string {
  return createHash('sha256').update(statementPayload(statement)).digest('hex');
}

const subjectSchema = z
  .object({
    name: z.string().min(1),
    digest: z.union([z.object({ sha256: z.string().regex(SHA256_HEX) }).strict(), z.object({ gitCommit: z.string().regex(SHA1_HEX) }).strict()]),
  })
  .strict();

const predicateV1 = {
  runId: z.string(),
  merkleRoot: z.string().regex(SHA256_HEX),
  planDigest: z.string(),
  entries: z.number().int().nonnegative().optional(),
};
const repositorySchema = z.object({ fullName: z.string().regex(REPOSITORY_FULL_NAME), id: z.number().int().positive() }).strict();

/** Exactly the fields buildStatement writes for a version: an unknown field is a statement Agora did not make. */
function statementSchemaFor(predicateType: string, predicate: Record<string, z.ZodType>) {
  return z
    .object({
      _type: z.literal(IN_TOTO_STATEMENT_TYPE),
      subject: z.array(subjectSchema).min(1),
      predicateType: z.literal(predicateType),
      predicate: z.object(predicate).strict(),
    })
    .strict();
}
const statementV1Schema = statementSchemaFor(AGORA_AUDIT_PREDICATE_TYPE_V1, predicateV1);
const predicateV2 = { ...predicateV1, repository: repositorySchema.nullable() };
const statementV2Schema = statementSchemaFor(AGORA_AUDIT_PREDICATE_TYPE_V2, predicateV2);
// v3 and v4 sign v2's predicate under their own type.
const statementV3Schema = statementSchemaFor(AGORA_AUDIT_PREDICATE_TYPE_V3, predicateV2);
const statementV4Schema = statementSchemaFor(AGORA_AUDIT_PREDICATE_TYPE_V4, predicateV2);
const statementV5Schema = statementSchemaFor(AGORA_AUDIT_PREDICATE_TYPE_V5, predicateV2);

/**
 * Parses a DSSE payload back into a statement; returns a reason instead of throwing, since payloads come
 * from bundles a user hands us.
 */
export function parseStatement(payload: Uint8Array): { ok: true; statement: InTotoStatement } | { ok: false; reason: string } {
  let json: unknown;
  const text = Buffer.from(payload).toString('utf8');
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `DSSE payload is not JSON (${errorMessage(error)})` };
  }
  const dup = findDuplicateKey(text);
  if (dup) return { ok: false, reason: `DSSE payload repeats the key ${JSON.stringify(dup.key)} at ${dup.path}: parsers disagree on which one counts` };
  // The predicate type names the version; anything else is held to the current version's shape.
  const type = (json as { predicateType?: unknown } | null)?.predicateType;
  const schema =
    type === AGORA_AUDIT_PREDICATE_TYPE_V1
      ? statementV1Schema
      : type === AGORA_AUDIT_PREDICATE_TYPE_V3
        ? statementV3Schema
        : type === AGORA_AUDIT_PREDICATE_TYPE_V4
          ? statementV4Schema
          : type === AGORA_AUDIT_PREDICATE_TYPE_V5
            ? statementV5Schema
            : statementV2Schema;
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, reason: `DSSE payload is not an Agora audit statement: ${first ? `${first.path.join('.') || '$'}: ${first.message}` : 'invalid'}` };
  }
  return { ok: true, statement: parsed.data as unknown as InTotoStatement };
}
