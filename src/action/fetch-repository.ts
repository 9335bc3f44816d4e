import { mkdir } from 'node:fs/promises';
import { GitCommandError, runGit } from '../git/git-cli.js';
import { openLocalStore, type LocalGitStore } from '../git/local-store.js';
import { mirrorPrefix } from '../git/refspec.js';
import type { RunRefs } from '../runs/refs.js';
import type { Oid } from '../git/types.js';

/** The job's token for git, as a header git never stores (not on a command line, not in a config file). */
function tokenConfig(token: string): { secretConfig: [string, string][]; secrets: string[] } {
  const header = `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
  return { secretConfig: [['http.extraheader', header]], secrets: [token] };
}

/** A new bare repository at `dir` holding what `what` names (refspecs or commit ids) fetched from `cloneUrl`. */
export async function fetchInto(o: { dir: string; cloneUrl: string; token: string; what: readonly string[]; hint: string }): Promise<LocalGitStore> {
  await mkdir(o.dir, { recursive: true });
  await runGit(['init', '-q', '--bare', o.dir]);
  await fetchMore(o);
  return openLocalStore(o.dir);
}

/** Fetches more into the bare repository at `dir`. */
export async function fetchMore(o: { dir: string; cloneUrl: string; token: string; what: readonly string[]; hint: string }): Promise<void> {
  await runGit(['fetch', '--quiet', '--no-tags', o.cloneUrl, ...o.what], { gitDir: o.dir, ...tokenConfig(o.token), hint: o.hint });
}

/**
 * A bare repository on the runner holding what verification reads: every ref under the Agora namespace
 * (runs, patches, integration, anchors) and the pull request's head and base commits with their history.
 * A pull_request checkout has none of it (it is the merge commit, and actions/checkout fetches no custom
 * refs), so the Action fetches it itself, with the job's token sent as a header git never stores.
 */
export function fetchForVerify(o: { dir: string; cloneUrl: string; token: string; refs: RunRefs; commits: readonly Oid[] }): Promise<LocalGitStore> {
  return fetchInto({
    ...o,
    what: [mirrorPrefix(o.refs.ns), ...o.commits],
    hint: 'the job token needs `contents: read` on this repository (permissions: contents: read)',
  });
}

/**
 * Creates `ref` on the remote pointing at `oid`, only if no such ref exists there: the push carries the
 * all-zero old id, so the server refuses it when another push created the ref first (a compare-and-swap
 * on the repository). Returns false when the ref already existed.
 */
export async function pushNewRef(o: { dir: string; cloneUrl: string; token: string; oid: Oid; ref: string }): Promise<boolean> {
  try {
    await runGit(['push', '--porcelain', '--no-verify', `--force-with-lease=${o.ref}:`, o.cloneUrl, `${o.oid}:${o.ref}`], {
      gitDir: o.dir,
      ...tokenConfig(o.token),
      hint: 'the worker job pushes its claim and result refs: give the job `permissions: contents: write`',
    });
    return true;
  } catch (e) {
    if (e instanceof GitCommandError && /stale info|\[rejected\]|already exists|fetch first/.test(`${e.stdout}${e.stderr}`)) return false;
    throw e;
  }
}
