import type { GitStore } from '../../git/types.js';
import type { RunRefs } from '../../runs/refs.js';
import type { Progress } from '../../progress.js';
import type { VerifyPins } from './pins.js';

/** What a verifier is given: the repository, the Sigstore bundle, what to trust and what to expect. */

export interface VerifyOptions {
  /** The repository the run lives in: enables the patch, scope, integration, chain, plan and anchor checks. */
  store?: GitStore;
  refs?: RunRefs;
  /** The Sigstore bundle (JSON text or parsed) over the bundle's statement. */
  sigstoreBundle?: string | object;
  /** Trust for a key-signed bundle: the signer's public key (SPKI PEM, or a path). */
  publicKeyPem?: string;
  /** Trust for a keyless bundle: the exact certificate identity and OIDC issuer, and a trusted root. */
  certificateIdentity?: string;
  certificateIssuer?: string;
  /** A trusted_root.json object (keyless; or a key-signed bundle with Rekor / TSA witnesses). */
  trustedRoot?: unknown;
  /**
   * Fail when the bundle records a signature but no Sigstore bundle is given to check it (default true).
   * A pin (`publicKeyPem`, `certificateIdentity`, `certificateIssuer`) requires a signature whatever this
   * says: the bundle's own `signature` field is outside the signed digest, so it cannot decide.
   */
  requireSignature?: boolean;
  /**
   * What the bundle must be about (run, plan commit, repository): each pin given is checked, failure code
   * `pin`. A pin nothing binds (no signer pin, and for run and plan commit no repository either) is refused
   * with AgoraError `verify-options` before anything is checked.
   */
  expect?: VerifyPins;
  /** Told how far the repository checks got (a large run's chain and patches take a while). */
  progress?: Progress;
}

/** What the verifier is pinned to, or null: a pin makes a valid signature over the bundle mandatory. */
export function signaturePin(opts: Pick<VerifyOptions, 'publicKeyPem' | 'certificateIdentity' | 'certificateIssuer'>): 'key' | 'identity' | null {
  if (opts.publicKeyPem !== undefined) return 'key';
  if (opts.certificateIdentity !== undefined || opts.certificateIssuer !== undefined) return 'identity';
  return null;
}
