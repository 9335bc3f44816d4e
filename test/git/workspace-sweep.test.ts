import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, removeWorkspace, retargetWorkspace } from '../../src/git/workspace.js';
import { gitSync, initRepo, tempDir } from './git-fixtures.js';

/**
 * A re-targeted workspace keeps no `.git` a worker planted. The sweep finds them through `git ls-tree -z`
 * of the target, so directory names that git quotes without `-z` (a newline, a tab, a quote, a backslash,
 * non-ASCII) and names that look like options must be found as well as plain ones.
 */
const AWKWARD_DIRS = ['plain', 'new\nline', 'tab\there', 'quote"d', 'back\\slash', 'ümlaut', 'with space', '-dash', 'nested/ü\nx'];

let repo: Awaited<ReturnType<typeof initRepo>>;
let outside: Awaited<ReturnType<typeof tempDir>>;
let store: LocalGitStore;
let first: string;
let second: string;

beforeAll(async () => {
  repo = await initRepo();
  outside = await tempDir('agora-ws-sweep-');
  for (const dir of AWKWARD_DIRS) {
    await mkdir(join(repo.dir, dir), { recursive: true });
    await writeFile(join(repo.dir, dir, 'file.txt'), `${dir}\n`);
  }
  gitSync(repo.dir, ['add', '-A']);
  gitSync(repo.dir, ['commit', '-q', '-m', 'awkward names']);
  first = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
  await writeFile(join(repo.dir, 'plain', 'file.txt'), 'changed\n');
  gitSync(repo.dir, ['commit', '-q', '-am', 'second']);
  second = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
  store = await openLocalStore(repo.dir);
});
afterAll(async () => {
  await outside.cleanup();
  await repo.cleanup();
});

async function plantEverywhere(dir: string): Promise<void> {
  for (const at of ['', ...AWKWARD_DIRS]) {
    await mkdir(join(dir, at, '.git', 'hooks'), { recursive: true });
    await writeFile(join(dir, at, '.git', 'config'), '[core]\n\tfsmonitor = "touch pwned"\n');
  }
}

function plantedLeft(dir: string): string[] {
  return ['', ...AWKWARD_DIRS].filter((at) => existsSync(join(dir, at, '.git')));
}

describe('the .git sweep of a re-targeted workspace', () => {
  it('finds a planted .git in directories whose names git would quote, after a capture (two-tree move)', async () => {
    const ws = await materializeWorkspace(store, first, join(outside.path, 'captured'), { method: 'cli' });
    await plantEverywhere(ws.dir);
    const next = await retargetWorkspace(ws, second, await captureWorkspace(ws));
    expect(plantedLeft(next.dir)).toEqual([]);
    for (const dir of AWKWARD_DIRS) expect(existsSync(join(next.dir, dir, 'file.txt')), dir).toBe(true);
    await removeWorkspace(next);
  });

  it('finds them too when nothing was captured (one-tree reset)', async () => {
    const ws = await materializeWorkspace(store, first, join(outside.path, 'uncaptured'), { method: 'cli' });
    await plantEverywhere(ws.dir);
    const next = await retargetWorkspace(ws, second);
    expect(plantedLeft(next.dir)).toEqual([]);
    await removeWorkspace(next);
  });
});
