import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicTempOf } from '../atomic-write.js';
import { errorMessage } from '../errors.js';
import type { GitStore } from '../git/types.js';
import { notARealDirectory, readPlainFile } from '../plain-files.js';
import { runIdProblem } from '../plan/ids.js';
import { GONE_WRITER_MIN_AGE_MS, liveness, parseIdentity, selfIdentity, type ProcessIdentity } from '../process-identity.js';
import { isSecretStoreToken, MAX_PARAMS_FILE_BYTES, removeSecretStore } from './params.js';
import type { RunRefs } from './refs.js';
import { storeNamedBy } from './withdrawal.js';

/**
 * Secret parameter stores nothing names. `submit` writes a run's store (`<scratch>/params/<token>.json`)
 * before its inbox entry exists, since a serve may accept the entry and start its workers at once. A submit
 * killed between the two leaves the values on this host with no submission naming them. The store records
 * the ref namespace and the process that wrote it (src/process-identity.ts), so a serve (at its start, and
 * every SWEEP_EVERY_MS while it serves: server.ts) removes
 * each store of its namespace that is older than {@link GONE_WRITER_MIN_AGE_MS}, whose writer is provably gone, and that
 * neither an inbox entry nor a run of the run id it names refers to by its token (withdrawal.ts's
 * `storeNamedBy`, which also judges a withdrawal left unfinished). A submit killed while it wrote the store
 * leaves the values in the store's temporary file (atomic-write.ts), which nothing ever names: it is removed
 * when it is as old and its writer is provably gone (the writer it records, or, when it holds no whole
 * store, the pid in its name).
 *
 * Left alone: a store of another namespace (another config of the repository, whose refs this look does not
 * read), one whose writer may still run (a submit under way) or ran on another host, a young one (a writer
 * judged gone wrongly, as in a container that shares this host's name, still has its store), one written
 * by an Agora that recorded no writer, and anything in the directory that is not a store Agora wrote (a
 * link is never followed, nor a FIFO waited on; a `params` that is a link is not looked in).
 */

/** What a look at the stores did: the run ids whose store it removed, and what it could not judge. */
export interface OrphanSecretStores {
  removed: string[];
  /** Temporary files of stores whose writer died before it renamed them (their paths). */
  removedTemporary: string[];
  problems: string[];
}

/** The most a store can hold: the secrets of a parameters file at most, with their JSON around them. */
const MAX_STORE_BYTES = 2 * MAX_PARAMS_FILE_BYTES;

export async function removeOrphanSecretStores(store: GitStore, refs: RunRefs, scratchDir: string, now: number): Promise<OrphanSecretStores> {
  const out: OrphanSecretStores = { removed: [], removedTemporary: [], problems: [] };
  const dir = join(scratchDir, 'params');
  let names: string[];
  try {
    const notReal = await notARealDirectory(dir);
    if (notReal === 'absent') return out;
    if (notReal !== undefined) {
      out.problems.push(`${dir} ${notReal}: secret stores are looked for only in a directory of their own; stores a killed submit left stay`);
      return out;
    }
    names = await readdir(dir);
  } catch (e) {
    out.problems.push(`${dir} cannot be listed (${errorMessage(e)}): stores a killed submit left stay`);
    return out;
  }
  for (const name of names) {
    const temp = atomicTempOf(name);
    if (temp !== null && temp.target.endsWith('.json') && isSecretStoreToken(temp.target.slice(0, -'.json'.length))) {
      await removeIfOrphanTemporary(join(dir, name), temp.pid, now, out);
      continue;
    }
    const token = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
    if (!isSecretStoreToken(token)) continue;
    const path = join(dir, name);
    try {
      const bound = await orphanCandidate(path, refs.ns, now);
      if (typeof bound !== 'string') {
        if (bound?.problem) out.problems.push(`${path} ${bound.problem}; it stays`);
        continue;
      }
      if ((await storeNamedBy(store, refs, bound, token)) !== null) continue;
      if (await removeSecretStore(scratchDir, token, bound)) out.removed.push(bound);
    } catch (e) {
      out.problems.push(`${path} could not be judged (${errorMessage(e)}); it stays`);
    }
  }
  return out;
}

/**
 * The run id the store at `path` is bound to, when it may be removed if nothing names it: of `namespace`, at
 * least GONE_WRITER_MIN_AGE_MS old, its writer provably gone. Undefined when it stays; a problem for what is not a store.
 */
async function orphanCandidate(path: string, namespace: string, now: number): Promise<string | { problem: string } | undefined> {
  const read = await readPlainFile(path, MAX_STORE_BYTES);
  if ('problem' in read) return read;
  if (now - read.mtimeMs < GONE_WRITER_MIN_AGE_MS) return undefined;
  let doc: { run?: unknown; namespace?: unknown; writer?: unknown } | null;
  try {
    doc = JSON.parse(read.text) as typeof doc;
  } catch {
    return { problem: 'is not JSON, not a secret store Agora wrote' };
  }
  if (typeof doc?.run !== 'string' || runIdProblem(doc.run) !== undefined || doc.namespace !== namespace) return undefined;
  const writer = parseIdentity(doc.writer);
  return writer !== null && liveness(writer) === 'gone' ? doc.run : undefined;
}

/**
 * Removes the store's temporary file at `path` (written by process `pid`) when it is at least GONE_WRITER_MIN_AGE_MS old
 * and its writer is provably gone: the writer it records when it holds a whole store (none recorded: it
 * stays, as a store does), the process with its pid on this host when it holds no JSON (a write cut short).
 * Nothing names a temporary file, so no ref is read.
 */
async function removeIfOrphanTemporary(path: string, pid: number, now: number, out: OrphanSecretStores): Promise<void> {
  try {
    const read = await readPlainFile(path, MAX_STORE_BYTES);
    if ('problem' in read) {
      out.problems.push(`${path} ${read.problem}; it stays`);
      return;
    }
    const writer = temporaryWriter(read.text, pid);
    if (now - read.mtimeMs < GONE_WRITER_MIN_AGE_MS || writer === null || liveness(writer) !== 'gone') return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.problems.push(`${path} could not be judged (${errorMessage(e)}); it stays`);
    return;
  }
  try {
    await unlink(path);
    out.removedTemporary.push(path);
  } catch (e) {
    // ENOENT: removed meanwhile (a serve of another config of the repository).
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      out.problems.push(`${path} holds secret parameters nothing needs but could not be removed (${errorMessage(e)}); the values stay on this host`);
    }
  }
}

/** Who wrote a temporary file holding `text`: the writer a whole store records; the pid on this host for text that is no JSON; null for JSON without one. */
function temporaryWriter(text: string, pid: number): ProcessIdentity | null {
  let doc: { writer?: unknown } | null;
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return { pid, host: selfIdentity().host, boot: null, start: null };
  }
  return parseIdentity(doc?.writer);
}
