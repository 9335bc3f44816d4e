import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { AgoraError } from '../errors.js';
import { liveness, parseIdentity, selfIdentity, type ProcessIdentity } from '../process-identity.js';

/**
 * One App process per cache dir (AGORA_CACHE_DIR). Everything under it is that process's: the mirrors,
 * each repository's scratch dir, and the workspace pool in the mirror's work dir (runs/work-dir.ts), which
 * a process empties when it opens the repository. A second process on the same dir would empty the
 * first one's workspaces under its running workers, and fetch and push through the same mirror.
 *
 * The hold is a claim: a file `<cache dir>/agora-app.claims/<random>.json` naming its process (pid, host,
 * boot id, start time: src/process-identity.ts), written whole (a synced temporary file linked into
 * place) before the process looks at the others. A process then holds the dir when every other claim
 * there is provably gone (those it removes); any other claim, even one of a process still starting,
 * makes it withdraw its own and refuse (`cache-dir-in-use`). Of two processes starting together at
 * least one sees the other's claim, since each writes before it reads: never both hold the dir (both
 * may refuse, then the operator's fix is the same). A process removes only its own claim and claims of
 * processes that are gone, which never come back (a reused pid has another start time), so no check
 * and removal can race. A killed process leaves its claim; the next start removes it.
 */

export interface CacheDirHold {
  /** This process's claim. */
  readonly file: string;
  /** Gives the dir up (removes the claim). Harmless twice. */
  release(): Promise<void>;
}

/** Where the claims on `cacheDir` are: no GitHub login has a dot, so no mirror's owner dir takes this name. */
export function claimsDir(cacheDir: string): string {
  return join(cacheDir, 'agora-app.claims');
}

interface Claim extends ProcessIdentity {
  startedAt: string;
}

/** Takes `cacheDir` for this process, or throws `cache-dir-in-use` naming the process that has it. */
export async function holdCacheDir(cacheDir: string, now: number): Promise<CacheDirHold> {
  const dir = claimsDir(cacheDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${randomBytes(8).toString('hex')}.json`);
  const mine: Claim = { ...selfIdentity(), startedAt: new Date(now).toISOString() };
  await writeFileAtomic(file, `${JSON.stringify(mine)}\n`, { mode: 0o600, exclusive: true });
  try {
    // Names starting with a dot are temporary files of claims being written (atomic-write.ts).
    for (const name of (await readdir(dir)).sort()) {
      const other = join(dir, name);
      if (name.startsWith('.') || other === file) continue;
      const claim = await readClaim(other);
      if (claim === 'absent') continue; // released meanwhile
      if (claim !== 'unreadable' && liveness(claim) === 'gone') {
        await unlinkIfPresent(other);
        continue;
      }
      throw inUse(cacheDir, other, claim);
    }
  } catch (e) {
    await unlinkIfPresent(file);
    throw e;
  }
  let released: Promise<void> | undefined;
  return { file, release: () => (released ??= unlinkIfPresent(file)) };
}

function inUse(cacheDir: string, file: string, claim: Claim | 'unreadable'): AgoraError {
  const fix = `give each agora app process an AGORA_CACHE_DIR of its own (replicas on one host each need one)`;
  if (claim === 'unreadable') {
    return new AgoraError(
      'cache-dir-in-use',
      `the cache dir ${cacheDir} may be in use by another agora app process: ${file} does not say which`,
      `${fix}; if no other process uses ${cacheDir}, delete ${file}`,
    );
  }
  const who = `pid ${claim.pid}${claim.host === selfIdentity().host ? '' : ` on host ${claim.host}`}, since ${claim.startedAt}`;
  return new AgoraError(
    'cache-dir-in-use',
    `the cache dir ${cacheDir} is in use by another agora app process (${who}), whose workspaces and mirrors are there`,
    liveness(claim) === 'elsewhere' ? `${fix}; if that process is gone, delete ${file}` : fix,
  );
}

async function readClaim(path: string): Promise<Claim | 'absent' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
  try {
    const parsed = JSON.parse(text) as { startedAt?: unknown };
    const id = parseIdentity(parsed);
    return id ? { ...id, startedAt: String(parsed.startedAt ?? '?') } : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
