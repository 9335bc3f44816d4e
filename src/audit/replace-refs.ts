import type { GitStore } from '../git/types.js';

/**
 * `refs/replace/*` makes plain `git` show another object wherever the replaced one is named: a worker
 * that ran `git replace <integration head> <evil>` (issue 11) made `git merge` check out the evil tree
 * while the audit said intact. Agora reads nothing through them — isomorphic-git ignores replace refs,
 * and every git command Agora runs sets GIT_NO_REPLACE_OBJECTS=1 (`orch run --apply` included) — so
 * their presence cannot change what is audited or applied, and is a note, not a verification failure.
 * But a person's `git log` or `git checkout` in that repository does honour them, so `orch audit` and
 * `verify --repo` name every one.
 */
export async function replaceRefsNote(store: Pick<GitStore, 'listRefs'>): Promise<string | null> {
  const refs = await store.listRefs('refs/replace/');
  if (refs.length === 0) return null;
  const shown = refs.slice(0, 10).map((r) => `${r.ref} → ${r.oid}`);
  if (refs.length > shown.length) shown.push(`and ${refs.length - shown.length} more`);
  return (
    `note: this repository has ${refs.length} replace ref${refs.length === 1 ? '' : 's'} (${shown.join(', ')}). ` +
    'Agora ignores them (it reads objects as stored, and runs git with GIT_NO_REPLACE_OBJECTS=1), but plain git ' +
    'commands show the replacement instead of the audited object: list them with `git replace -l`, remove one with `git replace -d <object>`'
  );
}
