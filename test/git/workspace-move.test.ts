import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import type { GitStore } from '../../src/git/types.js';
import { captureWorkspace, catchUpIndex, materializeWorkspace, removeWorkspace, retargetWorkspace, type Workspace } from '../../src/git/workspace.js';
import { baseMove } from '../../src/git/workspace-move.js';
import { takeStamps } from '../../src/git/workspace-stamps.js';
import { cliEnv, gitOnWorkspace, gitSync, initRepo, tempDir } from './git-fixtures.js';

/**
 * A pooled workspace moves from one base to the next by their difference (workspace-move.ts) when a
 * survey says the worker's changes are known: it must end exactly as a fresh checkout of the next base,
 * with the index git would have written, and stamps that still catch a worker that restores times.
 */

let store: LocalGitStore;
let repoDir: string;
let cleanup: () => Promise<void>;
let outside: { path: string; cleanup: () => Promise<void> };
let made = 0;

type Entry = [path: string, mode: '100644' | '100755' | '120000' | '160000', content: string];

const blobs = new Map<string, string>();
function blobOf(content: string): string {
  let id = blobs.get(content);
  if (id === undefined) blobs.set(content, (id = gitSync(repoDir, ['hash-object', '-w', '--stdin'], { input: content }).trim()));
  return id;
}

/** A commit of exactly these entries (a link's content is its target; a gitlink's is ignored). */
function commitOf(entries: Entry[]): string {
  made += 1;
  const env = cliEnv({ GIT_INDEX_FILE: join(repoDir, '.git', `move-index-${made}`) });
  const lines = entries.map(([path, mode, content]) => {
    const id = mode === '160000' ? 'a'.repeat(40) : blobOf(content);
    return `${mode} ${id}\t${path}\0`;
  });
  execFileSync('git', ['update-index', '-z', '--index-info'], { cwd: repoDir, env, input: lines.join('') });
  const tree = execFileSync('git', ['write-tree'], { cwd: repoDir, env }).toString().trim();
  return execFileSync('git', ['commit-tree', tree, '-m', `commit ${made}`], { cwd: repoDir, env })
    .toString()
    .trim();
}

const OLD: Entry[] = [
  ['.gitignore', '100644', '*.log\n'],
  ['src/a.ts', '100644', 'a\n'],
  ['src/b.ts', '100644', 'b\n'],
  ['src/deep/c.ts', '100644', 'c\n'],
  ['gone/only/x.txt', '100644', 'x\n'],
  ['bin/run', '100644', 'echo run\n'],
  ['link', '120000', 'src/a.ts'],
  ['kept/k.txt', '100644', 'k\n'],
];
const NEW: Entry[] = [
  ['.gitignore', '100644', '*.log\n'],
  ['src/a.ts', '100644', 'a, changed\n'],
  ['src/deep/c.ts', '100644', 'c\n'],
  ['src/deep/new/d.ts', '100644', 'd\n'],
  ['fresh/one/two/e.ts', '100644', 'e\n'],
  ['bin/run', '100755', 'echo run\n'],
  ['link', '120000', 'src/deep/c.ts'],
  ['newlink', '120000', 'kept/k.txt'],
  ['kept/k.txt', '100644', 'k\n'],
];
let oldBase: string;
let newBase: string;

beforeAll(async () => {
  const repo = await initRepo();
  cleanup = repo.cleanup;
  repoDir = repo.dir;
  oldBase = commitOf(OLD);
  newBase = commitOf(NEW);
  store = await openLocalStore(repoDir);
  outside = await tempDir('agora-ws-move-');
});
afterAll(async () => {
  await outside.cleanup();
  await cleanup();
});

/** Every path below `dir`: kind, mode bits for files, and content or link target. */
function describeDir(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const info = lstatSync(join(dir, path));
    if (info.isDirectory()) out.push(`dir ${path}`, ...describeDir(dir, path));
    else if (info.isSymbolicLink()) out.push(`link ${path} -> ${readlinkSync(join(dir, path))}`);
    else out.push(`file ${path} ${(info.mode & 0o111) !== 0 ? 'x' : '-'} ${JSON.stringify(readFileSync(join(dir, path), 'utf8'))}`);
  }
  return out;
}

