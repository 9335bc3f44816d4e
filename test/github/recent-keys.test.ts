import { describe, expect, it } from 'vitest';
import { RecentKeys } from '../../src/github/recent-keys.js';

describe('RecentKeys (the App’s memory of handled deliveries)', () => {
  it('keeps at most its capacity, forgetting the least recently added first', () => {
    const keys = new RecentKeys(3);
    for (const k of ['a', 'b', 'c', 'd']) keys.add(k);
    expect(keys.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((k) => keys.has(k))).toEqual([false, true, true, true]);
  });

  it('makes a key added again the newest', () => {
    const keys = new RecentKeys(2);
    keys.add('a');
    keys.add('b');
    keys.add('a');
    keys.add('c');
    expect([keys.has('a'), keys.has('b'), keys.has('c')]).toEqual([true, false, true]);
  });

  it('stays bounded over many deliveries (a long-lived process)', () => {
    const keys = new RecentKeys();
    for (let i = 0; i < 20_000; i += 1) keys.add(`octo/demo@${i}`);
    expect(keys.size).toBe(keys.capacity);
    expect(keys.has('octo/demo@19999')).toBe(true);
    expect(keys.has('octo/demo@0')).toBe(false);
  });

  it('forgets a key on delete (a failed delivery may be tried again)', () => {
    const keys = new RecentKeys();
    keys.add('a');
    keys.delete('a');
    expect(keys.has('a')).toBe(false);
  });
});
