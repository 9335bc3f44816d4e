/** A bare repository on disk, driven through the `git` CLI (the simulator's only object store). */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const ZERO_SHA = '0000000000000000000000000000000000000000';

/** Identity used for a commit's author or committer. */
export interface GitIdentity {
  name: string;
  email: string;
  date?: string;
}

export class GitCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  }
}

/** Runs git; resolves stdout as a Buffer, rejects with GitCommandError on non-zero exit. */
export function runGit(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: opts.cwd,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new GitCommandError(args, code, Buffer.concat(err).toString('utf8')));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** One entry of `git ls-tree -l`. */
export interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  sha: string;
  size: number | null;
  path: string;
}

/** A parsed commit object. */
export interface CommitInfo {
  sha: string;
  tree: string;
  parents: string[];
  author: GitIdentity;
  committer: GitIdentity;
  message: string;
}

function parseIdentity(line: string): GitIdentity {
  const m = /^(.*) <(.*)> (\d+) ([+-]\d{4})$/.exec(line);
  if (!m) return { name: line, email: '' };
  return { name: m[1]!, email: m[2]!, date: new Date(Number(m[3]) * 1000).toISOString().replace(/\.000Z$/, 'Z') };
}

function identityEnv(prefix: 'AUTHOR' | 'COMMITTER', id: GitIdentity): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { [`GIT_${prefix}_NAME`]: id.name, [`GIT_${prefix}_EMAIL`]: id.email };
  if (id.date) env[`GIT_${prefix}_DATE`] = id.date;
  return env;
}

/**
 * GitHub's rule for pushes by an App: a commit new to the repository that creates, changes or deletes a
 * file under `.github/workflows/` needs the `workflows` permission. `git http-backend` runs this hook
 * before any ref moves; the server sets SIM_MAY_WRITE_WORKFLOWS from the pushing token's grant.
 */
const PRE_RECEIVE_HOOK = `#!/bin/sh
[ "$SIM_MAY_WRITE_WORKFLOWS" = 1 ] && exit 0
zero=0000000000000000000000000000000000000000
tips=$(while read old new ref; do [ "$new" = "$zero" ] || printf '%s\\n' "$new"; done)
[ -n "$tips" ] || exit 0
# Every commit new to the repository, from all the pushed refs at once (two processes per push, not two per commit).
paths=$(printf '%s\\n' "$tips" | git rev-list --stdin --not --all | git diff-tree --stdin --no-commit-id --name-only -r -m --root -- .github/workflows)
[ -n "$paths" ] || exit 0
printf '%s\\n' "$paths" | while IFS= read -r path; do
  printf 'refusing to allow a GitHub App to create or update workflow \`%s\` without \`workflows\` permission\\n' "$path" >&2
done
exit 1
`;

/**
 * git's reference-transaction hook: appends each committed transaction's `<old> <new> <ref>` lines to
 * REF_CHANGES in the repository ($GIT_DIR: git sets it for a command given `--git-dir`; receive-pack's
 * hooks run in the repository with it relative). receive-pack's commands carry
 * the old values it verified, so a push's record says exactly what it changed (sim.ts `receivePush`).
 */
const REF_CHANGES = 'sim-ref-changes';
const REFERENCE_TRANSACTION_HOOK = `#!/bin/sh
[ "$1" = committed ] || exit 0
exec cat >> "\${GIT_DIR:-.}/${REF_CHANGES}"
`;

const REMEMBERED = 4_096;

/**
 * Pushes between two repacks of a repository's objects and refs. GitHub keeps repositories packed out of
 * band; a repository left loose makes every push's connectivity check (`rev-list --not --all`, run by
 * receive-pack and by the workflows hook) open one loose ref file and one loose object per ref tip, so a
 * push got slower with every ref (about 10 ms per 100 refs here).
 */
export const PUSHES_PER_REPACK = 32;

/** Keeps `value` under `key`, forgetting the oldest entry beyond REMEMBERED. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > REMEMBERED) map.delete(map.keys().next().value!);
}

/** One ref's change: its value before and after (the zero id: absent). */
export interface RecordedRefChange {
  ref: string;
  before: string;
  after: string;
}

