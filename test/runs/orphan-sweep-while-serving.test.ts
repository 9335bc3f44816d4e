/**
 * A serve that runs for weeks looks again, every ORPHAN_SWEEP_EVERY_MS of its clock, for the secret stores
 * a killed `submit` left: a store left while it serves does not stay on the host until its restart. The
 * real CLI is killed after writing its store; the serve is the real server, in-process, with a clock the
 * test moves on.
 */
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLocalTarget } from '../../src/executors/local-target.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { type OrphanSecretStores } from '../../src/runs/orphan-secret-stores.js';
import { GONE_WRITER_MIN_AGE_MS as MIN_AGE_MS } from '../../src/process-identity.js';
import { RunRefs } from '../../src/runs/refs.js';
import { ORPHAN_SWEEP_EVERY_MS, Server } from '../../src/runs/server.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'later',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
});

describe('a serve that keeps serving', () => {
  it('removes a store a killed submit left once it is old enough, at its next look; a problem is reported once', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const killed = await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', 'token=left-by-a-killed-submit'], { AGORA_CRASH_AT: 'secrets-bound:1' });
    expect(killed.code).not.toBe(0);
    const dir = join(repo, '.git', 'agora', 'params');
    const [orphan] = readdirSync(dir).map((f) => join(dir, f));
    // Something under a store's name that is not a file: a problem each look meets again.
    const fifo = join(dir, `${'1'.repeat(32)}.json`);
    execFileSync('mkfifo', [fifo]);

    const store = await openLocalStore(repo);
    const config = await loadConfig({ cwd: repo });
    const scratchDir = join(store.gitdir, 'agora');
    let now = Date.now();
    const reports: OrphanSecretStores[] = [];
    const server = new Server({
      store,
      refs: new RunRefs(config.refNamespace),
      config,
      targets: { local: createLocalTarget({ stateDir: join(scratchDir, 'pids') }) },
      scratchDir,
      workspaces: WorkspacePool.outsideRepository(store),
      environment: {},
      clock: () => now,
      pollMs: 20,
      onOrphanSecretStores: (found) => reports.push(found),
    });
    await server.start();
    // Young at the start: it stays, and the problem is said.
    expect(existsSync(orphan!)).toBe(true);
    expect(reports).toEqual([{ removed: [], removedTemporary: [], problems: [`${fifo} is not a file; it stays`] }]);

    // Old enough from now on (as if the serve had run for a while): the next look, not any pass, removes it.
    const then = new Date(now - 2 * MIN_AGE_MS);
    utimesSync(orphan!, then, then);

    const stop = new AbortController();
    let passes = 0;
    const serving = server.serve(stop.signal, () => {
      passes += 1;
      return false;
    });
    try {
      // Many passes later, with the clock just short of the next look, it is still there.
      await eventually('a few passes of the serve', () => passes >= 5 || undefined);
      now += ORPHAN_SWEEP_EVERY_MS - 1;
      const before = passes;
      await eventually('a few more passes', () => passes >= before + 5 || undefined);
      expect(existsSync(orphan!)).toBe(true);
      expect(reports).toHaveLength(1);

      // The look is due: removed while the serve goes on.
      now += 1;
      await eventually('the orphan store to be removed', () => !existsSync(orphan!) || undefined);
      expect(reports).toEqual([reports[0], { removed: ['later-1'], removedTemporary: [], problems: [] }]);
      expect(existsSync(fifo)).toBe(true);
    } finally {
      stop.abort('test over');
      await serving;
    }
  });
});
