/**
 * bench/report: `agora orch report` on a 1,000-item run (issue 19, Measured): its time beside `agora orch
 * status` of the same run (both as a user runs them: the CLI in a new process, median of 3), the file's
 * size, and the time to first paint when Debian's chromium opens it (playwright-core; median of 3).
 *
 * The run is made through the real engine and state store, with the workers replaced (as in
 * bench/run-growth): each item writes one 20-line file under `area-<i % 20>/` (its lock, so items
 * contend), through the real patch and integration code; item i depends on item i-10 (ten chains of 100);
 * every 97th item fails (its chain after it is skipped) and every 131st fails once and passes its retry.
 * Each attempt keeps a 30-line log. `npx tsx bench/report.ts [items] [--keep]`.
 *
 * Also what the GitHub App's finish adds for the report it attaches to the release (in process, median
 * of 3): collecting and rendering it from the audit bundle the finish has just built (`appReportMs`),
 * beside building that bundle (`appBundleMs`, which the finish does anyway).
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { buildAuditBundle } from '../src/audit/build-bundle.js';
import { step } from '../src/engine/step.js';
import { renderReleaseReport } from '../src/github/release-report.js';
import type { RunEvent } from '../src/engine/types.js';
import { openLocalStore } from '../src/git/local-store.js';
import { applyTreeChanges } from '../src/git/tree-edit.js';
import { diffTrees } from '../src/git/tree-diff.js';
import type { Oid, RefSwap } from '../src/git/types.js';
import { appendEntries } from '../src/log/entry.js';
import { resultRefFor } from '../src/log/result-ref.js';
import type { Plan } from '../src/plan/schema.js';
import { integratePatch, recordPatch } from '../src/runs/patches.js';
import { RunRefs } from '../src/runs/refs.js';
import { logName, writeNewRun, writeRun, type StoredRun } from '../src/runs/state-store.js';
import { median, report, timeAsync } from './lib.js';
import { removeRepo, scratchRepo } from './run-plan.js';
import { BUILT_CLI, ensureBuiltCli } from '../test/support/built-cli.js';

const run = promisify(execFile);
// The CLI as installed (package.json's bin), built first when src/ is newer: through tsx every start would
// also transpile its modules, which a user's start does not.
const CLI = BUILT_CLI;

const fails = (i: number) => i % 97 === 50;
const flaky = (i: number) => i % 131 === 7;
const id = (i: number) => `item-${String(i).padStart(4, '0')}`;

function plan(items: number): Plan {
  return {
    id: 'report',
    queue: 'default',
    items: Array.from({ length: items }, (_, i) => ({
      id: id(i),
      executor: 'command',
      inputs: { run: 'true' },
      depends_on: i >= 10 ? [id(i - 10)] : [],
      resourceLocks: [`area-${i % 20}`],
      ...(flaky(i) ? { retry: { maxAttempts: 2, backoff: { initialSeconds: 0, factor: 2, maxSeconds: 0 } } } : {}),
    })),
  };
}

async function makeRun(repo: string, items: number): Promise<string> {
  const store = await openLocalStore(repo);
  const refs = new RunRefs('refs/agora');
  const runId = 'report-1';
  const base = (await store.resolveRef('HEAD'))!;
  const p = plan(items);
  let now = 1_700_000_000_000;
  let stored: StoredRun | null = await writeNewRun(store, refs, { runId, plan: p, planText: JSON.stringify(p), base, concurrency: 4, now });
  while (stored && stored.state.status === 'running') {
    now += 700;
    const logs: Array<{ name: string; oid: Oid }> = [];
    const events: RunEvent[] = [];
    const firstHead = stored.state.integrationHead;
    let head = firstHead;
    const moveAlso: RefSwap[] = [];
    for (const item of Object.values(stored.state.items).filter((x) => x.status === 'running')) {
      const i = Number(item.id.slice(5));
      const log = await store.writeBlob(Array.from({ length: 30 }, (_, n) => `${item.id} attempt ${item.attempts}: step ${n}`).join('\n') + '\n');
      logs.push({ name: logName(item.id, item.attempts), oid: log });
      if (fails(i) || (flaky(i) && item.attempts === 1)) {
        events.push({
          type: 'item-failed',
          itemId: item.id,
          attempt: item.attempts,
          reason: `exited with code 1: step ${i} broke`,
          retryable: flaky(i),
          log,
          exitCode: 1,
        });
        continue;
      }
      const baseTree = (await store.readCommit(item.base!)).tree;
      const blob = await store.writeBlob(Array.from({ length: 20 }, (_, n) => `line ${n} of ${item.id}`).join('\n') + '\n');
      const tree = await applyTreeChanges(store, baseTree, [{ path: `area-${i % 20}/${item.id}.txt`, entry: { mode: '100644', oid: blob } }]);
      const patch = await recordPatch(store, {
        runId,
        itemId: item.id,
        attempt: item.attempts,
        base: item.base!,
        tree,
        changes: await diffTrees(store, baseTree, tree),
        locks: [`area-${i % 20}`],
        policy: 'fail',
        now,
      });
      if (!patch.ok) throw new Error(patch.reason);
      head = await integratePatch(store, { head, patch: patch.commit, runId, itemId: item.id, now });
      moveAlso.push({ ref: refs.patch(runId, item.id), next: patch.commit, expected: null });
      events.push({
        type: 'item-succeeded',
        itemId: item.id,
        attempt: item.attempts,
        resultRef: resultRefFor(patch.commit),
        integrationHead: head,
        log,
        exitCode: 0,
      });
    }
    const result = step({ plan: stored.plan, state: stored.state }, events, now);
    stored = await writeRun(store, refs, {
      runId,
      prev: stored,
      state: result.run.state,
      entries: appendEntries(stored.last, runId, result.transitions),
      transitions: result.transitions,
      logs,
      now,
      moveAlso:
        head === firstHead ? moveAlso : [...moveAlso, { ref: refs.integration(runId), next: head, expected: await store.resolveRef(refs.integration(runId)) }],
    });
  }
  if (!stored) throw new Error('report bench: the run ref moved under the bench');
  return runId;
}

async function cli(repo: string, args: string[]): Promise<number> {
  const { ms } = await timeAsync(() => run(process.execPath, [CLI, ...args], { cwd: repo, maxBuffer: 256 * 1024 * 1024 }));
  return ms;
}

async function firstPaint(file: string, executablePath: string): Promise<{ firstPaintMs: number; loadMs: number }> {
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    // Paint entries arrive after the first frame: wait for them (buffered), not for a time.
    return await page.evaluate(
      () =>
        new Promise<{ firstPaintMs: number; loadMs: number }>((done) => {
          type Entry = { name: string; startTime: number; loadEventEnd?: number };
          const g = globalThis as unknown as {
            performance: { getEntriesByType(t: string): Entry[] };
            PerformanceObserver: new (cb: (list: { getEntries(): Entry[] }) => void) => { observe(o: object): void };
          };
          const loadMs = Math.round(g.performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? NaN);
          new g.PerformanceObserver((list) => {
            const fcp = list.getEntries().find((e) => e.name === 'first-contentful-paint');
            if (fcp) done({ firstPaintMs: Math.round(fcp.startTime), loadMs });
          }).observe({ type: 'paint', buffered: true });
        }),
    );
  } finally {
    await browser.close();
  }
}

const items = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1000);
ensureBuiltCli();
const repo = scratchRepo({ 'README.md': 'bench\n' });
try {
  const made = await timeAsync(() => makeRun(repo, items));
  const runId = made.value;
  const out = join(repo, 'run.html');
  const status: number[] = [];
  const reportMs: number[] = [];
  for (let k = 0; k < 3; k++) {
    status.push(await cli(repo, ['orch', 'status', runId]));
    reportMs.push(await cli(repo, ['orch', 'report', runId, '--out', out]));
  }
  const store = await openLocalStore(repo);
  const refs = new RunRefs('refs/agora');
  const appBundle: number[] = [];
  const appReport: number[] = [];
  for (let k = 0; k < 3; k++) {
    const built = await timeAsync(() => buildAuditBundle(store, refs, runId, { anchor: false }));
    const bundle = built.value;
    const gate = { verdict: bundle.report, sha: bundle.base, problems: [] };
    const page = await timeAsync(() =>
      renderReleaseReport({ store, refs, runId, now: Date.now(), bundle }, { config: { subagents: {} }, environment: {} }, gate),
    );
    if (!('file' in page.value)) throw new Error(page.value.problem);
    appBundle.push(built.ms);
    appReport.push(page.ms);
  }
  const paints = [];
  for (let k = 0; k < 3; k++) paints.push(await firstPaint(out, process.env.AGORA_CHROMIUM ?? '/usr/bin/chromium'));
  report('report', {
    items,
    runMadeS: Math.round(made.ms / 1000),
    statusMs: Math.round(median(status)),
    reportMs: Math.round(median(reportMs)),
    reportOverStatus: Math.round((median(reportMs) / median(status)) * 10) / 10,
    fileKiB: Math.round(statSync(out).size / 1024),
    appBundleMs: Math.round(median(appBundle)),
    appReportMs: Math.round(median(appReport)),
    firstPaintMs: median(paints.map((p) => p.firstPaintMs)),
    loadMs: median(paints.map((p) => p.loadMs)),
    runs: { status: status.map(Math.round), report: reportMs.map(Math.round) },
    ...(process.argv.includes('--keep') ? { repo } : {}),
  });
} finally {
  if (!process.argv.includes('--keep')) removeRepo(repo);
}
