import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { syncDirectory, writeFileAtomic } from '../atomic-write.js';
import { errorMessage } from '../errors.js';
import type { GitStore } from '../git/types.js';
import { pathInside } from '../path-inside.js';
import { runIdProblem } from '../plan/ids.js';
import { submissionSecretStore } from './inbox.js';
import { hasSecretStore, isSecretStoreToken, removeSecretStore } from './params.js';
import type { RunRefs } from './refs.js';
import { readRunAt } from './state-store.js';

/**
 * Withdrawing a submission (`agora orch cancel` before `serve` accepted it) takes two steps on two media:
 * the inbox ref goes (a compare-and-swap delete: if it fails, serve accepted the submission meanwhile),
 * then the secret store the submission names goes from this host (params.ts). A process killed between
 * the two would leave the secret values on the host with nothing naming them: the inbox entry that named
 * them is gone. So before the ref goes, a marker naming the store's token and the run id is written and
 * synced (`<gitdir>/agora/withdrawals/<random>.json`, one per withdrawal, so that two cancels never remove
 * each other's), and it is removed last. Whoever finds a marker left over (the next `cancel` of any id,
 * and `serve` at its start and on every pass over the inbox) finishes the job from what the repository
 * says, reading the inbox ref first and then the run ref:
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
/** A marker is two short strings: a file larger than this is not one Agora wrote, and is not read. */
const MAX_MARKER_BYTES = 4096;

/** A withdrawal under way (or left over): its marker file and what it names. */
export interface Withdrawal {
  /** The host's `<gitdir>/agora`: the store is `params/<token>.json` in it. */
  scratchDir: string;
  marker: string;
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
export async function markWithdrawal(scratchDir: string, runId: string, token: string | undefined): Promise<Withdrawal | undefined> {
  if (token === undefined || !(await hasSecretStore(scratchDir, token))) return undefined;
  const dir = withdrawalsDir(scratchDir);
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) {
    // writeFileAtomic syncs the directory it writes in; the directories made for it need their own
    // entries synced too, or a power loss could take the marker with its directory.
    for (let d = dir; ; d = dirname(d)) {
      await syncDirectory(dirname(d));
      if (d === created || dirname(d) === d) break;
    }
  }
  const marker = pathInside(dir, `${randomBytes(8).toString('hex')}.json`, 'withdrawal marker');
  await writeFileAtomic(marker, `${JSON.stringify({ run: runId, token })}\n`, { mode: 0o600, exclusive: true });
  return { scratchDir, marker, runId, token };
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
 * Finishes the withdrawals that processes stopped in the middle of (see above). Never throws: a marker
 * that cannot be finished now stays for the next look, and is reported; a file with a marker's name that
 * is not a marker Agora wrote is removed (never followed: its token would become a path) and reported.
 */
export async function finishWithdrawals(store: GitStore, refs: RunRefs, scratchDir: string): Promise<LeftoverWithdrawals> {
  const out: LeftoverWithdrawals = { removed: [], problems: [] };
  const dir = withdrawalsDir(scratchDir);
  let names: string[];
  try {
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
        const what = `${path} ${read.problem}, not a withdrawal marker Agora wrote ({"run": "<run id>", "token": "<32 hex digits>"})`;
        const removal = await dropMarker(path).then(
          () => 'removed it',
          (e: unknown) => `could not remove it (${errorMessage(e)}); remove it by hand`,
        );
        out.problems.push(`${what}; ${removal}`);
        continue;
      }
      if (await finishOne(store, refs, read)) out.removed.push(read.runId);
    } catch (e) {
      out.problems.push(`${path}: the withdrawal it records could not be finished (${errorMessage(e)}); it stays for the next look`);
    }
  }
  return out;
}

/** One leftover marker, by what the repository says now (the rules above). True when the store was removed. */
async function finishOne(store: GitStore, refs: RunRefs, w: Withdrawal): Promise<boolean> {
  const inbox = await store.resolveRef(refs.inbox(w.runId));
  if (inbox !== null && (await submissionSecretStore(store, inbox)) === w.token) return false;
  const head = await store.resolveRef(refs.run(w.runId));
  // A run's params never change, so its head's are the ones it was accepted with. Reading the whole run
  // is dear for a large one, but only a leftover marker whose run exists ever gets here.
  if (head !== null && (await readRunAt(store, w.runId, head)).state.params?.secretStore === w.token) {
    await dropMarker(w.marker);
    return false;
  }
  return completeWithdrawal(w);
}

/** The marker at `path`, checked: its run id is one Agora makes and its token one `recordableParams` makes. */
async function readMarker(scratchDir: string, path: string): Promise<Withdrawal | { problem: string }> {
  let text: string;
  // O_NOFOLLOW: a symbolic link under a marker's name is not followed (ELOOP), only removed. O_NONBLOCK: a
  // FIFO under one does not hold the open until someone writes to it.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ELOOP') return undefined;
    throw e;
  });
  if (handle === undefined) return { problem: 'is a symbolic link' };
  try {
    const info = await handle.stat();
    if (!info.isFile()) return { problem: 'is not a file' };
    if (info.size > MAX_MARKER_BYTES) return { problem: `is ${info.size} bytes` };
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { problem: 'is not JSON' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { problem: 'is not a JSON object' };
  const { run, token } = doc as { run?: unknown; token?: unknown };
  if (typeof run !== 'string' || runIdProblem(run) !== undefined) return { problem: 'names no run id Agora makes' };
  if (!isSecretStoreToken(token)) return { problem: 'names no secret store token' };
  return { scratchDir, marker: path, runId: run, token };
}
