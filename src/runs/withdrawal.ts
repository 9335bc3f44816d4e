import { randomBytes } from 'node:crypto';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { syncDirectory, writeFileAtomic } from '../atomic-write.js';
import { AgoraError, errorMessage } from '../errors.js';
import type { GitStore } from '../git/types.js';
import { pathInside } from '../path-inside.js';
import { notARealDirectory, readPlainFile } from '../plain-files.js';
import { runIdProblem } from '../plan/ids.js';
import { submissionSecretStore } from './inbox.js';
import { hasSecretStore, isSecretStoreToken, removeSecretStore } from './params.js';
import type { RunRefs } from './refs.js';
import { readRunParamsAt } from './state-store.js';

/**
 * Withdrawing a submission (`agora orch cancel` before `serve` accepted it) takes two steps on two media:
 * the inbox ref goes (a compare-and-swap delete: if it fails, serve accepted the submission meanwhile),
 * then the secret store the submission names goes from this host (params.ts). A process killed between
 * the two would leave the secret values on the host with nothing naming them: the inbox entry that named
 * them is gone. So before the ref goes, a marker naming the store's token and the run id is written and
 * synced (`<gitdir>/agora/withdrawals/<random>.json`, one per withdrawal, so that two cancels never remove
 * each other's), and it is removed last. The marker also names the ref namespace of the withdrawal:
 * `<gitdir>/agora` is shared by every config of the repository (each may set its own `refNamespace`), and
 * only a look under that namespace reads the inbox and run refs the marker is about. Under another, the
 * submission's inbox entry and run would both look absent, and its live store would go: a look leaves the
 * markers of other namespaces to a cancel or serve of theirs. Whoever finds a marker of its namespace left
 * over (the next `cancel` of any id, and `serve` at its start and on every pass over the inbox) finishes
 * the job from what the repository says, reading the inbox ref first and then the run ref:
 *
 * - the inbox entry of the run names the marker's token: the withdrawal may not have happened (killed
 *   before the delete), or the submission is back: everything stays;
 * - else the run exists and records the token: the submission was accepted (its workers read the store):
 *   only the marker goes;
 * - else nothing that is or can still become that run names the token: the store goes, if it is bound to
 *   the run id (removeSecretStore checks), then the marker.
 *
 * The order of the reads matters: serve writes the run before it deletes the inbox entry, so an entry
 * found gone because serve accepted it has its run found by the later read.
 *
 * The marker names the token, not only the run id: a withdrawn id is given out again by the next `submit`,
 * which binds its own store (a new random token) to the same id before its inbox entry exists. Keyed on
 * the run id alone, a leftover would remove that live submission's secrets; keyed on the token, the new
 * submission (in the inbox, accepted, or still between binding its store and pushing its entry) neither
 * names the old token nor has its own store touched, and the old store still goes.
 */

/** What a marker's name looks like: anything else in the directory (a temporary file) is not one. */
const MARKER_NAME = /^[0-9a-f]{16}\.json$/;
/** A marker is three short strings: a file larger than this is not one Agora wrote, and is not read. */
const MAX_MARKER_BYTES = 4096;
/** A ref namespace as `RunRefs` holds it (the config's `refNamespace`, with its trailing slash). */
const REF_NAMESPACE = /^refs\/([A-Za-z0-9][A-Za-z0-9_-]*\/)+$/;
/** What a marker holds, for the reports of files that are not one. */
const MARKER_FORM = '{"namespace": "<ref namespace>", "run": "<run id>", "token": "<32 hex digits>"}';

/** A withdrawal under way (or left over): its marker file and what it names. */
export interface Withdrawal {
  /** The host's `<gitdir>/agora`: the store is `params/<token>.json` in it. */
  scratchDir: string;
  marker: string;
  /** The ref namespace (`RunRefs.ns`) whose inbox and run refs the withdrawal is about. */
  namespace: string;
  runId: string;
  token: string;
}

/** What a look for leftover markers did. */
export interface LeftoverWithdrawals {
  /** Run ids whose secret store a stopped withdrawal left on the host, removed now. */
  removed: string[];
  /** What could not be finished, or was not a marker: one line each, for a warning. */
  problems: string[];
}

function withdrawalsDir(scratchDir: string): string {
  return join(scratchDir, 'withdrawals');
}

/**
 * Records, durably, that the submission of `runId` naming the store `token` is about to be withdrawn.
 * Undefined when there is nothing on this host to remove (the submission was made on another host, or its
 * store is gone already): then there is nothing a stopped withdrawal could leave either.
 */
export async function markWithdrawal(scratchDir: string, refs: RunRefs, runId: string, token: string | undefined): Promise<Withdrawal | undefined> {
  // A store that cannot be looked for (a params dir this user cannot read) is as good as none: the
  // submission is withdrawn all the same, and its store, if any, stays as it is.
  if (token === undefined || !(await hasSecretStore(scratchDir, token).catch(() => false))) return undefined;
  const dir = withdrawalsDir(scratchDir);
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  const notReal = await notARealDirectory(dir);
  if (notReal !== undefined) {
    throw new AgoraError(
      'path-outside-directory',
      `${dir} ${notReal === 'absent' ? 'is gone' : notReal}: withdrawal markers are written only in a directory of their own, never through a link; nothing was withdrawn`,
      `remove ${dir} (Agora makes it again), then cancel again`,
    );
  }
  if (created !== undefined) {
    // writeFileAtomic syncs the directory it writes in; the directories made for it need their own
    // entries synced too, or a power loss could take the marker with its directory.
    for (let d = dir; ; d = dirname(d)) {
      await syncDirectory(dirname(d));
      if (d === created || dirname(d) === d) break;
    }
  }
  const marker = pathInside(dir, `${randomBytes(8).toString('hex')}.json`, 'withdrawal marker');
  await writeFileAtomic(marker, `${JSON.stringify({ namespace: refs.ns, run: runId, token })}\n`, { mode: 0o600, exclusive: true });
  return { scratchDir, marker, namespace: refs.ns, runId, token };
}