/** A workspace at `commit` that has been re-targeted once, as the pool hands them out (it has stamps). */
async function usedWorkspace(commit: string): Promise<Workspace> {
  made += 1;
  const ws = await materializeWorkspace(store, commit, join(outside.path, `used-${made}`), { method: 'cli' });
  const used = await retargetWorkspace(ws, commit);
  expect(used.stamps).toBeDefined();
  return used;
}

async function fresh(commit: string): Promise<Workspace> {
  made += 1;
  return materializeWorkspace(store, commit, join(outside.path, `fresh-${made}`), { method: 'cli' });
}

/** A hostile worker: changes a file the next base changes too, removes one it keeps, adds one, leaves an ignored one. */
function worker(dir: string): void {
  writeFileSync(join(dir, 'src/a.ts'), 'worker\n');
  unlinkSync(join(dir, 'src/deep/c.ts'));
  writeFileSync(join(dir, 'src/extra.ts'), 'extra\n');
  writeFileSync(join(dir, 'gone/only/debug.log'), 'log\n');
  chmodSync(join(dir, 'kept/k.txt'), 0o755);
}

describe('moving a workspace by the difference between bases', () => {
  it('ends exactly as a fresh checkout of the next base: files, modes, links, directories, index and layout', async () => {
    const ws = await usedWorkspace(oldBase);
    worker(ws.dir);
    const captured = await captureWorkspace(ws);
    expect(captured.survey).toBeDefined(); // the move by the difference needs one
    const written = await retargetWorkspace(ws, newBase, captured);
    // The files were written in-process: the index lacks the entries that differ until git next reads it.
    expect([...(written.indexBehind?.keys() ?? [])].sort()).toEqual([
      'bin/run',
      'fresh/one/two/e.ts',
      'gone/only/x.txt',
      'link',
      'newlink',
      'src/a.ts',
      'src/b.ts',
      'src/deep/new/d.ts',
    ]);
    const moved = await catchUpIndex(written);
    expect(moved.indexBehind).toBeUndefined();
    const reference = await fresh(newBase);
    try {
      expect(describeDir(moved.dir)).toEqual(describeDir(reference.dir));
      expect(gitOnWorkspace(moved, 'ls-files', '-s')).toBe(gitOnWorkspace(reference, 'ls-files', '-s'));
      // git finds the files as the index has them, and nothing untracked or ignored (a restored file may be
      // stat-dirty: git compares its content).
      expect(gitOnWorkspace(moved, '--no-optional-locks', 'diff', '--name-only')).toBe('');
      expect(gitOnWorkspace(moved, 'ls-files', '--others')).toBe('');
      // The layout follows from the old one and the difference; it is what a listing of the next base gives.
      const listed = await retargetWorkspace(reference, newBase);
      expect([...moved.layout!.dirs].sort()).toEqual([...listed.layout!.dirs].sort());
      expect([...moved.layout!.files].sort()).toEqual([...listed.layout!.files].sort());
      // Every path of the next base is stamped, and nothing else.
      expect([...moved.stamps!.stamps.keys()].sort()).toEqual([...listed.stamps!.stamps.keys()].sort());
    } finally {
      await removeWorkspace(moved);
      await removeWorkspace(reference);
    }
  });

  it('keeps catching a worker that restores times after the move: a file the move wrote and one neither side touched', async () => {
    const ws = await usedWorkspace(oldBase);
    worker(ws.dir);
    const moved = await retargetWorkspace(ws, newBase, await captureWorkspace(ws));
    // Same size, times put back to the nanosecond (touch -r): only the ctime, which no worker sets, tells.
    for (const path of ['src/deep/new/d.ts', '.gitignore']) {
      const abs = join(moved.dir, path);
      const saved = join(outside.path, `times-${(made += 1)}`);
      writeFileSync(saved, '');
      execFileSync('touch', ['-r', abs, saved]);
      writeFileSync(abs, readFileSync(abs, 'utf8').toUpperCase());
      execFileSync('touch', ['-r', saved, abs]);
      expect(statSync(abs, { bigint: true }).mtimeNs).toBe(statSync(saved, { bigint: true }).mtimeNs);
    }
    const captured = await captureWorkspace(moved);
    expect(captured.survey).toBeDefined();
    expect(captured.changes.map((c) => c.path).sort()).toEqual(['.gitignore', 'src/deep/new/d.ts']);
    const back = await retargetWorkspace(moved, newBase, captured);
    const reference = await fresh(newBase);
    expect(describeDir(back.dir)).toEqual(describeDir(reference.dir));
    await removeWorkspace(back);
    await removeWorkspace(reference);
  });

  it('writes again a tracked file whose content git finds unchanged: a mode git does not record, a time', async () => {
    for (const target of [oldBase, newBase]) {
      const ws = await usedWorkspace(oldBase);
      const modeOnly = join(ws.dir, 'kept/k.txt');
      const timeOnly = join(ws.dir, 'src/b.ts');
      chmodSync(modeOnly, 0o600);
      execFileSync('touch', ['-d', '2040-01-01', timeOnly]);
      const captured = await captureWorkspace(ws);
      expect(captured.changes).toEqual([]); // git records neither
      expect(captured.survey?.touched).toEqual(expect.arrayContaining(['kept/k.txt', 'src/b.ts']));
      const moved = await retargetWorkspace(ws, target, captured);
      const reference = await fresh(target);
      expect(statSync(join(moved.dir, 'kept/k.txt')).mode, target).toBe(statSync(join(reference.dir, 'kept/k.txt')).mode);
      if (target === oldBase) expect(statSync(join(moved.dir, 'src/b.ts')).mtimeMs).toBeLessThan(Date.parse('2039-01-01'));
      await removeWorkspace(moved);
      await removeWorkspace(reference);
    }
  });

  it('gives directories back the mode a fresh checkout gives them, which git does not record', async () => {
    for (const target of [oldBase, newBase]) {
      const ws = await usedWorkspace(oldBase);
      chmodSync(join(ws.dir, 'src'), 0o777);
      chmodSync(join(ws.dir, 'kept'), 0o700);
      const moved = await retargetWorkspace(ws, target, await captureWorkspace(ws));
      const reference = await fresh(target);
      for (const dir of ['src', 'kept']) expect(statSync(join(moved.dir, dir)).mode, `${dir} at ${target}`).toBe(statSync(join(reference.dir, dir)).mode);
      await removeWorkspace(moved);
      await removeWorkspace(reference);
    }
  });

  it('writes again a touched file when the move is left to read-tree (a file becomes a directory)', async () => {
    const swapped = commitOf([...OLD.filter(([p]) => p !== 'src/b.ts'), ['src/b.ts/inner', '100644', 'now a directory\n']]);
    // git writes the file and records its stat data; the chmod comes within the same second, where git's
    // compare (whole seconds) cannot see it. A second boundary in between: another workspace.
    let ws = await usedWorkspace(oldBase);
    for (let tries = 1; ; tries += 1) {
      const file = join(ws.dir, 'kept/k.txt');
      gitOnWorkspace(ws, 'checkout-index', '--force', '--index', '--', 'kept/k.txt');
      const written = Math.floor(lstatSync(file).ctimeMs / 1000);
      chmodSync(file, 0o600);
      if (Math.floor(lstatSync(file).ctimeMs / 1000) === written) break;
      expect(tries).toBeLessThan(5);
      await removeWorkspace(ws);
      ws = await usedWorkspace(oldBase);
    }
    expect(gitOnWorkspace(ws, 'diff-files', '--name-only')).toBe(''); // git's own compare sees nothing
    const captured = await captureWorkspace(ws);
    expect(captured.survey?.touched).toContain('kept/k.txt');
    const moved = await retargetWorkspace(ws, swapped, captured);
    const reference = await fresh(swapped);
    expect(statSync(join(moved.dir, 'kept/k.txt')).mode).toBe(statSync(join(reference.dir, 'kept/k.txt')).mode);
    expect(describeDir(moved.dir)).toEqual(describeDir(reference.dir));
    await removeWorkspace(moved);
    await removeWorkspace(reference);
  });

  it('moves back and forth between the bases, each time exactly a fresh checkout', async () => {
    let ws = await usedWorkspace(oldBase);
    const references = new Map<string, string[]>();
    for (const commit of [oldBase, newBase]) {
      const reference = await fresh(commit);
      references.set(commit, describeDir(reference.dir));
      await removeWorkspace(reference);
    }
    for (const commit of [newBase, oldBase, newBase, newBase, oldBase]) {
      writeFileSync(join(ws.dir, 'kept/k.txt'), 'changed by a worker\n');
      ws = await retargetWorkspace(ws, commit, await captureWorkspace(ws));
      expect(describeDir(ws.dir)).toEqual(references.get(commit));
    }
    await removeWorkspace(ws);
  });
});

