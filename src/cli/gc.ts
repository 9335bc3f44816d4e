import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import type { AuditBundle } from '../audit/bundle.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import { AgoraError, errorMessage } from '../errors.js';
import { describeDirectoryProblem, makeDirectory, missingDirectories, type RefuseDirectory } from '../make-directory.js';
import { collectGarbage, type KeepOutcome } from '../runs/gc.js';
import { removeSecretStore } from '../runs/params.js';
import { openContext, type GlobalOptions } from './context.js';
import { progressLine } from './progress-line.js';
import { releaseBundles } from './gc-release.js';
import { openRemoteRuns, pushPrune, remoteUrl, type RemoteRuns } from './gc-remote.js';
import type { Output } from './output.js';

/**
 * `agora orch gc --older-than <age>`: prunes the refs of runs that finished before the cut-off (see
 * src/runs/gc.ts for what goes and what stays), after writing each run's audit bundle to `--bundle-dir`,
 * or, with `--discard-bundles`, after anchoring its root only. Prints the report as JSON.
 */

export interface GcVerbOptions extends GlobalOptions {
  olderThan: string;
  bundleDir?: string;
  discardBundles?: boolean;
  /** Keep a run only when its bundle is in the release the App published (with `--remote`). */
  bundlesInReleases?: boolean;
  /** Prune this remote's runs (a remote name or an https URL) instead of the local repository's. */
  remote?: string;
  dryRun?: boolean;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `90m`, `45s`, `2w` → milliseconds. */
export function parseAge(text: string): number {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!m) {
    throw new AgoraError(
      'gc-options',
      `--older-than ${JSON.stringify(text)} is not an age`,
      'write a whole number and a unit: s, m, h, d or w (for example 30d)',
    );
  }
  return Number(m[1]) * UNIT_MS[m[2] as string]!;
}

function checkOptions(o: GcVerbOptions): void {
  if (o.bundleDir === '')
    throw new AgoraError('gc-options', '--bundle-dir is empty', "pass the directory each pruned run's bundle goes to, e.g. --bundle-dir audits");
  const ways = [o.bundleDir !== undefined, Boolean(o.discardBundles), Boolean(o.bundlesInReleases)].filter(Boolean).length;
  if (ways !== 1) {
    throw new AgoraError(
      'gc-options',
      ways === 0
        ? 'gc removes runs from the repository: say where their audit bundles go'
        : 'give one of --bundle-dir, --discard-bundles and --bundles-in-releases',
      "pass --bundle-dir <dir> to keep each pruned run's bundle there, --bundles-in-releases (with --remote) to prune only runs whose bundle GitHub holds as a release asset, or --discard-bundles to keep only the anchored root",
    );
  }
  if (o.bundlesInReleases && !o.remote) {
    throw new AgoraError(
      'gc-options',
      '--bundles-in-releases needs --remote',
      'name the GitHub repository whose releases hold the bundles: --remote origin (or its https URL)',
    );
  }
}

/** The refusal of a `--bundle-dir` that cannot be a directory, naming the path at fault. */
function refuseBundleDir(dir: string): RefuseDirectory {
  return (p) =>
    new AgoraError('bundle-dir', `--bundle-dir ${dir} ${describeDirectoryProblem(dir, p)}`, 'pass a directory, or a path where one can be created', {
      cause: p.cause,
    });
}

