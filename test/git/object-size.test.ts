import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { objectSize } from '../../src/git/object-size.js';
import { cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** Object sizes read from headers agree with `git cat-file -s`, loose, packed whole and packed as deltas. */
describe('objectSize', () => {
  const text = (n: number, seed: string) => Array.from({ length: n }, (_, i) => `${seed} line ${i} ${(i * 7919) % 10007}\n`).join('');

  function everyObject(repo: string): Array<{ oid: string; size: number }> {
    return execFileSync('git', ['cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objectsize)'], { cwd: repo, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => ({ oid: l.split(' ')[0]!, size: Number(l.split(' ')[1]) }));
  }

  it('reads the size of every object, loose and then packed with deltas, as git reports it', async () => {
    const repo = makeRepo({ 'big.txt': text(40_000, 'a'), 'small.txt': 'hi\n', 'empty.txt': '' });
    // A second version differing by one line: gc stores one of the two as a delta of the other.
    git(repo, 'commit', '--quiet', '--allow-empty', '-m', 'x');
    execFileSync('sh', ['-c', `sed -i 's/a line 5 /A LINE 5 /' big.txt && git add big.txt && git -c user.name=t -c user.email=t@t commit --quiet -m edit`], {
      cwd: repo,
    });
    const gitdir = join(repo, '.git');
    const loose = everyObject(repo);
    for (const o of loose) expect({ oid: o.oid, size: await objectSize(gitdir, o.oid) }).toEqual(o);

    git(repo, 'gc', '--quiet', '--aggressive');
    expect(execFileSync('git', ['count-objects', '-v'], { cwd: repo, encoding: 'utf8' })).toMatch(/^count: 0$/m);
    const deltas = execFileSync('sh', ['-c', 'git verify-pack -v .git/objects/pack/*.idx'], { cwd: repo, encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^[0-9a-f]{40} blob .* [0-9a-f]{40}$/.test(l));
    expect(deltas.length).toBeGreaterThan(0); // one blob at least is stored as a delta
    for (const o of everyObject(repo)) expect({ oid: o.oid, size: await objectSize(gitdir, o.oid) }).toEqual(o);
    expect(await objectSize(gitdir, '0'.repeat(40))).toBeNull();
    const store = await openLocalStore(repo);
    await expect(store.objectSize('1'.repeat(40))).rejects.toMatchObject({ code: 'object-not-found' });
  });
});
