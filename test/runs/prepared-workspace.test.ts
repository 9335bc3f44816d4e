import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalTarget } from '../../src/executors/local-target.js';
import type { LocalGitStore } from '../../src/git/local-store.js';
import type { Oid, RefSwap } from '../../src/git/types.js';
import type { Workspace } from '../../src/git/workspace.js';
import { Server } from '../../src/runs/server.js';
import { readRun } from '../../src/runs/state-store.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { submitOneItemRun } from './one-item-run.js';
import { cleanupTempDirs, makeRepo, tempDir } from '../support/repo.js';

afterAll(() => cleanupTempDirs());

/** A pool that records the order of what it is asked to do. */
class RecordingPool extends WorkspacePool {
  readonly calls: string[] = [];
  override async acquire(commit: Oid): Promise<Workspace> {
    this.calls.push('acquire');
    const ws = await super.acquire(commit);
    this.calls.push(`ready ${ws.dir.split('/').pop()}`);
    return ws;
  }
  override async release(ws: Workspace, reusable: boolean, changed?: Parameters<WorkspacePool['release']>[2]): Promise<void> {
    this.calls.push(`release ${ws.dir.split('/').pop()}`);
    return super.release(ws, reusable, changed);
  }
}

/**
 * The store of a real repository, but the first state commit written while a workspace is being made
 * ready loses its compare-and-swap, as when another writer (a cancel, a second replica) got there first.
 */
function losingOnce(store: LocalGitStore, runRef: () => string, pool: RecordingPool): { store: LocalGitStore; lost: () => number } {
  let lost = 0;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'casRefs') {
        return async (swaps: readonly RefSwap[]) => {
          if (lost === 0 && pool.calls.includes('acquire') && swaps.some((s) => s.ref === runRef())) {
            lost += 1;
            return false;
          }
          return target.casRefs(swaps);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: proxy, lost: () => lost };
}

describe('workspaces made ready while a start is committed', () => {
  it('go back to the pool when the commit loses its race, before the retry asks for one: the retry re-targets it, no second checkout', async () => {
    const repo = makeRepo({ 'README.md': 'prepared\n', 'src/a.txt': 'a\n' });
    const { store: raw, config, refs, runId } = await submitOneItemRun(repo);
    const workDir = tempDir('agora-prepared-work-');
    const pool = new RecordingPool(raw, workDir);
    const { store, lost } = losingOnce(raw, () => refs.run(runId), pool);
    const scratchDir = join(raw.gitdir, 'agora', runId);
    const server = new Server({
      store,
      refs,
      config,
      targets: { local: createLocalTarget({ stateDir: join(scratchDir, 'pids') }) },
      scratchDir,
      workspaces: pool,
      environment: {},
      clock: Date.now,
      only: runId,
      pollMs: 50,
    });
    await server.start();
    await server.serve(new AbortController().signal, (s) => {
      const run = s.run(runId);
      return run !== undefined && run.state.status !== 'running' && s.activeRuns === 0;
    });
    expect(lost()).toBe(1);
    const final = await readRun(raw, refs, runId);
    expect(final?.state.status).toBe('done');
    expect(final?.state.items.only).toMatchObject({ status: 'done', attempts: 1 });
    // Workspace 1 made ready, given back unused when the commit lost, taken again by the retry, given back after the item.
    expect(pool.calls).toEqual(['acquire', 'ready 1', 'release 1', 'acquire', 'ready 1', 'release 1']);
  });
});
