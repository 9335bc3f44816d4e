import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { handingOver } from '../../src/executors/hand-over.js';
import type { WorkerTarget } from '../../src/executors/types.js';
import { RunDriver } from '../../src/runs/driver.js';
import { acceptInbox } from '../../src/runs/inbox.js';
import { recordRequest } from '../../src/runs/requests.js';
import { readRun } from '../../src/runs/state-store.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { eventually } from '../support/eventually.js';
import { cleanupTempDirs, makeRepo, tempDir } from '../support/repo.js';
import { submitCommandRun } from './one-item-run.js';

afterAll(() => cleanupTempDirs());

/**
 * A driver that stops for another process to take its run over (the App's graceful stop, or a replica that
 * lost its lease) hands a worker over only on a target that can be re-attached to from there (`handsOver`):
 * the worker is aborted with a HandOver reason and its attempt stays running, for the next process's
 * recover(). On any other target the worker is stopped and its attempt recorded lost. And the process that
 * takes a run over asks every target before it acts on any answer, and stops the workers of attempts that
 * ended while nobody watched them. A real repository and the real driver; the target's worker runs until it
 * is aborted, and says how it was.
 */
async function acceptedRun(items: string[]) {
  const repo = makeRepo({ 'README.md': 'x\n' });
  const { store, config, refs, runId } = await submitCommandRun(
    repo,
    items.map((id) => ({ id, run: 'true' })),
  );
  const scratchDir = join(store.gitdir, 'agora', runId);
  const [accepted] = await acceptInbox(store, refs, config, scratchDir, Date.now(), { runId });
  if (accepted?.kind !== 'accepted') throw new Error(`not accepted: ${JSON.stringify(accepted)}`);
  const events: string[] = [];
  const target = (extra: Partial<WorkerTarget> = {}): WorkerTarget => ({
    name: 'local',
    run: (job, signal) =>
      new Promise((resolve) => {
        events.push(`run ${job.itemId}`);
        signal.addEventListener('abort', () => {
          events.push(`${handingOver(signal) ? 'handed over' : 'stopped'} ${job.itemId}`);
          resolve({ exitCode: null, reason: 'stopped' });
        });
      }),
    ...extra,
  });
  /** A driver of the run as stored now, as a process that has just taken it over has it. */
  const driver = async (t: WorkerTarget) =>
    new RunDriver(
      (await readRun(store, refs, runId))!,
      {
        store,
        refs,
        config,
        targets: { local: t },
        scratchDir,
        workspaces: new WorkspacePool(store, tempDir('agora-hand-over-')),
        environment: {},
        clock: Date.now,
      },
      { wake: () => undefined },
    );
  const items_ = async () => (await readRun(store, refs, runId))!.state.items;
  return { store, refs, runId, events, target, driver, items: items_ };
}

/** A run whose items all run, on a first driver with `target`. */
async function running(items: string[], extra: Partial<WorkerTarget> = {}) {
  const r = await acceptedRun(items);
  const first = await r.driver(r.target(extra));
  await first.tick();
  await eventually('the workers to start', () => items.every((i) => r.events.includes(`run ${i}`)) || undefined);
  return { ...r, first };
}

describe('a driver stopping for another process to take its run over', () => {
  it('hands a worker over on a target that can be re-attached to: aborted as a hand-over, its attempt left running', async () => {
    const r = await running(['only'], { handsOver: true });
    await r.first.shutdown('the app is stopping', { handOver: true });
    await r.first.tick();
    expect(r.events).toEqual(['run only', 'handed over only']);
    expect((await r.items()).only).toMatchObject({ status: 'running', attempts: 1 });
  });

  it('stops a worker on any other target, and records its attempt lost', async () => {
    const r = await running(['only']);
    await r.first.shutdown('the app is stopping', { handOver: true });
    await r.first.tick();
    expect(r.events).toEqual(['run only', 'stopped only']);
    expect((await r.items()).only!.reason).toContain('the app is stopping');
  });

  it('stops it on a target that could take it over too when the stop is not a hand-over', async () => {
    const r = await running(['only'], { handsOver: true });
    await r.first.shutdown('the app is stopping');
    await r.first.tick();
    expect(r.events).toEqual(['run only', 'stopped only']);
    expect((await r.items()).only!.status).not.toBe('running');
  });

  it('leaves running an attempt on such a target that has no worker here yet (stopped while it recovers the run)', async () => {
    const r = await running(['only'], { handsOver: true });
    const next = await r.driver(r.target({ handsOver: true }));
    await next.shutdown('the app is stopping', { handOver: true });
    await next.tick();
    expect((await r.items()).only).toMatchObject({ status: 'running', attempts: 1 });
  });
});

describe('a driver recovering a run it takes over', () => {
  it('asks every target first: when one cannot answer, it starts nothing and records nothing', async () => {
    const r = await running(['a', 'b']);
    const next = await r.driver(
      r.target({
        canResume: async (_run, itemId) => {
          if (itemId === 'b') throw new Error('GitHub answered 503');
          return true;
        },
      }),
    );
    await expect(next.recover()).rejects.toThrow('GitHub answered 503');
    expect(next.busy).toBe(false); // no worker of its own, for a, which it could have re-attached to
    await next.tick();
    // The first driver's workers only (they start in whichever order their workspaces are ready).
    expect([...r.events].sort()).toEqual(['run a', 'run b']);
    const items = await r.items();
    expect([items.a!.status, items.b!.status]).toEqual(['running', 'running']);
  });

  it('stops, where it may still run, the worker of an attempt that was cancelled while nobody watched it', async () => {
    const r = await running(['a']);
    expect((await recordRequest(r.store, r.refs, r.runId, { type: 'cancel-run', reason: 'cancelled by bob' }, Date.now)).kind).toBe('recorded');
    const stopped: string[] = [];
    const next = await r.driver(r.target({ stopElsewhere: async (run, itemId, attempt) => void stopped.push(`${run} ${itemId} ${attempt}`) }));
    await next.recover();
    expect(stopped).toEqual([`${r.runId} a 1`]);
  });
});
