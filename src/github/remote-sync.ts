import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GitCommandError, runGit } from '../git/git-cli.js';
import type { Oid } from '../git/types.js';
import { pushOverHttp } from './http-push.js';

/**
 * The app's view of a GitHub repository: a disposable local bare MIRROR, synchronised with the git CLI
 * over smart HTTP through the one git runner (src/git/git-cli.ts: hooks off, nothing the config names
 * executed). The installation token travels only in an `http.extraHeader` passed through the
 * environment (GIT_CONFIG_COUNT/KEY/VALUE), never in a URL, an argument list or a log line, and is
 * scrubbed (raw and in its header's base64) from every error. A push carries
 * an exact lease per ref (`--force-with-lease=<ref>:<expected>`): the server's receive-pack refuses the
 * update when the ref moved since, so a push is the remote compare-and-swap (DESIGN.md §2, §7).
 */

const ZERO = '0000000000000000000000000000000000000000';

/** Supplies a current installation token (refreshed by the caller when it expires). */
export type TokenSource = () => Promise<string>;

/** One ref update: point `ref` at `next` (null: delete it) only if the remote still has it at `expected` (null: absent). */
export interface RefUpdate {
  ref: string;
  next: Oid | null;
  expected: Oid | null;
}

/**
 * A push's result. `refused` is set when GitHub itself declined it (`[remote rejected]`: a rule such as
 * the `workflows` permission, branch protection or a ruleset), with GitHub's words from its `remote:`
 * lines: that is no lease conflict, and pushing again would only be refused again.
 */
export type PushOutcome = { ok: true } | { ok: false; rejected: string[]; message: string; refused?: string };

