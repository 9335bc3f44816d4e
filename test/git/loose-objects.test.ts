import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { renderCommit } from '../../src/git/commit-object.js';
import { LooseObjects } from '../../src/git/loose-objects.js';
import { renderTree } from '../../src/git/tree-object.js';
import { cliEnv, gitSync } from './git-fixtures.js';
import { cleanupsAfterEach, fsckClean, repoWithStore, runObjectChild, smallDisk } from './object-fixtures.js';

/**
 * Loose objects survive a crash or a full disk (issue 12, finding 4): written by tmp+rename, an empty
 * or corrupt file under an object's name is written again rather than trusted, and reading one fails
 * with `object-corrupt`.
 */

const cleanups = cleanupsAfterEach();
const repo = () => repoWithStore(cleanups);

function blobId(text: string | Buffer): string {
  const body = Buffer.from(text);
  return createHash('sha1')
    .update(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body]))
    .digest('hex');
}

function objectPath(gitdir: string, oid: string): string {
  return join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
}

/** Leaves an empty file where a blob of `text` belongs, as isomorphic-git did on a full disk. */
function plantEmpty(gitdir: string, oid: string): void {
  mkdirSync(join(gitdir, 'objects', oid.slice(0, 2)), { recursive: true });
  writeFileSync(objectPath(gitdir, oid), '');
}

describe('loose objects', () => {
  it('rewrites an empty file found under an object name instead of trusting it', async () => {
    const { dir, gitdir, store } = await repo();
    const oid = blobId('hello\n');
    plantEmpty(gitdir, oid);
    expect(await store.hasObject(oid)).toBe(false);
    expect(await store.writeBlob('hello\n')).toBe(oid);
    expect(Buffer.from(await store.readBlob(oid)).toString()).toBe('hello\n');
    expect(gitSync(dir, ['cat-file', '-p', oid])).toBe('hello\n');
    await fsckClean(dir);
  });

  it('rewrites a truncated or foreign object file, and the tree and commit that name it', async () => {
    const { dir, gitdir } = await repo();
    // Loose files, as an earlier version wrote every object (a store now packs small ones).
    const loose = new LooseObjects(gitdir);
    const blob = await loose.writeObject('blob', Buffer.from('content that will be cut\n'));
    const tree = await loose.writeObject('tree', renderTree([{ mode: '100644', path: 'a.txt', oid: blob, type: 'blob' }]));
    const whole = await readFile(objectPath(gitdir, tree));
    await truncate(objectPath(gitdir, blob), 5);
    // A valid object stored under the wrong name is no better than garbage.
    const other = await loose.writeObject('blob', Buffer.from('other\n'));
    await rm(objectPath(gitdir, tree), { force: true });
    await writeFile(objectPath(gitdir, tree), await readFile(objectPath(gitdir, other)));
    const fresh = await openLocalStore(dir);
    expect(await fresh.writeBlob('content that will be cut\n')).toBe(blob);
    expect(await fresh.writeTree([{ mode: '100644', path: 'a.txt', oid: blob, type: 'blob' }])).toBe(tree);
    expect(await readFile(objectPath(gitdir, tree))).toEqual(whole);
    const who = agoraIdentity(1_700_000_000_000);
    const commit = await fresh.writeCommit({ tree, parents: [], message: 'm', author: who, committer: who });
    expect(await fresh.casRef('refs/heads/main', commit, null)).toBe(true);
    await fsckClean(dir);
  });

  it('reading an empty or corrupt object fails with object-corrupt, naming the object and its file', async () => {
    const { gitdir, store } = await repo();
    const oid = blobId('never written whole\n');
    plantEmpty(gitdir, oid);
    const err = await store.readBlob(oid).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgoraError);
    expect((err as AgoraError).code).toBe('object-corrupt');
    expect((err as AgoraError).message).toContain(oid);
    expect((err as AgoraError).message).toContain(objectPath(gitdir, oid));
    const loose = new LooseObjects(gitdir);
    const blob = await loose.writeObject('blob', Buffer.from('x\n'));
    const tree = await loose.writeObject('tree', renderTree([{ mode: '100644', path: 'x', oid: blob, type: 'blob' }]));
    await truncate(objectPath(gitdir, tree), 3);
    await expect(store.readTree(tree)).rejects.toMatchObject({ code: 'object-corrupt' });
  });

  it('a flush that finds nothing left to sync waits for the one still syncing, so no ref moves before its objects are durable', async () => {
    const { gitdir } = await repo();
    const objects = new LooseObjects(gitdir);
    await objects.writeObject('blob', Buffer.from('named by two refs at once\n'));
    const ended: string[] = [];
    const first = objects.flush().then(() => ended.push('first'));
    const second = objects.flush().then(() => ended.push('second'));
    await Promise.all([first, second]);
    expect(ended).toEqual(['first', 'second']);
  });

  it('refuses to point a ref at an object whose file is empty', async () => {
    const { gitdir, store } = await repo();
    const who = agoraIdentity(1_700_000_000_000);
    const loose = new LooseObjects(gitdir);
    const tree = await loose.writeObject('tree', renderTree([]));
    const commit = await loose.writeObject('commit', renderCommit({ tree, parents: [], message: 'm', author: who, committer: who }));
    await truncate(objectPath(gitdir, commit), 0);
    await expect(store.casRef('refs/heads/main', commit, null)).rejects.toMatchObject({ code: 'object-not-found' });
    expect(existsSync(join(gitdir, 'refs/heads/main'))).toBe(false);
  });

  it('writes blobs and trees in-process with the ids and content git gives them, large ones too', async () => {
    const { dir, store } = await repo();
    const big = randomBytes(600 * 1024); // past the size deflated off the event loop
    const bigId = await store.writeBlob(big);
    expect(bigId).toBe(execFileSync('git', ['hash-object', '--stdin'], { cwd: dir, input: big, env: cliEnv() }).toString().trim());
    expect(execFileSync('git', ['cat-file', 'blob', bigId], { cwd: dir, env: cliEnv(), maxBuffer: 4 << 20 })).toEqual(big);
    const small = await store.writeBlob('é\n');
    const sub = await store.writeTree([{ mode: '100644', path: 'x', oid: small, type: 'blob' }]);
    const tree = await store.writeTree([
      { mode: '100644', path: 'ünïcode.txt', oid: small, type: 'blob' },
      { mode: '040000', path: 'dir', oid: sub, type: 'tree' },
      { mode: '100755', path: 'big.bin', oid: bigId, type: 'blob' },
      { mode: '100644', path: 'dir.txt', oid: small, type: 'blob' },
    ]);
    await store.flushObjects(); // the small ones wait for a pack: git is another process
    const listing = [`100755 blob ${bigId}\tbig.bin`, `040000 tree ${sub}\tdir`, `100644 blob ${small}\tdir.txt`, `100644 blob ${small}\tünïcode.txt`, ''].join(
      '\n',
    );
    expect(gitSync(dir, ['mktree'], { input: listing }).trim()).toBe(tree);
    await fsckClean(dir);
  });

  it("a writer killed between a large object's temporary file and its rename leaves no object name behind", async () => {
    const { dir, gitdir, store } = await repo();
    const text = 'crash here\n'.repeat(10_000); // large: written loose at once
    const r = runObjectChild(dir, text, 'object-temp-written:1');
    expect(r.signal).toBe('SIGKILL');
    const oid = blobId(text);
    const shard = join(gitdir, 'objects', oid.slice(0, 2));
    expect(existsSync(objectPath(gitdir, oid))).toBe(false);
    expect(readdirSync(shard).filter((n) => n.startsWith('tmp_obj_'))).toHaveLength(1);
    await fsckClean(dir); // git's own prefix: fsck ignores the leftover
    expect(await store.writeBlob(text)).toBe(oid);
    expect(gitSync(dir, ['cat-file', '-p', oid])).toBe(text);
  });

  it("a writer killed once a pack's or its index's temporary file is written, before any rename, leaves no pack behind", async () => {
    const { dir, gitdir, store } = await repo();
    const r = runObjectChild(dir, 'crash here\n', 'pack-temp-written:1');
    expect(r.signal).toBe('SIGKILL');
    const oid = blobId('crash here\n');
    const packDir = join(gitdir, 'objects', 'pack');
    // The pack's and the index's temporary files are written at once: the kill may find one or both.
    expect(readdirSync(packDir).filter((n) => !n.startsWith('tmp_pack_') && !n.startsWith('tmp_idx_'))).toEqual([]);
    expect(readdirSync(packDir).filter((n) => n.startsWith('tmp_'))).not.toHaveLength(0);
    expect(await store.hasObject(oid)).toBe(false);
    await fsckClean(dir); // git's own prefix: fsck ignores the leftover
    expect(await store.writeBlob('crash here\n')).toBe(oid);
    await store.flushObjects();
    expect(gitSync(dir, ['cat-file', '-p', oid])).toBe('crash here\n');
  });
});

