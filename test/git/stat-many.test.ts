import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { statAt, statMany, statThreadAnswers, statThreadsRunning, stopStatThreads, THREAD_FROM } from '../../src/git/stat-many.js';
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

/** `paths` repeated up to the length the threads take (shorter lists are done on the event loop). */
function threadList(paths: readonly string[]): string[] {
  return Array.from({ length: Math.ceil(THREAD_FROM / paths.length) * paths.length }, (_, i) => paths[i % paths.length]!);
}

/** What lstatSync says of each path, in the shape statAt gives. */
function expected(): unknown[] {
  return PATHS.map((p) => {
    const info = lstatSync(p === '' ? root : join(root, p), { throwIfNoEntry: false });
    return info ? { ino: info.ino, mode: info.mode, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs } : null;
  });
}

describe('statMany', () => {
  it('gives what lstat gives for the root, directories, files and links (not followed), and null where nothing is', async () => {
    const answered = statThreadAnswers();
    const values = await statMany(root, PATHS);
    expect(PATHS.map((_, i) => statAt(values, i))).toEqual(expected());
    // A short list is done here: no thread answered it.
    expect(statThreadAnswers()).toBe(answered);
    const long = threadList(PATHS);
    const onThread = await statMany(root, long);
    expect(statThreadAnswers()).toBe(answered + 1);
    expect(long.map((_, i) => statAt(onThread, i))).toEqual(long.map((_, i) => expected()[i % PATHS.length]));
  });

  it('does the calls on its threads, a long list split between them, answered in its order', async () => {
    // Every path a different answer from its neighbours, so that a part answered out of place shows.
    const many = Array.from({ length: 20_001 }, (_, i) => PATHS[i % PATHS.length]!);
    await stopStatThreads();
    await statMany(root, threadList(['d'])); // shorter than a split: one thread
    expect(statThreadsRunning()).toBe(1);
    const answered = statThreadAnswers();
    const values = await statMany(root, many);
    expect(statThreadAnswers()).toBe(answered + 1);
    expect(statThreadsRunning()).toBe(Math.min(2, availableParallelism()));
    const each = expected();
    expect(many.map((_, i) => statAt(values, i))).toEqual(many.map((_, i) => each[i % PATHS.length]));
  });

  it('says what lstat refused in any part of a long list, and its threads go on answering', async () => {
    const many = Array.from({ length: 20_000 }, () => 'd/e');
    many[19_000] = 'd/e/file/below';
    await expect(statMany(root, many)).rejects.toThrow(/ENOTDIR/);
    const answered = statThreadAnswers();
    const values = await statMany(root, many.slice(0, 19_000));
    expect(statThreadAnswers()).toBe(answered + 1);
    expect(statThreadsRunning()).toBe(Math.min(2, availableParallelism()));
    expect(statAt(values, 18_999)).toEqual(expected()[2]);
  });

  it('says what lstat refused, and its thread goes on answering', async () => {
    await expect(statMany(root, threadList(['d/e/file/below']))).rejects.toThrow(/ENOTDIR/);
    await expect(statMany(root, ['d/e/file/below'])).rejects.toThrow(/ENOTDIR/); // done here, the same refusal
    const answered = statThreadAnswers();
    const values = await statMany(root, threadList(PATHS));
    expect(PATHS.map((_, i) => statAt(values, i))).toEqual(expected());
    expect(statThreadAnswers()).toBe(answered + 1);
  });

  it('starts another thread when the last one is gone, with the same answers', async () => {
    await statMany(root, threadList(['d']));
    await stopStatThreads();
    const answered = statThreadAnswers();
    const values = await statMany(root, threadList(PATHS));
    expect(statThreadAnswers()).toBe(answered + 1);
    expect(PATHS.map((_, i) => statAt(values, i))).toEqual(expected());
  });

  it('answers an empty list, and a list of the root alone', async () => {
    expect((await statMany(root, [])).length).toBe(0);
    expect(statAt(await statMany(root, ['']), 0)).toEqual(expected()[0]);
  });
});
