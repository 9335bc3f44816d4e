import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { diffTrees, type TreeChange } from '../../src/git/tree-diff.js';
import { applyTreeChanges, type PathChange } from '../../src/git/tree-edit.js';
import type { Oid, TreeEntryMode } from '../../src/git/types.js';
import { gitSync, initRepo } from './git-fixtures.js';
import { scaled } from '../support/eventually.js';

let store: LocalGitStore;
let gitdir: string;
const blobs: Oid[] = [];
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const repo = await initRepo({ bare: true });
  cleanup = repo.cleanup;
  store = await openLocalStore(repo.dir);
  gitdir = repo.gitdir;
  for (const text of ['one\n', 'two\n', 'three\n']) blobs.push(await store.writeBlob(text));
});
afterAll(() => cleanup());

function set(path: string, blob: number, mode: TreeEntryMode = '100644'): PathChange {
  return { path, entry: { mode, oid: blobs[blob]! } };
}

const ZERO = '0'.repeat(40);

/** git's own answer: `git diff-tree -r --raw --no-renames`, as TreeChanges sorted by path. */
async function gitDiff(a: Oid, b: Oid): Promise<TreeChange[]> {
  await store.flushObjects(); // git is another process: it sees objects once written out
  const out = gitSync(gitdir, ['--git-dir', gitdir, 'diff-tree', '-r', '--raw', '--no-renames', '--no-abbrev', a, b]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [meta, path] = line.split('\t') as [string, string];
      const [oldMode, newMode, oldOid, newOid] = meta.slice(1).split(' ') as [TreeEntryMode, TreeEntryMode, Oid, Oid];
      return {
        path,
        before: oldOid === ZERO ? null : { mode: oldMode, oid: oldOid },
        after: newOid === ZERO ? null : { mode: newMode, oid: newOid },
      };
    })
    .sort((x, y) => Buffer.compare(Buffer.from(x.path), Buffer.from(y.path)));
}

describe('diffTrees', () => {
  it('lists additions, modifications, mode changes, deletions and file↔directory replacements like git', async () => {
    const a = await applyTreeChanges(store, null, [
      set('keep/same.txt', 0),
      set('mod.txt', 0),
      set('run.sh', 1),
      set('gone.txt', 2),
      set('was-file', 0),
      set('was-dir/x', 1),
      set('was-dir/y/z', 2),
      set('ln', 0, '120000'),
    ]);
    const b = await applyTreeChanges(store, a, [
      set('mod.txt', 1),
      set('run.sh', 1, '100755'),
      { path: 'gone.txt', entry: null },
      { path: 'was-file', entry: null },
      set('was-file/inner', 0),
      set('was-dir', 2),
      set('ln', 0, '100644'),
      set('new/deep/file', 2),
    ]);
    const changes = await diffTrees(store, a, b);
    expect(changes).toEqual(await gitDiff(a, b));
    expect(changes.map((c) => c.path)).toEqual([
      'gone.txt',
      'ln',
      'mod.txt',
      'new/deep/file',
      'run.sh',
      'was-dir',
      'was-dir/x',
      'was-dir/y/z',
      'was-file',
      'was-file/inner',
    ]);
    expect(changes.find((c) => c.path === 'run.sh')).toEqual({
      path: 'run.sh',
      before: { mode: '100644', oid: blobs[1] },
      after: { mode: '100755', oid: blobs[1] },
    });
  });

  it('gives nothing for equal trees, and only additions (or deletions) against nothing', async () => {
    const t = await applyTreeChanges(store, null, [set('a/b', 0), set('c', 1)]);
    expect(await diffTrees(store, t, t)).toEqual([]);
    expect(await diffTrees(store, null, null)).toEqual([]);
    expect(await diffTrees(store, null, t)).toEqual([
      { path: 'a/b', before: null, after: { mode: '100644', oid: blobs[0] } },
      { path: 'c', before: null, after: { mode: '100644', oid: blobs[1] } },
    ]);
    expect((await diffTrees(store, t, null)).every((c) => c.after === null && c.before !== null)).toBe(true);
  });

  it('replaying a diff onto its base with applyTreeChanges reproduces the target tree', async () => {
    const a = await applyTreeChanges(store, null, [set('x/1', 0), set('x/2', 1), set('y', 2)]);
    const b = await applyTreeChanges(store, a, [{ path: 'y', entry: null }, set('y/z', 0), set('x', 1)]);
    const changes = await diffTrees(store, a, b);
    expect(
      await applyTreeChanges(
        store,
        a,
        changes.map((c) => ({ path: c.path, entry: c.after })),
      ),
    ).toBe(b);
  });

  it(
    'agrees with git diff-tree on random pairs of trees (property)',
    async () => {
      const component = fc.constantFrom('a', 'b', 'a.b', 'a-b', 'c');
      const path = fc.array(component, { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
      const change = fc.record({
        path,
        mode: fc.constantFrom<TreeEntryMode>('100644', '100755', '120000'),
        blob: fc.nat(2),
        del: fc.boolean(),
      });
      const batch = fc.uniqueArray(change, { minLength: 1, maxLength: 8, selector: (c) => c.path });
      const noNesting = (cs: Array<{ path: string; del: boolean }>) => {
        const sets = cs.filter((c) => !c.del).map((c) => c.path);
        return !sets.some((p) => sets.some((q) => q.startsWith(`${p}/`)));
      };
      await fc.assert(
        fc.asyncProperty(batch, batch, async (first, second) => {
          fc.pre(noNesting(first) && noNesting(second));
          const toChanges = (cs: typeof first): PathChange[] => cs.map((c) => ({ path: c.path, entry: c.del ? null : { mode: c.mode, oid: blobs[c.blob]! } }));
          const a = await applyTreeChanges(store, null, toChanges(first));
          const b = await applyTreeChanges(store, a, toChanges(second));
          expect(await diffTrees(store, a, b)).toEqual(await gitDiff(a, b));
        }),
        { numRuns: 40 },
      );
    },
    scaled(120_000),
  );
});
