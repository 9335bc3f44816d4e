import type { KeyObject } from 'node:crypto';
import { X509Certificate } from '@sigstore/core';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import { z } from 'zod';
import { AgoraError, errorMessage } from '../errors.js';

/**
 * Explicit trust material for offline verification. A trusted root is always handed in by the caller (a
 * `trusted_root.json` the user pinned, or the test CA); nothing here ever fetches one from the network.
 */

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const validFor = z.object({ start: z.string().datetime({ offset: true }).optional(), end: z.string().datetime({ offset: true }).optional() });
const tlogSchema = z.object({
  baseUrl: z.string().optional().default(''),
  hashAlgorithm: z.string().optional(),
  publicKey: z.object({ rawBytes: base64, keyDetails: z.string().optional(), validFor: validFor.optional() }),
  logId: z.object({ keyId: base64 }),
  checkpointKeyId: z.object({ keyId: base64 }).optional(),
});
const caSchema = z.object({
  uri: z.string().optional(),
  certChain: z.object({ certificates: z.array(z.object({ rawBytes: base64 })).min(1) }),
  validFor: validFor.optional(),
});
/** The parts of `trusted_root.json` (Sigstore's TrustedRoot in protobuf JSON form) that verification uses. */
const trustedRootSchema = z.object({
  mediaType: z.string().startsWith('application/vnd.dev.sigstore.trustedroot'),
  tlogs: z.array(tlogSchema).default([]),
  certificateAuthorities: z.array(caSchema).default([]),
  ctlogs: z.array(tlogSchema).default([]),
  timestampAuthorities: z.array(caSchema).default([]),
});

/** The JSON shape of a `trusted_root.json` (what the test helper builds and users pin). */
export type TrustedRootJson = z.input<typeof trustedRootSchema>;

/** The decoded TrustedRoot message @sigstore/verify's `toTrustMaterial` reads. */
type TrustedRootMessage = Parameters<typeof toTrustMaterial>[0];

function period(v: z.infer<typeof validFor> | undefined): { start?: Date; end?: Date } | undefined {
  if (!v) return undefined;
  const out: { start?: Date; end?: Date } = {};
  if (v.start) out.start = new Date(v.start);
  if (v.end) out.end = new Date(v.end);
  return out;
}

function tlogMessage(t: z.infer<typeof tlogSchema>, where: string) {
  // Everything but PKCS#1 RSA is SubjectPublicKeyInfo DER, which is how toTrustMaterial reads a key whose
  // keyDetails it does not single out; RSA logs do not occur in Sigstore's roots and are refused here.
  if (t.publicKey.keyDetails && /RSA/.test(t.publicKey.keyDetails)) {
    throw new Error(`${where}: RSA log keys (${t.publicKey.keyDetails}) are not supported`);
  }
  return {
    baseUrl: t.baseUrl,
    hashAlgorithm: undefined,
    publicKey: { rawBytes: Buffer.from(t.publicKey.rawBytes, 'base64'), keyDetails: undefined, validFor: period(t.publicKey.validFor) },
    logId: { keyId: Buffer.from(t.logId.keyId, 'base64') },
    checkpointKeyId: t.checkpointKeyId ? { keyId: Buffer.from(t.checkpointKeyId.keyId, 'base64') } : undefined,
  };
}

function caMessage(ca: z.infer<typeof caSchema>) {
  return {
    uri: ca.uri ?? '',
    certChain: { certificates: ca.certChain.certificates.map((c) => ({ rawBytes: Buffer.from(c.rawBytes, 'base64') })) },
    validFor: period(ca.validFor),
  };
}

/** A key finder that knows no keys: certificate-based verification never asks for one. */
function noKeys(hint: string): never {
  throw new Error(`no public key is trusted (bundle names key ${JSON.stringify(hint)})`);
}

/**
 * Turns a `trusted_root.json` object into @sigstore/verify trust material. A malformed root is an AgoraError
 * `trust-root-invalid` naming `source` and the first problem.
 */
export function trustMaterialFromRoot(root: unknown, source = 'trusted root'): TrustMaterial {
  const parsed = trustedRootSchema.safeParse(root);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AgoraError(
      'trust-root-invalid',
      `${source}: not a Sigstore trusted root (${issue ? `${issue.path.join('.') || '$'}: ${issue.message}` : 'invalid'})`,
      'Pass a trusted_root.json (mediaType application/vnd.dev.sigstore.trustedroot+json), e.g. the one `cosign trusted-root create` or your Sigstore instance publishes.',
    );
  }
  try {
    const message = {
      mediaType: parsed.data.mediaType,
      certificateAuthorities: parsed.data.certificateAuthorities.map(caMessage),
      timestampAuthorities: parsed.data.timestampAuthorities.map(caMessage),
      tlogs: parsed.data.tlogs.map((t, i) => tlogMessage(t, `tlogs[${i}]`)),
      ctlogs: parsed.data.ctlogs.map((t, i) => tlogMessage(t, `ctlogs[${i}]`)),
    };
    // Parsed by @sigstore/verify itself, so the certificates are its own X509Certificate objects.
    return toTrustMaterial(message as unknown as TrustedRootMessage, noKeys);
  } catch (error) {
    throw new AgoraError('trust-root-invalid', `${source}: a key or certificate in it cannot be parsed (${errorMessage(error)})`);
  }
}

/**
 * Trust material for a bundle signed with a local key: exactly `publicKey`, whatever hint the bundle names
 * (the signature check decides), plus the logs and timestamp authorities of `root` when one is given.
 */
export function trustMaterialForKey(publicKey: KeyObject, root?: TrustMaterial): TrustMaterial {
  return {
    certificateAuthorities: [],
    ctlogs: [],
    tlogs: root?.tlogs ?? [],
    timestampAuthorities: root?.timestampAuthorities ?? [],
    publicKey: () => ({ publicKey, validFor: () => true }),
  };
}

const OID_FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const OID_FULCIO_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';

/** SAN and OIDC issuer of a Fulcio certificate (DER). */
export function certificateIdentity(der: Uint8Array): { identity?: string; issuer?: string } {
  const cert = X509Certificate.parse(Buffer.from(der));
  const v2 = cert.extension(OID_FULCIO_ISSUER_V2);
  // v2 wraps the issuer in a DER UTF8String; v1 holds the raw bytes.
  const issuer = v2 ? v2.valueObj.subs[0]?.value.toString('utf8') : cert.extension(OID_FULCIO_ISSUER_V1)?.value.toString('utf8');
  const out: { identity?: string; issuer?: string } = {};
  if (cert.subjectAltName !== undefined) out.identity = cert.subjectAltName;
  if (issuer !== undefined) out.issuer = issuer;
  return out;
}
