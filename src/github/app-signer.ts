/**
 * The App's signer for audit bundles: a local key or keyless (Fulcio and Rekor), how a finish signs the
 * bundle's statement with it, what the gate checks that signature with, and the gate's line about it.
 */
import { loadPrivateKey } from '../audit/keys.js';
import { signKeyless, signWithKey, type SignedAudit } from '../audit/signers.js';
import type { InTotoStatement } from '../audit/statement.js';
import { type VerifyOptions } from '../audit/verify/options.js';
import { plainText } from './untrusted-markdown.js';

/**
 * The app's configured signer: a local ECDSA P-256 key (offline, self-hosted), or keyless (a Fulcio
 * certificate for an OIDC identity, e.g. GitHub Actions', logged in Rekor).
 */
export type AppSigner =
  | { kind: 'key'; privateKeyPem: string }
  | {
      kind: 'keyless';
      fulcioUrl: string;
      rekorUrl: string;
      tsaUrl?: string;
      /** A fresh OIDC token per signature (Actions tokens expire within minutes). */
      identityToken: () => Promise<string>;
      /** How Rekor records the DSSE envelope (default `dsse`; `intoto` for a log that stores entries verbatim). */
      rekorEntryType?: 'dsse' | 'intoto';
      /** A parsed trusted_root.json for the gate's verification (never fetched); unchecked without. */
      trustedRoot?: unknown;
      /** The exact certificate SAN and OIDC issuer the gate requires; unchecked without both. */
      certificateIdentity?: string;
      certificateIssuer?: string;
    };

/** The signature and what the gate can check it with, or why it cannot. */
export interface AppSignature {
  signed: SignedAudit;
  /** Trust for verifyBundle; null when the signature cannot be checked here (`unchecked` says why). */
  trust: Pick<VerifyOptions, 'publicKeyPem' | 'certificateIdentity' | 'certificateIssuer' | 'trustedRoot'> | null;
  unchecked?: string;
}

/** What the gate checks the app's signatures with, or why it cannot. */
export async function signerTrust(signer: AppSigner): Promise<Pick<AppSignature, 'trust' | 'unchecked'>> {
  if (signer.kind === 'key') return { trust: { publicKeyPem: (await appKey(signer)).publicKeyPem } };
  const missing = [
    signer.trustedRoot === undefined ? 'trusted root (AGORA_TRUSTED_ROOT)' : '',
    signer.certificateIdentity ? '' : 'expected identity (AGORA_CERT_IDENTITY)',
    signer.certificateIssuer ? '' : 'expected issuer (AGORA_CERT_ISSUER)',
  ].filter(Boolean);
  if (missing.length > 0) return { trust: null, unchecked: `the app has no ${missing.join(', ')}` };
  return {
    trust: {
      trustedRoot: signer.trustedRoot,
      certificateIdentity: signer.certificateIdentity as string,
      certificateIssuer: signer.certificateIssuer as string,
    },
  };
}

const appKey = (signer: AppSigner & { kind: 'key' }) => loadPrivateKey(signer.privateKeyPem, { sourceName: 'AGORA_SIGNING_KEY' });

export async function signAudit(signer: AppSigner, statement: InTotoStatement): Promise<AppSignature> {
  if (signer.kind === 'key') {
    const key = await appKey(signer);
    return { signed: await signWithKey(statement, { privateKeyPem: key.privateKeyPem }), trust: { publicKeyPem: key.publicKeyPem } };
  }
  const signed = await signKeyless(statement, {
    identityToken: await signer.identityToken(),
    fulcioUrl: signer.fulcioUrl,
    rekorUrl: signer.rekorUrl,
    ...(signer.tsaUrl ? { tsaUrl: signer.tsaUrl } : {}),
    ...(signer.rekorEntryType ? { rekorEntryType: signer.rekorEntryType } : {}),
  });
  return { signed, ...(await signerTrust(signer)) };
}

/** The gate summary's line about the signature. */
export function signatureLine(signer: AppSigner | undefined, sig: AppSignature | undefined, signError: string | undefined): string {
  if (!signer) return 'Not signed: the app has no signer (AGORA_SIGNING_KEY, or AGORA_SIGNER=keyless), so the claim rests on the anchor in this repository.';
  if (signError !== undefined || !sig)
    return `Not signed: the app's ${signer.kind === 'key' ? 'key' : 'keyless'} signer failed (${plainText(signError ?? 'unknown error')}).`;
  const rec = sig.signed.record;
  if (rec.kind === 'key') return `Signed with the app's key (key id \`${rec.keyId ?? '?'}\`).`;
  const who = `\`${rec.identity ?? '?'}\` (issuer \`${rec.issuer ?? '?'}\`), Rekor entry ${rec.rekorLogIndex ?? '?'} at ${rec.rekorUrl ?? '?'}`;
  return sig.trust
    ? `Signed keyless as ${who}; the signature was checked against the app's trusted root and expected identity.`
    : `Signed keyless as ${who}; the signature was **not checked**: ${sig.unchecked}.`;
}
