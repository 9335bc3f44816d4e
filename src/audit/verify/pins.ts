import { AgoraError } from '../../errors.js';
import type { AuditBundle } from '../bundle.js';

/**
 * What the verifier expects the bundle to be about. A genuine, signed bundle of another run (an old one, or
 * one of another plan or repository) verifies on its own; pinned, it fails `pin` where a specific one is
 * expected. A pin is only as strong as what binds the field it reads: the signature over the statement (the
 * fields are inside the signed bundle digest, and `repository` is in the statement itself) or the repository
 * (`--repo` cross-checks `runId` and `base` with the stored run state). A pin nothing binds is refused
 * ({@link requireBoundPins}): an attacker who hands over the bundle could simply edit the field.
 */
export interface VerifyPins {
  /** The run id the bundle must be the audit of (`--run`). */
  runId?: string;
  /** The commit the run must have started on (`--plan-commit`): on GitHub the plan commit, locally the base. */
  planCommit?: string;
  /** The GitHub repository the run must have been made in, `owner/name` (`--repository`); case-insensitive. */
  repository?: string;
}

/**
 * A full git commit id as Agora writes it: 40 lower-case hex digits (SHA-1). Agora refuses SHA-256
 * repositories (`repo-unsupported`), and the audit format has no 64-digit form (docs/audit.md §1).
 */
export const FULL_COMMIT_ID = /^[0-9a-f]{40}$/;

/** What binds the pinned fields: a signer pin (key or certificate identity) and/or the repository. */
export interface PinBinding {
  signer: boolean;
  repo: boolean;
}

/**
 * Refuses pins that nothing binds (AgoraError `verify-options`, naming the pin and what it needs): `--run`
 * and `--plan-commit` need a signer pin or `--repo` (the stored run state holds the run id and base); `--repository`
 * needs a signer pin (only the signed statement holds the repository: a clone does not know its GitHub name).
 */
export function requireBoundPins(pins: VerifyPins | undefined, bound: PinBinding): void {
  if (!pins) return;
  if (pins.repository !== undefined && !bound.signer) {
    throw new AgoraError(
      'verify-options',
      '--repository pins nothing on its own: only the signed statement records the repository, and no signer is pinned, so whoever hands over the bundle could have edited it',
      'add --key PUB.pem (or --certificate-identity and --certificate-oidc-issuer) with the signer you trust',
    );
  }
  const unbound = [pins.runId !== undefined ? '--run' : '', pins.planCommit !== undefined ? '--plan-commit' : ''].filter(Boolean);
  if (unbound.length > 0 && !bound.signer && !bound.repo) {
    throw new AgoraError(
      'verify-options',
      `${unbound.join(' and ')} ${unbound.length > 1 ? 'pin' : 'pins'} nothing on its own: without a signer pin or the repository, the bundle's own run id and base are all it could be compared with, and they can be edited`,
      'add --key PUB.pem (or --certificate-identity and --certificate-oidc-issuer), or --repo DIR to check them against the run in the repository',
    );
  }
}

/** The messages of the pins the bundle does not satisfy (empty: all hold, or none given). */
export function pinMismatches(bundle: Pick<AuditBundle, 'runId' | 'base' | 'repository' | 'format'>, pins: VerifyPins | undefined): string[] {
  const out: string[] = [];
  if (pins?.runId !== undefined && bundle.runId !== pins.runId) {
    out.push(`the bundle is the audit of run ${bundle.runId}, but the verifier expects run ${pins.runId} (--run)`);
  }
  // Hex is compared as text (docs/audit.md §1): the CLI refuses a pin that is not 40 lower-case hex digits.
  if (pins?.planCommit !== undefined && bundle.base !== pins.planCommit) {
    out.push(`the run started on commit ${bundle.base}, but the verifier expects plan commit ${pins.planCommit} (--plan-commit)`);
  }
  if (pins?.repository !== undefined) {
    const recorded = bundle.repository?.fullName;
    if (recorded === undefined) {
      const why = bundle.format === 'agora.audit/v1' ? 'it is format agora.audit/v1, which predates recording it' : 'it was made by a local run';
      out.push(`the bundle records no repository (${why}), but the verifier expects ${pins.repository} (--repository)`);
    } else if (recorded.toLowerCase() !== pins.repository.toLowerCase()) {
      out.push(`the run was made in ${recorded} (repository id ${bundle.repository?.id}), but the verifier expects ${pins.repository} (--repository)`);
    }
  }
  return out;
}