/** A bare repository: object reads/writes and compare-and-swap ref updates. */
export class BareRepo {
  private lock: Promise<unknown> = Promise.resolve();
  /** Objects never change: what was read of one by its id is kept (a few thousand, the newest). */
  private readonly types = new Map<string, string>();
  private readonly commits = new Map<string, CommitInfo>();
  /** Pushes since the objects were last repacked. */
  private pushesSinceRepack = 0;
  constructor(readonly dir: string) {}

  /** Creates an empty bare repository that accepts pushes over smart HTTP. */
  static async init(dir: string, defaultBranch: string): Promise<BareRepo> {
    await mkdir(dir, { recursive: true });
    await runGit(['init', '--bare', '--quiet', `--initial-branch=${defaultBranch}`, dir]);
    const repo = new BareRepo(dir);
    await repo.git(['config', 'http.receivepack', 'true']);
    await repo.git(['config', 'receive.denyNonFastForwards', 'false']);
    // The hooks below are this repository's whatever a user's global config says, and nothing repacks
    // its refs while a push is being recorded (GitHub maintains repositories out of band).
    await repo.git(['config', 'core.hooksPath', join(dir, 'hooks')]);
    await repo.git(['config', 'receive.autogc', 'false']);
    await repo.git(['config', 'gc.auto', '0']);
    await writeFile(join(dir, 'hooks', 'pre-receive'), PRE_RECEIVE_HOOK, { mode: 0o755 });
    await writeFile(join(dir, 'hooks', 'reference-transaction'), REFERENCE_TRANSACTION_HOOK, { mode: 0o755 });
    return repo;
  }

