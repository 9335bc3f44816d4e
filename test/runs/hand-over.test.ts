import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { handingOver } from '../../src/executors/hand-over.js';
import type { WorkerTarget } from '../../src/executors/types.js';
import { RunDriver } from '../../src/runs/driver.js';
import { acceptInbox } from '../../src/runs/inbox.js';
import { readRun } from '../../src/runs/state-store.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { eventually } from '../support/eventually.js';
import { cleanupTempDirs, makeRepo, tempDir } from '../support/repo.js';
import { submitOneItemRun } from './one-item-run.js';

afterAll(() => cleanupTempDirs());

/**
 * A driver that stops for another process to take its run over (the App's graceful stop, or a replica that
 * lost its lease) hands a worker over only on a target that can be re-attached to from there (`handsOver`):
 * the worker is aborted with a HandOver reason and its attempt stays running, for the next process's
 * recover(). On any other target the worker is stopped and its attempt recorded lost. A real repository and
 * the real driver; the target is a worker that runs until it is aborted, and says how it was.
 */
async function stopWhileRunning(handsOver: boolean, opts: { handOver?: boolean }) {
  const repo = makeRepo({ 'README.md': 'x\n' });
  const { store, config, refs, runId } = await submitOneItemRun(repo);
  const scratchDir = join(store.gitdir, 'agora', runId);
  const [accepted] = await acceptInbox(store, refs, config, scratchDir, Date.now(), runId);
  if (accepted?.kind !== 'accepted') throw new Error(`not accepted: ${JSON.stringify(accepted)}`);
  const aborts: Array<{ handingOver: boolean }> = [];
  let started = false;
  const target: WorkerTarget = {
    name: 'local',
    ...(handsOver ? { handsOver: true } : {}),
    run: (_job, signal) =>
      new Promise((resolve) => {
        started = true;
        signal.addEventListener('abort', () => {
          aborts.push({ handingOver: handingOver(signal) });
          resolve({ exitCode: null, reason: 'stopped' });
        });
      }),
  };
  const driver = new RunDriver(
    accepted.run,
    {
      store,
      refs,
      config,
      targets: { local: target },
      scratchDir,
      workspaces: new WorkspacePool(store, tempDir('agora-hand-over-')),
      environment: {},
      clock: Date.now,
    },
    { wake: () => undefined },
  );
  await driver.tick();
  await eventually('the worker to start', () => started || undefined);
  await driver.shutdown('the app is stopping', opts);
  await driver.tick();
  return { aborts, item: (await readRun(store, refs, runId))!.state.items.only! };
}

describe('a driver stopping for another process to take its run over', () => {
  it('hands a worker over on a target that can be re-attached to: aborted as a hand-over, its attempt left running', async () => {
    const { aborts, item } = await stopWhileRunning(true, { handOver: true });
    expect(aborts).toEqual([{ handingOver: true }]);
    expect(item).toMatchObject({ status: 'running', attempts: 1 });
  });

  it('stops a worker on any other target, and records its attempt lost', async () => {
    const { aborts, item } = await stopWhileRunning(false, { handOver: true });
    expect(aborts).toEqual([{ handingOver: false }]);
    expect(item.status).not.toBe('running');
    expect(item.reason).toContain('the app is stopping');
  });

  it('stops it on a target that could take it over too when the stop is not a hand-over', async () => {
    const { aborts, item } = await stopWhileRunning(true, {});
    expect(aborts).toEqual([{ handingOver: false }]);
    expect(item.status).not.toBe('running');
  });
});
