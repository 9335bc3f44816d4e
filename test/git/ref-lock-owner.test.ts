import * as fs from 'node:fs';
import type * as RealFs from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { acquireLock, releaseLock } from '../../src/git/ref-lock-file.js';

// The link that takes a lock goes through this wrapper, so that one test can make the file system answer
// EMLINK (the limit of links to one file: 65,000 on ext4, which a test cannot reach cheaply). Every other
// call is the real one.
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof RealFs>();
  return { ...real, linkSync: vi.fn(real.linkSync) };
});

let gitdir: string;
beforeEach(async () => {
  gitdir = await mkdtemp(join(tmpdir(), 'agora-lock-owner-'));
  await fs.promises.mkdir(join(gitdir, 'refs', 'heads'), { recursive: true });
});
afterEach(async () => {
  await rm(gitdir, { recursive: true, force: true });
});

const lockOf = (name: string) => join(gitdir, 'refs', 'heads', `${name}.lock`);
const ownerFiles = async () => (await readdir(join(gitdir, 'agora', 'tmp'))).filter((f) => f.startsWith('owner-'));

async function take(name: string) {
  const lock = await acquireLock(gitdir, lockOf(name), `refs/heads/${name}`, {});
  expect(lock, `the lock on refs/heads/${name}`).not.toBeNull();
  return lock!;
}

async function holder(name: string): Promise<{ pid: number }> {
  return JSON.parse(await readFile(lockOf(name), 'utf8')) as { pid: number };
}

describe('ref locks: one owner file per process and repository, linked as each lock', () => {
  it('every lock the process holds is the same synced file, naming this process', async () => {
    const a = await take('a');
    const b = await take('b');
    const [owner, ...more] = await ownerFiles();
    expect(more).toEqual([]);
    const ownerIno = (await stat(join(gitdir, 'agora', 'tmp', owner!))).ino;
    expect((await stat(a.path)).ino).toBe(ownerIno);
    expect((await stat(b.path)).ino).toBe(ownerIno);
    expect(await holder('a')).toMatchObject({ agoraRefLock: 1, pid: process.pid });
    // A held lock refuses a second taker (the link fails with EEXIST): it waits, then gives up.
    expect(await acquireLock(gitdir, lockOf('a'), 'refs/heads/a', { maxWaitMs: 20 })).toBeNull();
    await releaseLock(a);
    await releaseLock(b);
    expect(await ownerFiles()).toEqual([owner]);
  });

  it('an owner file removed under the process (agora/tmp cleaned) is written again; the lock still names its writer', async () => {
    await releaseLock(await take('a'));
    const [before] = await ownerFiles();
    await rm(join(gitdir, 'agora', 'tmp'), { recursive: true });
    await take('b');
    const [after, ...more] = await ownerFiles();
    expect(more).toEqual([]);
    expect(after).not.toBe(before);
    expect(await holder('b')).toMatchObject({ pid: process.pid });
  });

  it('at the limit of links to one file (EMLINK) a new owner file is written and linked', async () => {
    await take('a');
    const [first] = await ownerFiles();
    vi.mocked(fs.linkSync).mockImplementationOnce(() => {
      throw Object.assign(new Error('EMLINK: too many links'), { code: 'EMLINK' });
    });
    const b = await take('b');
    const owners = await ownerFiles();
    expect(owners).toHaveLength(2);
    const second = owners.find((o) => o !== first)!;
    expect((await stat(b.path)).ino).toBe((await stat(join(gitdir, 'agora', 'tmp', second))).ino);
    expect(await holder('b')).toMatchObject({ pid: process.pid });
    // Later locks use the new file.
    const c = await take('c');
    expect((await stat(c.path)).ino).toBe((await stat(b.path)).ino);
  });
});
