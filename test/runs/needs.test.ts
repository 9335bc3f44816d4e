import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunState } from '../../src/engine/types.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { PathOutsideDirectoryError } from '../../src/path-inside.js';
import type { WorkItem } from '../../src/plan/schema.js';
import { resolveNeeds } from '../../src/runs/needs.js';
import { cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** A repository whose `up` item is done with a patch commit that changed `out.txt`. */
async function world() {
  const repo = makeRepo({ 'out.txt': '[core]\n\tfsmonitor = "touch /tmp/pwned"\n' });
  const head = git(repo, 'rev-parse', 'HEAD').trim();
  const store = await openLocalStore(repo);
  const state = {
    version: 1,
    runId: 'r',
    queue: 'default',
    concurrency: 1,
    status: 'running',
    acceptedAt: 0,
    base: head,
    integrationHead: head,
    items: {
      up: { id: 'up', status: 'done', attempts: 1, failures: 0, resultRef: `git:${head}` },
      down: { id: 'down', status: 'running', attempts: 1, failures: 0 },
    },
  } as RunState;
  const item = (needs: WorkItem['needs']): WorkItem => ({ id: 'down', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [], needs });
  // Where attempt.ts put an attempt's needs before they moved out of the repository (<gitdir>/agora/needs/
  // <run>/<item>.<attempt>): from there the names below reach the repository's own files.
  const dir = join(store.gitdir, 'agora', 'needs', 'r', 'down.1');
  return { repo, store, state, item, dir };
}

describe('resolveNeeds', () => {
  it('writes each binding to a file named after it inside the needs directory', async () => {
    const { store, state, item, dir } = await world();
    const needs = await resolveNeeds(store, item({ cfg: { from: 'up', select: { kind: 'output', path: 'out.txt' } } }), state, dir);
    expect(needs?.cfg?.file).toBe(join(dir, 'cfg'));
    expect(readFileSync(join(dir, 'cfg'), 'utf8')).toContain('fsmonitor');
  });

  it.each([
    ['../../../../config', "the repository's .git/config"],
    ['../../../../../outside.txt', 'the work tree'],
    ['/ABSOLUTE', "an absolute path (the repository's own, below)"],
    ['..', 'the parent directory'],
    ['.', 'the directory itself'],
  ])('refuses the binding name %j (it would write to %s) with a typed error, writing nothing', async (name, _where) => {
    const { repo, store, state, item, dir } = await world();
    const config = readFileSync(join(repo, '.git', 'config'), 'utf8');
    const binding = name === '/ABSOLUTE' ? join(repo, 'absolute.txt') : name;
    const resolving = resolveNeeds(
      store,
      item({ fine: { from: 'up', select: { kind: 'patch' } }, [binding]: { from: 'up', select: { kind: 'output', path: 'out.txt' } } }),
      state,
      dir,
    );
    await expect(resolving).rejects.toThrow(PathOutsideDirectoryError);
    await expect(resolving).rejects.toMatchObject({ code: 'path-outside-directory', message: expect.stringContaining(JSON.stringify(binding)) });
    expect(readFileSync(join(repo, '.git', 'config'), 'utf8')).toBe(config);
    expect(existsSync(join(repo, 'outside.txt'))).toBe(false);
    expect(existsSync(join(repo, 'absolute.txt'))).toBe(false);
    // Refused before anything was written, the well-named binding included.
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });
});
