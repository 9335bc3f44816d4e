import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { notARealDirectory, readPlainFile } from '../plain-files.js';
import { GONE_WRITER_MIN_AGE_MS, liveness, type ProcessIdentity } from '../process-identity.js';
import { lockOwnerIdentity, refTempDir } from './ref-lock-file.js';
import { TEMP_SUFFIX_PATTERN } from '../temp-name.js';

/**
 * The files a killed process left in `<gitdir>/agora/tmp` (ref-lock-file.ts): a ref value written but not
 * renamed into place (`ref-*`, a kill between the write and the rename), and the process's owner file
 * (`owner-*`). A process that exits normally removes both itself; nothing reads them once their writer is killed,
 * but every kill adds some, and a repository served for years would keep them all.
 *
 * Each name ends in its writer's `<pid>_<token>_<counter>` (temp-name.ts), so the files of one process share
 * `<pid>_<token>`, and a process writes its owner file, which records its identity
 * (src/process-identity.ts), before its first ref value. A process's files are removed when the identity in
 * its owner file is provably gone and each file is {@link GONE_WRITER_MIN_AGE_MS} old: two containers that share a host
 * name and a kernel judge each other's pids wrongly, and a live writer's ref value exists for one
 * transaction (the wait for the objects to be durable and for the locks: seconds at most). An owner file
 * removed under a live writer is written again at its next lock, and no lock depends on it (each is its own
 * link). A process's ref values go before its owner file, so a look cut short never leaves them with no
 * identity to judge them by. Values with no owner file beside them (an older Agora wrote its values
 * first; or a person removed the file) name no host and stay.
 *
 * Only a process that holds the serve lock looks (`orch serve`, and `orch run` while it serves its run), at
 * its start and every SWEEP_EVERY_MS while it serves (src/runs/server.ts). Anything else in the directory
 * (another name, a link, a directory) is left alone.
 */

/** The most an owner file holds: one identity as JSON. */
const MAX_OWNER_BYTES = 4096;

/** A file ref-lock-file.ts writes: `owner-` or `ref-`, then its writer's temp-name.ts suffix. */
const NAME = new RegExp(`^(owner|ref)-${TEMP_SUFFIX_PATTERN}$`);

interface Writer {
  pid: number;
  owners: string[];
  values: string[];
}

/** The writer an owner file records, or undefined when it is no owner file Agora wrote. */
async function ownerIdentity(path: string): Promise<ProcessIdentity | undefined> {
  try {
    const read = await readPlainFile(path, MAX_OWNER_BYTES);
    return 'problem' in read ? undefined : (lockOwnerIdentity(read.text) ?? undefined);
  } catch {
    return undefined;
  }
}

/** Removes `path` if it is a regular file at least GONE_WRITER_MIN_AGE_MS old at `now`: `removed`, `absent` (gone already) or `kept`. */
async function removeIfOld(path: string, now: number): Promise<'removed' | 'absent' | 'kept'> {
  try {
    const info = await lstat(path);
    if (!info.isFile() || now - info.mtimeMs < GONE_WRITER_MIN_AGE_MS) return 'kept';
    await unlink(path);
    return 'removed';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'kept';
  }
}

/**
 * Removes the ref values and owner files in `<gitdir>/agora/tmp` whose writer is provably gone and that are
 * GONE_WRITER_MIN_AGE_MS old at `now`; the paths it removed. Never throws: what it cannot list, read or remove stays.
 */
export async function removeAbandonedRefTemps(gitdir: string, now: number): Promise<string[]> {
  const dir = refTempDir(gitdir);
  let names: string[];
  try {
    if ((await notARealDirectory(dir)) !== undefined) return [];
    names = await readdir(dir);
  } catch {
    return [];
  }
  const writers = new Map<string, Writer>();
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m) continue;
    const key = `${m[2]}_${m[3]}`;
    let writer = writers.get(key);
    if (!writer) writers.set(key, (writer = { pid: Number(m[2]), owners: [], values: [] }));
    (m[1] === 'owner' ? writer.owners : writer.values).push(join(dir, name));
  }
  const removed: string[] = [];
  for (const writer of writers.values()) {
    let identity: ProcessIdentity | undefined;
    for (const owner of writer.owners) {
      const recorded = await ownerIdentity(owner);
      if (recorded?.pid === writer.pid) identity ??= recorded;
    }
    if (identity === undefined || liveness(identity) !== 'gone') continue;
    let kept = 0;
    for (const path of writer.values) {
      const outcome = await removeIfOld(path, now);
      if (outcome === 'removed') removed.push(path);
      if (outcome === 'kept') kept += 1;
    }
    if (kept > 0) continue;
    for (const path of writer.owners) if ((await removeIfOld(path, now)) === 'removed') removed.push(path);
  }
  return removed;
}
