import { errorMessage } from '../errors.js';
import { createHash } from 'node:crypto';
import { findDuplicateKey } from '../json/duplicate-keys.js';
import { formatJsonPath, type PathSegment } from '../json/path.js';
import { canonicalJson } from '../log/canonical-json.js';
import { statementPayload, type InTotoStatement } from './statement.js';

/**
 * The signed bytes, compared as bytes. A DSSE signature covers the payload's bytes, not one parser's reading
 * of them: a payload with an extra field, in another key order or whitespace, or with a key given twice
 * (one `merkleRoot` for JSON.parse, another for a parser that keeps the first) means different things to
 * different verifiers. So the payload must be exactly the canonical bytes (RFC 8785) of the statement Agora
 * builds from the bundle being verified; anything else is a mismatch, and the reason names the difference.
 */

/** Why `payload` is not exactly `statementPayload(expected)`, or undefined when it is. */
export function payloadMismatch(payload: Uint8Array, expected: InTotoStatement): string | undefined {
  const want = statementPayload(expected);
  const got = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (got.equals(want)) return undefined;
  return describe(got, want, expected);
}

/** Why `payload` does not have the sha256 `statementSha256` (the digest of the canonical statement). */
export function payloadDigestMismatch(payload: Uint8Array, statementSha256: string): string | undefined {
  const digest = createHash('sha256').update(payload).digest('hex');
  if (digest === statementSha256.toLowerCase()) return undefined;
  const text = Buffer.from(payload).toString('utf8');
  const reading = read(text);
  if (typeof reading === 'string') return reading;
  if (reading.canonical !== text)
    return `the signed payload is not canonical JSON (RFC 8785), so it cannot be the expected statement (its sha256 is ${digest}, expected ${statementSha256})`;
  return `the signed statement is not the expected one (its sha256 is ${digest}, expected ${statementSha256})`;
}

/** The payload as JSON and its canonical form, or why it cannot be read so. */
function read(text: string): { value: unknown; canonical: string } | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `the signed payload is not JSON (${errorMessage(error)})`;
  }
  const dup = findDuplicateKey(text);
  if (dup) {
    return `the signed payload repeats the key ${JSON.stringify(dup.key)} at ${dup.path} (bytes ${dup.first.offset} and ${dup.again.offset}): parsers disagree on which one counts, so it is not the statement of this bundle`;
  }
  try {
    return { value, canonical: canonicalJson(value) };
  } catch (error) {
    return `the signed payload has no canonical form (${errorMessage(error)})`;
  }
}

function describe(got: Buffer, want: Buffer, expected: InTotoStatement): string {
  const reading = read(got.toString('utf8'));
  if (typeof reading === 'string') return reading;
  if (reading.canonical === want.toString('utf8')) {
    const at = firstDifferentByte(got, want);
    const longer =
      got.length === want.length
        ? ''
        : ` (the payload is ${Math.abs(got.length - want.length)} byte${Math.abs(got.length - want.length) === 1 ? '' : 's'} ${got.length > want.length ? 'longer' : 'shorter'})`;
    return `the signed payload is this bundle's statement, but not its canonical bytes (RFC 8785): they differ first at byte ${at}${longer}`;
  }
  return (
    knownDifference(reading.value, expected) ??
    structuralDifference(reading.value, expected, []) ??
    'the signed statement differs from the statement of this bundle'
  );
}

function firstDifferentByte(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** The differences people ask about first, said in their terms. */
function knownDifference(actual: unknown, e: InTotoStatement): string | undefined {
  const a = actual as { predicate?: { merkleRoot?: unknown; runId?: unknown }; subject?: unknown } | null;
  if (typeof a !== 'object' || a === null) return undefined;
  if (a.predicate?.merkleRoot !== e.predicate.merkleRoot) {
    return `the signed statement is over Merkle root ${String(a.predicate?.merkleRoot)}, expected ${e.predicate.merkleRoot}`;
  }
  if (a.predicate?.runId !== e.predicate.runId) return `the signed statement is for run ${String(a.predicate?.runId)}, expected ${e.predicate.runId}`;
  try {
    if (canonicalJson(a.subject) !== canonicalJson(e.subject))
      return 'the signed statement names other subjects (bundle digest or patch commits) than expected';
  } catch {
    return 'the signed statement names other subjects (bundle digest or patch commits) than expected';
  }
  return undefined;
}

/** The first path (in sorted key order) where the two JSON values differ, said as what the payload has. */
function structuralDifference(actual: unknown, expected: unknown, at: PathSegment[]): string | undefined {
  const path = formatJsonPath(at);
  const kind = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
  if (kind(actual) !== kind(expected)) return `the signed payload has ${kind(actual)} at ${path}, the statement of this bundle ${kind(expected)}`;
  if (at.length > 32) return `the signed payload differs from the statement of this bundle at ${path}`;
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length)
      return `the signed payload has ${actual.length} elements at ${path}, the statement of this bundle ${expected.length}`;
    for (let i = 0; i < actual.length; i++) {
      const d = structuralDifference(actual[i], expected[i], [...at, i]);
      if (d) return d;
    }
    return undefined;
  }
  if (typeof actual === 'object' && actual !== null) {
    const a = actual as Record<string, unknown>;
    const b = expected as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const p = formatJsonPath([...at, k]);
      if (!Object.hasOwn(b, k)) return `the signed payload has ${p}, which the statement of this bundle does not`;
      if (!Object.hasOwn(a, k)) return `the signed payload lacks ${p}, which the statement of this bundle has`;
      const d = structuralDifference(a[k], b[k], [...at, k]);
      if (d) return d;
    }
    return undefined;
  }
  return actual === expected
    ? undefined
    : `the signed payload has ${JSON.stringify(actual)} at ${path}, the statement of this bundle ${JSON.stringify(expected)}`;
}