describe('an index left behind by a move written in-process', () => {
  /** A workspace moved from the old base to the new one in-process, its index lacking the difference. */
  async function movedInProcess(): Promise<Workspace> {
    const ws = await usedWorkspace(oldBase);
    const moved = await retargetWorkspace(ws, newBase, await captureWorkspace(ws));
    expect(moved.indexBehind?.size).toBeGreaterThan(0);
    return moved;
  }

  it('is caught up before a capture runs git: the tree is what a fresh workspace captures', async () => {
    const moved = await movedInProcess();
    const reference = await fresh(newBase);
    for (const ws of [moved, reference]) {
      writeFileSync(join(ws.dir, 'src/deep/new/d.ts'), 'worker\n'); // a file the move wrote
      writeFileSync(join(ws.dir, 'untracked.ts'), 'new\n'); // an untracked file: git records the capture
    }
    const captured = await captureWorkspace(moved);
    expect(captured.survey).toBeDefined();
    expect(captured.tree).toBe((await captureWorkspace(reference)).tree);
    expect(captured.changes.map((c) => c.path)).toEqual(['src/deep/new/d.ts', 'untracked.ts']);
    await removeWorkspace(moved);
    await removeWorkspace(reference);
  });

  it('is caught up before read-tree moves the workspace: what only the index lacked is removed too', async () => {
    // newlink is only in the new base, written in-process; read-tree on an index that lacks it would leave
    // it. src/a.ts, a file in the new base, is a directory in this one: the move is read-tree's.
    const swapped = commitOf([...OLD.filter(([p]) => p !== 'src/a.ts'), ['src/a.ts/inner', '100644', 'now a directory\n']]);
    const moved = await settled(await movedInProcess());
    expect(moved.indexBehind?.has('newlink')).toBe(true);
    const captured = await captureWorkspace(moved);
    expect(captured.survey?.touched).toEqual([]); // nothing is removed before read-tree as touched
    const back = await retargetWorkspace(moved, swapped, captured);
    expect(back.indexBehind).toBeUndefined();
    const reference = await fresh(swapped);
    expect(describeDir(back.dir)).toEqual(describeDir(reference.dir));
    expect(gitOnWorkspace(back, 'ls-files', '-s')).toBe(gitOnWorkspace(reference, 'ls-files', '-s'));
    await removeWorkspace(back);
    await removeWorkspace(reference);
  });

  it('is left to git where attributes could make it write a file otherwise than as its bytes', async () => {
    const attributes: Entry = ['.gitattributes', '100644', '*.txt eol=crlf\n'];
    const from = commitOf([attributes, ['notes/a.txt', '100644', 'one\n']]);
    const to = commitOf([attributes, ['notes/a.txt', '100644', 'one\ntwo\n'], ['notes/b.txt', '100644', 'b\n']]);
    const ws = await usedWorkspace(from);
    const moved = await retargetWorkspace(ws, to, await captureWorkspace(ws));
    expect(moved.indexBehind).toBeUndefined();
    const reference = await fresh(to);
    expect(readFileSync(join(reference.dir, 'notes/a.txt'), 'utf8')).toBe('one\r\ntwo\r\n'); // what git writes there
    expect(describeDir(moved.dir)).toEqual(describeDir(reference.dir));
    await removeWorkspace(moved);
    await removeWorkspace(reference);
  });

  it('is put into the index by git, with what it lacked before, once a move is large', async () => {
    const many: Entry[] = Array.from({ length: 300 }, (_, i) => [`many/f${i}.txt`, '100644', `${i}\n`]);
    const large = commitOf([...NEW, ...many]);
    const ws = await movedInProcess();
    writeFileSync(join(ws.dir, 'src/a.ts'), 'worker\n');
    const captured = await captureWorkspace(ws);
    expect(captured.survey).toBeDefined(); // a move by the difference, too large to write here
    const moved = await retargetWorkspace(ws, large, captured);
    const reference = await fresh(large);
    expect(moved.indexBehind).toBeUndefined();
    expect(describeDir(moved.dir)).toEqual(describeDir(reference.dir));
    expect(gitOnWorkspace(moved, 'ls-files', '-s')).toBe(gitOnWorkspace(reference, 'ls-files', '-s'));
    await removeWorkspace(moved);
    await removeWorkspace(reference);
  });

  it('is put into the index by git once more than 1,024 entries would be left behind, however small each move', async () => {
    // Base k differs from base k-1 in 250 files (under the 256 a move may write here): four moves leave
    // 1,000 entries behind; the fifth would leave 1,250, so git does it and the index is whole again.
    const GROUP = 250;
    const baseWith = (k: number) =>
      commitOf(Array.from({ length: 5 * GROUP }, (_, i): Entry => [`cap/d${i % 25}/f${i}.txt`, '100644', i < k * GROUP ? 'after\n' : 'before\n']));
    const bases = [0, 1, 2, 3, 4, 5].map(baseWith);
    let ws = await usedWorkspace(bases[0]!);
    for (let k = 1; k <= 4; k += 1) {
      ws = await retargetWorkspace(ws, bases[k]!, await captureWorkspace(ws));
      expect(ws.indexBehind?.size).toBe(k * GROUP);
    }
    const captured = await captureWorkspace(ws);
    expect(captured.survey).toBeDefined(); // still a move by the difference, of 250 files
    ws = await retargetWorkspace(ws, bases[5]!, captured);
    expect(ws.indexBehind).toBeUndefined();
    const reference = await fresh(bases[5]!);
    expect(gitOnWorkspace(ws, 'ls-files', '-s')).toBe(gitOnWorkspace(reference, 'ls-files', '-s'));
    expect(describeDir(ws.dir)).toEqual(describeDir(reference.dir));
    await removeWorkspace(ws);
    await removeWorkspace(reference);
  });

  it('never makes a directory through a link a process left in place of a directory after the capture', async () => {
    const ws = await usedWorkspace(oldBase);
    const captured = await captureWorkspace(ws);
    // A process that outlived its worker swaps src/deep (where the next base adds new/) for a link.
    const elsewhere = join(outside.path, `elsewhere-${(made += 1)}`);
    mkdirSync(elsewhere);
    rmSync(join(ws.dir, 'src/deep'), { recursive: true });
    symlinkSync(elsewhere, join(ws.dir, 'src/deep'));
    await expect(retargetWorkspace(ws, newBase, captured)).rejects.toThrow(); // the pool makes it afresh
    expect(readdirSync(elsewhere)).toEqual([]);
    await removeWorkspace(ws);
  });

  it('leaves to git a link git will not check out, named .gitmodules, and fails as a fresh checkout does', async () => {
    // git's index refuses the entry (so commitOf cannot make it): the tree is made by hand.
    const target = gitSync(repoDir, ['hash-object', '-w', '--stdin'], { input: 'kept/k.txt' }).trim();
    const listing = gitSync(repoDir, ['ls-tree', newBase]) + `120000 blob ${target}\t.gitmodules\n`;
    const tree = gitSync(repoDir, ['mktree'], { input: listing }).trim();
    const link = gitSync(repoDir, ['commit-tree', tree, '-m', 'a link named .gitmodules']).trim();
    expect(gitSync(repoDir, ['ls-tree', link, '.gitmodules'])).toContain('120000');
    const ws = await usedWorkspace(newBase);
    // git will not have it in an index, so it cannot write it: the re-target fails, as a fresh checkout of
    // that base does (the pool then tries one), and nothing is written in-process behind git's back.
    await expect(retargetWorkspace(ws, link, await captureWorkspace(ws))).rejects.toThrow(/\.gitmodules/);
    await expect(fresh(link)).rejects.toThrow(/\.gitmodules/);
    expect(lstatSync(join(ws.dir, '.gitmodules'), { throwIfNoEntry: false })).toBeUndefined();
    await removeWorkspace(ws);
  });
});

