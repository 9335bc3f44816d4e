import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runGit } from '../../src/git/git-cli.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { finishObjectDatabases, flushWaitingObjects } from '../../src/git/object-database.js';
import { assemblePack, wholeEntry } from '../../src/git/pack-file.js';
import { PackIndex, renderPackIndex } from '../../src/git/pack-index.js';
import { MERGE_AT, PackedObjects } from '../../src/git/packed-objects.js';
import { cliEnv, gitSync, tempDir } from './git-fixtures.js';
import { cleanupsAfterEach, fsckClean, repoWithStore, runObjectChild, smallDisk } from './object-fixtures.js';

/**
 * The objects a store writes in-process wait in memory and go to disk as one pack per ref update
 * (issue 16): what git reads back, what another process sees, how the pack count stays small, and what
 * a full disk leaves. Real parts: git repositories in temp dirs, the git CLI as the judge.
 */

const cleanups = cleanupsAfterEach();
const repo = () => repoWithStore(cleanups);

const packDir = (gitdir: string) => join(gitdir, 'objects', 'pack');
const packsIn = (gitdir: string) =>
  existsSync(packDir(gitdir))
    ? readdirSync(packDir(gitdir))
        .filter((n) => n.endsWith('.pack'))
        .sort()
    : [];

/** A commit of `files` on `parents`, its blobs and tree written by the store; not yet named by a ref. */
async function commitOf(store: LocalGitStore, files: Record<string, string>, parents: string[] = []): Promise<string> {
  const entries = [];
  for (const [path, text] of Object.entries(files)) entries.push({ mode: '100644' as const, path, oid: await store.writeBlob(text), type: 'blob' as const });
  const tree = await store.writeTree(entries);
  const who = agoraIdentity(1_700_000_000_000);
  return store.writeCommit({ tree, parents, message: `${Object.keys(files).join(' ')}\n`, author: who, committer: who });
}

