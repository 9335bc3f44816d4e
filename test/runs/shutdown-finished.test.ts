import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalTarget } from '../../src/executors/local-target.js';
import type { WorkerTarget } from '../../src/executors/types.js';
import { Server } from '../../src/runs/server.js';
import { readRun } from '../../src/runs/state-store.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { submitOneItemRun } from './one-item-run.js';
import { cleanupTempDirs, makeRepo, tempDir } from '../support/repo.js';

afterAll(() => cleanupTempDirs());

/** Asks the serve to stop once the attempt gives its workspace back: its outcome (succeeded) is decided, not yet committed. */
class StopOnRelease extends WorkspacePool {
  constructor(
    store: ConstructorParameters<typeof WorkspacePool>[0],
    dir: string,
    private readonly onRelease: () => void,
  ) {
    super(store, dir);
  }
  override async release(...args: Parameters<WorkspacePool['release']>): Promise<void> {
    await super.release(...args);
    const captured = args[2];
    if (captured?.changes.some((c) => c.path === 'out.txt'))
      this.onRelease(); // the worker's change was captured
    else throw new Error(`unexpected release ${JSON.stringify(captured)}`);
  }
}

/**
 * Serves a one-item run whose worker is kept until released (as the docker target keeps its exited
 * container), and asks the serve to stop (Ctrl-C) just as the worker exits, before its outcome is
 * committed. `release` is the kept worker's removal. Real repository, real worker process.
 */
async function stopAsItFinishes(release: (status: string | undefined) => Promise<void>) {
  const repo = makeRepo({ 'README.md': 'x\n' });
  const { store, config, refs, runId } = await submitOneItemRun(repo);
  const scratchDir = join(store.gitdir, 'agora', runId);
  const local = createLocalTarget({ stateDir: join(scratchDir, 'pids') });
  const stop = new AbortController();
  const kept: WorkerTarget = {
    ...local,
    name: 'local',
    run: async (job, signal) => ({
      ...(await local.run(job, signal)),
      // Told what the state said when the worker was let go.
      release: async () => release((await readRun(store, refs, runId))?.state.items[job.itemId]?.status),
    }),
  };
  const warnings: string[] = [];
  const server = new Server({
    store,
    refs,
    config,
    targets: { local: kept },
    scratchDir,
    workspaces: new StopOnRelease(store, tempDir('agora-shutdown-work-'), () => stop.abort('SIGINT')),
    environment: {},
    keepFinishedWorkers: true,
    clock: Date.now,
    only: runId,
    pollMs: 50,
    onWarning: (_, message) => warnings.push(message),
  });
  await server.start();
  await server.serve(stop.signal);
  return { final: await readRun(store, refs, runId), warnings };
}

describe('serve stopped while a finished attempt waits to be committed', () => {
  it('records the attempt done, then releases the kept worker', async () => {
    const released: Array<string | undefined> = [];
    const { final, warnings } = await stopAsItFinishes(async (status) => void released.push(status));
    // The worker finished with exit 0 and its change was captured: that is what the state records.
    expect(final?.state.items.only).toMatchObject({ status: 'done', attempts: 1 });
    expect(released).toEqual(['done']); // released once the outcome was committed
    expect(warnings).toEqual([]);
  });

  it('says so when the kept worker cannot be removed', async () => {
    const { final, warnings } = await stopAsItFinishes(() => Promise.reject(new Error('container c0ffee: engine went away')));
    expect(final?.state.items.only).toMatchObject({ status: 'done', attempts: 1 });
    expect(warnings).toEqual(['could not remove a finished worker: container c0ffee: engine went away']);
  });
});
