import { mkdir } from 'node:fs/promises';
import { runGit } from '../git/git-cli.js';
import { openLocalStore, type LocalGitStore } from '../git/local-store.js';
import { mirrorPrefix } from '../git/refspec.js';
import type { RunRefs } from '../runs/refs.js';
import type { Oid } from '../git/types.js';

/**
 * A bare repository on the runner holding what verification reads: every ref under the Agora namespace
 * (runs, patches, integration, anchors) and the pull request's head and base commits with their history.
 * A pull_request checkout has none of it (it is the merge commit, and actions/checkout fetches no custom
 * refs), so the Action fetches it itself, with the job's token sent as a header git never stores.
 */
export async function fetchForVerify(o: { dir: string; cloneUrl: string; token: string; refs: RunRefs; commits: readonly Oid[] }): Promise<LocalGitStore> {
  await mkdir(o.dir, { recursive: true });
  await runGit(['init', '-q', '--bare', o.dir]);
  const header = `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${o.token}`).toString('base64')}`;
  await runGit(['fetch', '--quiet', '--no-tags', o.cloneUrl, mirrorPrefix(o.refs.ns), ...o.commits], {
    gitDir: o.dir,
    secretConfig: [['http.extraheader', header]],
    secrets: [o.token],
    hint: 'the job token needs `contents: read` on this repository (permissions: contents: read)',
  });
  return openLocalStore(o.dir);
}
