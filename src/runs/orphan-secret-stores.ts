import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { GitStore } from '../git/types.js';
import { liveness, parseIdentity } from '../process-identity.js';
import { submissionSecretStore } from './inbox.js';
import { runIdProblem } from '../plan/ids.js';
import { isSecretStoreToken, removeSecretStore } from './params.js';
import type { RunRefs } from './refs.js';
import { readRunParamsAt } from './state-store.js';

/**
 * Secret parameter stores nothing names. `submit` writes a run's store (`<scratch>/params/<token>.json`)
 * before its inbox entry exists, since a serve may accept the entry and start its workers at once. A submit
 * killed between the two leaves the values on this host with no submission naming them. The store records
 * the ref namespace and the process that wrote it (src/process-identity.ts), so a serve at its start removes
 * each store of its namespace whose writer is provably gone and that neither an inbox entry nor a run of the
 * run id it names refers to by its token. The inbox is read before the run, as in withdrawal.ts: serve writes
 * the run before it deletes the entry it accepts, so an entry found gone because it was accepted has its run
 * found by the later read.
 *
 * Left alone: a store of another namespace (another config of the repository, whose refs this look does not
 * read), one whose writer may still run (a submit under way) or ran on another host, one written by an Agora
 * that recorded no writer, and anything in the directory that is not a store.
 */

/** What a look at the stores did: the run ids whose store it removed, and the files it could not judge. */
export interface OrphanSecretStores {
  removed: string[];
  problems: string[];
}

export async function removeOrphanSecretStores(store: GitStore, refs: RunRefs, scratchDir: string): Promise<OrphanSecretStores> {
  const out: OrphanSecretStores = { removed: [], problems: [] };
  const dir = join(scratchDir, 'params');
  const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  for (const name of names) {
    const token = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
    if (!isSecretStoreToken(token)) continue;
    try {
      const bound = await writerGone(join(dir, name), refs.ns);
      if (bound === undefined) continue;
      if (await named(store, refs, bound, token)) continue;
      if (await removeSecretStore(scratchDir, token, bound)) out.removed.push(bound);
    } catch (e) {
      out.problems.push(`${join(dir, name)}: could not be judged (${errorMessage(e)}); it stays`);
    }
  }
  return out;
}

/** The run id the store at `path` is bound to, when it is of `namespace` and the process that wrote it is provably gone. */
async function writerGone(path: string, namespace: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8');
  let doc: { run?: unknown; namespace?: unknown; writer?: unknown } | null;
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return undefined; // not a store Agora wrote
  }
  if (typeof doc?.run !== 'string' || runIdProblem(doc.run) !== undefined || doc.namespace !== namespace) return undefined;
  const writer = parseIdentity(doc.writer);
  return writer !== null && liveness(writer) === 'gone' ? doc.run : undefined;
}

/** Whether the inbox entry of `runId`, or else its run, names the store `token`. */
async function named(store: GitStore, refs: RunRefs, runId: string, token: string): Promise<boolean> {
  const inbox = await store.resolveRef(refs.inbox(runId));
  if (inbox !== null && (await submissionSecretStore(store, inbox)) === token) return true;
  const head = await store.resolveRef(refs.run(runId));
  return head !== null && (await readRunParamsAt(store, runId, head))?.secretStore === token;
}
