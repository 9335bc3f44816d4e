import { secretsIn } from '../executors/secret-scan.js';
import type { TreeChange } from '../git/tree-diff.js';
import type { GitStore } from '../git/types.js';

/**
 * A patch must not carry a secret the worker was given: a patch commit is kept in refs, pushed to GitHub
 * and named in the audit bundle, where redaction cannot reach. Before the patch commit is written, every
 * path the worker added or changed, and the content of every file it wrote, is looked through for each
 * of its secrets in every form the redactor knows. A hit fails the item; the reason names the secret,
 * never its value. (The objects the capture wrote stay unreferenced in the local object store until git
 * prunes them: no ref, state, bundle or push carries them; docs/security.md.)
 */

export interface SecretInPatch {
  /** The secret's name (the environment variable), never its value. */
  secret: string;
  /** The path whose name or content holds it. */
  path: string;
}

/** Every (secret, path) where a changed path's name or written content holds a secret's value. */
export async function secretsInPatch(store: GitStore, changes: readonly TreeChange[], secrets: Readonly<Record<string, string>>): Promise<SecretInPatch[]> {
  if (Object.keys(secrets).length === 0) return [];
  const found: SecretInPatch[] = [];
  for (const change of changes) {
    const names = new Set(secretsIn(change.path, secrets));
    // A file or a symlink (its target is its content); a gitlink names a commit, not content.
    if (change.after && change.after.mode !== '160000' && change.after.mode !== '040000') {
      for (const name of secretsIn(await store.readBlob(change.after.oid), secrets)) names.add(name);
    }
    for (const secret of [...names].sort()) found.push({ secret, path: change.path });
  }
  return found;
}

/** The item's reason: which secrets, in which paths (paths pass the same redaction as every reason). */
export function secretInPatchReason(found: readonly SecretInPatch[]): string {
  const secrets = [...new Set(found.map((f) => f.secret))];
  const paths = [...new Set(found.map((f) => f.path))];
  const shown = paths.slice(0, 5).join(', ') + (paths.length > 5 ? `, … (${paths.length} in all)` : '');
  return (
    `wrote the value of secret${secrets.length === 1 ? '' : 's'} ${secrets.join(', ')} into its workspace (${shown}), so its patch was not kept; ` +
    'a patch is stored, pushed and audited, and must not carry a secret: keep secrets out of the files an item changes (write them to a path .gitignore excludes, or outside the workspace)'
  );
}

/** Every string in a JSON value (object keys too, and numbers as JSON writes them), depth first. */
function stringsOf(value: unknown, out: string[]): string[] {
  if (typeof value === 'string') out.push(value);
  else if (typeof value === 'number') out.push(JSON.stringify(value));
  else if (Array.isArray(value)) for (const v of value) stringsOf(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      stringsOf(v, out);
    }
  }
  return out;
}

/**
 * The secrets (by name) whose value an item's output holds, in any form the redactor knows: the output
 * goes into the patch commit (its `Agora-Output` trailer), which is kept, pushed and read by dependent
 * items as it is. Each string (and number) is looked through as it is, not as JSON escapes it; NUL, which
 * no secret form holds, stands between two strings.
 */
export function secretsInOutput(output: unknown, secrets: Readonly<Record<string, string>>): string[] {
  if (output === undefined || Object.keys(secrets).length === 0) return [];
  return secretsIn(stringsOf(output, []).join('\0'), secrets).sort();
}

/** The item's reason when its output holds a secret: which ones, never their values. */
export function secretInOutputReason(secrets: readonly string[]): string {
  return (
    `its output holds the value of secret${secrets.length === 1 ? '' : 's'} ${secrets.join(', ')}, so its patch was not kept; ` +
    "an item's output is stored in its patch commit, pushed and read by the items that depend on it, and must not carry a secret: " +
    'keep secret values out of what the worker answers (an agent: out of its final answer and what its tools return)'
  );
}
