import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OrchConfig } from '../../src/config/types.js';
import { createTargets, repositoryScope, targetScope } from '../../src/executors/targets.js';

/** The app's docker scope: shared by every replica serving one repository, distinct for anything else. */
describe('repositoryScope', () => {
  const base = { cloneUrl: 'https://github.com/octo/demo.git', fullName: 'octo/demo', refNamespace: 'refs/agora/' };

  it('depends only on the clone URL’s origin, the full name (any case) and the ref namespace', () => {
    const scope = repositoryScope(base);
    expect(scope).toMatch(/^[0-9a-f]{16}$/);
    // What replicas may differ in (credentials in the URL, the case GitHub echoes a name in) does not count.
    expect(repositoryScope({ ...base, cloneUrl: 'https://x-access-token:secret@github.com/octo/demo.git' })).toBe(scope);
    expect(repositoryScope({ ...base, cloneUrl: 'https://GitHub.com/Octo/Demo.git' })).toBe(scope);
    expect(repositoryScope({ ...base, fullName: 'Octo/Demo' })).toBe(scope);
  });

  it('differs per GitHub host, per repository and per ref namespace', () => {
    const scopes = [
      repositoryScope(base),
      repositoryScope({ ...base, cloneUrl: 'https://ghe.example.com/octo/demo.git' }),
      repositoryScope({ ...base, cloneUrl: 'http://127.0.0.1:8080/octo/demo.git' }),
      repositoryScope({ ...base, cloneUrl: 'http://127.0.0.1:8081/octo/demo.git' }),
      repositoryScope({ ...base, fullName: 'octo/other' }),
      repositoryScope({ ...base, refNamespace: 'refs/agora-staging/' }),
    ];
    expect(new Set(scopes).size).toBe(scopes.length);
  });

  it('is never the CLI’s host-and-gitdir scope', () => {
    expect(repositoryScope(base)).not.toBe(targetScope('/srv/demo.git'));
  });
});

/** The app asks for `local` only where its operator trusts the repository; the CLI always has it. */
describe('createTargets', () => {
  const config = { commandTarget: 'local', subagents: {} } as unknown as OrchConfig;

  it('offers local by default, and nothing of it when told not to', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'agora-targets-'));
    try {
      expect(Object.keys(await createTargets({ config, stateDir, scope: 's' }))).toEqual(['local']);
      expect(Object.keys(await createTargets({ config, stateDir, scope: 's', offerLocal: false }))).toEqual([]);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
