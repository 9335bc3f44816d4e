import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDelta } from '../../src/git/pack-delta.js';
import { writePack, type PackEntry } from '../../src/git/pack-file.js';
import { cliEnv, initRepo } from './git-fixtures.js';

/**
 * Deltas written in-process, applied by git itself: a thin pack of REF_DELTA entries against blobs the
 * repository has, completed by `index-pack --fix-thin` (what receive-pack runs on a pushed pack), then
 * every target read back with `cat-file`.
 */
let repo: Awaited<ReturnType<typeof initRepo>>;
beforeAll(async () => {
  repo = await initRepo({ bare: true });
});
afterAll(() => repo.cleanup());

function blobId(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function storeBlob(content: Uint8Array): string {
  return execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: repo.gitdir, input: content, env: cliEnv(), encoding: 'utf8' }).trim();
}

/** Each target sent as a delta of its base (which the repository has), and what git reads back for it. */
async function throughGit(pairs: ReadonlyArray<{ base: Uint8Array; target: Uint8Array }>): Promise<Buffer[]> {
  const entries: PackEntry[] = pairs.map(({ base, target }) => ({ base: storeBlob(base), delta: encodeDelta(base, target) }));
  execFileSync('git', ['index-pack', '--stdin', '--fix-thin', '--strict'], {
    cwd: repo.gitdir,
    input: await writePack(entries),
    env: cliEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return pairs.map(({ target }) => execFileSync('git', ['cat-file', 'blob', blobId(target)], { cwd: repo.gitdir, env: cliEnv(), maxBuffer: 1 << 26 }));
}

/** A deterministic stream of numbers for the edits (the same cases every run). */
function numbers(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x;
  };
}

/** `base` with `count` random edits: bytes replaced, inserted or removed, at random places. */
function edited(base: Buffer, count: number, next: () => number): Buffer {
  let out = Buffer.from(base);
  for (let i = 0; i < count; i += 1) {
    const at = out.length === 0 ? 0 : next() % out.length;
    const size = 1 + (next() % 40);
    const fresh = randomBytes(size);
    const kind = next() % 3;
    if (kind === 0) out = Buffer.concat([out.subarray(0, at), fresh, out.subarray(Math.min(out.length, at + size))]);
    else if (kind === 1) out = Buffer.concat([out.subarray(0, at), fresh, out.subarray(at)]);
    else out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + size))]);
  }
  return out;
}

describe('a delta written in-process', () => {
  it('builds the target from the base, as git applies it, for edits of every kind', async () => {
    const next = numbers(7);
    const pairs: Array<{ base: Buffer; target: Buffer }> = [];
    for (const size of [0, 1, 15, 16, 17, 100, 4_096, 70_000]) {
      const base = randomBytes(size);
      for (const edits of [0, 1, 3, 20]) pairs.push({ base, target: edited(base, edits, next) });
      pairs.push({ base, target: Buffer.alloc(0) });
      pairs.push({ base, target: Buffer.concat([base, base]) }); // the same run copied twice
    }
    // Repeats in the base, a copy past 64 KiB (three size bytes) and offsets past 64 KiB (three offset bytes).
    const repeated = Buffer.alloc(300_000, 'abcdefghijklmnopqrstuvwxyz0123456789');
    pairs.push({ base: repeated, target: edited(repeated, 5, next) });
    const wide = randomBytes(200_000);
    pairs.push({ base: wide, target: Buffer.concat([wide.subarray(150_000), Buffer.from('middle'), wide.subarray(0, 150_000)]) });
    // git refuses a delta under 4 bytes (an empty target of a base under 16 KiB): such a target goes whole.
    // A pack holds an object once, and a push never sends one the remote has (a target equal to its base).
    const ids = new Set<string>();
    const distinct = pairs.filter(({ base, target }) => !base.equals(target) && !ids.has(blobId(target)) && ids.add(blobId(target)));
    const sendable = distinct.filter(({ base, target }) => encodeDelta(base, target).length >= 4);
    for (const { base, target } of distinct.filter((p) => !sendable.includes(p))) expect([base.length < 16_384, target.length]).toEqual([true, 0]);
    expect(sendable.length).toBeGreaterThanOrEqual(30);
    const read = await throughGit(sendable);
    for (const [i, { target }] of sendable.entries()) expect(read[i]!.equals(target), `case ${i}`).toBe(true);
  });

  it('of a tree with one entry changed is a few dozen bytes, whatever the tree size', async () => {
    for (const entries of [16, 256, 4_096]) {
      const entry = (i: number, id: Buffer) => Buffer.concat([Buffer.from(`100644 item-${String(i).padStart(5, '0')}.json\0`), id]);
      const ids = Array.from({ length: entries }, () => randomBytes(20));
      const base = Buffer.concat(ids.map((id, i) => entry(i, id)));
      const changed = [...ids];
      changed[Math.floor(entries / 2)] = randomBytes(20);
      const target = Buffer.concat(changed.map((id, i) => entry(i, id)));
      const delta = encodeDelta(base, target);
      expect(delta.length, `${entries} entries`).toBeLessThan(50);
      const [read] = await throughGit([{ base, target }]);
      expect(read!.equals(target)).toBe(true);
    }
  });

  it('with a bound, gives up on an unrelated target (all inserts) and is unchanged where it stays under the bound', () => {
    const base = randomBytes(100_000);
    const unrelated = randomBytes(100_000);
    expect(encodeDelta(base, unrelated, unrelated.length)).toBeNull();
    const close = Buffer.concat([base.subarray(0, 50_000), Buffer.from('changed'), base.subarray(50_000)]);
    const whole = encodeDelta(base, close);
    expect(encodeDelta(base, close, close.length)).toEqual(whole);
    expect(encodeDelta(base, close, whole.length)).toBeNull();
  });
});
