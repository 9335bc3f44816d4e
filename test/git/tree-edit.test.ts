import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { applyTreeChanges, EMPTY_TREE, type PathChange } from '../../src/git/tree-edit.js';
import type { Oid, TreeEntryMode } from '../../src/git/types.js';
import { gitBuildTree, gitListTree, initRepo, tempDir } from './git-fixtures.js';
import { scaled } from '../support/eventually.js';

type Entry = { mode: TreeEntryMode; oid: Oid };
type Model = Map<string, Entry>;

let store: LocalGitStore;
let gitdir: string;
let scratch: string;
const cleanups: Array<() => Promise<void>> = [];
const blobs: Oid[] = [];

beforeAll(async () => {
  const repo = await initRepo({ bare: true });
  const tmp = await tempDir();
  cleanups.push(repo.cleanup, tmp.cleanup);
  store = await openLocalStore(repo.dir);
  gitdir = repo.gitdir;
  scratch = tmp.path;
  for (const text of ['one\n', 'two\n', 'three\n', 'four\n']) blobs.push(await store.writeBlob(text));
});
afterAll(async () => {
  for (const c of cleanups) await c();
});

/** What the tree should hold after `changes`, applied one by one to a flat path → entry map. */
function applyToModel(model: Model, changes: PathChange[]): Model {
  const next = new Map(model);
  for (const { path, entry } of changes) {
    if (!entry) {
      next.delete(path);
      continue;
    }
    for (const key of [...next.keys()]) {
      if (key.startsWith(`${path}/`) || path.startsWith(`${key}/`)) next.delete(key); // dir ↔ file replacement
    }
    next.set(path, entry);
  }
  return next;
}

/** The tree git builds (update-index + write-tree) for the model. */
async function gitTreeOf(model: Model): Promise<Oid> {
  await store.flushObjects(); // git is another process: it sees objects once written out
  return gitBuildTree(
    gitdir,
    [...model].map(([path, e]) => ({ path, ...e })),
    scratch,
  );
}

function listing(model: Model): string[] {
  return [...model].map(([path, e]) => `${e.mode} ${e.oid} ${path}`).sort();
}

function set(path: string, blob: number, mode: TreeEntryMode = '100644'): PathChange {
  return { path, entry: { mode, oid: blobs[blob]! } };
}
function del(path: string): PathChange {
  return { path, entry: null };
}

describe('applyTreeChanges', () => {
  it('matches git for additions, modifications, deletions, nesting and file↔directory replacement', async () => {
    const steps: PathChange[][] = [
      [set('README', 0), set('src/a.ts', 1), set('src/lib/b.ts', 2), set('bin/run', 3, '100755'), set('link', 0, '120000')],
      [set('src/a.ts', 2), set('src/lib/c.ts', 3), del('README')], // modify, add nested, delete
      [set('bin/run', 3, '100644')], // mode-only change
      [del('src/lib/b.ts'), del('src/lib/c.ts')], // empties src/lib: it must disappear
      [del('src/a.ts'), set('src/a.ts/inner.ts', 0)], // file → directory (as a diff expresses it)
      [set('bin', 1)], // directory → file, implicitly replacing everything below
      [set('link/x', 2)], // a path below a symlink replaces the link by a directory
      [del('nothing/here'), del('link/x/deeper')], // deleting what is not there changes nothing
      [del('bin'), del('link/x'), del('src/a.ts/inner.ts')], // everything: the empty tree
    ];
    let model: Model = new Map();
    let tree: Oid | null = null;
    for (const changes of steps) {
      tree = await applyTreeChanges(store, tree, changes);
      model = applyToModel(model, changes);
      expect(tree).toBe(await gitTreeOf(model));
      expect(gitListTree(gitdir, tree).sort()).toEqual(listing(model));
    }
    expect(tree).toBe(EMPTY_TREE);
  });

  it('sorts entries the way git does (a directory compares as name/)', async () => {
    const changes = ['a', 'a.b', 'a-b', 'a0', 'a/b', 'b/a', 'b.c', 'A', 'é', 'z'].map((p, i) => set(p === 'a' ? 'a/x' : p, i % 4));
    const tree = await applyTreeChanges(store, null, changes);
    expect(tree).toBe(await gitTreeOf(applyToModel(new Map(), changes)));
    expect((await store.readTree(tree)).map((e) => e.path)).toEqual(['A', 'a-b', 'a.b', 'a', 'a0', 'b.c', 'b', 'z', 'é']);
  });

  it('rewrites only the trees on changed paths and returns the base for a no-op', async () => {
    const base = await applyTreeChanges(store, null, [set('x/one', 0), set('y/deep/two', 1)]);
    const ySubtree = (await store.readTree(base)).find((e) => e.path === 'y')!.oid;
    const next = await applyTreeChanges(store, base, [set('x/one', 2)]);
    expect((await store.readTree(next)).find((e) => e.path === 'y')!.oid).toBe(ySubtree);
    expect(await applyTreeChanges(store, base, [del('x/missing'), set('x/one', 0)])).toBe(base);
  });

  it('rejects duplicate paths, invalid paths, trees as entries and a file with changes below it', async () => {
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: unknown) => (e instanceof AgoraError ? e.code : String(e)),
      );
    expect(await codeOf(applyTreeChanges(store, null, [set('a', 0), del('a')]))).toBe('tree-edit-invalid');
    for (const bad of ['', '/a', 'a/', 'a//b', './a', 'a/../b', '.git/config', 'x/.GIT/y']) {
      expect(await codeOf(applyTreeChanges(store, null, [set(bad, 0)]))).toBe('tree-edit-invalid');
    }
    expect(await codeOf(applyTreeChanges(store, null, [{ path: 'd', entry: { mode: '040000', oid: EMPTY_TREE } }]))).toBe('tree-edit-invalid');
    expect(await codeOf(applyTreeChanges(store, null, [set('a', 0), set('a/b', 1)]))).toBe('tree-edit-invalid');
  });

  it(
    'agrees with git on random change sequences (property)',
    async () => {
      const component = fc.constantFrom('a', 'b', 'a.b', 'a-b', 'a0', 'B');
      const path = fc.array(component, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
      const change = fc.record({
        path,
        entry: fc.option(fc.record({ mode: fc.constantFrom<TreeEntryMode>('100644', '100755', '120000'), blob: fc.nat(3) }), { freq: 3 }),
      });
      const batch = fc.uniqueArray(change, { minLength: 1, maxLength: 6, selector: (c) => c.path });
      await fc.assert(
        fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 4 }), async (batches) => {
          let model: Model = new Map();
          let tree: Oid | null = null;
          for (const b of batches) {
            const changes: PathChange[] = b.map((c) => ({ path: c.path, entry: c.entry ? { mode: c.entry.mode, oid: blobs[c.entry.blob]! } : null }));
            const sets = changes.filter((c) => c.entry).map((c) => c.path);
            fc.pre(!sets.some((p) => sets.some((q) => q.startsWith(`${p}/`)))); // a file with sets below it is an error
            tree = await applyTreeChanges(store, tree, changes);
            model = applyToModel(model, changes);
          }
          expect(tree).toBe(await gitTreeOf(model));
        }),
        { numRuns: 40 },
      );
    },
    scaled(120_000),
  );
});