/** Ticks of the clock that stamps the workspace's files, so that a stamp taken now is not racy. */
async function clockPast(ms: number): Promise<void> {
  const probe = join(outside.path, `probe-${(made += 1)}`);
  for (let i = 0; i < 100_000 && (!existsSync(probe) || statSync(probe).ctimeMs <= ms); i++) {
    writeFileSync(probe, String(i));
    await new Promise((resolve) => setImmediate(resolve));
  }
  rmSync(probe, { force: true });
}

/**
 * The workspace with its stamps taken again a clock tick after its files were last written, as a later
 * re-target would take them: none is racy (a file written in the tick of the marker counts as touched,
 * and is removed before a move), so a capture finds nothing touched.
 */
async function settled(ws: Workspace): Promise<Workspace> {
  await clockPast(ws.stamps!.racyFrom);
  const stamps = takeStamps(ws.dir, `${ws.indexFile}.stamp`, ws.layout!)!;
  for (const stamp of stamps.stamps.values()) expect(stamp.ctimeMs).toBeLessThan(stamps.racyFrom);
  return { ...ws, stamps };
}

/** The store, counting the trees read through it. */
function counting(inner: LocalGitStore): { store: GitStore; reads: string[] } {
  const reads: string[] = [];
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'readTree') return (oid: string) => (reads.push(oid), target.readTree(oid));
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, reads };
}