describe('objects packed at each ref update', () => {
  it('writes nothing to disk until a ref moves, then one pack and its index that git verifies and reads', async () => {
    const { dir, gitdir, store } = await repo();
    const commit = await commitOf(store, { 'a.txt': 'one\n', 'b.txt': 'two\n' });
    // Readable in-process at once, while nothing is on disk.
    expect((await store.readCommit(commit)).message).toBe('a.txt b.txt\n');
    expect(await store.hasObject(commit)).toBe(true);
    expect(packsIn(gitdir)).toEqual([]);
    expect(readdirSync(join(gitdir, 'objects')).filter((n) => /^[0-9a-f]{2}$/.test(n))).toEqual([]);

    expect(await store.casRef('refs/heads/main', commit, null)).toBe(true);
    const [pack] = packsIn(gitdir);
    expect(packsIn(gitdir)).toHaveLength(1);
    const verify = gitSync(dir, ['verify-pack', '-v', join(packDir(gitdir), pack!.replace(/\.pack$/, '.idx'))]);
    expect(verify).toMatch(/non delta: 4 objects/);
    expect(gitSync(dir, ['show', 'main:b.txt'])).toBe('two\n');
    await fsckClean(dir);
  });

  it('lets every git command Agora runs see objects still waiting', async () => {
    const { dir, store } = await repo();
    const blob = await store.writeBlob('waiting\n');
    expect(await runGit(['cat-file', 'blob', blob], { cwd: dir })).toBe('waiting\n');
  });

  it('is read by another process from the pack alone, and by a second store of this process before any flush', async () => {
    const { dir, gitdir, store } = await repo();
    const commit = await commitOf(store, { 'x.txt': 'shared\n' });
    const second = await openLocalStore(dir);
    expect((await second.readCommit(commit)).message).toBe('x.txt\n');
    await store.flushObjects();
    // A reader with nothing in memory: what another process has.
    const other = new PackedObjects(gitdir);
    const read = other.read(commit);
    expect(read?.type).toBe('commit');
    expect(read?.content.toString('latin1')).toContain('x.txt');
    expect(other.read('0'.repeat(40))).toBeNull();
  });

  it('keeps the pack count small over many ref updates: older small packs are merged into the new one', async () => {
    const { dir, gitdir, store } = await repo();
    let head: string | null = null;
    let most = 0;
    const updates = 120;
    for (let i = 0; i < updates; i += 1) {
      const next = await commitOf(store, { [`f${i % 7}.txt`]: `${i}\n`, 'n.txt': `${i}\n` }, head ? [head] : []);
      expect(await store.casRef('refs/heads/main', next, head)).toBe(true);
      head = next;
      most = Math.max(most, packsIn(gitdir).length);
    }
    // Without merging there would be one pack per update; a geometric progression keeps O(log n).
    expect(most).toBeLessThanOrEqual(MERGE_AT + Math.ceil(Math.log2(updates)));
    expect(packsIn(gitdir).length).toBeLessThan(MERGE_AT + Math.ceil(Math.log2(updates)));
    // Every index has its pack and nothing else is left beside them.
    expect(readdirSync(packDir(gitdir)).filter((n) => !/^pack-[0-9a-f]{40}\.(pack|idx)$/.test(n))).toEqual([]);
    expect(gitSync(dir, ['rev-list', '--count', 'main']).trim()).toBe(String(updates));
    expect(gitSync(dir, ['show', 'main:n.txt'])).toBe(`${updates - 1}\n`);
    await fsckClean(dir);
  });

  it('writes and merges packs of more than a MiB (through the thread pool) whole', async () => {
    const { dir, gitdir, store } = await repo();
    let head: string | null = null;
    const blobs: string[] = [];
    // Incompressible blobs: 20 of 60 KB a pack, 1.2 MB; the (MERGE_AT + 1)th update merges all of them.
    for (let i = 0; i <= MERGE_AT; i += 1) {
      const entries = [];
      for (let j = 0; j < 20; j += 1) {
        const oid = await store.writeBlob(randomBytes(60_000));
        blobs.push(oid);
        entries.push({ mode: '100644' as const, path: `b${j}`, oid, type: 'blob' as const });
      }
      const who = agoraIdentity(1_700_000_000_000);
      const next = await store.writeCommit({
        tree: await store.writeTree(entries),
        parents: head ? [head] : [],
        message: `${i}\n`,
        author: who,
        committer: who,
      });
      expect(await store.casRef('refs/heads/main', next, head)).toBe(true);
      head = next;
    }
    const newest = packsIn(gitdir)
      .map((n) => ({ n, size: readFileSync(join(packDir(gitdir), n)).length }))
      .sort((a, b) => b.size - a.size)[0]!;
    expect(newest.size).toBeGreaterThan((MERGE_AT + 1) * 1_200_000);
    const listed = gitSync(dir, ['verify-pack', '-v', join(packDir(gitdir), newest.n.replace(/\.pack$/, '.idx'))]);
    for (const oid of blobs) expect(listed).toContain(oid);
    await fsckClean(dir);
  });

  it('never merges or removes a pack git wrote (deltas), nor one kept with a .keep file', async () => {
    const { dir, gitdir, store } = await repo();
    const big = Array.from({ length: 400 }, (_, i) => `line ${i}\n`).join('');
    writeFileSync(join(dir, 'big.txt'), big);
    gitSync(dir, ['add', 'big.txt']);
    gitSync(dir, ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'one']);
    writeFileSync(join(dir, 'big.txt'), `${big}more\n`);
    gitSync(dir, ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'two']);
    gitSync(dir, ['repack', '-adq']);
    const [gitsPack] = packsIn(gitdir);
    expect(gitSync(dir, ['verify-pack', '-v', join(packDir(gitdir), gitsPack!)])).toMatch(/chain length = 1/);
    let head = gitSync(dir, ['rev-parse', 'main']).trim();
    for (let i = 0; i < 3 * MERGE_AT; i += 1) {
      const next = await commitOf(store, { 'n.txt': `${i}\n` }, [head]);
      expect(await store.casRef('refs/heads/main', next, head)).toBe(true);
      head = next;
      if (i === MERGE_AT)
        writeFileSync(
          join(
            packDir(gitdir),
            packsIn(gitdir)
              .find((p) => p !== gitsPack)!
              .replace(/\.pack$/, '.keep'),
          ),
          '',
        );
    }
    const kept = readdirSync(packDir(gitdir)).filter((n) => n.endsWith('.keep'));
    expect(kept).toHaveLength(1);
    expect(packsIn(gitdir)).toContain(gitsPack);
    expect(packsIn(gitdir)).toContain(kept[0]!.replace(/\.keep$/, '.pack'));
    expect(gitSync(dir, ['show', 'main~2:n.txt'])).toBe(`${3 * MERGE_AT - 3}\n`);
    expect(gitSync(dir, ['show', `main~${3 * MERGE_AT}:big.txt`])).toBe(`${big}more\n`);
    await fsckClean(dir);
  });

  it('a reader whose pack was merged away by another process finds the object in the new pack', async () => {
    const { dir, gitdir, store } = await repo();
    const first = await commitOf(store, { 'a.txt': 'first\n' });
    await store.casRef('refs/heads/main', first, null);
    const reader = new PackedObjects(gitdir);
    expect(reader.read(first)?.type).toBe('commit'); // lists the directory: one pack
    const before = packsIn(gitdir);
    let head = first;
    for (let i = 0; i < 2 * MERGE_AT; i += 1) {
      const next = await commitOf(store, { 'a.txt': `${i}\n` }, [head]);
      await store.casRef('refs/heads/main', next, head);
      head = next;
    }
    expect(packsIn(gitdir)).not.toContain(before[0]); // merged into a newer pack and removed
    expect(reader.read(first)?.type).toBe('commit');
    expect(gitSync(dir, ['cat-file', '-t', first])).toBe('commit\n');
  });

  it('removes the packs merged into a new one at the next write, not at once (a reader that listed them may still open them)', async () => {
    const { gitdir, store } = await repo();
    const writeOne = async (i: number) => {
      await store.writeBlob(`blob ${i}\n`);
      await store.flushObjects();
    };
    for (let i = 0; i < MERGE_AT; i += 1) {
      await writeOne(i);
      expect(packsIn(gitdir)).toHaveLength(i + 1); // fewer than MERGE_AT before it: no merge
    }
    const before = packsIn(gitdir);
    await writeOne(MERGE_AT); // merges the MERGE_AT packs of the same size into the new one
    expect(packsIn(gitdir)).toEqual(expect.arrayContaining(before));
    expect(packsIn(gitdir)).toHaveLength(MERGE_AT + 1);
    await writeOne(MERGE_AT + 1); // the next write removes them
    expect(packsIn(gitdir)).toHaveLength(2);
    expect(packsIn(gitdir).filter((p) => before.includes(p))).toEqual([]);
    const reader = new PackedObjects(gitdir);
    for (let i = 0; i <= MERGE_AT + 1; i += 1) {
      const oid = await store.writeBlob(`blob ${i}\n`); // already stored: returns its id, writes nothing
      expect(reader.read(oid)?.content.toString()).toBe(`blob ${i}\n`);
    }
  });

  it("a verb's end writes out what still waits and removes the packs it merged, however recent", async () => {
    const { gitdir, store } = await repo();
    for (let i = 0; i <= MERGE_AT; i += 1) {
      await store.writeBlob(`blob ${i}\n`);
      await store.flushObjects();
    }
    expect(packsIn(gitdir)).toHaveLength(MERGE_AT + 1); // the last write merged the others, still there
    await finishObjectDatabases();
    expect(packsIn(gitdir)).toHaveLength(1);
    const waiting = await store.writeBlob('written by the verb, named by no ref\n');
    await finishObjectDatabases();
    expect(packsIn(gitdir)).toHaveLength(2);
    expect(new PackedObjects(gitdir).read(waiting)?.content.toString()).toBe('written by the verb, named by no ref\n');
  });

  it('a new pack whose index cannot be named is removed with it; a pack written before with the same objects stays', async () => {
    const { gitdir } = await repo();
    const content = Buffer.from('one object\n');
    const oid = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
    const objects = [{ oid, object: { type: 'blob' as const, content } }];
    await new PackedObjects(gitdir).write(objects);
    const [packFile] = packsIn(gitdir);
    const name = packFile!.replace(/\.pack$/, '');
    const at = (suffix: string) => join(packDir(gitdir), `${name}${suffix}`);
    // The index's name taken by a directory: the pack is renamed, the index's rename fails.
    rmSync(at('.pack'));
    rmSync(at('.idx'));
    mkdirSync(join(at('.idx'), 'inside'), { recursive: true });
    await expect(new PackedObjects(gitdir).write(objects)).rejects.toThrow(name);
    expect(readdirSync(packDir(gitdir)).sort()).toEqual([`${name}.idx`]); // no pack without its index, no temporary file
    // The same pack already there (same name, same bytes): the failed index leaves it.
    rmSync(at('.idx'), { recursive: true });
    await new PackedObjects(gitdir).write(objects);
    const packBytes = readFileSync(at('.pack'));
    rmSync(at('.idx'));
    mkdirSync(join(at('.idx'), 'inside'), { recursive: true });
    await expect(new PackedObjects(gitdir).write(objects)).rejects.toThrow(name);
    expect(readFileSync(at('.pack'))).toEqual(packBytes);
    expect(readdirSync(packDir(gitdir)).filter((n) => n.startsWith('tmp_'))).toEqual([]);
  });

  it('keeps the packs it merged once a multi-pack index may name them', async () => {
    const { dir, gitdir, store } = await repo();
    for (let i = 0; i <= MERGE_AT; i += 1) {
      await store.writeBlob(`blob ${i}\n`);
      await store.flushObjects();
    }
    const merged = packsIn(gitdir); // the last write merged the others; they go at the next one
    gitSync(dir, ['multi-pack-index', 'write']);
    await store.writeBlob('after the multi-pack index\n');
    await store.flushObjects();
    expect(packsIn(gitdir)).toEqual(expect.arrayContaining(merged));
    expect(gitSync(dir, ['multi-pack-index', 'verify'])).toBe('');
  });

  it('merges nothing while a multi-pack index names the packs', async () => {
    const { dir, gitdir, store } = await repo();
    let head: string | null = null;
    for (let i = 0; i < 3; i += 1) {
      const next = await commitOf(store, { 'n.txt': `${i}\n` }, head ? [head] : []);
      await store.casRef('refs/heads/main', next, head);
      head = next;
    }
    gitSync(dir, ['multi-pack-index', 'write']);
    const named = packsIn(gitdir);
    for (let i = 3; i < 3 + 2 * MERGE_AT; i += 1) {
      const next = await commitOf(store, { 'n.txt': `${i}\n` }, [head!]);
      await store.casRef('refs/heads/main', next, head);
      head = next;
    }
    expect(packsIn(gitdir)).toEqual(expect.arrayContaining(named));
    expect(packsIn(gitdir)).toHaveLength(named.length + 2 * MERGE_AT);
    expect(gitSync(dir, ['multi-pack-index', 'verify'])).toBe('');
    await fsckClean(dir);
  });

  it('writes out only the repository a git command names, and a repository removed meanwhile stops no other', async () => {
    const a = await repo();
    const b = await repo();
    const inA = await a.store.writeBlob('waits in a\n');
    const inB = await b.store.writeBlob('waits in b\n');
    expect(await runGit(['cat-file', '-t', inB], { gitDir: b.gitdir })).toBe('blob\n');
    expect(packsIn(a.gitdir)).toEqual([]); // still waiting
    rmSync(a.dir, { recursive: true, force: true });
    const more = await b.store.writeBlob('more in b\n');
    expect(await runGit(['cat-file', '-t', more], { gitDir: b.gitdir })).toBe('blob\n');
    // A command that names no repository (git finds it from its directory) writes out every one it can.
    const last = await b.store.writeBlob('last in b\n');
    expect(await runGit(['cat-file', '-t', last], { cwd: b.dir })).toBe('blob\n');
    await flushWaitingObjects();
    expect(existsSync(a.dir)).toBe(false); // not made again by a write that had nowhere to go
    expect(inA).toMatch(/^[0-9a-f]{40}$/);
  });

  it('a writer killed once the temporary files of pack and index are both written, before any rename, leaves neither', async () => {
    const { dir, gitdir, store } = await repo();
    const r = runObjectChild(dir, 'crash at the index\n', 'pack-temp-written:2');
    expect(r.signal).toBe('SIGKILL');
    const left = readdirSync(packDir(gitdir));
    expect(left.filter((n) => n.startsWith('tmp_pack_'))).toHaveLength(1);
    expect(left.filter((n) => n.startsWith('tmp_idx_'))).toHaveLength(1);
    expect(left.filter((n) => !n.startsWith('tmp_'))).toEqual([]);
    await fsckClean(dir);
    expect(await store.writeBlob('crash at the index\n')).toMatch(/^[0-9a-f]{40}$/);
  });

  it('an object whose pack entry is damaged is not taken from the pack', async () => {
    const { gitdir, store } = await repo();
    const blob = await store.writeBlob('soon damaged\n');
    await store.flushObjects();
    const [pack] = packsIn(gitdir);
    const path = join(packDir(gitdir), pack!);
    const bytes = readFileSync(path);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 21) ^ 0xff, bytes.length - 21); // the last byte of the only entry's deflated content
    rmSync(path, { force: true });
    writeFileSync(path, bytes);
    expect(new PackedObjects(gitdir).read(blob)).toBeNull();
  });
});

