import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgoraError, errorMessage } from '../errors.js';
import { GitCommandError, runGit } from '../git/git-cli.js';
import { openLocalStore, type LocalGitStore } from '../git/local-store.js';
import { mirrorPrefix } from '../git/refspec.js';
import type { Oid } from '../git/types.js';
import { RemoteMirror, type RefUpdate } from '../github/remote-sync.js';

/**
 * `agora orch gc --remote <name|url>`: prunes a remote repository's runs (a GitHub repository the App
 * or the Action ran plans in) without a full clone. The remote's `refs/agora/*` are fetched into a
 * scratch bare repository, gc runs there exactly as it does locally, and what it changed is pushed back
 * in ONE atomic push where every ref carries a lease on the value fetched: if anything under
 * `refs/agora/` moved meanwhile (a Retry reopened a run, a replica renewed a lease), the remote refuses
 * the whole push and nothing is removed there. The anchor archive and the removals land together.
 */

export interface RemoteRuns {
  url: string;
  store: LocalGitStore;
  mirror: RemoteMirror;
  /** The values of the remote's refs under the namespace, as fetched. */
  fetched: Map<string, Oid>;
  close(): Promise<void>;
}

/** A remote URL as given, or the URL of the local repository's remote of that name. */
export async function remoteUrl(remote: string, gitDir: string): Promise<string> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(remote)) return stripCredentials(remote);
  try {
    return stripCredentials((await runGit(['remote', 'get-url', '--', remote], { gitDir })).trim());
  } catch {
    throw new AgoraError(
      'gc-remote',
      `--remote ${JSON.stringify(remote)} is neither a URL nor a remote of this repository`,
      'pass a remote name from `git remote -v` or an https URL',
    );
  }
}

function stripCredentials(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AgoraError(
      'gc-remote',
      `the remote ${JSON.stringify(url)} is not a URL gc can push to`,
      'use an https remote (gc pushes with a token in a header)',
    );
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AgoraError('gc-remote', `the remote ${url} uses ${parsed.protocol.slice(0, -1)}, not https`, "pass the repository's https URL with --remote");
  }
  if (parsed.username || parsed.password) {
    throw new AgoraError('gc-remote', 'the remote URL carries credentials', 'remove them from the URL and put a token in GITHUB_TOKEN instead');
  }
  return parsed.toString();
}

/** Fetches the remote's `<ns>*` refs into a scratch bare repository. */
export async function openRemoteRuns(url: string, token: string, ns: string): Promise<RemoteRuns> {
  const dir = await mkdtemp(join(tmpdir(), 'agora-gc-remote-'));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    const mirror = await RemoteMirror.open(join(dir, 'mirror.git'), url, async () => token);
    await mirror.fetchRefs([mirrorPrefix(ns)]);
    const store = await openLocalStore(mirror.dir);
    const fetched = new Map((await store.listRefs(ns)).map((r) => [r.ref, r.oid] as const));
    return { url, store, mirror, fetched, close };
  } catch (e) {
    await close();
    if (e instanceof AgoraError && !(e instanceof GitCommandError)) throw e;
    throw new AgoraError('gc-remote', `fetching ${ns}* from ${url} failed: ${errorMessage(e)}`, 'check the URL and that GITHUB_TOKEN may read the repository');
  }
}

/** The updates that make the remote's refs what gc left in the scratch repository, each leased on its fetched value. */
export function pruneUpdates(fetched: ReadonlyMap<string, Oid>, now: ReadonlyMap<string, Oid>): RefUpdate[] {
  const updates: RefUpdate[] = [];
  for (const [ref, was] of fetched) {
    const is = now.get(ref) ?? null;
    if (is !== was) updates.push({ ref, next: is, expected: was });
  }
  for (const [ref, is] of now) if (!fetched.has(ref)) updates.push({ ref, next: is, expected: null });
  return updates.sort((a, b) => (a.ref < b.ref ? -1 : 1));
}

/** Pushes what gc changed, atomically; a refusal or a moved ref leaves the remote as it was and says so. */
export async function pushPrune(runs: RemoteRuns, ns: string): Promise<number> {
  const now = new Map((await runs.store.listRefs(ns)).map((r) => [r.ref, r.oid] as const));
  const updates = pruneUpdates(runs.fetched, now);
  const pushed = await runs.mirror.pushRefs(updates);
  if (pushed.ok) return updates.length;
  if (pushed.refused) {
    throw new AgoraError(
      'gc-remote-refused',
      `${runs.url} refused the prune: ${pushed.refused}; nothing was removed there`,
      'use a token that may delete refs under refs/agora/ (contents: write) and that no ruleset blocks',
    );
  }
  throw new AgoraError(
    'gc-remote-moved',
    `${pushed.rejected.join(', ') || 'refs under ' + ns} changed on ${runs.url} while gc ran; nothing was removed there`,
    'run gc again: it fetches the current refs and prunes what is still due',
  );
}
