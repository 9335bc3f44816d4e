import { execFile } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Oid } from '../git/types.js';

/**
 * The app's view of a GitHub repository: a disposable local bare MIRROR, synchronised with the git CLI
 * over smart HTTP. The installation token travels only in an `http.extraHeader` passed through the
 * environment (GIT_CONFIG_COUNT/KEY/VALUE), never in a URL, an argument list or a log line. A push carries
 * an exact lease per ref (`--force-with-lease=<ref>:<expected>`): the server's receive-pack refuses the
 * update when the ref moved since, so a push is the remote compare-and-swap (DESIGN.md §2, §7).
 */

const execFileP = promisify(execFile);
const ZERO = '0000000000000000000000000000000000000000';

/** Supplies a current installation token (refreshed by the caller when it expires). */
export type TokenSource = () => Promise<string>;

/** One ref update: point `ref` at `next` only if the remote still has it at `expected` (null: absent). */
export interface RefUpdate {
  ref: string;
  next: Oid;
  expected: Oid | null;
}

export type PushOutcome = { ok: true } | { ok: false; rejected: string[]; message: string };

/** A local bare repository mirroring one remote repository's fetched refs under their own names. */
export class RemoteMirror {
  constructor(
    /** The bare repository directory. */
    readonly dir: string,
    /** The remote's clone URL (https, no credentials in it). */
    readonly url: string,
    private readonly token: TokenSource,
  ) {}

  /** Opens (creating on demand) the mirror of `url` at `dir`. */
  static async open(dir: string, url: string, token: TokenSource): Promise<RemoteMirror> {
    if (new URL(url).username || new URL(url).password) {
      throw new Error('the remote URL must not carry credentials: the token goes in a header');
    }
    const exists = await stat(join(dir, 'HEAD')).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await mkdir(dir, { recursive: true });
      await runGit(['init', '--bare', '--quiet', dir], {});
      // Objects written by Agora in-process must not be garbage collected behind its back.
      await runGit(['config', 'gc.auto', '0'], {}, dir);
    }
    return new RemoteMirror(dir, url, token);
  }

  /**
   * Fetches `refspecs` (e.g. `+refs/agora/*:refs/agora/*`, `+refs/heads/x:refs/heads/x`), forcing the local
   * refs to the remote's values. With `prune`, local refs matched by a refspec but gone remotely are removed.
   */
  async fetchRefs(refspecs: readonly string[], opts: { prune?: boolean } = {}): Promise<void> {
    const args = ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head'];
    if (opts.prune) args.push('--prune');
    await this.git([...args, this.url, ...refspecs]);
  }

  /** What the remote advertises under `prefix` (one request, no objects). */
  async listRemoteRefs(prefix: string): Promise<Map<string, Oid>> {
    const out = await this.git(['ls-remote', this.url, `${prefix}*`]);
    const refs = new Map<string, Oid>();
    for (const line of out.split('\n')) {
      const [oid, ref] = line.split('\t');
      if (oid && ref) refs.set(ref, oid);
    }
    return refs;
  }

  /**
   * Pushes every update atomically, each with an exact lease. Objects must be in the mirror. A rejection
   * (some ref moved remotely) leaves the remote untouched and names the refs it refused.
   */
  async pushRefs(updates: readonly RefUpdate[]): Promise<PushOutcome> {
    if (updates.length === 0) return { ok: true };
    const args = ['push', '--porcelain', '--atomic', '--no-verify'];
    for (const u of updates) args.push(`--force-with-lease=${u.ref}:${u.expected ?? ''}`);
    args.push(this.url, ...updates.map((u) => `${u.next}:${u.ref}`));
    try {
      await this.git(args);
      return { ok: true };
    } catch (e) {
      const out = `${(e as { stdout?: string }).stdout ?? ''}`;
      const rejected = out
        .split('\n')
        .filter((l) => l.startsWith('!'))
        .map((l) => l.split('\t')[1]?.split(':')[1] ?? '')
        .filter(Boolean);
      if (rejected.length === 0 && !/rejected|stale info|failed to push/.test(`${out}${(e as Error).message}`)) throw e;
      return { ok: false, rejected, message: firstLine(out) || firstLine((e as Error).message) };
    }
  }

  /** Runs git on the mirror with the token in an extra header taken from the environment. */
  async git(args: readonly string[]): Promise<string> {
    const token = await this.token();
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    const env = {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    };
    return runGit(args, env, this.dir, token);
  }
}

/** Runs git with no prompts, no system config, and `secret` scrubbed from any error message. */
async function runGit(args: readonly string[], extraEnv: Record<string, string>, gitDir?: string, secret?: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...extraEnv,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_ASKPASS: '',
    GIT_PROTOCOL: 'version=2',
  };
  delete env.GIT_DIR;
  delete env.GIT_INDEX_FILE;
  if (gitDir) env.GIT_DIR = gitDir;
  try {
    const { stdout } = await execFileP('git', [...args], { env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    const scrub = (s: string) => (secret ? s.split(secret).join('***') : s);
    const wrapped = new Error(`git ${args[0]} failed: ${scrub(err.stderr?.trim() || err.message)}`) as Error & { stdout?: string };
    wrapped.stdout = scrub(err.stdout ?? '');
    throw wrapped;
  }
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
}

export { ZERO as ZERO_OID };
