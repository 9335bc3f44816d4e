import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyChanges } from '../../src/executors/actions-workspace.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { cleanupTempDirs, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

/**
 * A remote worker's result is item-controlled text: its tree's paths and symlinks must not let it write
 * outside the workspace the orchestrator then captures.
 */
describe('applying an actions result to the workspace', () => {
  it('refuses a path that climbs out or names .git, and writes nothing through a symlink the workspace holds', async () => {
    const store = await openLocalStore(makeRepo({ 'README.md': 'x\n' }));
    const oid = await store.writeBlob('planted\n');
    const file = { mode: '100644' as const, oid };
    const workspace = tempDir('agora-ws-');
    const outside = tempDir('agora-outside-');

    await expect(applyChanges(store, workspace, [{ path: '../escape.txt', before: null, after: file }])).rejects.toThrow();
    await expect(applyChanges(store, workspace, [{ path: '.git/hooks/post-checkout', before: null, after: file }])).rejects.toThrow();
    expect(existsSync(join(workspace, '..', 'escape.txt'))).toBe(false);

    // The workspace holds a symlink to a directory outside it; the result writes "through" it.
    symlinkSync(outside, join(workspace, 'link'));
    await applyChanges(store, workspace, [{ path: 'link/x.txt', before: null, after: file }]);
    expect(existsSync(join(outside, 'x.txt'))).toBe(false);
    expect(readFileSync(join(workspace, 'link', 'x.txt'), 'utf8')).toBe('planted\n');
  });
});
