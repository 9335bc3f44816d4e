import type { AuditEntry } from '../../log/entry.js';
import { isTerminalRun, type AuditBundle, type AuditReport } from '../bundle.js';
import type { VerifiedSigner } from '../verify-signature.js';
import { ChainStep } from './chain.js';
import { Failures } from './failures.js';
import { signaturePin, type VerifyOptions } from './options.js';
import { checkParamsDigest } from './params.js';
import { pinMismatches, requireBoundPins } from './pins.js';
import { compareSummary, ReplayStep } from './replay.js';
import { checkRepository } from './repository.js';
import { RootStep } from './root.js';
import { checkSignature } from './signature.js';
import { expectedStatement } from './statement.js';

/**
 * Verification of an audit bundle, as a pipeline of named steps (docs/audit.md, "Verification"):
 *
 *   parse (parse.ts, before this: the file is a bundle of a known version)
 *   → pins (what the verifier expects the bundle to be about)
 *   → chain → root → replay (one pass over the entries, each step fed entry by entry) → params (digest)
 *   → statement (rebuilt from the bundle) → signature (compared as bytes, by the pinned signer)
 *   → repository (with `--repo`: run ref, plan, params, run state, patches, integration, anchor)
 *
 * Each step adds failures with stable codes; none stops the others. The report's claim follows from what
 * passed. The bundle's own `report` is never read.
 */
export async function verifyBundle(bundle: AuditBundle, opts: VerifyOptions = {}): Promise<AuditReport> {
  requireBoundPins(opts.expect, { signer: signaturePin(opts) !== null, repo: Boolean(opts.store && opts.refs) });
  const f = new Failures();
  for (const message of pinMismatches(bundle, opts.expect)) f.add('pin', message);

  const entries: readonly AuditEntry[] = Array.isArray(bundle.entries) ? bundle.entries : [];
  const chain = new ChainStep(bundle.runId, f);
  const root = new RootStep();
  const withRepository = Boolean(opts.store && opts.refs);
  const replay = new ReplayStep(bundle, f, withRepository);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AuditEntry;
    chain.push(e, i);
    root.push(e);
    replay.push(e, i);
  }
  root.finish(bundle.root, f);
  const replayed = replay.finish();
  compareSummary(bundle, replayed.items, replayed.runStatus, f);
  checkParamsDigest(bundle, f);
  const terminal = isTerminalRun(bundle);
  if (!terminal) f.add('not-terminal', `run ${bundle.runId} is ${bundle.state}: the audit covers the log so far; it is not anchored until the run ends`);

  // The statement is rebuilt only when there is a signature to compare it with (it hashes the whole bundle).
  const statement = opts.sigstoreBundle === undefined ? null : expectedStatement(bundle, f);
  const signer = await checkSignature(bundle, statement, opts, f);

  const anchorVerified =
    withRepository && opts.store && opts.refs ? await checkRepository(bundle, entries, replayed, opts.store, opts.refs, terminal, f, opts.progress) : false;

  const failures = f.finish();
  return { ...claimOf(failures, signer, anchorVerified), terminal, failures };
}

/** `intact` (no failure but `not-terminal`) and what backs it: a witnessed signature, the anchor, a key. */
function claimOf(
  failures: readonly { code: string }[],
  signer: VerifiedSigner | null,
  anchorVerified: boolean,
): Pick<AuditReport, 'intact' | 'claim' | 'guarantee'> {
  const intact = failures.every((x) => x.code === 'not-terminal');
  if (!intact) return { intact, claim: 'none', guarantee: 'none' };
  if (signer?.guarantee === 'external-immutable') return { intact, claim: 'tamper-evident', guarantee: 'external-immutable' };
  if (anchorVerified) return { intact, claim: 'tamper-detecting', guarantee: 'same-repository' };
  if (signer) return { intact, claim: 'tamper-detecting', guarantee: 'signed' };
  return { intact, claim: 'none', guarantee: 'none' };
}
