import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { writePack } from '../../src/git/pack-file.js';
import { cliEnv, gitSync, initRepo } from './git-fixtures.js';

/**
 * Packs written in-process, read by git's own `index-pack` (what receive-pack runs on a pushed pack), and
 * objects read in-process from loose files and, once repacked, through isomorphic-git.
 */
let repo: Awaited<ReturnType<typeof initRepo>>;
let store: LocalGitStore;
const blobs = new Map<number, string>();

/** Sizes at each edge of the entry header's size encoding (4 bits, then 7 more per byte). */
const SIZES = [0, 1, 15, 16, 2047, 2048, 262_143, 262_144, 300_000];
/** Random bytes do not compress: a loose file over the size read in-process, and a blob deflated on the thread pool. */
const RANDOM_SIZE = 400_000;

beforeAll(async () => {
  repo = await initRepo();
  for (const size of SIZES) {
    const path = join(repo.dir, `blob-${size}`);
    await writeFile(path, Buffer.alloc(size, size % 251));
    blobs.set(size, gitSync(repo.dir, ['hash-object', '-w', path]).trim());
  }
  await writeFile(join(repo.dir, 'random'), randomBytes(RANDOM_SIZE));
  blobs.set(RANDOM_SIZE, gitSync(repo.dir, ['hash-object', '-w', join(repo.dir, 'random')]).trim());
  gitSync(repo.dir, ['add', '-A']);
  gitSync(repo.dir, ['commit', '-q', '-m', 'blobs of every header length']);
  store = await openLocalStore(repo.dir);
});
afterAll(() => repo.cleanup());

/** The object ids git finds in `pack`: `index-pack --stdin --strict` into a fresh repository, then its index listed. */
async function idsGitReads(pack: Uint8Array): Promise<string[]> {
  const other = await initRepo({ bare: true });
  try {
    execFileSync('git', ['index-pack', '--stdin', '--strict'], { cwd: other.gitdir, input: pack, env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const packDir = join(other.gitdir, 'objects', 'pack');
    const indexes = (await readdir(packDir)).filter((f) => f.endsWith('.idx'));
    expect(indexes).toHaveLength(1);
    const listed = execFileSync('git', ['show-index'], { input: await readFile(join(packDir, indexes[0]!)), env: cliEnv(), encoding: 'utf8' });
    return listed
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[1]!)
      .sort();
  } finally {
    await other.cleanup();
  }
}

describe('a pack written in-process', () => {
  it('is read by git index-pack, every object whole, at every length of the size header', async () => {
    const head = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    const all = gitSync(repo.dir, ['rev-list', '--objects', head])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[0]!);
    const pack = await store.packObjects(all);
    expect(await idsGitReads(pack)).toEqual([...all].sort());
  });

  it('of no objects is a valid, empty pack', async () => {
    const pack = await writePack([]);
    expect(pack.subarray(0, 12)).toEqual(Buffer.from('5041434b0000000200000000', 'hex'));
    expect(pack.length).toBe(12 + 20);
  });
});

describe('objects read for a push', () => {
  it('are the same whether loose (read in-process) or packed (read by isomorphic-git)', async () => {
    const before = new Map<string, { type: string; content: Buffer }>();
    for (const oid of blobs.values()) before.set(oid, await store.readObject(oid));
    gitSync(repo.dir, ['repack', '-a', '-d', '-q']);
    gitSync(repo.dir, ['prune-packed']);
    const fresh = await openLocalStore(repo.dir);
    for (const [size, oid] of blobs) {
      const loose = before.get(oid)!;
      const packed = await fresh.readObject(oid);
      expect(loose.type).toBe('blob');
      expect(loose.content.length, `blob of ${size} bytes`).toBe(size);
      expect(packed.type).toBe('blob');
      expect(packed.content.equals(loose.content), `blob of ${size} bytes`).toBe(true);
    }
    const head = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    const commit = await fresh.readObject(head);
    expect(commit.type).toBe('commit');
    expect(commit.content.toString('utf8')).toBe(gitSync(repo.dir, ['cat-file', 'commit', head]));
  });
});
