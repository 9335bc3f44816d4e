import { afterAll, describe, expect, it } from 'vitest';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { loadConfig } from '../../src/config/load.js';
import { acceptRun, step } from '../../src/engine/step.js';
import type { RunState, Transition } from '../../src/engine/types.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import type { GitStore, Oid, TreeEntry } from '../../src/git/types.js';
import { appendEntries, type AuditEntry } from '../../src/log/entry.js';
import { canonicalJson } from '../../src/log/canonical-json.js';
import type { Plan } from '../../src/plan/schema.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readLog, readRun, readRunAt, writeNewRun, writeRun, type StoredRun } from '../../src/runs/state-store.js';
import { serveRun } from '../../bench/run-plan.js';
import { cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

function plan(items: number, run = 'true'): Plan {
  return {
    id: 'layout',
    queue: 'default',
    items: Array.from({ length: items }, (_, i) => ({ id: `item-${i}`, executor: 'command', inputs: { run }, depends_on: [], resourceLocks: [] })),
  };
}

/** Bytes of the objects one writeRun writes (blobs' content; trees as git hashes them; commits by their text). */
function countingStore(inner: LocalGitStore): GitStore & { written: number } {
  const counter = Object.create(inner) as LocalGitStore & { written: number };
  counter.written = 0;
  counter.writeBlob = async (data) => {
    counter.written += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    return inner.writeBlob(data);
  };
  counter.writeTree = async (entries) => {
    counter.written += entries.reduce((n, e) => n + e.mode.replace(/^0/, '').length + 2 + Buffer.byteLength(e.path) + 20, 0);
    return inner.writeTree(entries);
  };
  counter.writeCommit = async (c) => {
    const oid = await inner.writeCommit(c);
    counter.written += await inner.objectSize(oid);
    return oid;
  };
  return counter;
}

/** A run of `items` items, accepted, then one state commit in which one item starts: what that commit wrote. */
async function oneTransition(items: number): Promise<{ written: number; stored: StoredRun; expected: RunState; store: GitStore }> {
  const repo = makeRepo({ 'README.md': 'x\n' });
  const store = countingStore(await openLocalStore(repo));
  const refs = new RunRefs();
  const p = plan(items);
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  // Concurrency 1: after acceptance one item runs; its success makes the next one start.
  let stored = (await writeNewRun(store, refs, { runId: 'layout-1', plan: p, planText: JSON.stringify(p), base, concurrency: 1, now: 1 }))!;
  const accepted = step({ plan: p, state: stored.state }, [], 2);
  stored = (await writeRun(store, refs, {
    runId: 'layout-1',
    prev: stored,
    state: accepted.run.state,
    entries: appendEntries(stored.last, 'layout-1', accepted.transitions),
    transitions: accepted.transitions,
    now: 2,
  }))!;
  const first = accepted.actions[0]!;
  const done = step(
    { plan: p, state: stored.state },
    [{ type: 'item-succeeded', itemId: first.itemId, attempt: 1, resultRef: `git:${base}`, integrationHead: base }],
    3,
  );
  store.written = 0;
  const next = (await writeRun(store, refs, {
    runId: 'layout-1',
    prev: stored,
    state: done.run.state,
    entries: appendEntries(stored.last, 'layout-1', done.transitions),
    transitions: done.transitions,
    now: 3,
  }))!;
  return { written: store.written, stored: next, expected: done.run.state, store };
}

describe('run state layout 2', () => {
  it('a state commit writes what changed: the same bytes in a 20-item and a 600-item run, and reads back whole', async () => {
    const small = await oneTransition(20);
    const large = await oneTransition(600);
    // Two items moved (one done, the next running): a few small blobs and the trees on their paths.
    expect(large.written).toBeLessThan(6_000);
    expect(large.written / small.written).toBeLessThan(1.5);
    for (const r of [small, large]) {
      const read = await readRunAt(r.store, 'layout-1', r.stored.head);
      expect(read.state).toEqual(r.expected);
      expect(Object.keys(read.state.items)).toEqual(Object.keys(r.expected.items)); // plan order
      expect(read.layout).toBe(2);
    }
  });
});

/** The layout-1 writer as it was: the whole state in state.json, logs flat in logs/. Kept here only to build fixtures. */
async function writeV1(
  store: GitStore,
  refs: RunRefs,
  w: {
    runId: string;
    prev: { head: Oid; logs: TreeEntry[] } | null;
    planBlob: Oid;
    state: RunState;
    entries: AuditEntry[];
    transitions: Transition[];
    logs: TreeEntry[];
    now: number;
  },
): Promise<Oid> {
  const tree: TreeEntry[] = [
    { mode: '100644', path: 'entries.jsonl', oid: await store.writeBlob(w.entries.map((e) => `${canonicalJson(e)}\n`).join('')), type: 'blob' },
    { mode: '100644', path: 'plan.json', oid: w.planBlob, type: 'blob' },
    { mode: '100644', path: 'state.json', oid: await store.writeBlob(`${JSON.stringify(w.state, null, 2)}\n`), type: 'blob' },
  ];
  if (w.logs.length > 0) tree.push({ mode: '040000', path: 'logs', oid: await store.writeTree(w.logs), type: 'tree' });
  const who = agoraIdentity(w.now);
  const head = await store.writeCommit({
    tree: await store.writeTree(tree),
    parents: w.prev ? [w.prev.head] : [],
    message: `agora: ${w.runId}\n\nAgora-Run: ${w.runId}\n`,
    author: who,
    committer: who,
  });
  expect(await store.casRef(refs.run(w.runId), head, w.prev?.head ?? null)).toBe(true);
  return head;
}

describe('a run written in layout 1 (one state.json)', () => {
  it('still reads, resumes to the end in layout 2 (its old logs kept) and verifies with the repository', async () => {
    const repo = makeRepo({ 'README.md': 'x\n' });
    const store = await openLocalStore(repo);
    const refs = new RunRefs();
    const runId = 'legacy-1';
    const p: Plan = {
      id: 'legacy',
      queue: 'default',
      items: [
        {
          id: 'a',
          executor: 'command',
          inputs: { run: 'echo a > a.txt' },
          depends_on: [],
          resourceLocks: ['a.txt'],
          retry: { maxAttempts: 2, backoff: { initialSeconds: 0, factor: 1, maxSeconds: 0 } },
        },
        { id: 'b', executor: 'command', inputs: { run: 'echo b > b.txt' }, depends_on: ['a'], resourceLocks: ['b.txt'] },
      ],
    };
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    const planBlob = await store.writeBlob(JSON.stringify(p));
    // Commit 1: accepted, `a` running. Commit 2: its first attempt failed (a log kept), it waits for a retry.
    const t0 = Date.now() - 10_000;
    const accepted = acceptRun(p, { runId, base, concurrency: 1, now: t0 });
    let entries = appendEntries(null, runId, accepted.transitions);
    const head1 = await writeV1(store, refs, {
      runId,
      prev: null,
      planBlob,
      state: accepted.run.state,
      entries,
      transitions: accepted.transitions,
      logs: [],
      now: t0,
    });
    const log = await store.writeBlob('attempt 1 of a: it failed\n');
    const failed = step(accepted.run, [{ type: 'item-failed', itemId: 'a', attempt: 1, reason: 'exit 1', retryable: true, log, exitCode: 1 }], t0 + 1, {
      startItems: false,
    });
    expect(failed.run.state.items.a!.status).toBe('ready');
    entries = appendEntries(entries[entries.length - 1]!, runId, failed.transitions);
    const logs: TreeEntry[] = [{ mode: '100644', path: 'a.1.log', oid: log, type: 'blob' }];
    await writeV1(store, refs, {
      runId,
      prev: { head: head1, logs: [] },
      planBlob,
      state: failed.run.state,
      entries,
      transitions: failed.transitions,
      logs,
      now: t0 + 1,
    });

    const old = (await readRun(store, refs, runId))!;
    expect(old.layout).toBe(1);
    expect(old.state).toEqual(failed.run.state);
    expect(await readLog(store, old.logsTree, 'a.1.log')).toBe('attempt 1 of a: it failed\n');

    const config = { ...(await loadConfig({ cwd: repo })), defaultConcurrency: 1, queues: {} };
    await serveRun(store, refs, config, runId);

    const done = (await readRun(store, refs, runId))!;
    expect(done.layout).toBe(2);
    expect(done.state.status).toBe('done');
    expect([done.state.items.a!.attempts, done.state.items.b!.attempts]).toEqual([2, 1]);
    expect(await readLog(store, done.logsTree, 'a.1.log')).toBe('attempt 1 of a: it failed\n');
    expect(await readLog(store, done.logsTree, 'a.2.log')).not.toBeNull();
    expect(git(repo, 'ls-tree', '--name-only', `${head1}`).split('\n')).toContain('state.json');

    const bundle = await buildAuditBundle(store, refs, runId, { anchor: true, now: Date.now() });
    const report = await verifyBundle(bundle, { store, refs });
    expect(report.failures).toEqual([]);
    expect(report.intact).toBe(true);
    expect(bundle.items.map((i) => [i.id, i.status])).toEqual([
      ['a', 'done'],
      ['b', 'done'],
    ]);
  });
});
