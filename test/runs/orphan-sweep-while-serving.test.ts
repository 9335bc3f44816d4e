/**
 * A serve that runs for weeks looks again, every SWEEP_EVERY_MS of its clock, for what killed processes
 * left on the host: the secret stores of a killed `submit`, and the ref values and owner files of a killed
 * ref writer. Nothing left while it serves stays until its restart. The real CLI (or a real ref writer) is
 * killed mid-write; the serve is the real server, in-process, with a clock the test moves on.
 */
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { refTempDir } from '../../src/git/ref-lock-file.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { killedCasWriter } from '../git/git-fixtures.js';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLocalTarget } from '../../src/executors/local-target.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { type OrphanSecretStores } from '../../src/runs/orphan-secret-stores.js';
import { GONE_WRITER_MIN_AGE_MS as MIN_AGE_MS } from '../../src/process-identity.js';
import { RunRefs } from '../../src/runs/refs.js';
import { SWEEP_EVERY_MS, Server } from '../../src/runs/server.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'later',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
});

/** The real server on `repo`, in-process, on `clock`, polling every 20 ms. */
async function serverFor(repo: string, clock: () => number, onOrphanSecretStores?: (found: OrphanSecretStores) => void): Promise<Server> {
  const store = await openLocalStore(repo);
  const config = await loadConfig({ cwd: repo });
  const scratchDir = join(store.gitdir, 'agora');
  return new Server({
    store,
    refs: new RunRefs(config.refNamespace),
    config,
    targets: { local: createLocalTarget({ stateDir: join(scratchDir, 'pids') }) },
    scratchDir,
    workspaces: WorkspacePool.outsideRepository(store),
    environment: {},
    clock,
    pollMs: 20,
    ...(onOrphanSecretStores ? { onOrphanSecretStores } : {}),
  });
}

/** Serves until the returned stop is called; `passes` counts the serve's passes. */
function serving(server: Server): { passes: () => number; stop: () => Promise<void> } {
  const abort = new AbortController();
  let passes = 0;
  const done = server.serve(abort.signal, () => {
    passes += 1;
    return false;
  });
  return {
    passes: () => passes,
    stop: async () => {
      abort.abort('test over');
      await done;
    },
  };
}

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

    let now = Date.now();
    const reports: OrphanSecretStores[] = [];
    const server = await serverFor(
      repo,
      () => now,
      (found) => reports.push(found),
    );
    await server.start();
    // Young at the start: it stays, and the problem is said.
    expect(existsSync(orphan!)).toBe(true);
    expect(reports).toEqual([{ removed: [], removedTemporary: [], problems: [`${fifo} is not a file; it stays`] }]);

    // Old enough from now on (as if the serve had run for a while): the next look, not any pass, removes it.
    const then = new Date(now - 2 * MIN_AGE_MS);
    utimesSync(orphan!, then, then);

    const serve = serving(server);
    try {
      // Many passes later, with the clock just short of the next look, it is still there.
      await eventually('a few passes of the serve', () => serve.passes() >= 5 || undefined);
      now += SWEEP_EVERY_MS - 1;
      const before = serve.passes();
      await eventually('a few more passes', () => serve.passes() >= before + 5 || undefined);
      expect(existsSync(orphan!)).toBe(true);
      expect(reports).toHaveLength(1);

      // The look is due: removed while the serve goes on.
      now += 1;
      await eventually('the orphan store to be removed', () => !existsSync(orphan!) || undefined);
      expect(reports).toEqual([reports[0], { removed: ['later-1'], removedTemporary: [], problems: [] }]);
      expect(existsSync(fifo)).toBe(true);
    } finally {
      await serve.stop();
    }
  });

  it('removes the ref values and owner file of a ref writer killed while it serves, at its next look once they are old enough', async () => {
    const repo = makeRepo({});
    const store = await openLocalStore(repo);
    const ref = 'refs/agora/test/swept';
    const who = agoraIdentity(1_700_000_000_000);
    const first = await store.writeCommit({ tree: await store.writeTree([]), parents: [], message: 'first', author: who, committer: who });
    expect(await store.casRef(ref, first, null)).toBe(true);
    let now = Date.now();
    const server = await serverFor(repo, () => now);
    await server.start();
    const serve = serving(server);
    try {
      await eventually('a few passes of the serve', () => serve.passes() >= 3 || undefined);
      // A writer killed between writing its new value and renaming it into place, while the serve goes on.
      const killed = killedCasWriter(repo, ref, 'ref-temp-written:1');
      expect(killed.signal).toBe('SIGKILL');
      const tmp = refTempDir(store.gitdir);
      const left = () => readdirSync(tmp).filter((name) => name.includes(`-${killed.pid}_`));
      expect(
        left()
          .map((name) => name.split('-')[0])
          .sort(),
      ).toEqual(['owner', 'ref']);
      const then = new Date(Date.now() - 2 * MIN_AGE_MS);
      for (const name of left()) utimesSync(join(tmp, name), then, then);

      // Old enough, its writer gone: still there until the look is due by the serve's clock.
      now += SWEEP_EVERY_MS - 1;
      const before = serve.passes();
      await eventually('a few more passes', () => serve.passes() >= before + 5 || undefined);
      expect(left()).toHaveLength(2);
      now += 1;
      await eventually("the killed writer's files to be removed", () => left().length === 0 || undefined);
    } finally {
      await serve.stop();
    }
  });
});
