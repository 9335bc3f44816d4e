import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, removeWorkspace, retargetWorkspace, type Workspace, type WorkspaceMethod } from '../../src/git/workspace.js';
import { gitCliAvailable } from '../../src/git/git-cli.js';
import { gitListTree, gitSync, initRepo, tempDir } from './git-fixtures.js';

const METHODS: WorkspaceMethod[] = ['cli', 'isomorphic-git'];
let repoDir: string;
let gitdir: string;
let store: LocalGitStore;
let base: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const repo = await initRepo();
  cleanup = repo.cleanup;
  repoDir = repo.dir;
  gitdir = repo.gitdir;
  const w = (p: string, text: string) => mkdir(join(repoDir, p, '..'), { recursive: true }).then(() => writeFile(join(repoDir, p), text));
  await w('README.md', '# readme\n');
  await w('src/a.ts', 'export const a = 1;\n');
  await w('src/lib/b.ts', 'export const b = 2;\n');
  await w('bin/run.sh', '#!/bin/sh\necho run\n');
  await chmod(join(repoDir, 'bin/run.sh'), 0o755);
  await symlink('README.md', join(repoDir, 'link'));
  await w('.gitignore', '*.log\nbuild/\n');
  await w('keep.log', 'tracked although ignored\n');
  await w('build/tracked.txt', 'tracked inside an ignored directory\n');
  await w('docs/.gitignore', '*.tmp\n!important.tmp\n');
  await w('docs/guide.md', 'guide\n');
  await w('removed-dir/x', 'x\n');
  await w('file-to-dir', 'a file for now\n');
  await w(join('.git', 'info', 'exclude'), 'secret.txt\n');
  gitSync(repoDir, ['add', '-A']);
  gitSync(repoDir, ['add', '-f', 'keep.log', 'build/tracked.txt']);
  gitSync(repoDir, ['commit', '-q', '-m', 'base']);
  base = gitSync(repoDir, ['rev-parse', 'HEAD']).trim();
  store = await openLocalStore(repoDir);
});
afterAll(() => cleanup());

/** Workspaces go outside the repository (materialising one inside it is refused); this is the pool's place. */
let outside: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  outside = await tempDir('agora-ws-');
});
afterAll(() => outside.cleanup());

function scratch(name: string): string {
  return join(outside.path, 'run1', name);
}

/** Every path below `dir` with what git would record about it: kind, exec bit, content or link target. */
async function describeDir(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const info = await lstat(join(dir, rel));
    if (info.isDirectory()) out.push(`dir ${rel}`, ...(await describeDir(dir, rel)));
    else if (info.isSymbolicLink()) out.push(`link ${rel} -> ${await readlink(join(dir, rel))}`);
    else out.push(`file ${rel} ${info.mode & 0o100 ? 'x' : '-'} ${JSON.stringify(await readFile(join(dir, rel), 'utf8'))}`);
  }
  return out;
}

/** The worker's edits: every kind of change, plus files that must be ignored. */
async function edit(dir: string): Promise<void> {
  const w = async (p: string, text: string) => {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), text);
  };
  await w('src/a.ts', 'export const a = 42;\n'); // modify
  await rm(join(dir, 'src/lib/b.ts')); // delete (empties src/lib)
  await w('src/new/deep/c.ts', 'export const c = 3;\n'); // new nested file
  await chmod(join(dir, 'README.md'), 0o755); // exec bit on
  await chmod(join(dir, 'bin/run.sh'), 0o644); // exec bit off
  await symlink('a.ts', join(dir, 'src/ln')); // new symlink
  await rm(join(dir, 'link'));
  await symlink('src/a.ts', join(dir, 'link')); // retargeted symlink
  await w('keep.log', 'tracked, ignored, changed\n'); // a tracked file stays tracked though ignored
  await rm(join(dir, 'removed-dir'), { recursive: true });
  await w('removed-dir', 'now a file\n'); // directory → file
  await rm(join(dir, 'file-to-dir'));
  await w('file-to-dir/inner', 'now a directory\n'); // file → directory
  await mkdir(join(dir, 'empty-dir')); // git records no empty directories
  await w('debug.log', 'ignored by *.log\n');
  await w('build/out.o', 'ignored by build/\n');
  await w('build/tracked.txt', 'changed inside an ignored directory\n'); // still tracked
  await w('src/build/gen.ts', 'ignored by build/ at any depth\n');
  await w('secret.txt', 'ignored by info/exclude\n');
  await w('docs/scratch.tmp', 'ignored by docs/.gitignore\n');
  await w('docs/important.tmp', 're-included by !important.tmp\n');
}

