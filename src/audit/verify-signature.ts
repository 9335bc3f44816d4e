import { BUNDLE_V03_MEDIA_TYPE, bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { Verifier, toSignedEntity, type TrustMaterial } from '@sigstore/verify';
import { isAgoraError, errorMessage } from '../errors.js';
import { findDuplicateKey } from '../json/duplicate-keys.js';
import { loadPublicKey } from './keys.js';
import { payloadDigestMismatch, payloadMismatch } from './signed-payload.js';
import type { AuditClaim, AuditGuarantee } from './signers.js';
import { IN_TOTO_PAYLOAD_TYPE, parseStatement, type InTotoStatement } from './statement.js';
import { certificateIdentity, trustMaterialForKey, trustMaterialFromRoot } from './trust.js';

/**
 * Offline verification of an audit statement's Sigstore bundle with explicit trust material: a public key,
 * or a trusted root plus the exact certificate identity and issuer. Then checks that the signed statement is
 * the one the caller expects, so a valid bundle over some other root cannot be swapped in.
 */

/**
 * The statement the caller expects: the full statement, or the sha256 of its canonical JSON. Either way the
 * DSSE payload must be exactly those canonical bytes (src/audit/signed-payload.ts).
 */
export type ExpectedStatement = { statement: InTotoStatement } | { statementSha256: string };

export interface KeyVerification {
  expected: ExpectedStatement;
  /** SPKI PEM (or a path to it) of the one key trusted to have signed. */
  publicKeyPem: string;
  /** Trust for the Rekor / TSA witnesses of a key-signed bundle, when it has any. */
  trustedRoot?: unknown;
  /** Require a transparency-log entry (default false: a local key may sign offline). */
  requireTransparencyLog?: boolean;
}

export interface KeylessVerification {
  expected: ExpectedStatement;
  /** The exact certificate SAN, e.g. `https://github.com/o/r/.github/workflows/agora.yml@refs/heads/main`. */
  certificateIdentity: string;
  /** The exact OIDC issuer, e.g. `https://token.actions.githubusercontent.com`. */
  certificateIssuer: string;
  /** A `trusted_root.json` object: Fulcio CA, CT logs, Rekor, TSA. */
  trustedRoot: unknown;
}

/** What verification established; `claim`/`guarantee` as in SignatureRecord, from what was actually checked. */
export type VerifiedSigner = ({ kind: 'key'; keyId: string } | { kind: 'keyless'; identity: string; issuer: string }) & {
  rekorLogIndex?: number;
  claim: AuditClaim;
  guarantee: AuditGuarantee;
};

export type SignatureVerification = { ok: true; statement: InTotoStatement; signer: VerifiedSigner } | { ok: false; code: 'signature'; reason: string };

function fail(reason: string): SignatureVerification {
  return { ok: false, code: 'signature', reason };
}

/** Escapes every regex metacharacter of `literal`. */
export function escapeRegExp(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * The SAN policy for @sigstore/verify, which treats it as an unanchored regex: the identity escaped and
 * anchored, so only that exact string matches.
 */
export function exactIdentityPattern(identity: string): string {
  return `^${escapeRegExp(identity)}$`;
}

function parseBundle(input: string | Uint8Array | object): { ok: true; bundle: Bundle } | { ok: false; reason: string } {
  let json: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
    try {
      json = JSON.parse(text);
    } catch (error) {
      return { ok: false, reason: `the signature bundle is not JSON (${errorMessage(error)})` };
    }
    const dup = findDuplicateKey(text);
    if (dup)
      return { ok: false, reason: `the signature bundle repeats the key ${JSON.stringify(dup.key)} at ${dup.path}: parsers disagree on which one counts` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'the signature bundle is not a JSON object (expected a Sigstore bundle)' };
  }
  const mediaType = (json as { mediaType?: unknown }).mediaType;
  if (mediaType !== BUNDLE_V03_MEDIA_TYPE) {
    return {
      ok: false,
      reason: `not a Sigstore bundle v0.3: mediaType is ${JSON.stringify(mediaType)}, expected ${JSON.stringify(BUNDLE_V03_MEDIA_TYPE)}`,
    };
  }
  try {
    return { ok: true, bundle: bundleFromJSON(json) };
  } catch (error) {
    return { ok: false, reason: `not a valid Sigstore bundle: ${errorMessage(error)}` };
  }
}

function signerOfCertificate(bundle: Bundle): { identity?: string; issuer?: string } {
  const m = bundle.verificationMaterial.content;
  const der =
    m.$case === 'certificate' ? m.certificate.rawBytes : m.$case === 'x509CertificateChain' ? m.x509CertificateChain.certificates[0]?.rawBytes : undefined;
  return der ? certificateIdentity(der) : {};
}

function logIndexOf(bundle: Bundle): number | undefined {
  const entry = bundle.verificationMaterial.tlogEntries[0];
  return entry ? Number(entry.logIndex) : undefined;
}

/**
 * Verifies `bundleJson` (text, bytes or parsed JSON) offline. Never throws for a bad bundle, key or root: every
 * failure is `{ ok: false, code: 'signature', reason }` with a reason a person can act on.
 */
export async function verifySigstoreBundle(
  bundleJson: string | Uint8Array | object,
  options: KeyVerification | KeylessVerification,
): Promise<SignatureVerification> {
  const parsed = parseBundle(bundleJson);
  if (!parsed.ok) return fail(parsed.reason);
  const bundle = parsed.bundle;
  if (bundle.content.$case !== 'dsseEnvelope') return fail('the bundle signs a message, not a DSSE envelope over an in-toto statement');
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return fail(`the DSSE payload type is ${JSON.stringify(envelope.payloadType)}, expected ${JSON.stringify(IN_TOTO_PAYLOAD_TYPE)}`);
  }
  if (envelope.signatures.length !== 1) return fail(`the DSSE envelope has ${envelope.signatures.length} signatures, expected exactly 1`);
  const material = bundle.verificationMaterial.content.$case;

  let trust: TrustMaterial;
  let verifier: Verifier;
  let policy: { subjectAlternativeName: string; extensions: { issuer: string } } | undefined;
  let keyId = '';
  try {
    if ('publicKeyPem' in options) {
      if (material !== 'publicKey') return fail('the bundle is signed with a certificate (keyless), but a public key was given to verify it');
      const key = await loadPublicKey(options.publicKeyPem, { sourceName: 'public key' });
      keyId = key.keyId;
      const root = options.trustedRoot === undefined ? undefined : trustMaterialFromRoot(options.trustedRoot);
      if (!root && bundle.verificationMaterial.tlogEntries.length > 0) {
        return fail('the bundle carries a transparency-log entry, but no trusted root was given to check it against');
      }
      if (!root && (bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0) > 0) {
        return fail('the bundle carries a signed timestamp, but no trusted root was given to check it against');
      }
      trust = trustMaterialForKey(key.key, root);
      verifier = new Verifier(trust, { tlogThreshold: options.requireTransparencyLog ? 1 : 0, ctlogThreshold: 0, timestampThreshold: 0 });
    } else {
      if (material === 'publicKey') return fail('the bundle is signed with a bare key, but a certificate identity was expected (keyless)');
      if (!options.certificateIdentity || !options.certificateIssuer) return fail('keyless verification needs both the certificate identity and the issuer');
      trust = trustMaterialFromRoot(options.trustedRoot);
      verifier = new Verifier(trust, { tlogThreshold: 1, ctlogThreshold: 1, timestampThreshold: 1 });
      policy = {
        subjectAlternativeName: exactIdentityPattern(options.certificateIdentity),
        extensions: { issuer: options.certificateIssuer },
      };
    }
  } catch (error) {
    if (isAgoraError(error)) return fail(error.message);
    throw error;
  }

  let signer;
  try {
    signer = verifier.verify(toSignedEntity(bundle), policy);
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (policy && e.code === 'UNTRUSTED_SIGNER_ERROR') {
      // Say it with the literal values, not the escaped pattern handed to @sigstore/verify.
      const actual = signerOfCertificate(bundle);
      const o = options as KeylessVerification;
      if (actual.identity !== o.certificateIdentity) {
        return fail(`certificate identity is ${JSON.stringify(actual.identity)}, expected exactly ${JSON.stringify(o.certificateIdentity)}`);
      }
      if (actual.issuer !== o.certificateIssuer) {
        return fail(`certificate issuer is ${JSON.stringify(actual.issuer)}, expected exactly ${JSON.stringify(o.certificateIssuer)}`);
      }
    }
    return fail(`Sigstore verification failed: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}`);
  }

  // Belt and braces over the regex policy: the identity and issuer must be exactly the ones asked for.
  let verified: VerifiedSigner;
  const rekorLogIndex = logIndexOf(bundle);
  if (policy) {
    const identity = signer.identity?.subjectAlternativeName;
    const issuer = signer.identity?.extensions?.issuer;
    const o = options as KeylessVerification;
    if (identity !== o.certificateIdentity)
      return fail(`certificate identity is ${JSON.stringify(identity)}, expected exactly ${JSON.stringify(o.certificateIdentity)}`);
    if (issuer !== o.certificateIssuer) return fail(`certificate issuer is ${JSON.stringify(issuer)}, expected exactly ${JSON.stringify(o.certificateIssuer)}`);
    verified = { kind: 'keyless', identity, issuer, claim: 'tamper-evident', guarantee: 'external-immutable' };
  } else {
    // Any tlog entry present was verified against the trusted root (or verification failed above).
    const logged = rekorLogIndex !== undefined;
    verified = { kind: 'key', keyId, claim: logged ? 'tamper-evident' : 'tamper-detecting', guarantee: logged ? 'external-immutable' : 'signed' };
  }
  if (rekorLogIndex !== undefined) verified.rekorLogIndex = rekorLogIndex;

  // The signed bytes must be exactly the canonical statement: compared as bytes, never re-read and re-encoded.
  const expected = options.expected;
  const mismatch =
    'statement' in expected ? payloadMismatch(envelope.payload, expected.statement) : payloadDigestMismatch(envelope.payload, expected.statementSha256);
  if (mismatch) return fail(mismatch);
  if ('statement' in expected) return { ok: true, statement: expected.statement, signer: verified };
  const statement = parseStatement(envelope.payload);
  if (!statement.ok) return fail(statement.reason);
  return { ok: true, statement: statement.statement, signer: verified };
}