  git(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<Buffer> {
    return runGit(['--git-dir', this.dir, ...args], opts);
  }

  async text(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<string> {
    return (await this.git(args, opts)).toString('utf8');
  }

  /** Serialises ref-changing work on this repository (pushes and REST ref updates). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs `work` (a receive-pack) and returns the ref changes git recorded while it ran, by ref (the first
   * old value, the last new one; a ref that ended where it started is left out). Call under {@link exclusive}.
   */
  async recordingRefChanges<T>(work: () => Promise<T>): Promise<{ result: T; changes: RecordedRefChange[] }> {
    const record = join(this.dir, REF_CHANGES);
    await rm(record, { force: true });
    const result = await work();
    const text = await readFile(record, 'utf8').catch(() => '');
    await rm(record, { force: true });
    // A ref's value before: the first recorded old value (a packed ref's deletion is first recorded as
    // zero to zero, for the packed-refs file: not a value). Its value after: the last recorded new value
    // (the hook records only committed updates, and nothing else writes refs while a push is recorded).
    const before = new Map<string, string>();
    const after = new Map<string, string>();
    for (const line of text.split('\n')) {
      const [old, next, ref] = line.split(' ');
      // Only refs under refs/: an update through a symbolic ref (HEAD, when a push moves the branch it
      // names) is recorded for the symbolic ref as well, and is no change of its own.
      if (!ref?.startsWith('refs/') || !/^[0-9a-f]{40}$/.test(old!) || !/^[0-9a-f]{40}$/.test(next!) || (old === ZERO_SHA && next === ZERO_SHA)) continue;
      if (!before.has(ref)) before.set(ref, old!);
      after.set(ref, next!);
    }
    const changes = [...before].map(([ref, was]) => ({ ref, before: was, after: after.get(ref)! }));
    return { result, changes: changes.filter((c) => c.before !== c.after) };
  }

  /**
   * What GitHub does out of band, done in line after every {@link PUSHES_PER_REPACK}th push: the loose
   * objects pushed since are rolled into packs (`repack --geometric=2 -d`: small packs merge, a large one
   * stays as it is, so the cost follows what is new), and the refs into `packed-refs`. Call under
   * {@link exclusive}, outside a push's record (packing deletes loose refs in a transaction that git's
   * reference-transaction hook sees; the next record starts afresh).
   */
  async afterPush(): Promise<void> {
    this.pushesSinceRepack += 1;
    if (this.pushesSinceRepack < PUSHES_PER_REPACK) return;
    this.pushesSinceRepack = 0;
    await this.git(['-c', 'repack.writeBitmaps=false', 'repack', '--geometric=2', '-d', '-q']);
    await this.git(['pack-refs', '--all', '--prune']);
  }

  /** All refs (or those named in `only`) → object id. */
  async refs(only?: readonly string[]): Promise<Map<string, string>> {
    // for-each-ref takes each name as a prefix too: what it lists beyond the names asked for is left out.
    const out = await this.text(['for-each-ref', '--format=%(objectname) %(refname)', ...(only ?? [])]);
    const wanted = only && new Set(only);
    const map = new Map<string, string>();
    for (const line of out.split('\n')) {
      if (!line) continue;
      const i = line.indexOf(' ');
      const ref = line.slice(i + 1);
      if (!wanted || wanted.has(ref)) map.set(ref, line.slice(0, i));
    }
    return map;
  }

  /** Resolves a revision to an object id of the given type, or null. */
  async resolve(rev: string, type?: 'commit' | 'tree' | 'blob'): Promise<string | null> {
    if (rev.startsWith('-')) return null;
    try {
      const spec = type ? `${rev}^{${type}}` : rev;
      return (await this.text(['rev-parse', '--verify', '--quiet', '--end-of-options', spec])).trim() || null;
    } catch {
      return null;
    }
  }

  async objectType(sha: string): Promise<string | null> {
    if (!/^[0-9a-f]{40}$/.test(sha)) return null;
    const known = this.types.get(sha);
    if (known) return known;
    try {
      const type = (await this.text(['cat-file', '-t', sha])).trim();
      remember(this.types, sha, type);
      return type;
    } catch {
      return null; // not (yet) here: not remembered
    }
  }

  async writeBlob(content: Buffer): Promise<string> {
    return (await this.text(['hash-object', '-w', '--stdin'], { input: content })).trim();
  }

  async readBlob(sha: string): Promise<Buffer> {
    return this.git(['cat-file', 'blob', sha]);
  }

  async lsTree(treeish: string, recursive: boolean): Promise<TreeEntry[]> {
    const args = ['ls-tree', '-l', '-z'];
    if (recursive) args.push('-r', '-t');
    args.push(treeish);
    const out = await this.text(args);
    return out
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const tab = line.indexOf('\t');
        const [mode, type, sha, size] = line.slice(0, tab).split(/\s+/);
        return {
          mode: mode!,
          type: type as TreeEntry['type'],
          sha: sha!,
          size: size === '-' ? null : Number(size),
          path: line.slice(tab + 1),
        };
      });
  }

  async readCommit(sha: string): Promise<CommitInfo> {
    const known = this.commits.get(sha);
    if (known) return structuredClone(known);
    const info = await this.readCommitUncached(sha);
    if (/^[0-9a-f]{40}$/.test(sha)) remember(this.commits, sha, structuredClone(info));
    return info;
  }

  private async readCommitUncached(sha: string): Promise<CommitInfo> {
    const raw = await this.text(['cat-file', 'commit', sha]);
    const split = raw.indexOf('\n\n');
    const header = raw.slice(0, split);
    const message = split >= 0 ? raw.slice(split + 2) : '';
    const info: CommitInfo = {
      sha,
      tree: '',
      parents: [],
      author: { name: '', email: '' },
      committer: { name: '', email: '' },
      message,
    };
    for (const line of header.split('\n')) {
      const sp = line.indexOf(' ');
      const key = line.slice(0, sp);
      const value = line.slice(sp + 1);
      if (key === 'tree') info.tree = value;
      else if (key === 'parent') info.parents.push(value);
      else if (key === 'author') info.author = parseIdentity(value);
      else if (key === 'committer') info.committer = parseIdentity(value);
    }
    return info;
  }

  async commitTree(tree: string, parents: string[], message: string, author: GitIdentity, committer: GitIdentity): Promise<string> {
    const args = ['commit-tree', tree];
    for (const p of parents) args.push('-p', p);
    const env = { ...identityEnv('AUTHOR', author), ...identityEnv('COMMITTER', committer) };
    return (await this.text(args, { env, input: message })).trim();
  }

