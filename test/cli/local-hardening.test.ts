import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** Local mode is not a sandbox, but a worker's plain `git` must not land in the orchestrator's repository. */
describe('local workers and the orchestrator’s repository (issue 11)', () => {
  it('a worker’s git, run in its workspace, finds no repository (and so cannot touch the orchestrator’s)', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'probe',
        queue: 'default',
        items: [
          {
            id: 'look',
            executor: 'command',
            // Records the repository git discovers from the workspace, if any.
            inputs: { run: 'git rev-parse --absolute-git-dir > found.txt 2>/dev/null || echo none > found.txt' },
            depends_on: [],
            resourceLocks: ['found.txt'],
          },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(0);
    expect(git(repo, 'show', 'refs/agora/integration/probe-1:found.txt')).toBe('none\n');
  });

  // Issue 11: a planted .git/hooks/post-merge ran on --apply, and a replace ref made --apply check out
  // another tree than the audited integration head while the audit said intact.
  it('--apply runs no hook, fsmonitor or replace object, and audit and verify --repo name the replace ref', async () => {
    const markers = tempDir('agora-markers-');
    const repo = makeRepo({ 'a.txt': 'base\n' });
    git(repo, 'checkout', '-q', '-b', 'evil');
    writeFileSync(join(repo, 'a.txt'), 'evil\n');
    git(repo, 'commit', '-qam', 'evil');
    const evil = git(repo, 'rev-parse', 'HEAD').trim();
    git(repo, 'checkout', '-q', 'main');
    writeFileSync(
      join(repo, 'plan.json'),
      JSON.stringify({
        id: 'p',
        queue: 'default',
        items: [
          { id: 'write', executor: 'command', inputs: { run: 'echo good > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] },
          {
            id: 'swap',
            executor: 'command',
            // Local is not a sandbox: a read-only item that knows where the repository is can still write
            // a replace ref there (itself without firing the planted hooks, so that each marker is Agora's).
            inputs: {
              run: `g() { git -C '${repo}' -c core.hooksPath=/dev/null -c core.fsmonitor=false "$@"; }; g replace "$(g rev-parse refs/agora/integration/$AGORA_RUN)" ${evil}`,
            },
            depends_on: ['write'],
            resourceLocks: [],
          },
        ],
      }),
    );
    for (const hook of ['post-merge', 'post-checkout', 'reference-transaction', 'post-index-change']) {
      writeFileSync(join(repo, '.git', 'hooks', hook), `#!/bin/sh\ntouch '${markers}/${hook}'\n`, { mode: 0o755 });
    }
    writeFileSync(join(markers, '..', `${basename(markers)}.fsmonitor`), `#!/bin/sh\ntouch '${markers}/fsmonitor'\n`, { mode: 0o755 });
    git(repo, 'config', 'core.fsmonitor', join(markers, '..', `${basename(markers)}.fsmonitor`));

    const r = await agora(repo, ['orch', 'run', 'plan.json', '--apply']);
    expect(r.stderr).toContain('applied: HEAD is now');
    expect(r.code).toBe(0);
    const integration = git(repo, 'rev-parse', 'refs/agora/integration/p-1').trim();
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/replace/').trim()).toBe(`refs/replace/${integration}`);
    expect(readFileSync(join(repo, 'a.txt'), 'utf8')).toBe('good\n');
    expect(readdirSync(markers)).toEqual([]);
    expect(git(repo, '-c', 'core.fsmonitor=false', 'rev-parse', 'HEAD').trim()).toBe(integration);

    const bundle = join(markers, '..', `${basename(markers)}.audit.json`);
    const audit = await agora(repo, ['orch', 'audit', 'p-1', '--out', bundle]);
    expect(audit.code).toBe(0);
    expect(audit.stderr).toContain(`note: this repository has 1 replace ref (refs/replace/${integration} → ${evil})`);
    const verify = await agora(repo, ['verify', bundle, '--repo', repo]);
    expect(verify.stdout).toContain('intact');
    expect(verify.stderr).toContain(`refs/replace/${integration} → ${evil}`);
    expect(readdirSync(markers)).toEqual([]);
  });
});