/** The inbox entry is gone: the store goes (when bound to the run), then the marker. True when a store was removed. */
export async function completeWithdrawal(w: Withdrawal): Promise<boolean> {
  const removed = await removeSecretStore(w.scratchDir, w.token, w.runId);
  await dropMarker(w.marker);
  return removed;
}

/** The inbox entry could not be deleted (serve accepted it meanwhile): only the marker goes. */
export async function abandonWithdrawal(w: Withdrawal): Promise<void> {
  await dropMarker(w.marker);
}

async function dropMarker(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    // Another process finishing the same withdrawal (a cancel and a serve's pass) removed it first.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Finishes the withdrawals of `refs`' namespace that processes stopped in the middle of (see above); the
 * markers of other namespaces stay, unread past their namespace. Never throws: a marker that cannot be
 * finished now stays for the next look, and is reported; a file with a marker's name that is not a marker
 * Agora wrote is removed (never followed: its token would become a path) and reported. A `withdrawals`
 * that is not a directory of its own (a symbolic link) is reported, and nothing in it is read or removed.
 */
export async function finishWithdrawals(store: GitStore, refs: RunRefs, scratchDir: string): Promise<LeftoverWithdrawals> {
  const out: LeftoverWithdrawals = { removed: [], problems: [] };
  const dir = withdrawalsDir(scratchDir);
  let names: string[];
  try {
    const notReal = await notARealDirectory(dir);
    if (notReal === 'absent') return out;
    if (notReal !== undefined) {
      out.problems.push(
        `${dir} ${notReal}, not the directory of withdrawal markers Agora makes; nothing in it is read or removed (remove it: Agora makes it again)`,
      );
      return out;
    }
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.problems.push(`cannot list ${dir} (${errorMessage(e)}); withdrawals left unfinished stay so`);
    return out;
  }
  for (const name of names.sort()) {
    // A temporary file of a marker being written (or left by a process killed while writing it, before
    // the withdrawal began) is no marker: the withdrawal it was for never deleted the inbox entry.
    if (!MARKER_NAME.test(name)) continue;
    const path = join(dir, name);
    try {
      const read = await readMarker(scratchDir, path);
      if ('problem' in read) {
        const what = `${path} ${read.problem}, not a withdrawal marker Agora wrote (${MARKER_FORM})`;
        const removal = await dropMarker(path).then(
          () => 'removed it',
          (e: unknown) => `could not remove it (${errorMessage(e)}); remove it by hand`,
        );
        out.problems.push(`${what}; ${removal}`);
        continue;
      }
      // Another namespace's: its inbox and run refs are not the ones `refs` names (see above).
      if (read.namespace !== refs.ns) continue;
      if (await finishOne(store, refs, read)) out.removed.push(read.runId);
    } catch (e) {
      out.problems.push(`${path}: the withdrawal it records could not be finished (${errorMessage(e)}); it stays for the next look`);
    }
  }
  return out;
}

/** One leftover marker, by what the repository says now (the rules above). True when the store was removed. */
async function finishOne(store: GitStore, refs: RunRefs, w: Withdrawal): Promise<boolean> {
  const namedBy = await storeNamedBy(store, refs, w.runId, w.token);
  if (namedBy === 'inbox') return false;
  if (namedBy === 'run') {
    await dropMarker(w.marker);
    return false;
  }
  return completeWithdrawal(w);
}

/**
 * What names the secret store `token` as the store of `runId`: its inbox entry, else its run, else nothing.
 * The inbox is read first: serve writes the run before it deletes the entry it accepts, so an entry found
 * gone because it was accepted has its run found by the later read. A run's params never change, so its
 * head's are the ones it was accepted with (read from run.json alone).
 */
export async function storeNamedBy(store: GitStore, refs: RunRefs, runId: string, token: string): Promise<'inbox' | 'run' | null> {
  const inbox = await store.resolveRef(refs.inbox(runId));
  if (inbox !== null && (await submissionSecretStore(store, inbox)) === token) return 'inbox';
  const head = await store.resolveRef(refs.run(runId));
  return head !== null && (await readRunParamsAt(store, runId, head))?.secretStore === token ? 'run' : null;
}

/**
 * The marker at `path`, checked: its namespace is one a config can give, its run id one Agora makes and its
 * token one `recordableParams` makes. At most MAX_MARKER_BYTES are ever read, whatever the file grows to.
 */
async function readMarker(scratchDir: string, path: string): Promise<Withdrawal | { problem: string }> {
  const read = await readPlainFile(path, MAX_MARKER_BYTES);
  if ('problem' in read) return read;
  const { text } = read;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { problem: 'is not JSON' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { problem: 'is not a JSON object' };
  const { namespace, run, token } = doc as { namespace?: unknown; run?: unknown; token?: unknown };
  if (typeof namespace !== 'string' || !REF_NAMESPACE.test(namespace)) return { problem: 'names no ref namespace' };
  if (typeof run !== 'string' || runIdProblem(run) !== undefined) return { problem: 'names no run id Agora makes' };
  if (!isSecretStoreToken(token)) return { problem: 'names no secret store token' };
  return { scratchDir, marker: path, namespace, runId: run, token };
}