/** One ref's outcome in a push of {@link RemoteMirror.pushEach} (`unattempted`: an atomic push failed on another ref). */
export type RefPushOutcome = { kind: 'ok' } | { kind: 'conflict' } | { kind: 'refused'; reason: string } | { kind: 'unattempted' };

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
      await runGit(['init', '--bare', '--quiet', dir]);
      // Objects written by Agora in-process must not be garbage collected behind its back.
      await runGit(['config', 'gc.auto', '0'], { gitDir: dir });
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
    args.push(this.url, ...updates.map((u) => `${u.next ?? ''}:${u.ref}`));
    try {
      const out = await this.git(args);
      const stale = staleUpToDate(out, updates);
      if (stale.length > 0) return { ok: false, rejected: stale, message: `${stale.join(', ')} already had the new value: another writer moved it` };
      return { ok: true };
    } catch (e) {
      if (!(e instanceof GitCommandError)) throw e;
      const out = e.stdout;
      const lines = out.split('\n').filter((l) => l.startsWith('!'));
      const rejected = lines.map((l) => l.split('\t')[1]?.split(':')[1] ?? '').filter(Boolean);
      if (rejected.length === 0 && !/rejected|stale info|failed to push/.test(`${out}${e.stderr}`)) throw e;
      const declined = lines.find((l) => l.split('\t')[2]?.startsWith('[remote rejected]') && !LOST_RACE.test(l));
      if (declined) return { ok: false, rejected, message: firstLine(out) || firstLine(e.stderr), refused: remoteReason(e.stderr, declined) };
      return { ok: false, rejected, message: firstLine(out) || firstLine(e.stderr) };
    }
  }

  /**
   * Pushes the updates in one push, each ref on its own lease, and tells the outcome per ref (`ok`,
   * `conflict`: the remote moved it, or `refused` with GitHub's words). Not atomic by default: each ref is
   * updated or refused alone (one round trip for several independent compare-and-swaps; mirrored-store.ts
   * batches them). With `atomic`, all land or none does (`git push --atomic`): a ref that failed only
   * because another one did is `unattempted`.
   */
  async pushEach(updates: readonly RefUpdate[], opts: { atomic?: boolean; pack?: Uint8Array | null } = {}): Promise<Map<string, RefPushOutcome>> {
    if (updates.length === 0) return new Map();
    if (opts.pack !== undefined && (opts.pack !== null || updates.every((u) => u.next === null))) {
      const { outcomes, rest } = await this.pushInProcess(updates, opts.atomic ?? false, opts.pack);
      if (rest.length === 0) return outcomes;
      this.cliFallbacks += 1;
      for (const [ref, outcome] of await this.pushWithCli(rest, opts)) outcomes.set(ref, outcome);
      return outcomes;
    }
    return this.pushWithCli(updates, opts);
  }

  /** Pushes made in-process, and pushes (or their remainders) the git CLI made after one could not settle. */
  httpPushes = 0;
  cliFallbacks = 0;
  /** Why the last in-process push left refs to the git CLI (for diagnosis). */
  lastFallback: string | undefined;

  /**
   * One push over smart HTTP (http-push.ts). Each ref's outcome is what receive-pack reported; `rest` is
   * what that answer leaves unsettled, for the git CLI: refs whose objects receive-pack found missing (it
   * updates no such ref, though in an atomic push it still updates the others: those are `ok`), or every
   * ref when the request failed or the answer was no status report. A retry is safe either way: every
   * ref carries its lease, so one that did land comes back as a conflict, never as a second update.
   */
  private async pushInProcess(
    updates: readonly RefUpdate[],
    atomic: boolean,
    pack: Uint8Array | null,
  ): Promise<{ outcomes: Map<string, RefPushOutcome>; rest: RefUpdate[] }> {
    this.httpPushes += 1;
    const outcomes = new Map<string, RefPushOutcome>();
    const token = await this.token();
    const authorization = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
    let answer: Awaited<ReturnType<typeof pushOverHttp>>;
    const request = { url: this.url, authorization, updates, atomic, pack };
    try {
      // Once more at once when the request itself failed (a kept-alive connection the server had just
      // closed is the usual cause): safe, as every ref carries its lease.
      answer = await pushOverHttp(request).catch(() => pushOverHttp(request));
    } catch (e) {
      answer = { kind: 'unusable', why: e instanceof Error ? e.message : String(e) };
    }
    if (answer.kind === 'unusable') {
      this.lastFallback = answer.why;
      return { outcomes, rest: [...updates] };
    }
    const rest: RefUpdate[] = [];
    // A failed atomic push reports every ref as `atomic transaction failed`; the one whose lease failed is
    // named only in receive-pack's own message (`error: cannot lock ref '<ref>': …`).
    const lockFailed = new Set([...answer.messages.join('\n').matchAll(/cannot lock ref '([^']+)'/g)].map((m) => m[1]!));
    for (const u of updates) {
      const reported = answer.refs.get(u.ref);
      if (reported === undefined) throw new Error(`receive-pack reported nothing for ${u.ref}`);
      if (reported.ok) outcomes.set(u.ref, { kind: 'ok' });
      else if (/missing necessary objects/.test(reported.reason)) rest.push(u);
      else if (atomic && ATOMIC_COLLATERAL_REASON.test(reported.reason)) outcomes.set(u.ref, { kind: lockFailed.has(u.ref) ? 'conflict' : 'unattempted' });
      else if (LOST_RACE_REASON.test(reported.reason)) outcomes.set(u.ref, { kind: 'conflict' });
      else outcomes.set(u.ref, { kind: 'refused', reason: saidByRemote(answer.messages) ?? reported.reason });
    }
    if (rest.length > 0) this.lastFallback = `GitHub lacked objects for ${rest.map((u) => u.ref).join(', ')}`;
    return { outcomes, rest };
  }

  private async pushWithCli(updates: readonly RefUpdate[], opts: { atomic?: boolean }): Promise<Map<string, RefPushOutcome>> {
    const outcomes = new Map<string, RefPushOutcome>();
    const args = ['push', '--porcelain', '--no-verify', ...(opts.atomic ? ['--atomic'] : [])];
    for (const u of updates) args.push(`--force-with-lease=${u.ref}:${u.expected ?? ''}`);
    args.push(this.url, ...updates.map((u) => `${u.next ?? ''}:${u.ref}`));
    let out: string;
    let stderr = '';
    try {
      out = await this.git(args);
    } catch (e) {
      if (!(e instanceof GitCommandError)) throw e;
      out = e.stdout;
      stderr = e.stderr;
      if (!/^!/m.test(out) && !/rejected|stale info|failed to push/.test(`${out}${stderr}`)) throw e;
    }
    // Porcelain: one line per ref, `<flag>\t<from>:<to>\t<summary>`; `!` is a ref not updated.
    const stale = new Set(staleUpToDate(out, updates));
    for (const line of out.split('\n')) {
      const [flag, spec, summary] = line.split('\t');
      const ref = spec?.split(':')[1];
      if (!flag || !ref || summary === undefined) continue;
      if (stale.has(ref)) outcomes.set(ref, { kind: 'conflict' });
      else if (flag !== '!') outcomes.set(ref, { kind: 'ok' });
      else if (opts.atomic && ATOMIC_COLLATERAL.test(summary)) outcomes.set(ref, { kind: 'unattempted' });
      else if (summary.startsWith('[remote rejected]') && !LOST_RACE.test(line)) outcomes.set(ref, { kind: 'refused', reason: remoteReason(stderr, line) });
      else outcomes.set(ref, { kind: 'conflict' });
    }
    for (const u of updates) if (!outcomes.has(u.ref)) throw new Error(`git push reported nothing for ${u.ref}: ${firstLine(stderr) || firstLine(out)}`);
    return outcomes;
  }

  /** Runs git on the mirror with the token in an extra header taken from the environment. */
  async git(args: readonly string[]): Promise<string> {
    const token = await this.token();
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    return runGit(args, {
      gitDir: this.dir,
      env: { GIT_PROTOCOL: 'version=2' },
      secretConfig: [['http.extraHeader', `Authorization: Basic ${basic}`]],
      secrets: [token, basic],
    });
  }
}

