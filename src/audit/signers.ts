import { type KeyObject, sign as cryptoSign } from 'node:crypto';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import type * as SigstoreSign from '@sigstore/sign';
import type { Signer, Witness } from '@sigstore/sign';
import { AgoraError } from '../errors.js';
import { loadPrivateKey } from './keys.js';
import { certificateIdentity } from './trust.js';
import { IN_TOTO_PAYLOAD_TYPE, statementPayload, type InTotoStatement } from './statement.js';

/**
 * The two signers of the audit statement. Both produce a Sigstore bundle v0.3 holding a DSSE envelope over
 * the canonical statement:
 * - `signWithKey`: a local ECDSA P-256 key (offline, self-hosted); optionally witnessed by Rekor and/or a
 *   timestamp authority when their URLs are given.
 * - `signKeyless`: an ephemeral key certified by Fulcio for an OIDC identity (the GitHub Actions token),
 *   recorded in Rekor; optionally timestamped.
 */

/** What a signature can claim about the run's audit log. */
export type AuditClaim = 'tamper-detecting' | 'tamper-evident';
/**
 * How strong that claim is: `signed` (only the key holder could have produced the bundle, but they could
 * produce another one later), `external-immutable` (a transparency log outside the repository recorded it).
 */
export type AuditGuarantee = 'signed' | 'external-immutable';

/** A summary of a signature, for the audit bundle and for people. */
export interface SignatureRecord {
  kind: 'key' | 'keyless';
  /** Key signer: the key hint in the bundle (sha256 of the SPKI DER by default). */
  keyId?: string;
  /** Keyless signer: the certificate's subject alternative name (the workflow identity). */
  identity?: string;
  /** Keyless signer: the OIDC issuer recorded in the certificate. */
  issuer?: string;
  /** Index of the Rekor entry, when the signature was logged. */
  rekorLogIndex?: number;
  /** Base URL of the Rekor instance, when logged. */
  rekorUrl?: string;
  /** Base URL of the timestamp authority, when timestamped. */
  tsa?: string;
  claim: AuditClaim;
  guarantee: AuditGuarantee;
}

export interface SignedAudit {
  /** The Sigstore bundle, JSON-serialisable (`application/vnd.dev.sigstore.bundle.v0.3+json`). */
  bundle: SerializedBundle;
  record: SignatureRecord;
}

/** Network behaviour shared by both signers. */
export interface ServiceOptions {
  /**
   * Rekor entry type for the DSSE envelope: `dsse` (what current Rekor expects) or `intoto` (also accepted by
   * Rekor; stored in a form `@sigstore/mock`'s log reproduces faithfully). Default `dsse`.
   */
  rekorEntryType?: 'dsse' | 'intoto';
  /** Request timeout in ms (default: the client's). */
  timeoutMs?: number;
  /** Retries of a failed request (default: the client's). */
  retries?: number;
}

export interface KeySignOptions extends ServiceOptions {
  privateKeyPem: string;
  /** Key hint to put in the bundle (default: sha256 of the public key's SPKI DER, hex). */
  keyHint?: string;
  rekorUrl?: string;
  tsaUrl?: string;
}

export interface KeylessSignOptions extends ServiceOptions {
  /** An OIDC identity token Fulcio accepts (e.g. the GitHub Actions token with audience `sigstore`). */
  identityToken: string;
  fulcioUrl: string;
  rekorUrl: string;
  tsaUrl?: string;
}

/** A @sigstore/sign Signer backed by a node:crypto private key; the bundle carries only a key hint. */
class LocalKeySigner implements Signer {
  constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKeyPem: string,
    private readonly hint: string,
  ) {}

  async sign(data: Buffer) {
    return {
      signature: cryptoSign('sha256', data, this.privateKey),
      key: { $case: 'publicKey' as const, publicKey: this.publicKeyPem, hint: this.hint },
    };
  }
}

function fetchOptions(options: ServiceOptions): { timeout?: number; retry?: number } {
  const out: { timeout?: number; retry?: number } = {};
  if (options.timeoutMs !== undefined) out.timeout = options.timeoutMs;
  if (options.retries !== undefined) out.retry = options.retries;
  return out;
}

/**
 * @sigstore/sign, loaded by the first signature: it brings its HTTP stack (make-fetch-happen, cacache, …),
 * about a fifth of a second of every CLI start that signs nothing.
 */
async function sigstoreSign(): Promise<typeof SigstoreSign> {
  return import('@sigstore/sign');
}

function witnesses({ RekorWitness, TSAWitness }: typeof SigstoreSign, options: ServiceOptions & { rekorUrl?: string; tsaUrl?: string }): Witness[] {
  const out: Witness[] = [];
  if (options.rekorUrl) {
    out.push(
      new RekorWitness({
        rekorBaseURL: options.rekorUrl,
        entryType: options.rekorEntryType ?? 'dsse',
        fetchOnConflict: true,
        ...fetchOptions(options),
      }),
    );
  }
  if (options.tsaUrl) out.push(new TSAWitness({ tsaBaseURL: options.tsaUrl, ...fetchOptions(options) }));
  return out;
}

