import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { checkOutFile, writeOutFile, type OutFile } from './out-file.js';
import type { Output } from './output.js';

/**
 * The files `agora orch audit` writes: the bundle (`--out`; `<run>.audit.json` when signing without one)
 * and, when signed, its Sigstore bundle beside it. Both paths are checked before anything is written (the
 * anchor, a signature, either file), so a refused `--out` leaves nothing behind.
 */

export interface AuditOut {
  bundle: OutFile;
  /** The Sigstore bundle's file, when the bundle is signed. */
  sigstore?: OutFile;
}

const EXAMPLE = 'audits/run.audit.json';

/** `<out>.json` → `<out>.sigstore.json`. */
export function sigstorePathFor(bundlePath: string): string {
  return `${bundlePath.replace(/\.json$/, '')}.sigstore.json`;
}

/** Where the audit of `runId` goes; undefined when the bundle is printed instead. */
export function auditOutFor(runId: string, out: string | undefined, signing: boolean): AuditOut | undefined {
  const given = out ?? (signing ? `${runId}.audit.json` : undefined);
  if (given === undefined) return undefined;
  const path = resolve(process.cwd(), given);
  const bundle: OutFile = { path, code: 'audit-out', example: EXAMPLE };
  return signing ? { bundle, sigstore: { path: sigstorePathFor(path), code: 'audit-out', example: EXAMPLE } } : { bundle };
}

/** Refuses, writing nothing, a bundle path or Sigstore path that cannot be written. */
export async function checkAuditOut(out: AuditOut): Promise<void> {
  await checkOutFile(out.bundle);
  if (out.sigstore) await checkOutFile(out.sigstore);
}

/**
 * Writes the Sigstore bundle (when given) and then the bundle; if the bundle cannot be written after all,
 * the Sigstore bundle just written is removed again, so no signature is left without its bundle.
 */
export async function writeAuditOut(out: AuditOut, bundleText: string, sigstoreText: string | undefined, io: Output): Promise<void> {
  await checkAuditOut(out);
  const sigstore = sigstoreText !== undefined ? out.sigstore : undefined;
  if (sigstore) await writeOutFile(sigstore, sigstoreText as string);
  try {
    await writeOutFile(out.bundle, bundleText);
  } catch (e) {
    if (sigstore) await rm(sigstore.path, { force: true });
    throw e;
  }
  if (sigstore) io.err(`wrote ${sigstore.path}`);
  io.err(`wrote ${out.bundle.path}`);
}