describe('loose objects on a full disk', () => {
  const disk = process.getuid?.() === 0 ? 'root: mounts a tmpfs' : 'not root: cannot mount a small tmpfs';
  it.skipIf(process.getuid?.() !== 0)(`fail with disk-full, leave nothing under the object's name, and write whole once there is room (${disk})`, async () => {
    const mnt = smallDisk(512, cleanups);
    expect(mnt).not.toBeNull();
    const dir = join(mnt!, 'repo');
    execFileSync('git', ['init', '-q', '-b', 'main', '--template=', dir], { env: cliEnv() });
    const store = await openLocalStore(dir);
    const big = randomBytes(300 * 1024); // does not compress
    // Fill the disk so that the object cannot fit.
    writeFileSync(join(mnt!, 'filler'), Buffer.alloc(300 * 1024));
    const oid = blobId(big);
    const err = await store.writeBlob(big).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgoraError);
    expect((err as AgoraError).code).toBe('disk-full');
    expect(existsSync(objectPath(join(dir, '.git'), oid))).toBe(false);
    expect(readdirSync(join(dir, '.git', 'objects', oid.slice(0, 2))).filter((n) => n.startsWith('tmp_obj_'))).toEqual([]);
    rmSync(join(mnt!, 'filler'));
    expect(await store.writeBlob(big)).toBe(oid);
    expect(Buffer.from(await store.readBlob(oid))).toEqual(big);
    await fsckClean(dir);
  });
});
