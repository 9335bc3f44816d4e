import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLocalTarget } from '../../src/executors/local-target.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import type { Plan } from '../../src/plan/schema.js';
import { cancelRun } from '../../src/runs/cancel.js';
import { submitPlan } from '../../src/runs/inbox.js';
import { RunRefs } from '../../src/runs/refs.js';
import { Server } from '../../src/runs/server.js';
import { readRun } from '../../src/runs/state-store.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import type { OrchConfig } from '../../src/config/types.js';
import type { RefSwap } from '../../src/git/types.js';
import { eventually, scaled } from '../support/eventually.js';
import { workerGate, type WorkerGate } from '../support/gate.js';
import { cleanupTempDirs, exited, git, makeRepo, startServe, tempDir } from '../support/repo.js';

/**
 * Issue 17, Must-have 1: a queue's bound and a lock hold across every run of a repository, whichever
 * server drives each run. Two in-process servers (each driving one run, as two `serve` processes or two
 * App replicas would) on one real repository; each run has one item that logs its start and end to a
 * shared file and waits at a gate, so "both items ran at once" is seen, not timed.
 */

const stops: Array<() => Promise<void>> = [];
const gates: WorkerGate[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
  while (gates.length) await gates.pop()!.remove();
});
afterAll(() => cleanupTempDirs());

interface Setup {
  repo: string;
  store: LocalGitStore;
  refs: RunRefs;
  config: OrchConfig;
  log: string;
  gate: WorkerGate;
}

async function setup(queues: OrchConfig['queues']): Promise<Setup> {
  const repo = makeRepo({ 'README.md': 'two runs\n' });
  const store = await openLocalStore(repo);
  const config = { ...(await loadConfig({ cwd: repo })), queues, defaultConcurrency: 4 };
  const gate = workerGate();
  gates.push(gate);
  return { repo, store, refs: new RunRefs(config.refNamespace), config, log: join(tempDir(), 'log'), gate };
}

function planOf(id: string, s: Setup, item: { queue?: string; locks: string[] }): Plan {
  const run = `echo "start $AGORA_RUN" >> ${s.log}; ${s.gate.wait}; echo "end $AGORA_RUN" >> ${s.log}`;
  return {
    id,
    queue: item.queue ?? 'default',
    items: [{ id: 'work', executor: 'command', inputs: { run }, depends_on: [], resourceLocks: item.locks }],
  };
}

async function submit(s: Setup, plan: Plan): Promise<string> {
  const base = (await s.store.resolveRef('HEAD'))!;
  const { runId } = await submitPlan(s.store, s.refs, { planText: JSON.stringify(plan), planId: plan.id, base, now: Date.now() });
  return runId;
}

/** Submits `plan` and serves it with a server of its own, in the background, until the test ends. */
async function serveOwn(s: Setup, plan: Plan): Promise<string> {
  const runId = await submit(s, plan);
  const scratchDir = join(s.store.gitdir, 'agora', runId);
  const server = new Server({
    store: s.store,
    refs: s.refs,
    config: s.config,
    targets: { local: createLocalTarget({ stateDir: join(scratchDir, 'pids') }) },
    scratchDir,
    // A work dir of its own, as a server on another machine (an App replica) has: one repository has
    // one serve per machine (the serve lock), and two servers sharing a work dir clear each other's pool.
    workspaces: new WorkspacePool(s.store, tempDir('agora-cross-run-work-')),
    environment: {},
    clock: Date.now,
    only: runId,
    pollMs: 50,
  });
  await server.start();
  const abort = new AbortController();
  const served = server.serve(abort.signal);
  stops.push(async () => {
    abort.abort('test over');
    await served;
  });
  return runId;
}

async function statusOf(s: Setup, runId: string): Promise<{ run: string; item: string } | undefined> {
  const r = await readRun(s.store, s.refs, runId);
  const item = r?.state.items.work;
  return r && item ? { run: r.state.status, item: item.status } : undefined;
}

