import * as fsp from 'node:fs/promises';
import type * as RealFsPromises from 'node:fs/promises';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, removeWorkspace, retargetWorkspace } from '../../src/git/workspace.js';
import { gitSync, initRepo, tempDir } from './git-fixtures.js';

// A capture hard-links the workspace's index as its copy. Some file systems refuse hard links (EPERM on
// some network and FUSE mounts, EXDEV across mounts): this file's `link` refuses every one, as they do,
// so the capture must take its fallback (a copy that keeps the index's times). Every other call is real.
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof RealFsPromises>();
  const refuse = async (): Promise<never> => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  };
  return { ...real, default: { ...real, link: refuse }, link: refuse };
});

let repo: Awaited<ReturnType<typeof initRepo>>;
let outside: Awaited<ReturnType<typeof tempDir>>;
let store: LocalGitStore;
let base: string;

beforeAll(async () => {
  repo = await initRepo();
  outside = await tempDir('agora-ws-nolink-');
  await writeFile(join(repo.dir, 'a.txt'), 'a\n');
  await writeFile(join(repo.dir, 'b.txt'), 'b\n');
  gitSync(repo.dir, ['add', '-A']);
  gitSync(repo.dir, ['commit', '-q', '-m', 'base']);
  base = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
  store = await openLocalStore(repo.dir);
});
afterAll(async () => {
  await outside.cleanup();
  await repo.cleanup();
});

describe('workspaces where the file system makes no hard links', () => {
  it('captures from a copy of the index, leaving the workspace index as git wrote it, and re-targets from it', async () => {
    await expect(fsp.link(join(repo.dir, 'a.txt'), join(repo.dir, 'a2.txt'))).rejects.toMatchObject({ code: 'EPERM' });
    const ws = await materializeWorkspace(store, base, join(outside.path, 'ws'), { method: 'cli' });
    const indexBefore = await readFile(ws.indexFile);
    const inodeBefore = (await stat(ws.indexFile)).ino;
    await writeFile(join(ws.dir, 'a.txt'), 'changed\n');
    await writeFile(join(ws.dir, 'new.txt'), 'new\n');
    const captured = await captureWorkspace(ws);
    const { tree, changes } = captured;
    expect(changes.map((c) => c.path).sort()).toEqual(['a.txt', 'new.txt']);
    expect(gitSync(repo.dir, ['cat-file', '-p', `${tree}:a.txt`])).toBe('changed\n');
    // The capture's copy is a separate file: the workspace's own index is untouched.
    expect((await stat(ws.indexFile)).ino).toBe(inodeBefore);
    expect(await readFile(ws.indexFile)).toEqual(indexBefore);
    expect((await stat(`${ws.indexFile}.capture`)).ino).not.toBe(inodeBefore);
    // The next item starts from exactly the base again.
    const next = await retargetWorkspace(ws, base, captured);
    expect(await readFile(join(next.dir, 'a.txt'), 'utf8')).toBe('a\n');
    await expect(stat(join(next.dir, 'new.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    await removeWorkspace(next);
  });
});
