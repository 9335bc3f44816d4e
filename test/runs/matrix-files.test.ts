import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { MAX_MATRIX_FILE_BYTES } from '../../src/plan/matrix-file.js';
import { readMatrixFile, readMatrixFiles } from '../../src/runs/matrix-files.js';
import { readMatrixFileOnDisk } from '../../src/testing/matrix-files-on-disk.js';
import { cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** The matrix-file reader on a real repository: git objects at one commit, every kind of tree entry. */
describe('reading a matrix file at a commit', () => {
  it('reads a file (plain or executable, in a folder) as committed, and refuses what is not a small UTF-8 file', async () => {
    const repo = makeRepo({
      'ci/shards.json': '["a"]',
      'ci/run.json': '["x"]',
      'ci/big.json': `[${'"a",'.repeat(MAX_MATRIX_FILE_BYTES / 4)}"a"]`,
      'ci/latin1.json': '',
    });
    writeFileSync(join(repo, 'ci/latin1.json'), Buffer.from([0x5b, 0x22, 0xe9, 0x22, 0x5d])); // ["é"] in Latin-1
    chmodSync(join(repo, 'ci/run.json'), 0o755);
    git(repo, 'add', '--all');
    // A submodule entry, as a repository could commit one (after `add --all`, which would drop it: no such folder).
    git(repo, 'update-index', '--add', '--cacheinfo', `160000,${git(repo, 'rev-parse', 'HEAD').trim()},vendor`);
    git(repo, 'commit', '--quiet', '-m', 'files');
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    // Edited after the commit: the reader never sees the working tree.
    writeFileSync(join(repo, 'ci/shards.json'), '["changed"]');
    const store = await openLocalStore(repo);
    expect(await readMatrixFile(store, head, 'ci/shards.json')).toEqual({ kind: 'text', text: '["a"]' });
    expect(await readMatrixFile(store, head, 'ci/run.json')).toEqual({ kind: 'text', text: '["x"]' });
    expect(await readMatrixFile(store, head, 'ci/none.json')).toEqual({ kind: 'missing' });
    expect(await readMatrixFile(store, head, 'ci/shards.json/x')).toEqual({ kind: 'missing' });
    expect(await readMatrixFile(store, head, 'ci')).toEqual({ kind: 'not-a-file', what: 'a folder' });
    expect(await readMatrixFile(store, head, 'vendor')).toEqual({ kind: 'not-a-file', what: 'a submodule' });
    expect(await readMatrixFile(store, head, 'vendor/x.json')).toEqual({ kind: 'not-a-file', what: 'a submodule (at vendor)' });
    const big = await readMatrixFile(store, head, 'ci/big.json');
    expect(big).toMatchObject({ kind: 'too-large' });
    expect((big as { bytes: number }).bytes).toBeGreaterThan(MAX_MATRIX_FILE_BYTES);
    expect(await readMatrixFile(store, head, 'ci/latin1.json')).toMatchObject({ kind: 'unreadable', why: expect.stringContaining('not UTF-8') });
  });

  it('reads each acceptable path of a plan once and never one that fails the path rule', async () => {
    const repo = makeRepo({ 'ci/a.json': '[1]' });
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const store = await openLocalStore(repo);
    const item = (matrix: unknown) => ({ id: 'x', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [], matrix });
    const plan = { id: 'p', queue: 'q', items: [item({ a: { file: 'ci/a.json' }, b: { file: '../ci/a.json' } }), item({ a: { file: 'ci/a.json' } })] };
    const reads = await readMatrixFiles(store, head, plan);
    expect([...reads.keys()]).toEqual(['ci/a.json']);
  });

  it('agora test reads the files on disk under the same rules: no symbolic link at any level, a file, the size cap', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'ci'));
    writeFileSync(join(dir, 'ci/shards.json'), '["a"]');
    writeFileSync(join(dir, 'ci/big.json'), 'x'.repeat(MAX_MATRIX_FILE_BYTES + 1));
    symlinkSync('shards.json', join(dir, 'ci/link.json'));
    symlinkSync('ci', join(dir, 'linked-dir'));
    expect(await readMatrixFileOnDisk(dir, 'ci/shards.json')).toEqual({ kind: 'text', text: '["a"]' });
    expect(await readMatrixFileOnDisk(dir, 'ci/none.json')).toEqual({ kind: 'missing' });
    expect(await readMatrixFileOnDisk(dir, 'ci/shards.json/x')).toEqual({ kind: 'missing' });
    expect(await readMatrixFileOnDisk(dir, 'ci')).toEqual({ kind: 'not-a-file', what: 'a folder' });
    expect(await readMatrixFileOnDisk(dir, 'ci/link.json')).toMatchObject({ kind: 'not-a-file', what: expect.stringContaining('symbolic link') });
    expect(await readMatrixFileOnDisk(dir, 'linked-dir/shards.json')).toMatchObject({ kind: 'not-a-file', what: expect.stringContaining('(at linked-dir)') });
    expect(await readMatrixFileOnDisk(dir, 'ci/big.json')).toEqual({ kind: 'too-large', bytes: MAX_MATRIX_FILE_BYTES + 1 });
  });
});