/**
 * `[remote rejected]` reasons that mean another writer got there first (receive-pack's own compare-and-swap
 * and ref locks): a conflict to retry after fetching. Any other remote rejection is a rule declining it.
 */
const LOST_RACE_REASONS = String.raw`atomic transaction failed|failed to (update|lock)[^)]*|cannot lock ref[^)]*|incorrect old value provided|stale info|fetch first|reference already exists|reference does not exist`;
const LOST_RACE = new RegExp(String.raw`\((${LOST_RACE_REASONS})\)\s*$`);
/** The same reasons as receive-pack reports them (`ng <ref> <reason>`). */
const LOST_RACE_REASON = new RegExp(`^(${LOST_RACE_REASONS})$`);

/** An atomic push's refs that failed only because another ref did: the client's and receive-pack's words. */
const ATOMIC_COLLATERAL = /\(atomic (push|transaction) fail(ed|ure)\)\s*$/;
const ATOMIC_COLLATERAL_REASON = /^atomic (push|transaction) fail(ed|ure)$/;

/**
 * Refs the push reported `=` (up to date) although their lease expected another value. git sends no
 * command for a ref the remote already has at the new value, so the lease is never checked: another
 * writer moved the ref from `expected` to exactly `next` (two replicas making the same content-addressed
 * transition). Counting that as our own swap would let both act on it; it is a conflict to re-read.
 */
function staleUpToDate(porcelain: string, updates: readonly RefUpdate[]): string[] {
  const upToDate = new Set<string>();
  for (const line of porcelain.split('\n')) {
    const [flag, spec] = line.split('\t');
    const ref = spec?.split(':')[1];
    if (flag === '=' && ref) upToDate.add(ref);
  }
  return updates.filter((u) => upToDate.has(u.ref) && u.expected !== u.next).map((u) => u.ref);
}

/** GitHub's words for a refused push: its `remote:` lines, else the porcelain reason in parentheses. */
function remoteReason(stderr: string, porcelainLine: string): string {
  const remoteLines = stderr
    .split('\n')
    .filter((l) => l.startsWith('remote: '))
    .map((l) => l.slice('remote: '.length));
  return saidByRemote(remoteLines) ?? /\(([^)]*)\)\s*$/.exec(porcelainLine)?.[1] ?? 'declined by the remote';
}

/** What the remote's hooks said (its `remote:` lines, git's own `error:` lines left out), or null. */
function saidByRemote(lines: readonly string[]): string | null {
  const said = lines.map((l) => l.trim()).filter((l) => l.length > 0 && !/^error: /.test(l));
  return said.length > 0 ? said.join(' ') : null;
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .find((l) => l.trim().length > 0)
      ?.trim() ?? ''
  );
}

export { ZERO as ZERO_OID };
