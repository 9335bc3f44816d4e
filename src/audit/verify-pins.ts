import type { AuditBundle } from './bundle.js';

/**
 * What the verifier expects the bundle to be about. A genuine, signed bundle of another run (an old one, or
 * one of another plan) verifies on its own; pinned, it fails `pin` where a specific one is expected. Each
 * pin given is checked; what vouches for the pinned fields is the signature over the statement (they are
 * inside the signed bundle digest) or the repository (`--repo`), so pair pins with `--key` / an identity.
 */
export interface VerifyPins {
  /** The run id the bundle must be the audit of (`--run`). */
  runId?: string;
  /** The commit the run must have started on (`--plan-commit`): on GitHub the plan commit, locally the base. */
  planCommit?: string;
}

/** A full lower-case git commit id (SHA-1 or SHA-256). */
export const FULL_COMMIT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** The messages of the pins the bundle does not satisfy (empty: all hold, or none given). */
export function pinMismatches(bundle: Pick<AuditBundle, 'runId' | 'base'>, pins: VerifyPins | undefined): string[] {
  const out: string[] = [];
  if (pins?.runId !== undefined && bundle.runId !== pins.runId) {
    out.push(`the bundle is the audit of run ${bundle.runId}, but the verifier expects run ${pins.runId} (--run)`);
  }
  if (pins?.planCommit !== undefined && bundle.base !== pins.planCommit.toLowerCase()) {
    out.push(`the run started on commit ${bundle.base}, but the verifier expects plan commit ${pins.planCommit} (--plan-commit)`);
  }
  return out;
}
