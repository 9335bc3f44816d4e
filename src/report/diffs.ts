import { commitChanges } from '../git/tree-diff.js';
import { gitCliAvailable, runGit } from '../git/git-cli.js';
import type { GitStore, Oid } from '../git/types.js';

/**
 * The unified diff of each patch commit against its parent (the base it ran on), for the report. One
 * `git show` for all of them: a process per patch would cost a fork each (60–140 ms here). Every setting
 * by which the repository could run a program or change the text (external diff, textconv, signature
 * checks, colour, prefixes, renames) is fixed on the command line. Without the git CLI the changed paths
 * are listed instead.
 */

/** Marks the start of each commit's output; a diff line never starts with NUL. */
const MARK = '\u0000agora-patch ';

export async function patchDiffs(store: GitStore, commits: readonly Oid[]): Promise<Map<Oid, string>> {
  const out = new Map<Oid, string>();
  if (commits.length === 0) return out;
  if (!(await gitCliAvailable())) {
    for (const c of commits) out.set(c, await changedPathsText(store, c));
    return out;
  }
  const text = await runGit(
    [
      'show',
      '--no-walk=unsorted',
      `--format=format:%x00agora-patch %H`,
      '--patch',
      '--no-ext-diff',
      '--no-textconv',
      '--no-color',
      '--no-renames',
      '--no-show-signature',
      '--no-notes',
      '--src-prefix=a/',
      '--dst-prefix=b/',
      ...commits,
      '--',
    ],
    { gitDir: store.gitdir },
  );
  for (const chunk of text.split(MARK).slice(1)) {
    const newline = chunk.indexOf('\n');
    const commit = newline < 0 ? chunk : chunk.slice(0, newline);
    out.set(
      commit,
      newline < 0
        ? ''
        : chunk
            .slice(newline + 1)
            .replace(/^\n/, '')
            .replace(/\n+$/, ''),
    );
  }
  return out;
}

async function changedPathsText(store: GitStore, commit: Oid): Promise<string> {
  const changes = await commitChanges(store, commit);
  const lines = changes.map((c) => `${c.before === null ? 'added' : c.after === null ? 'deleted' : 'modified'} ${c.path}`);
  return ['(no git CLI here: changed paths only)', ...lines].join('\n');
}
