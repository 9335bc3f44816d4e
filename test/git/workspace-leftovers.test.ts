import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, removeWorkspace, retargetWorkspace, type Workspace } from '../../src/git/workspace.js';
import { cliEnv, gitSync, initRepo, tempDir } from './git-fixtures.js';

/**
 * A re-target after a capture removes what the capture listed as untracked instead of running `git clean`
 * (workspace.ts). Whatever a hostile worker leaves, the workspace must still end exactly like a fresh
 * checkout of the next base, and the capture must still hold what `git add --all` would take.
 */

let store: LocalGitStore;
let repoDir: string;
let first: string; // t/a, keep/k, f, d/x, .gitignore
let second: string; // without t/; with newdir/n
let withSubmodules: string; // first, with submodules sub and sub2
let subsMoved: string; // second, where sub is gone and sub2 is a directory
let withRawName: string; // first, with a directory whose name is not UTF-8
let rawNameKept: string; // second, keeping that directory
let rawSubmodule: string; // second, with a submodule whose name is not UTF-8 and a tracked file in a directory named as git would misread it
let cleanup: () => Promise<void>;
let outside: { path: string; cleanup: () => Promise<void> };
let made = 0;

const RAW_DIR = Buffer.from('old\xff', 'latin1');

/** A commit of exactly these files (content) and submodules ('gitlink'), built on a private index. */
function commitOf(entries: Array<[Buffer | string, string]>, message: string): string {
  made += 1;
  const env = cliEnv({ GIT_INDEX_FILE: join(repoDir, '.git', `fixture-index-${made}`) });
  const lines = entries.map(([path, content]) => {
    const id = content === 'gitlink' ? 'a'.repeat(40) : gitSync(repoDir, ['hash-object', '-w', '--stdin'], { input: content }).trim();
    return Buffer.concat([Buffer.from(`${content === 'gitlink' ? '160000' : '100644'} ${id}\t`), Buffer.from(path), Buffer.from([0])]);
  });
  execFileSync('git', ['update-index', '-z', '--index-info'], { cwd: repoDir, env, input: Buffer.concat(lines) });
  const tree = execFileSync('git', ['write-tree'], { cwd: repoDir, env }).toString().trim();
  return execFileSync('git', ['commit-tree', tree, '-m', message], { cwd: repoDir, env }).toString().trim();
}

beforeAll(async () => {
  const repo = await initRepo();
  cleanup = repo.cleanup;
  repoDir = repo.dir;
  const base: Array<[string, string]> = [
    ['t/a', 'a\n'],
    ['keep/k', 'k\n'],
    ['f', 'f\n'],
    ['d/x', 'x\n'],
    ['.gitignore', '*.log\nbuild/\n'],
  ];
  const next: Array<[string, string]> = [...base.filter(([p]) => !p.startsWith('t/')), ['newdir/n', 'n\n']];
  first = commitOf(base, 'first');
  second = commitOf(next, 'second');
  withSubmodules = commitOf([...base, ['sub', 'gitlink'], ['sub2', 'gitlink']], 'with submodules');
  subsMoved = commitOf([...next, ['sub2/inside', 'i\n']], 'sub gone, sub2 a directory');
  const raw = Buffer.concat([RAW_DIR, Buffer.from('/a')]);
  withRawName = commitOf([...base, [raw, 'raw\n']], 'a name that is not UTF-8');
  rawNameKept = commitOf([...next, [raw, 'raw\n']], 'keeping it');
  rawSubmodule = commitOf([...next, [Buffer.from('s\xfe', 'latin1'), 'gitlink'], ['s\uFFFD/file', 'tracked\n']], 'a submodule named in bytes');
  store = await openLocalStore(repoDir);
  outside = await tempDir('agora-ws-left-');
});
afterAll(async () => {
  await outside.cleanup();
  await cleanup();
});

/** Every path below `dir`, names by their bytes (latin1): kind, and content or link target. */
function describeDir(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: Buffer, rel: string) => {
    const names = readdirSync(at, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const name of names) {
      const path = Buffer.concat([at, Buffer.from('/'), name]);
      const shown = `${rel}${name.toString('latin1')}`;
      const info = lstatSync(path);
      if (info.isDirectory()) {
        out.push(`dir ${shown}`);
        walk(path, `${shown}/`);
      } else if (info.isSymbolicLink()) out.push(`link ${shown} -> ${readlinkSync(path, 'latin1')}`);
      else out.push(`file ${shown} ${JSON.stringify(readFileSync(path, 'latin1'))}`);
    }
  };
  walk(Buffer.from(dir), '');
  return out;
}

/** A pooled workspace at `commit` that has been re-targeted once (so it knows its base's layout). */
async function usedWorkspace(commit = first): Promise<Workspace> {
  made += 1;
  const ws = await materializeWorkspace(store, commit, join(outside.path, `used-${made}`), { method: 'cli' });
  return retargetWorkspace(ws, commit);
}

async function freshListing(commit: string): Promise<string[]> {
  made += 1;
  const fresh = await materializeWorkspace(store, commit, join(outside.path, `fresh-${made}`), { method: 'cli' });
  try {
    return describeDir(fresh.dir);
  } finally {
    await removeWorkspace(fresh);
  }
}

/** Runs `worker` in a used workspace at `from`, captures, re-targets to `to`; returns that and the capture. */
async function afterWorker(
  worker: (dir: string) => Promise<void>,
  from = first,
  to = second,
): Promise<{ ws: Workspace; captured: Awaited<ReturnType<typeof captureWorkspace>> }> {
  const ws = await usedWorkspace(from);
  await worker(ws.dir);
  const captured = await captureWorkspace(ws);
  return { ws: await retargetWorkspace(ws, to, captured), captured };
}