export async function gcVerb(o: GcVerbOptions, io: Output, now: number = Date.now(), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const age = parseAge(o.olderThan);
  checkOptions(o);
  const dir = o.bundleDir !== undefined ? resolve(process.cwd(), o.bundleDir) : undefined;
  if (dir) await missingDirectories(dir, refuseBundleDir(dir)); // before anything is read or written
  const ctx = await openContext(o);
  let remote: RemoteRuns | undefined;
  const token = env.GITHUB_TOKEN ?? env.GH_TOKEN;
  if (o.remote) {
    const url = await remoteUrl(o.remote, ctx.store.gitdir);
    if (!token)
      throw new AgoraError(
        'gc-remote',
        `pruning ${url} needs a token`,
        'set GITHUB_TOKEN to a token that may read and delete refs under refs/agora/ (contents: write)',
      );
    remote = await openRemoteRuns(url, token, ctx.refs.ns);
  }
  try {
    const store = remote?.store ?? ctx.store;
    const releases = o.bundlesInReleases && remote ? releaseBundles(remote.url, token ?? '', env) : undefined;
    if (dir && !o.dryRun) await makeDirectory(dir, refuseBundleDir(dir));
    const keepBundle = async (runId: string): Promise<KeepOutcome> => {
      const bundle = await buildAuditBundle(store, ctx.refs, runId, { anchor: !o.dryRun, now });
      if (!bundle.report.intact) {
        const codes = [...new Set(bundle.report.failures.map((f) => f.code))].join(', ');
        return {
          kept: false,
          why: `its audit is not intact (${codes}): run \`agora orch audit ${runId}\` to see why; a run whose evidence is in question is kept`,
        };
      }
      if (releases) return releases.has(runId, bundle);
      if (!dir) return { kept: true, where: `anchored root ${bundle.root} only` };
      return keepInDir(dir, runId, bundle, Boolean(o.dryRun));
    };
    const progress = progressLine();
    // A run's secret parameters are kept on the host that submitted it (this one, for a local repository).
    const removeSecretParams = remote ? undefined : (token: string, runId: string) => removeSecretStore(ctx.scratchDir, token, runId);
    const report = await collectGarbage(store, ctx.refs, {
      before: now - age,
      now,
      keepBundle,
      progress,
      ...(o.dryRun ? { dryRun: true } : {}),
      ...(removeSecretParams ? { removeSecretParams } : {}),
    }).finally(() => progress.clear());
    const pushed = remote && !o.dryRun ? await pushPrune(remote, ctx.refs.ns) : undefined;
    io.out(JSON.stringify(pushed === undefined ? report : { ...report, remote: { url: remote!.url, refsUpdated: pushed } }, null, 2));
    const verb = o.dryRun ? 'would prune' : 'pruned';
    io.err(
      `agora: ${verb} ${report.pruned.length} run${report.pruned.length === 1 ? '' : 's'} and ${report.rejections.length} rejection${report.rejections.length === 1 ? '' : 's'}` +
        (remote ? ` on ${remote.url}` : '') +
        (report.skipped.length ? `; kept ${report.skipped.length} (see "skipped")` : '') +
        (report.claims.problem ? `; their entries stay in ${ctx.refs.claims} (see "claims")` : ''),
    );
    return report.skipped.length > 0 || report.claims.problem ? 1 : 0;
  } finally {
    await remote?.close();
  }
}

/**
 * Writes the run's bundle into `dir`, or finds it there already. Whatever stands in the way (a directory
 * or a file that is no bundle under the name, a write the file system refuses) keeps the run, saying why.
 */
async function keepInDir(dir: string, runId: string, bundle: AuditBundle, dryRun: boolean): Promise<KeepOutcome> {
  const path = join(dir, `${runId}.audit.json`);
  const moveAway = 'move it away and run gc again';
  const existing = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => e);
  if (typeof existing === 'string') {
    let root: unknown;
    try {
      root = (JSON.parse(existing) as { root?: unknown } | null)?.root;
    } catch {
      return { kept: false, why: `${path} already holds something that is not an audit bundle (not JSON); ${moveAway}` };
    }
    if (root === bundle.root) return { kept: true, where: path };
    return { kept: false, why: `${path} already holds a bundle with another root (${String(root)}); ${moveAway}` };
  }
  if (existing.code !== 'ENOENT') {
    const what = existing.code === 'EISDIR' ? 'is a directory' : `cannot be read (${existing.code ?? existing.message})`;
    return { kept: false, why: `${path} ${what}; ${moveAway}` };
  }
  if (!dryRun) {
    try {
      await writeFileAtomic(path, `${JSON.stringify(bundle, null, 2)}\n`);
    } catch (e) {
      return { kept: false, why: `${path} cannot be written (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}); the run stays` };
    }
  }
  return { kept: true, where: path };
}