describe('baseMove', () => {
  const treeOf = (commit: string) => gitSync(repoDir, ['rev-parse', `${commit}^{tree}`]).trim();
  const layoutOf = (commit: string) => {
    const files = new Map<string, string>();
    const dirs: string[] = [];
    for (const line of gitSync(repoDir, ['ls-tree', '-r', '-t', '-z', commit]).split('\0').filter(Boolean)) {
      const [meta, path] = line.split('\t') as [string, string];
      if (meta.startsWith('040000')) dirs.push(path);
      else files.set(path, meta);
    }
    return { dirs, files, gitlinks: [], exact: true };
  };

  it('reads only the subtrees whose ids differ', async () => {
    const { store: seen, reads } = counting(store);
    const move = await baseMove(seen, treeOf(oldBase), treeOf(newBase), layoutOf(oldBase));
    expect(move).not.toBeNull();
    const kept = gitSync(repoDir, ['rev-parse', `${newBase}:kept`]).trim();
    expect(gitSync(repoDir, ['rev-parse', `${oldBase}:kept`]).trim()).toBe(kept);
    expect(reads).not.toContain(kept);
    expect([...move!.dirsRemoved].sort()).toEqual(['gone', 'gone/only']);
    expect([...move!.dirsAdded].sort()).toEqual(['fresh', 'fresh/one', 'fresh/one/two', 'src/deep/new']);
  });

  it('leaves an empty tree to git: a directory git lists but never checks out', async () => {
    const emptyTree = gitSync(repoDir, ['hash-object', '-w', '-t', 'tree', '--stdin'], { input: '' }).trim();
    const env = cliEnv({ GIT_INDEX_FILE: join(repoDir, '.git', `move-index-${(made += 1)}`) });
    execFileSync('git', ['read-tree', oldBase], { cwd: repoDir, env });
    execFileSync('git', ['update-index', '--force-remove', 'gone/only/x.txt'], { cwd: repoDir, env });
    const tree = execFileSync('git', ['write-tree'], { cwd: repoDir, env }).toString().trim();
    // The same tree with gone/ holding an empty tree instead of only/x.txt.
    const listing = gitSync(repoDir, ['ls-tree', tree]) + `040000 tree ${emptyTree}\tgone\n`;
    const withEmpty = gitSync(repoDir, ['mktree'], { input: listing }).trim();
    expect(await baseMove(store, treeOf(oldBase), withEmpty, layoutOf(oldBase))).toBeNull();
  });

  it('leaves to git a path that is a file on one side and a directory on the other, and a submodule', async () => {
    const swapped = commitOf([...OLD.filter(([p]) => p !== 'src/b.ts'), ['src/b.ts/inner', '100644', 'now a directory\n']]);
    expect(await baseMove(store, treeOf(oldBase), treeOf(swapped), layoutOf(oldBase))).toBeNull();
    const withSubmodule = commitOf([...OLD, ['vendor/lib', '160000', '']]);
    expect(await baseMove(store, treeOf(oldBase), treeOf(withSubmodule), layoutOf(oldBase))).toBeNull();
    // ...and a re-target across such a difference is still exactly a fresh checkout (read-tree moves it).
    const ws = await usedWorkspace(oldBase);
    writeFileSync(join(ws.dir, 'src/b.ts'), 'worker\n');
    const moved = await retargetWorkspace(ws, swapped, await captureWorkspace(ws));
    const reference = await fresh(swapped);
    expect(describeDir(moved.dir)).toEqual(describeDir(reference.dir));
    await removeWorkspace(moved);
    await removeWorkspace(reference);
  });
});