const EXPECTED_CHANGED_PATHS = [
  'README.md',
  'bin/run.sh',
  'build/tracked.txt',
  'docs/important.tmp',
  'file-to-dir',
  'file-to-dir/inner',
  'keep.log',
  'link',
  'removed-dir',
  'removed-dir/x',
  'src/a.ts',
  'src/lib/b.ts',
  'src/ln',
  'src/new/deep/c.ts',
];

describe('workspaces', () => {
  it('has the git CLI on this machine (the CLI half of these tests is real)', async () => {
    expect(await gitCliAvailable()).toBe(true);
  });

  it('materialises the same files, modes and links with both methods, and captures the base tree unchanged', async () => {
    const seen: string[][] = [];
    for (const method of METHODS) {
      const ws = await materializeWorkspace(store, base, scratch(`roundtrip.${method}`), { method });
      expect(ws.method).toBe(method);
      expect(ws.indexFile.startsWith(ws.dir)).toBe(true);
      expect(ws.indexFile.startsWith(`${ws.dir}/`)).toBe(false); // outside the workspace
      const listing = await describeDir(ws.dir);
      expect(listing).toContain('file bin/run.sh x "#!/bin/sh\\necho run\\n"');
      expect(listing).toContain('file README.md - "# readme\\n"');
      expect(listing).toContain('link link -> README.md');
      expect(listing).toContain('file keep.log - "tracked although ignored\\n"');
      seen.push(listing);
      const captured = await captureWorkspace(ws);
      expect(captured.tree).toBe(ws.baseTree);
      expect(captured.changes).toEqual([]);
      await removeWorkspace(ws);
      expect(existsSync(ws.dir)).toBe(false);
      expect(existsSync(ws.indexFile)).toBe(false);
    }
    expect(seen[1]).toEqual(seen[0]);
  });

  it('captures edits, deletions, nesting, exec bits, symlinks and file↔directory swaps, leaving ignored files out — identically by both methods', async () => {
    const trees: string[] = [];
    for (const method of METHODS) {
      const ws = await materializeWorkspace(store, base, scratch(`edit.${method}`), { method });
      await edit(ws.dir);
      const { tree, changes } = await captureWorkspace(ws);
      expect(changes.map((c) => c.path)).toEqual(EXPECTED_CHANGED_PATHS);
      trees.push(tree);
      await removeWorkspace(ws);
    }
    expect(trees[1]).toBe(trees[0]);

    const listing = gitListTree(gitdir, trees[0]!).map((l) => l.replace(/ [0-9a-f]{40} /, ' '));
    expect(listing).toEqual(
      expect.arrayContaining([
        '100755 README.md',
        '100644 bin/run.sh',
        '120000 link',
        '120000 src/ln',
        '100644 keep.log',
        '100644 removed-dir',
        '100644 file-to-dir/inner',
        '100644 src/new/deep/c.ts',
        '100644 docs/important.tmp',
      ]),
    );
    const paths = listing.map((l) => l.split(' ')[1]);
    for (const ignored of ['debug.log', 'build/out.o', 'src/build/gen.ts', 'secret.txt', 'docs/scratch.tmp', 'src/lib/b.ts', 'removed-dir/x', 'file-to-dir']) {
      expect(paths).not.toContain(ignored);
    }
    expect(paths.some((p) => p?.startsWith('empty-dir'))).toBe(false);
    expect(gitSync(repoDir, ['cat-file', '-p', `${trees[0]}:link`])).toBe('src/a.ts');
    expect(gitSync(repoDir, ['fsck', '--strict', '--no-dangling'])).toBe('');
    // The repository's own index and work tree are untouched by workspaces.
    expect(gitSync(repoDir, ['status', '--porcelain'])).toBe('');
  });

  it('captures identically whichever method captures a workspace the other method made', async () => {
    const results: string[] = [];
    for (const [make, capture] of [
      ['cli', 'isomorphic-git'],
      ['isomorphic-git', 'cli'],
    ] as Array<[WorkspaceMethod, WorkspaceMethod]>) {
      const ws = await materializeWorkspace(store, base, scratch(`cross.${make}`), { method: make });
      await edit(ws.dir);
      results.push((await captureWorkspace(ws, { method: capture })).tree);
      await removeWorkspace(ws);
    }
    const reference = await materializeWorkspace(store, base, scratch('cross.reference'), { method: 'cli' });
    await edit(reference.dir);
    const expected = (await captureWorkspace(reference)).tree;
    await removeWorkspace(reference);
    expect(results).toEqual([expected, expected]);
  });

  it('captures repositories a worker created inside the workspace as plain files, by both methods', async () => {
    const results: string[] = [];
    for (const method of METHODS) {
      const ws = await materializeWorkspace(store, base, scratch(`nested.${method}`), { method });
      const repoAt = async (rel: string, commit: boolean) => {
        await mkdir(join(ws.dir, rel), { recursive: true });
        gitSync(join(ws.dir, rel), ['init', '-q']);
        await writeFile(join(ws.dir, rel, 'lib.rs'), `// ${rel}\n`);
        await writeFile(join(ws.dir, rel, '.gitignore'), 'target/\n');
        await mkdir(join(ws.dir, rel, 'target'), { recursive: true });
        await writeFile(join(ws.dir, rel, 'target', 'out.bin'), 'build output\n');
        if (commit) gitSync(join(ws.dir, rel), ['commit', '-q', '--allow-empty', '-m', 'nested']);
      };
      await repoAt('fresh', false); // `git init` only: git add alone would fail on it
      await repoAt('crates/made', true); // with a commit: git add alone would record a dangling gitlink
      await repoAt('crates/made/inner', false); // nested twice
      const { tree, changes } = await captureWorkspace(ws);
      expect(changes.map((c) => `${c.after?.mode} ${c.path}`)).toEqual([
        '100644 crates/made/.gitignore',
        '100644 crates/made/inner/.gitignore',
        '100644 crates/made/inner/lib.rs',
        '100644 crates/made/lib.rs',
        '100644 fresh/.gitignore',
        '100644 fresh/lib.rs',
      ]);
      expect((await lstat(join(ws.dir, 'crates/made/.git'))).isDirectory()).toBe(true); // put back afterwards
      results.push(tree);
      await removeWorkspace(ws);
    }
    expect(results[1]).toBe(results[0]);
  });

  it('keeps submodule entries (gitlinks) of the base as they are, by both methods', async () => {
    const sub = await initRepo();
    try {
      await writeFile(join(sub.dir, 'a.txt'), 'a\n');
      gitSync(sub.dir, ['add', 'a.txt']);
      gitSync(sub.dir, ['update-index', '--add', '--cacheinfo', `160000,${'a'.repeat(40)},vendor/mod`]);
      gitSync(sub.dir, ['commit', '-q', '-m', 'with a submodule']);
      const subStore = await openLocalStore(sub.dir);
      const head = gitSync(sub.dir, ['rev-parse', 'HEAD']).trim();
      for (const method of METHODS) {
        const ws = await materializeWorkspace(subStore, head, scratch(`sub-${method}`), { method });
        expect((await lstat(join(ws.dir, 'vendor/mod'))).isDirectory()).toBe(true);
        await writeFile(join(ws.dir, 'a.txt'), 'b\n');
        const { tree, changes } = await captureWorkspace(ws);
        expect(changes.map((c) => c.path)).toEqual(['a.txt']);
        expect(gitListTree(sub.gitdir, tree)).toContain(`160000 ${'a'.repeat(40)} vendor/mod`);
        await removeWorkspace(ws);
      }
    } finally {
      await sub.cleanup();
    }
  });

  // `git clean` skips every `.git` and never looks inside a submodule's directory, so a re-targeted
  // workspace kept what a worker planted there: a repository (`.git/config` with core.fsmonitor, hooks)
  // that the next worker's `git status` would use.
  it('re-targets a workspace to exactly a fresh checkout: no .git anywhere, submodule directories empty, by both methods', async () => {
    const sub = await initRepo();
    try {
      await mkdir(join(sub.dir, 'src/lib'), { recursive: true });
      await writeFile(join(sub.dir, 'src/lib/a.txt'), 'a\n');
      gitSync(sub.dir, ['add', '-A']);
      gitSync(sub.dir, ['update-index', '--add', '--cacheinfo', `160000,${'a'.repeat(40)},vendor/mod`]);
      gitSync(sub.dir, ['commit', '-q', '-m', 'with a submodule']);
      const first = gitSync(sub.dir, ['rev-parse', 'HEAD']).trim();
      await writeFile(join(sub.dir, 'src/lib/a.txt'), 'a2\n');
      gitSync(sub.dir, ['add', 'src/lib/a.txt']); // not commit -a: that would drop the gitlink (no directory here)
      gitSync(sub.dir, ['commit', '-qm', 'second']);
      const second = gitSync(sub.dir, ['rev-parse', 'HEAD']).trim();
      const subStore = await openLocalStore(sub.dir);
      for (const method of METHODS) {
        const fresh = await materializeWorkspace(subStore, second, scratch(`sub-fresh-${method}`), { method });
        const used = await materializeWorkspace(subStore, first, scratch(`sub-used-${method}`), { method });
        const plant = async (at: string) => {
          await mkdir(join(used.dir, at, 'hooks'), { recursive: true });
          await writeFile(join(used.dir, at, 'config'), '[core]\n\tfsmonitor = "touch pwned"\n');
          await writeFile(join(used.dir, at, 'hooks', 'post-checkout'), '#!/bin/sh\ntouch pwned\n', { mode: 0o755 });
        };
        await plant('.git');
        await plant('src/.git');
        await plant('src/lib/.git');
        await plant('vendor/mod/.git');
        await writeFile(join(used.dir, 'vendor/mod/left-behind.txt'), 'x\n');
        await writeFile(join(used.dir, 'src/.GIT'), 'gitdir: /elsewhere\n');
        const again = await retargetWorkspace(used, second);
        expect(again.commit).toBe(second);
        expect(await describeDir(fresh.dir)).toContain('dir vendor/mod');
        expect(await describeDir(again.dir), method).toEqual(await describeDir(fresh.dir));
        await removeWorkspace(again);
        await removeWorkspace(fresh);
      }
    } finally {
      await sub.cleanup();
    }
  });

  // git refuses such trees on checkout, but a pushed commit can hold them (`git mktree` writes them): a
  // tree entry's name is repository-controlled and becomes a path.
  it.each([
    ['a .git directory', (t: (entries: string) => string, blob: string) => t(`040000 tree ${t(`100644 blob ${blob}\tconfig`)}\t.git`), '.git/config'],
    ['a .GIT directory', (t: (entries: string) => string, blob: string) => t(`040000 tree ${t(`100644 blob ${blob}\tconfig`)}\t.GIT`), '.GIT/config'],
    [
      'a .. chain up to the git dir',
      (t: (entries: string) => string, blob: string) => {
        let tree = t(`100644 blob ${blob}\tplanted-config`);
        for (let i = 0; i < 5; i++) tree = t(`040000 tree ${tree}\t..`);
        return tree;
      },
      '../../../../planted-config',
    ],
  ])('refuses to materialise a tree with %s, by both methods, writing nothing there', async (_what, build, planted) => {
    const blob = gitSync(repoDir, ['hash-object', '-w', '--stdin'], { input: '[core]\n\tfsmonitor = "touch pwned"\n' }).trim();
    const mktree = (entries: string) => gitSync(repoDir, ['mktree'], { input: `${entries}\n` }).trim();
    const commit = gitSync(repoDir, ['commit-tree', build(mktree, blob), '-m', 'crafted']).trim();
    for (const method of METHODS) {
      const dir = scratch(`crafted-${method}`);
      const err = await materializeWorkspace(store, commit, dir, { method }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, method).toBeInstanceOf(AgoraError);
      expect(existsSync(join(dir, planted)), method).toBe(false);
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}.index`, { force: true });
    }
    expect(existsSync(join(gitdir, 'planted-config'))).toBe(false);
  });

  it('re-targets after a capture by removing what the capture found untracked (ignored files and empty directories too), to exactly a fresh checkout', async () => {
    const fresh = await materializeWorkspace(store, base, scratch('listed-fresh'), { method: 'cli' });
    const used = await materializeWorkspace(store, base, scratch('listed-used'), { method: 'cli' });
    await edit(used.dir);
    await mkdir(join(used.dir, 'src/new/empty'), { recursive: true });
    // A file replaced by a directory is the one change git's untracked listing does not show (the
    // capture then walks the whole workspace, as the test above shows): undone here.
    await rm(join(used.dir, 'file-to-dir'), { recursive: true });
    await writeFile(join(used.dir, 'file-to-dir'), 'a file for now\n');
    const captured = await captureWorkspace(used);
    expect(captured.changes.map((c) => c.path)).toEqual(EXPECTED_CHANGED_PATHS.filter((p) => !p.startsWith('file-to-dir')));
    // One entry per untracked directory, whatever is in it; ignored files (debug.log, build/out.o, …) too.
    expect([...(captured.untracked ?? [])].sort()).toEqual([
      'build/out.o',
      'debug.log',
      'docs/important.tmp',
      'docs/scratch.tmp',
      'empty-dir/',
      'removed-dir',
      'secret.txt',
      'src/build/',
      'src/ln',
      'src/new/',
    ]);
    const again = await retargetWorkspace(used, base, captured);
    expect(await describeDir(again.dir)).toEqual(await describeDir(fresh.dir));
    expect((await captureWorkspace(again)).changes).toEqual([]);
    await removeWorkspace(again);
    await removeWorkspace(fresh);
  });

  it('works on a bare repository too', async () => {
    const bare = await tempDir();
    try {
      const bareDir = join(bare.path, 'bare.git');
      gitSync(bare.path, ['clone', '-q', '--bare', repoDir, bareDir]);
      await writeFile(join(bareDir, 'info', 'exclude'), 'secret.txt\n');
      const bareStore = await openLocalStore(bareDir);
      expect(bareStore.dir).toBeNull();
      const trees: string[] = [];
      for (const method of METHODS) {
        const ws = await materializeWorkspace(bareStore, base, scratch(`bare.${method}`), { method });
        await edit(ws.dir);
        trees.push((await captureWorkspace(ws)).tree);
        await removeWorkspace(ws);
      }
      expect(trees[1]).toBe(trees[0]);
      // Same content, same excludes: the very tree the work-tree repository captures for these edits.
      const ws = await materializeWorkspace(store, base, scratch('bare-reference'));
      await edit(ws.dir);
      expect((await captureWorkspace(ws)).tree).toBe(trees[0]);
      await removeWorkspace(ws);
      expect(gitListTree(bareDir, trees[0]!).some((l) => l.endsWith(' secret.txt'))).toBe(false);
    } finally {
      await bare.cleanup();
    }
  });

  it('ignores GIT_DIR / GIT_INDEX_FILE / GIT_WORK_TREE inherited from the parent', async () => {
    const saved = { ...process.env };
    process.env.GIT_DIR = '/nonexistent/git';
    process.env.GIT_INDEX_FILE = join(repoDir, 'bogus-index');
    process.env.GIT_WORK_TREE = '/nonexistent/tree';
    try {
      const ws = await materializeWorkspace(store, base, scratch('env'), { method: 'cli' });
      await writeFile(join(ws.dir, 'added.txt'), 'added\n');
      const { changes } = await captureWorkspace(ws);
      expect(changes.map((c) => c.path)).toEqual(['added.txt']);
      await removeWorkspace(ws);
      expect(existsSync(join(repoDir, 'bogus-index'))).toBe(false);
    } finally {
      for (const key of ['GIT_DIR', 'GIT_INDEX_FILE', 'GIT_WORK_TREE']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it('falls back to isomorphic-git when AGORA_GIT_CLI=0', async () => {
    const saved = process.env.AGORA_GIT_CLI;
    process.env.AGORA_GIT_CLI = '0';
    try {
      expect(await gitCliAvailable()).toBe(false);
      const ws = await materializeWorkspace(store, base, scratch('forced-fallback'));
      expect(ws.method).toBe('isomorphic-git');
      expect(existsSync(ws.indexFile)).toBe(false); // the fallback needs no index
      await writeFile(join(ws.dir, 'src/a.ts'), 'changed\n');
      expect((await captureWorkspace(ws)).changes.map((c) => c.path)).toEqual(['src/a.ts']);
      await removeWorkspace(ws);
    } finally {
      if (saved === undefined) delete process.env.AGORA_GIT_CLI;
      else process.env.AGORA_GIT_CLI = saved;
    }
  });

  it('refuses a directory inside the repository (git dir or work tree), where a worker’s git would find it, by both methods', async () => {
    for (const method of METHODS) {
      for (const dir of [join(gitdir, 'agora', 'work', 'pool', '1'), join(repoDir, 'sub', method), gitdir]) {
        const err = await materializeWorkspace(store, base, dir, { method }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AgoraError);
        expect((err as AgoraError).code).toBe('workspace-in-repository');
        expect((err as AgoraError).message).toContain(dir);
      }
    }
    expect(existsSync(join(gitdir, 'agora', 'work'))).toBe(false);
    expect(existsSync(join(repoDir, 'sub'))).toBe(false);
  });

  it('refuses a non-empty directory outside the scratch area, and clears a crashed leftover inside it', async () => {
    const tmp = await tempDir();
    try {
      await writeFile(join(tmp.path, 'precious.txt'), 'keep me\n');
      const err = await materializeWorkspace(store, base, tmp.path).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AgoraError);
      expect((err as AgoraError).code).toBe('workspace-not-empty');
      expect(await readFile(join(tmp.path, 'precious.txt'), 'utf8')).toBe('keep me\n');
    } finally {
      await tmp.cleanup();
    }
    const leftover = scratch('leftover');
    await mkdir(leftover, { recursive: true });
    await writeFile(join(leftover, 'stale.txt'), 'from a crashed attempt\n');
    const ws: Workspace = await materializeWorkspace(store, base, leftover, { scratch: join(leftover, '..') });
    expect(existsSync(join(leftover, 'stale.txt'))).toBe(false);
    expect((await captureWorkspace(ws)).changes).toEqual([]);
    await removeWorkspace(ws);
  });
});