/** Runs `worker` from `from`, re-targets to `to`, and expects exactly a fresh checkout of `to`. */
async function expectFreshAfter(worker: (dir: string) => Promise<void>, from: string, to: string): Promise<void> {
  const { ws } = await afterWorker(worker, from, to);
  expect(describeDir(ws.dir)).toEqual(await freshListing(to));
  await removeWorkspace(ws);
}

describe('re-targeting by what the capture listed', () => {
  it.each([
    [
      'a .git in a directory only the old base had',
      (dir: string) => mkdir(join(dir, 't/.git')).then(() => writeFile(join(dir, 't/.git/config'), '[core]\n\tfsmonitor = touch pwned\n')),
    ],
    ['a gitfile in a directory only the old base had', (dir: string) => writeFile(join(dir, 't/.git'), 'gitdir: /elsewhere\n')],
  ])('leaves nothing of %s', async (_what, worker) => {
    const { ws, captured } = await afterWorker(worker);
    expect(captured.untracked).toBeDefined(); // the listing was used, not the careful path
    expect(describeDir(ws.dir)).toEqual(await freshListing(second));
    await removeWorkspace(ws);
  });

  // git's output is read as UTF-8: such a name came back as another one, which nothing removed.
  it.each([
    ['ignored by the repository’s *.log', ['\xff.log', '\xfe.log/.git/'], null],
    ['ignored by a * the worker wrote', ['\xfd/file'], '*\n'],
  ])('leaves nothing of names that are not UTF-8, %s', async (_what, names, gitignore) => {
    const { ws } = await afterWorker(async (dir) => {
      if (gitignore !== null) await writeFile(join(dir, '.gitignore'), gitignore);
      for (const name of names) {
        const path = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(name, 'latin1')]);
        if (name.endsWith('/')) mkdirSync(path, { recursive: true });
        else {
          mkdirSync(Buffer.from(path.subarray(0, path.lastIndexOf(0x2f))), { recursive: true });
          writeFileSync(path, 'left\n');
        }
      }
    });
    expect(describeDir(ws.dir)).toEqual(await freshListing(second));
    await removeWorkspace(ws);
  });

  it('leaves nothing in the directory of a submodule, whether the next base drops it or makes it a directory', async () => {
    await expectFreshAfter(
      async (dir) => {
        await writeFile(join(dir, 'sub/planted'), 'planted\n');
        await writeFile(join(dir, 'sub2/planted'), 'planted\n');
      },
      withSubmodules,
      subsMoved,
    );
  });

  it.each([
    ['only the old base has', () => second],
    ['both bases have', () => rawNameKept],
  ])('leaves no .git in a directory whose name is not UTF-8 that %s', async (_what, target) => {
    await expectFreshAfter(
      async (dir) => {
        const planted = Buffer.concat([Buffer.from(`${dir}/`), RAW_DIR, Buffer.from('/.git')]);
        mkdirSync(planted, { recursive: true });
        writeFileSync(Buffer.concat([planted, Buffer.from('/config')]), '[core]\n\tfsmonitor = touch pwned\n');
      },
      withRawName,
      target(),
    );
  });

  it('checks out afresh a target with a submodule whose name is not UTF-8: nothing left in it, nothing of a look-alike path lost', async () => {
    const { ws } = await afterWorker(
      async (dir) => {
        await writeFile(join(dir, 'f'), 'changed\n');
      },
      first,
      rawSubmodule,
    );
    expect(describeDir(ws.dir)).toEqual(await freshListing(rawSubmodule));
    const planted = Buffer.concat([Buffer.from(`${ws.dir}/`), Buffer.from('s\xfe', 'latin1'), Buffer.from('/planted')]);
    writeFileSync(planted, 'planted\n');
    const again = await retargetWorkspace(ws, rawSubmodule, await captureWorkspace(ws));
    expect(describeDir(again.dir)).toEqual(await freshListing(rawSubmodule));
    await removeWorkspace(again);
  });

  it('captures what add --all takes: a negated file in a directory ignored with dir/*, and a name starting with a colon', async () => {
    const ws = await usedWorkspace();
    await appendFile(join(ws.dir, '.gitignore'), 'gen/*\n!gen/keep\nout/**\n!out/keep\n');
    await appendFile(join(store.gitdir, 'info', 'exclude'), 'secret.txt\n');
    for (const p of ['gen/keep', 'gen/drop', 'out/keep', 'out/drop']) {
      await mkdir(join(ws.dir, p, '..'), { recursive: true });
      await writeFile(join(ws.dir, p), `${p}\n`);
    }
    await writeFile(join(ws.dir, ':secret.txt'), 'not the excluded secret.txt\n');
    const captured = await captureWorkspace(ws);
    expect(captured.untracked).toBeDefined();
    expect(captured.changes.map((c) => c.path)).toEqual(['.gitignore', ':secret.txt', 'gen/keep', 'out/keep']);
    await removeWorkspace(ws);
  });

  it('removes nothing outside the workspace when a listed path has come to lie under a link', async () => {
    const target = join(outside.path, 'elsewhere');
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'new'), 'not the workspace’s\n');
    // A process that outlived its worker swaps `keep` for a link after the capture: the list is stale.
    const again = await usedWorkspace();
    await writeFile(join(again.dir, 'keep/new'), 'untracked\n');
    const captured = await captureWorkspace(again);
    expect(captured.untracked).toEqual(['keep/new']);
    await rename(join(again.dir, 'keep'), join(outside.path, 'moved-keep'));
    await symlink(target, join(again.dir, 'keep'));
    const last = await retargetWorkspace(again, second, captured);
    expect(existsSync(join(target, 'new'))).toBe(true);
    expect(existsSync(join(last.dir, 'keep', 'new'))).toBe(false);
    await removeWorkspace(last);
  });
});