/** Turns a failure of Fulcio/Rekor/TSA into an AgoraError naming the services involved. */
function signingFailed(error: unknown, services: Array<[string, string | undefined]>): AgoraError {
  const named = services.filter(([, url]) => url).map(([name, url]) => `${name} ${url}`);
  const detail = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: unknown }).cause;
  const causeText = cause instanceof Error ? ` (${cause.message})` : '';
  return new AgoraError(
    'sign-failed',
    `signing the audit statement failed: ${detail}${causeText}`,
    named.length > 0 ? `Check that ${named.join(', ')} ${named.length === 1 ? 'is' : 'are'} reachable and accept the request.` : undefined,
    { cause: error },
  );
}

function logIndexOf(bundle: SerializedBundle): number | undefined {
  const entry = bundle.verificationMaterial.tlogEntries?.[0];
  return entry ? Number(entry.logIndex) : undefined;
}

async function build(
  { DSSEBundleBuilder }: typeof SigstoreSign,
  signer: Signer,
  ws: Witness[],
  statement: InTotoStatement,
  services: Array<[string, string | undefined]>,
): Promise<SerializedBundle> {
  const builder = new DSSEBundleBuilder({ signer, witnesses: ws });
  try {
    const bundle = await builder.create({ data: statementPayload(statement), type: IN_TOTO_PAYLOAD_TYPE });
    return bundleToJSON(bundle);
  } catch (error) {
    throw signingFailed(error, services);
  }
}

/** Signs `statement` with a local ECDSA P-256 key. */
export async function signWithKey(statement: InTotoStatement, options: KeySignOptions): Promise<SignedAudit> {
  if (!options.privateKeyPem.includes('-----BEGIN')) {
    throw new AgoraError(
      'key-invalid',
      'signing key: is not PEM; expected an ECDSA P-256 private key in PEM',
      'Load key files with loadPrivateKey/resolveSigningKey and pass the PEM text.',
    );
  }
  const key = await loadPrivateKey(options.privateKeyPem, { sourceName: 'signing key' });
  const hint = options.keyHint ?? key.keyId;
  const sign = await sigstoreSign();
  const bundle = await build(sign, new LocalKeySigner(key.key, key.publicKeyPem, hint), witnesses(sign, options), statement, [
    ['Rekor', options.rekorUrl],
    ['TSA', options.tsaUrl],
  ]);
  const rekorLogIndex = logIndexOf(bundle);
  const record: SignatureRecord = {
    kind: 'key',
    keyId: hint,
    claim: rekorLogIndex !== undefined ? 'tamper-evident' : 'tamper-detecting',
    guarantee: rekorLogIndex !== undefined ? 'external-immutable' : 'signed',
  };
  if (rekorLogIndex !== undefined) {
    record.rekorLogIndex = rekorLogIndex;
    record.rekorUrl = options.rekorUrl as string;
  }
  if (options.tsaUrl) record.tsa = options.tsaUrl;
  return { bundle, record };
}

/**
 * Signs `statement` keyless: Fulcio certifies an ephemeral key for the token's identity, Rekor logs the
 * signature. The result claims `tamper-evident` with guarantee `external-immutable`.
 */
export async function signKeyless(statement: InTotoStatement, options: KeylessSignOptions): Promise<SignedAudit> {
  if (!options.identityToken) {
    throw new AgoraError(
      'identity-token-missing',
      'keyless signing needs an OIDC identity token, and none was given',
      'In GitHub Actions grant `id-token: write` to the job; elsewhere use a local key instead.',
    );
  }
  const sign = await sigstoreSign();
  const signer = new sign.FulcioSigner({
    identityProvider: { getToken: async () => options.identityToken },
    fulcioBaseURL: options.fulcioUrl,
    ...fetchOptions(options),
  });
  const bundle = await build(sign, signer, witnesses(sign, options), statement, [
    ['Fulcio', options.fulcioUrl],
    ['Rekor', options.rekorUrl],
    ['TSA', options.tsaUrl],
  ]);
  const material = bundle.verificationMaterial;
  const certB64 = material.certificate?.rawBytes ?? material.x509CertificateChain?.certificates[0]?.rawBytes;
  const { identity, issuer } = certB64 ? certificateIdentity(Buffer.from(certB64, 'base64')) : {};
  const rekorLogIndex = logIndexOf(bundle);
  if (rekorLogIndex === undefined) throw signingFailed(new Error('Rekor returned no log entry'), [['Rekor', options.rekorUrl]]);
  const record: SignatureRecord = {
    kind: 'keyless',
    rekorLogIndex,
    rekorUrl: options.rekorUrl,
    claim: 'tamper-evident',
    guarantee: 'external-immutable',
  };
  if (identity !== undefined) record.identity = identity;
  if (issuer !== undefined) record.issuer = issuer;
  if (options.tsaUrl) record.tsa = options.tsaUrl;
  return { bundle, record };
}
