import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { RecentObjects } from '../../src/git/recent-objects.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { cleanupTempDirs, makeRepo } from '../support/repo.js';

const blob = (text: string) => ({ type: 'blob' as const, content: Buffer.from(text) });

describe('RecentObjects', () => {
  it('hands out copies: a caller changing what it got changes nothing kept', () => {
    const recent = new RecentObjects(4, 1024);
    const given = blob('hello');
    recent.set('a'.repeat(40), given);
    given.content.write('J');
    const first = recent.get('a'.repeat(40))!;
    first.content.write('Y');
    expect(recent.get('a'.repeat(40))!.content.toString()).toBe('hello');
  });

  it('drops the least recently used past its count', () => {
    const recent = new RecentObjects(2, 1024);
    recent.set('1'.repeat(40), blob('one'));
    recent.set('2'.repeat(40), blob('two'));
    recent.get('1'.repeat(40)); // one is now the more recent
    recent.set('3'.repeat(40), blob('three'));
    expect(recent.get('2'.repeat(40))).toBeUndefined();
    expect(recent.get('1'.repeat(40))?.content.toString()).toBe('one');
    expect(recent.get('3'.repeat(40))?.content.toString()).toBe('three');
  });

  it('drops the least recently used past its bytes, and keeps no object over a sixteenth of them', () => {
    const recent = new RecentObjects(100, 160);
    recent.set('1'.repeat(40), blob('x'.repeat(11)));
    expect(recent.get('1'.repeat(40))).toBeUndefined();
    for (let i = 0; i < 17; i += 1) recent.set(String(i).padStart(40, 'f'), blob('y'.repeat(10)));
    expect(recent.get('0'.padStart(40, 'f'))).toBeUndefined();
    expect(recent.get('16'.padStart(40, 'f'))?.content.byteLength).toBe(10);
  });
});

describe('LocalGitStore reads', () => {
  afterAll(() => cleanupTempDirs());

  it('reads a small object once from disk, then from what it keeps', async () => {
    const repo = makeRepo({ 'README.md': 'r\n' });
    const store = await openLocalStore(repo);
    const oid = await store.writeBlob(Buffer.from('kept\n'));
    expect(Buffer.from(await store.readBlob(oid)).toString()).toBe('kept\n');
    // Gone from disk: the second read is served from memory (without the cache it is object-not-found).
    rmSync(`${store.gitdir}/objects/${oid.slice(0, 2)}/${oid.slice(2)}`, { force: true });
    expect(Buffer.from(await store.readBlob(oid)).toString()).toBe('kept\n');
  });
});
