import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statAt, statMany, statThreadAnswers, stopStatThread } from '../../src/git/stat-many.js';
import { tempDir } from './git-fixtures.js';

let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const dir = await tempDir('agora-stat-many-');
  root = dir.path;
  cleanup = dir.cleanup;
  mkdirSync(join(root, 'd/e'), { recursive: true });
  writeFileSync(join(root, 'd/e/file'), 'content\n');
  symlinkSync('nowhere', join(root, 'd/link'));
});
afterAll(() => cleanup());

const PATHS = ['', 'd', 'd/e', 'd/e/file', 'd/link', 'd/missing', 'missing/too'];

/** What lstatSync says of each path, in the shape statAt gives. */
function expected(): unknown[] {
  return PATHS.map((p) => {
    const info = lstatSync(p === '' ? root : join(root, p), { throwIfNoEntry: false });
    return info ? { ino: info.ino, mode: info.mode, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs } : null;
  });
}

describe('statMany', () => {
  it('gives what lstat gives for the root, directories, files and links (not followed), and null where nothing is', async () => {
    const values = await statMany(root, PATHS);
    expect(PATHS.map((_, i) => statAt(values, i))).toEqual(expected());
  });

  it('does the calls on its thread', async () => {
    const many = Array.from({ length: 20_000 }, (_, i) => (i % 2 === 0 ? 'd/e/file' : 'd/e'));
    await statMany(root, ['d']); // the thread is started
    const answered = statThreadAnswers();
    const values = await statMany(root, many);
    expect(statAt(values, 19_999)).toEqual(expected()[2]);
    expect(statThreadAnswers()).toBe(answered + 1);
  });

  it('says what lstat refused, and its thread goes on answering', async () => {
    await expect(statMany(root, ['d/e/file/below'])).rejects.toThrow(/ENOTDIR/);
    const answered = statThreadAnswers();
    const values = await statMany(root, PATHS);
    expect(PATHS.map((_, i) => statAt(values, i))).toEqual(expected());
    expect(statThreadAnswers()).toBe(answered + 1);
  });

  it('starts another thread when the last one is gone, with the same answers', async () => {
    await statMany(root, ['d']);
    await stopStatThread();
    const answered = statThreadAnswers();
    const values = await statMany(root, PATHS);
    expect(statThreadAnswers()).toBe(answered + 1);
    expect(PATHS.map((_, i) => statAt(values, i))).toEqual(expected());
  });

  it('answers an empty list, and a list of the root alone', async () => {
    expect((await statMany(root, [])).length).toBe(0);
    expect(statAt(await statMany(root, ['']), 0)).toEqual(expected()[0]);
  });
});