describe('pack indexes', () => {
  it('are the bytes git index-pack writes for the same pack', async () => {
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    const objects = Array.from({ length: 300 }, (_, i) => ({ type: 'blob' as const, content: Buffer.from(`object ${i}\n`.repeat(i % 7)) }));
    const { createHash } = await import('node:crypto');
    const entries = objects.map((o) => ({
      oid: createHash('sha1').update(`blob ${o.content.length}\0`).update(o.content).digest('hex'),
      bytes: wholeEntry(o),
    }));
    const { pack, index, checksum } = assemblePack(entries);
    const packFile = join(tmp.path, 'p.pack');
    writeFileSync(packFile, pack);
    execFileSync('git', ['index-pack', '-o', join(tmp.path, 'git.idx'), packFile], { env: cliEnv() });
    expect(renderPackIndex(index, checksum).equals(readFileSync(join(tmp.path, 'git.idx')))).toBe(true);
  });

  it('find entries past 2 GiB through the table of 64-bit offsets', () => {
    const entries = [0, 2 ** 31 - 1, 2 ** 31, 2 ** 33 + 5, 12].map((offset, i) => ({ oid: `${String(i).repeat(2)}${'ab'.repeat(19)}`, offset, crc: i }));
    const packSize = 2 ** 34;
    const parsed = PackIndex.parse(renderPackIndex(entries, Buffer.alloc(20)), packSize)!;
    expect(parsed).not.toBeNull();
    const sorted = [...entries].sort((x, y) => x.offset - y.offset);
    for (const [k, e] of sorted.entries()) {
      expect(parsed.find(e.oid)).toEqual({ start: e.offset, end: k + 1 < sorted.length ? sorted[k + 1]!.offset : packSize - 20 });
    }
    expect(parsed.find('ff'.repeat(20))).toBeNull();
  });
});