  /**
   * Builds a tree from `base` (a tree id or null) plus changes: a string or Buffer writes a file,
   * null deletes a path (a whole subtree if the path is a directory). Uses a temporary index.
   */
  async buildTree(base: string | null, changes: Iterable<{ path: string; mode?: string; sha?: string | null; content?: Buffer | null }>): Promise<string> {
    const tmp = await mkdtemp(join(tmpdir(), 'ghsim-index-'));
    const env = { GIT_INDEX_FILE: join(tmp, 'index') };
    try {
      await this.git(base ? ['read-tree', base] : ['read-tree', '--empty'], { env });
      const lines: string[] = [];
      const list = [...changes];
      const existing = (await this.text(['ls-files', '-z'], { env })).split('\0').filter(Boolean);
      for (const change of list) {
        const under = existing.filter((p) => p.startsWith(change.path + '/'));
        for (const p of under) lines.push(`0 ${ZERO_SHA}\t${p}`);
        if (change.sha === null || (change.content === null && change.sha === undefined)) {
          lines.push(`0 ${ZERO_SHA}\t${change.path}`);
          continue;
        }
        const sha = change.sha ?? (await this.writeBlob(change.content ?? Buffer.alloc(0)));
        lines.push(`${change.mode ?? '100644'} ${sha}\t${change.path}`);
      }
      if (lines.length > 0) await this.git(['update-index', '--index-info'], { env, input: lines.join('\n') + '\n' });
      return (await this.text(['write-tree'], { env })).trim();
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Builds a tree from many files at once by staging a temporary work tree (fast for large imports). */
  async treeFromFiles(files: Record<string, string | Buffer>): Promise<string> {
    const tmp = await mkdtemp(join(tmpdir(), 'ghsim-wt-'));
    try {
      for (const [path, content] of Object.entries(files)) {
        const full = join(tmp, 'wt', path);
        await mkdir(dirname(full), { recursive: true });
        await writeFile(full, content);
      }
      await mkdir(join(tmp, 'wt'), { recursive: true });
      const env = { GIT_INDEX_FILE: join(tmp, 'index') };
      const wt = join(tmp, 'wt');
      await runGit(['--git-dir', this.dir, '--work-tree', wt, 'add', '-A'], { env, cwd: wt });
      return (await this.text(['write-tree'], { env })).trim();
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Compare-and-swap a ref: `expectedOld` null means "must not exist"; `newSha` null deletes. */
  async updateRef(ref: string, newSha: string | null, expectedOld: string | null): Promise<void> {
    if (newSha === null) await this.git(['update-ref', '-d', ref, expectedOld ?? '']);
    else await this.git(['update-ref', ref, newSha, expectedOld ?? ZERO_SHA]);
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    try {
      await this.git(['merge-base', '--is-ancestor', ancestor, descendant]);
      return true;
    } catch {
      return false;
    }
  }

  /** Commits reachable from `head` but not `exclude`, oldest first. */
  async revList(head: string, exclude: string[], limit?: number): Promise<string[]> {
    const args = ['rev-list', '--reverse', '--topo-order'];
    if (limit) args.push(`--max-count=${limit}`);
    args.push(head, ...exclude.map((e) => `^${e}`), '--');
    return (await this.text(args)).split('\n').filter(Boolean);
  }

  /** Paths added, removed, modified between a commit and its first parent (or the empty tree). */
  async changedPaths(sha: string): Promise<{ added: string[]; removed: string[]; modified: string[] }> {
    const out = await this.text(['diff-tree', '-r', '-z', '--no-commit-id', '--name-status', '--root', sha]);
    const parts = out.split('\0').filter(Boolean);
    const result = { added: [] as string[], removed: [] as string[], modified: [] as string[] };
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const status = parts[i]!;
      const path = parts[i + 1]!;
      if (status === 'A') result.added.push(path);
      else if (status === 'D') result.removed.push(path);
      else result.modified.push(path);
    }
    return result;
  }
}
