import type { AuditBundle } from '../bundle.js';
import type { InTotoStatement } from '../statement.js';
import { verifySigstoreBundle, type VerifiedSigner } from '../verify-signature.js';
import type { Failures } from './failures.js';
import { signaturePin, type VerifyOptions } from './options.js';

/**
 * Step "signature": with a key or identity pin, a Sigstore bundle by exactly that signer whose DSSE payload is
 * byte for byte the statement the statement step rebuilt; a pin without a Sigstore bundle, a Sigstore bundle
 * without a pin, or a recorded signature without a Sigstore bundle (unless not required) fail `signature`.
 * Returns the verified signer (it decides the claim), or null.
 */

export async function checkSignature(bundle: AuditBundle, statement: InTotoStatement | null, opts: VerifyOptions, f: Failures): Promise<VerifiedSigner | null> {
  if (opts.sigstoreBundle === undefined) {
    const pin = signaturePin(opts);
    if (pin) {
      f.add(
        'signature',
        `a signature is required: the verifier is pinned to ${pin === 'key' ? 'a public key' : 'a certificate identity and issuer'}, but no Sigstore bundle was given; ` +
          'pass the .sigstore.json that `agora orch audit --sign` wrote (agora verify --sigstore FILE; by default <bundle>.sigstore.json next to the bundle)',
      );
    } else if (bundle.signature && opts.requireSignature !== false) {
      f.add('signature', `the bundle records a ${bundle.signature.kind} signature, but no Sigstore bundle was given to check it`);
    }
    return null;
  }
  if (!statement) return null; // the statement step reported why it cannot be built
  const expected = { statement };
  let result;
  if (opts.publicKeyPem !== undefined) {
    result = await verifySigstoreBundle(opts.sigstoreBundle, {
      expected,
      publicKeyPem: opts.publicKeyPem,
      ...(opts.trustedRoot === undefined ? {} : { trustedRoot: opts.trustedRoot }),
    });
  } else if (opts.certificateIdentity !== undefined || opts.certificateIssuer !== undefined) {
    if (!opts.certificateIdentity || !opts.certificateIssuer || opts.trustedRoot === undefined) {
      f.add('signature', 'keyless verification needs the certificate identity, the OIDC issuer and a trusted root');
      return null;
    }
    result = await verifySigstoreBundle(opts.sigstoreBundle, {
      expected,
      certificateIdentity: opts.certificateIdentity,
      certificateIssuer: opts.certificateIssuer,
      trustedRoot: opts.trustedRoot,
    });
  } else {
    f.add('signature', 'a Sigstore bundle was given but nothing to trust: pass the public key, or the certificate identity, issuer and trusted root');
    return null;
  }
  if (!result.ok) {
    f.add('signature', result.reason);
    return null;
  }
  const rec = bundle.signature;
  if (rec && rec.kind !== result.signer.kind) {
    f.add('signature', `the bundle records a ${rec.kind} signature, but the Sigstore bundle is ${result.signer.kind}-signed`);
  }
  return result.signer;
}