function logLines(s: Setup): string[] {
  try {
    return readFileSync(s.log, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Both runs accepted and past their first reconcile; then one item may run, the other must wait. */
async function expectOneAtATime(s: Setup, a: string, b: string): Promise<void> {
  await eventually(
    'both runs reconciled and one item started',
    async () => {
      const [sa, sb] = [await statusOf(s, a), await statusOf(s, b)];
      const settled = (x: typeof sa) => x?.item === 'running' || x?.item === 'ready';
      return settled(sa) && settled(sb) && logLines(s).length > 0;
    },
    { within: scaled(30_000) },
  );
  const statuses = [(await statusOf(s, a))!.item, (await statusOf(s, b))!.item].sort();
  expect(statuses).toEqual(['ready', 'running']);
  expect(logLines(s)).toHaveLength(1);
  await s.gate.open();
  await eventually('both runs done', async () => (await statusOf(s, a))?.run === 'done' && (await statusOf(s, b))?.run === 'done', { within: scaled(30_000) });
  const [first, second] = [logLines(s)[0]!.slice('start '.length), logLines(s)[2]!.slice('start '.length)];
  expect(new Set([first, second])).toEqual(new Set([a, b]));
  expect(logLines(s)).toEqual([`start ${first}`, `end ${first}`, `start ${second}`, `end ${second}`]);
}

describe('queues and locks across runs', () => {
  it('two runs on a queue of concurrency 1, each driven by its own server, run their items one at a time', async () => {
    const s = await setup({ deploys: { concurrency: 1 } });
    const a = await serveOwn(s, planOf('first', s, { queue: 'deploys', locks: [] }));
    const b = await serveOwn(s, planOf('second', s, { queue: 'deploys', locks: [] }));
    await expectOneAtATime(s, a, b);
  });

  it('two runs never hold the same lock key at once, on different queues and different servers', async () => {
    const s = await setup({});
    const a = await serveOwn(s, planOf('first', s, { queue: 'one', locks: ['resource:deploy/prod'] }));
    const b = await serveOwn(s, planOf('second', s, { queue: 'two', locks: ['resource:deploy'] }));
    await expectOneAtATime(s, a, b);
  });

  it('the claim of a start moves in the transaction of the state commit that records it, ahead of the run ref (one atomic push on GitHub)', async () => {
    const s = await setup({});
    const moves: string[][] = [];
    const raw = s.store;
    s.store = new Proxy(raw, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'casRefs') return (swaps: RefSwap[]) => (moves.push(swaps.map((w) => w.ref)), raw.casRefs(swaps));
        if (prop === 'casRef') return (ref: string, next: string, expected: string | null) => (moves.push([ref]), raw.casRef(ref, next, expected));
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const a = await serveOwn(s, planOf('claimed', s, { locks: ['resource:db'] }));
    await eventually('the item started', async () => logLines(s).length > 0 || undefined);
    const withClaims = moves.filter((refs) => refs.includes(s.refs.claims));
    expect(withClaims.length).toBeGreaterThan(0);
    for (const refs of withClaims) {
      expect(refs).toContain(s.refs.run(a));
      expect(refs.indexOf(s.refs.claims)).toBeLessThan(refs.indexOf(s.refs.run(a)));
    }
    await s.gate.open();
    await eventually('the run done', async () => (await statusOf(s, a))?.run === 'done', { within: scaled(30_000) });
  });

  it('a serve killed between writing its claim and recording the start leaks no lock: the claim is void once its run moves on', async () => {
    const s = await setup({});
    const a = await submit(s, planOf('crashed', s, { locks: ['resource:db'] }));
    // The claim moves in the transaction of the state commit that starts the item, ahead of the run ref:
    // the serve's 3rd ref rename (the 1st and 2nd record the accepted run: its inbox entry, checked
    // unchanged, then the run ref) is the claims ref's, and the kill lands before the run ref's.
    const crashing = startServe(s.repo, { AGORA_CRASH_AT: 'ref-renamed:3' });
    await exited(crashing);
    expect(crashing.signalCode, crashing.output()).toBe('SIGKILL');
    // The claim is durable; the start it was for is not (the run ref's lock is left, naming the dead serve).
    const claims = await s.store.resolveRef(s.refs.claims);
    expect(claims).not.toBeNull();
    expect(git(s.repo, 'cat-file', '-p', `${claims}:claims.json`)).toContain(`"run":"${a}"`);
    expect(existsSync(join(s.store.gitdir, `${s.refs.run(a)}.lock`))).toBe(true);
    expect((await statusOf(s, a))?.item).toBe('pending'); // as accepted: the step that started it never landed

    // As a restarted serve does (it holds the serve lock; this test is the only writer), locks whose writer is gone are removed.
    s.store.recoverAbandonedLocks();
    const b = await serveOwn(s, planOf('waiting', s, { locks: ['resource:db/main'] }));
    await eventually('the second run reconciled, its item waiting', async () => (await statusOf(s, b))?.item === 'ready' || undefined);
    expect(logLines(s)).toEqual([]);

    // The crashed run is cancelled: nobody touches the claims ref, and the lock is free.
    expect((await cancelRun(s.store, s.refs, a, 'cancelled by the test', Date.now)).kind).toBe('cancelled');
    await s.gate.open();
    await eventually('the second run done', async () => (await statusOf(s, b))?.run === 'done', { within: scaled(30_000) });
    expect(logLines(s)).toEqual([`start ${b}`, `end ${b}`]);
    expect((await statusOf(s, a))?.run).toBe('cancelled');
  });
});
