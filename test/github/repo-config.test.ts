import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import type { Oid } from '../../src/git/types.js';
import { MAX_REPO_CONFIG_BYTES, readRepoConfig } from '../../src/github/repo-config.js';
import { cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** A repository whose one commit holds `.github/agora.yml` with `text`; its store counts the blobs it reads. */
async function repoWithConfig(text: string) {
  const dir = makeRepo({ '.github/agora.yml': text, 'ops/plan.json': '{}\n' });
  const store = await openLocalStore(dir);
  const read: Oid[] = [];
  const readBlob = store.readBlob.bind(store);
  store.readBlob = async (oid: Oid) => {
    read.push(oid);
    return readBlob(oid);
  };
  const sha = git(dir, 'rev-parse', 'HEAD').trim();
  const blob = git(dir, 'rev-parse', 'HEAD:.github/agora.yml').trim();
  return { store, sha, blob, read };
}

describe('.github/agora.yml', () => {
  it('names the plan file', async () => {
    const { store, sha } = await repoWithConfig('plan: ops/plan.json\n');
    expect(await readRepoConfig(store, sha, 'plan.json')).toEqual({ ok: true, planPath: 'ops/plan.json', from: 'repository' });
  });

  it('over 64 KiB is refused from its size, without being read', async () => {
    const padding = `# ${'x'.repeat(100)}\n`.repeat(Math.ceil((MAX_REPO_CONFIG_BYTES + 1) / 103));
    const { store, sha, blob, read } = await repoWithConfig(`plan: ops/plan.json\n${padding}`);
    const config = await readRepoConfig(store, sha, 'plan.json');
    expect(config).toMatchObject({ ok: false, text: '', blob });
    expect(config.ok ? [] : config.problems).toEqual([
      { path: '.github/agora.yml', message: expect.stringMatching(/^\d+ bytes is too large \(at most 65536\); the file may set only `plan`/) },
    ]);
    expect(read).not.toContain(blob);
  });
});
