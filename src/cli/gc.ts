import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../audit/atomic-write.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import { AgoraError } from '../errors.js';
import { collectGarbage, type KeepOutcome } from '../runs/gc.js';
import { openContext, type GlobalOptions } from './context.js';
import type { Output } from './orch.js';

/**
 * `agora orch gc --older-than <age>`: prunes the refs of runs that finished before the cut-off (see
 * src/runs/gc.ts for what goes and what stays), after writing each run's audit bundle to `--bundle-dir`,
 * or, with `--discard-bundles`, after anchoring its root only. Prints the report as JSON.
 */

export interface GcVerbOptions extends GlobalOptions {
  olderThan: string;
  bundleDir?: string;
  discardBundles?: boolean;
  dryRun?: boolean;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `90m`, `45s`, `2w` → milliseconds. */
export function parseAge(text: string): number {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!m) {
    throw new AgoraError('gc-options', `--older-than ${JSON.stringify(text)} is not an age`, 'write a whole number and a unit: s, m, h, d or w (for example 30d)');
  }
  return Number(m[1]) * UNIT_MS[m[2] as string]!;
}

export async function gcVerb(o: GcVerbOptions, io: Output, now: number = Date.now()): Promise<number> {
  const age = parseAge(o.olderThan);
  if (Boolean(o.bundleDir) === Boolean(o.discardBundles)) {
    throw new AgoraError(
      'gc-options',
      o.bundleDir ? '--bundle-dir and --discard-bundles do not go together' : 'gc removes runs from the repository: say where their audit bundles go',
      'pass --bundle-dir <dir> to keep each pruned run\'s bundle there, or --discard-bundles to keep only the anchored root in the repository',
    );
  }
  const ctx = await openContext(o);
  const dir = o.bundleDir ? resolve(process.cwd(), o.bundleDir) : undefined;
  if (dir && !o.dryRun) await mkdir(dir, { recursive: true });
  const keepBundle = async (runId: string): Promise<KeepOutcome> => {
    const bundle = await buildAuditBundle(ctx.store, ctx.refs, runId, { anchor: !o.dryRun, now });
    if (!bundle.report.intact) {
      const codes = [...new Set(bundle.report.failures.map((f) => f.code))].join(', ');
      return { kept: false, why: `its audit is not intact (${codes}): run \`agora orch audit ${runId}\` to see why; a run whose evidence is in question is kept` };
    }
    if (!dir) return { kept: true, where: `anchored root ${bundle.root} only` };
    const path = join(dir, `${runId}.audit.json`);
    const existing = await readFile(path, 'utf8').catch(() => null);
    if (existing !== null) {
      const root = (JSON.parse(existing) as { root?: unknown }).root;
      if (root === bundle.root) return { kept: true, where: path };
      return { kept: false, why: `${path} already holds a bundle with another root (${String(root)}); move it away and run gc again` };
    }
    if (!o.dryRun) await writeFileAtomic(path, `${JSON.stringify(bundle, null, 2)}\n`);
    return { kept: true, where: path };
  };
  const report = await collectGarbage(ctx.store, ctx.refs, { before: now - age, now, keepBundle, ...(o.dryRun ? { dryRun: true } : {}) });
  io.out(JSON.stringify(report, null, 2));
  const verb = o.dryRun ? 'would prune' : 'pruned';
  io.err(
    `agora: ${verb} ${report.pruned.length} run${report.pruned.length === 1 ? '' : 's'} and ${report.rejections.length} rejection${report.rejections.length === 1 ? '' : 's'}` +
      (report.skipped.length ? `; kept ${report.skipped.length} (see "skipped")` : ''),
  );
  return report.skipped.length > 0 ? 1 : 0;
}