describe('packs on a full disk', () => {
  /** A repository on a 512 KiB tmpfs (root only), and a store on it. */
  async function repoOnSmallDisk() {
    const mnt = smallDisk(512, cleanups);
    expect(mnt).not.toBeNull();
    const dir = join(mnt!, 'repo');
    execFileSync('git', ['init', '-q', '-b', 'main', '--template=', dir], { env: cliEnv() });
    return { mnt: mnt!, dir, gitdir: join(dir, '.git'), store: await openLocalStore(dir) };
  }
  const disk = process.getuid?.() === 0 ? 'root: mounts a tmpfs' : 'not root: cannot mount a small tmpfs';
  it.skipIf(process.getuid?.() !== 0)(`a ref update fails with disk-full, names no pack, and succeeds once there is room (${disk})`, async () => {
    const { mnt, dir, gitdir, store } = await repoOnSmallDisk();
    // Many small objects that do not compress: they wait in memory, so the writes succeed.
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i += 1) files[`f${i}`] = execFileSync('head', ['-c', '6000', '/dev/urandom']).toString('base64');
    const commit = await commitOf(store, files);
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(300 * 1024));
    const err = await store.casRef('refs/heads/main', commit, null).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'disk-full' });
    expect(existsSync(join(gitdir, 'refs', 'heads', 'main'))).toBe(false);
    // An update that would lose its race (the ref is not where it expects) fails with the objects first.
    await expect(store.casRef('refs/heads/main', commit, commit)).rejects.toMatchObject({ code: 'disk-full' });
    expect(packsIn(gitdir)).toEqual([]);
    expect(readdirSync(packDir(gitdir)).filter((n) => n.startsWith('tmp_'))).toEqual([]);
    // Still readable in-process, and written out whole once there is room.
    expect((await store.readCommit(commit)).message).toContain('f0');
    rmSync(join(mnt, 'filler'));
    expect(await store.casRef('refs/heads/main', commit, null)).toBe(true);
    expect(packsIn(gitdir)).toHaveLength(1);
    await fsckClean(dir);
  });

  it.skipIf(process.getuid?.() !== 0)(
    `a verb's end fails with disk-full while objects cannot be written out, and writes them once there is room (${disk})`,
    async () => {
      const { mnt, gitdir, store } = await repoOnSmallDisk();
      const blobs: string[] = [];
      for (let i = 0; i < 40; i += 1) blobs.push(await store.writeBlob(execFileSync('head', ['-c', '6000', '/dev/urandom']).toString('base64')));
      writeFileSync(join(mnt, 'filler'), Buffer.alloc(300 * 1024));
      await expect(finishObjectDatabases()).rejects.toMatchObject({ code: 'disk-full' });
      expect(packsIn(gitdir)).toEqual([]);
      expect(readdirSync(packDir(gitdir)).filter((n) => n.startsWith('tmp_'))).toEqual([]);
      rmSync(join(mnt, 'filler'));
      await finishObjectDatabases();
      expect(packsIn(gitdir)).toHaveLength(1);
      for (const oid of blobs) expect(new PackedObjects(gitdir).has(oid, true)).toBe(true);
    },
  );
});
