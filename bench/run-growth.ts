/**
 * bench/run-growth: what a run's state chain costs as the run grows (issue 16, Must-have 1). A plan of
 * N independent no-op items runs through the real engine and the real state store at concurrency 2;
 * the workers are replaced by an immediate success (patch = the base, a small log each), so what is
 * measured is the state chain alone, with the refs the driver moves beside it (each done item's patch
 * ref, the integration ref): the object bytes written (uncompressed: blobs, trees and commits as git
 * hashes them, counted at the storage port), the `.git` growth on disk (as the store writes them: packs, no gc) and the
 * time per item. Target: bytes per item at 800 items ≤ 1.5× those at 100; a 10,000-item run
 * writes ≤ 100 MB. `npx tsx bench/run-growth.ts 100 800 10000` picks the sizes.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { step } from '../src/engine/step.js';
import type { RunEvent } from '../src/engine/types.js';
import { openLocalStore, type LocalGitStore } from '../src/git/local-store.js';
import type { CommitData, GitStore, Oid, RefSwap, TreeEntry } from '../src/git/types.js';
import { appendEntries } from '../src/log/entry.js';
import type { Plan } from '../src/plan/schema.js';
import { RunRefs } from '../src/runs/refs.js';
import { logName, writeNewRun, writeRun, type StoredRun } from '../src/runs/state-store.js';
import { report } from './lib.js';
import { removeRepo, scratchRepo } from './run-plan.js';

/** The storage port, counting the bytes of every object written (as git hashes them, before compression). */
class CountingStore implements GitStore {
  bytes = 0;
  objects = 0;
  constructor(private readonly inner: LocalGitStore) {}
  get gitdir(): string {
    return this.inner.gitdir;
  }
  readBlob(oid: Oid) {
    return this.inner.readBlob(oid);
  }
  readTree(oid: Oid) {
    return this.inner.readTree(oid);
  }
  readCommit(oid: Oid) {
    return this.inner.readCommit(oid);
  }
  hasObject(oid: Oid) {
    return this.inner.hasObject(oid);
  }
  resolveRef(ref: string) {
    return this.inner.resolveRef(ref);
  }
  listRefs(prefix: string) {
    return this.inner.listRefs(prefix);
  }
  casRef(ref: string, next: Oid, expected: Oid | null) {
    return this.inner.casRef(ref, next, expected);
  }
  casRefs(swaps: readonly RefSwap[]) {
    return this.inner.casRefs(swaps);
  }
  deleteRef(ref: string, expected: Oid) {
    return this.inner.deleteRef(ref, expected);
  }
  async writeBlob(data: Uint8Array | string): Promise<Oid> {
    this.count(typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength);
    return this.inner.writeBlob(data);
  }
  async writeTree(entries: TreeEntry[]): Promise<Oid> {
    // A tree entry is `<mode without leading 0> <name>\0<20-byte id>`.
    this.count(entries.reduce((n, e) => n + e.mode.replace(/^0/, '').length + 2 + Buffer.byteLength(e.path) + 20, 0));
    return this.inner.writeTree(entries);
  }
  async writeCommit(commit: CommitData): Promise<Oid> {
    const oid = await this.inner.writeCommit(commit);
    this.count(await this.inner.objectSize(oid));
    return oid;
  }
  private count(n: number): void {
    this.bytes += n;
    this.objects += 1;
  }
}

function noopPlan(items: number): Plan {
  const width = String(items - 1).length;
  return {
    id: 'growth',
    queue: 'default',
    items: Array.from({ length: items }, (_, i) => ({
      id: `item-${String(i).padStart(width, '0')}`,
      executor: 'command' as const,
      inputs: { run: 'true' },
      depends_on: [],
      resourceLocks: [],
    })),
  };
}

function duBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? duBytes(p) : statSync(p).size;
  }
  return n;
}

export async function benchRunGrowth(items: number) {
  const repo = scratchRepo({ 'README.md': 'bench\n' });
  try {
    const store = new CountingStore(await openLocalStore(repo));
    const refs = new RunRefs('refs/agora');
    const base = (await store.resolveRef('HEAD'))!;
    const plan = noopPlan(items);
    const planText = JSON.stringify(plan);
    const runId = 'growth-1';
    const gitBefore = duBytes(join(repo, '.git'));
    const started = performance.now();
    let now = 1_000_000;
    let stored: StoredRun | null = await writeNewRun(store, refs, { runId, plan, planText, base, concurrency: 2, now });
    let commits = 1;
    while (stored && stored.state.status === 'running') {
      now += 1;
      const running = Object.values(stored.state.items).filter((i) => i.status === 'running');
      const logs: Array<{ name: string; oid: Oid }> = [];
      const events: RunEvent[] = [];
      for (const i of running) {
        const log = await store.writeBlob(`${i.id} attempt ${i.attempts}: ok\n`);
        logs.push({ name: logName(i.id, i.attempts), oid: log });
        events.push({ type: 'item-succeeded', itemId: i.id, attempt: i.attempts, resultRef: `git:${base}`, integrationHead: base, log, exitCode: 0 });
      }
      const result = step({ plan: stored.plan, state: stored.state }, events, now);
      if (result.transitions.length === 0) throw new Error(`run-growth: the run stalled at ${JSON.stringify(stored.state.status)}`);
      // The refs the driver moves with the state: the integration ref (once: the patches are empty) and
      // the patch ref of each item done, in the state's transaction.
      const moveAlso: RefSwap[] = running.map((i) => ({ ref: refs.patch(runId, i.id), next: base, expected: null }));
      if ((await store.resolveRef(refs.integration(runId))) === null) moveAlso.push({ ref: refs.integration(runId), next: base, expected: null });
      stored = await writeRun(store, refs, {
        moveAlso,
        runId,
        prev: stored,
        state: result.run.state,
        entries: appendEntries(stored.last, runId, result.transitions),
        transitions: result.transitions,
        logs,
        now,
      });
      commits += 1;
    }
    if (!stored || stored.state.status !== 'done') throw new Error('run-growth: the run did not end done');
    const ms = performance.now() - started;
    return {
      items,
      stateCommits: commits,
      objectBytes: store.bytes,
      objects: store.objects,
      bytesPerItem: Math.round(store.bytes / items),
      gitGrowthBytes: duBytes(join(repo, '.git')) - gitBefore,
      msPerItem: Math.round((ms / items) * 100) / 100,
    };
  } finally {
    removeRepo(repo);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number);
  const results = [];
  for (const n of sizes.length > 0 ? sizes : [100, 800, 10_000]) results.push(report('run-growth', await benchRunGrowth(n)));
  const small = results.find((r) => r.items === 100);
  const large = results.find((r) => r.items === 800);
  const huge = results.find((r) => r.items === 10_000);
  if (small && large) {
    const ratio = large.bytesPerItem / small.bytesPerItem;
    report('run-growth', { ratio800to100: Math.round(ratio * 100) / 100, target: '≤ 1.5×', withinTarget: ratio <= 1.5 });
  }
  if (huge)
    report('run-growth', { items: huge.items, objectMB: Math.round(huge.objectBytes / 1e5) / 10, target: '≤ 100 MB', withinTarget: huge.objectBytes <= 100e6 });
}
