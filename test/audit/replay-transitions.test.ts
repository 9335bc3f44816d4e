import { describe, expect, it } from 'vitest';
import { acceptRun, step } from '../../src/index.js';
import type { Plan, RunEvent, StepResult, Transition } from '../../src/index.js';
import { AUDIT_FORMAT, AUDIT_FORMAT_V3, AUDIT_FORMAT_V4, AUDIT_FORMAT_V5, startRule, type AuditBundle, type AuditReport } from '../../src/audit/bundle.js';
import { checkBundleSchema } from '../../src/audit/verify/parse.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import type { ChildCall, Emission } from '../../src/engine/types.js';
import { appendEntries } from '../../src/log/entry.js';
import { merkleRootHex } from '../../src/log/merkle.js';
import { dependenciesOf } from '../../src/plan/dag.js';
import { normalizeLockKey } from '../../src/plan/locks.js';
import { emittedItemDigest } from '../../src/runs/emit.js';
import { BASE, item, plan } from '../engine/helpers.js';

/**
 * docs/audit.md §4: the tables of transitions are normative. A log holds only §4's states and only the
 * transitions Agora writes, opens with the run's `submitted → running`, moves items only while the run is
 * running, and ends the run only once every item has ended. Every scenario the engine can be driven
 * through replays clean; each forged log below (chained and rooted, so only its meaning is wrong) fails
 * `state` on the bundle alone.
 */

const HEAD = 'c'.repeat(40);

/** Drives the engine and keeps every transition it writes, as the run's log. */
class Drive {
  r: StepResult;
  readonly transitions: Transition[] = [];

  constructor(p: Plan, now = 1) {
    this.r = acceptRun(p, { runId: 'p-1', base: BASE, concurrency: 4, now });
    this.transitions.push(...this.r.transitions);
  }

  step(now: number, ...events: RunEvent[]): this {
    this.r = step(this.r.run, events, now);
    this.transitions.push(...this.r.transitions);
    return this;
  }

  attempt(id: string): number {
    return this.r.run.state.items[id]!.attempts;
  }

  succeed(id: string, now: number, extra: { emitted?: Emission; calls?: ChildCall[] } = {}): this {
    return this.step(now, { type: 'item-succeeded', itemId: id, attempt: this.attempt(id), resultRef: `git:${HEAD}`, integrationHead: HEAD, ...extra });
  }

  fail(id: string, now: number, retryable = false): this {
    return this.step(now, { type: 'item-failed', itemId: id, attempt: this.attempt(id), reason: 'exit 1', retryable });
  }

  /** The bundle of the run so far, as buildAuditBundle assembles it (summary from the state, entries from the log). */
  bundle(transitions: readonly Transition[] = this.transitions): AuditBundle {
    const { plan: p, state } = this.r.run;
    const entries = appendEntries(null, 'p-1', transitions);
    const took = new Map<string, string[]>();
    for (const e of entries) if (e.kind === 'item' && e.to === 'running' && e.locks) took.set(e.itemId, e.locks);
    const items = p.items.map((i) => {
      const s = state.items[i.id]!;
      return {
        id: i.id,
        status: s.status,
        reason: s.reason ?? null,
        attempts: s.attempts,
        resultRef: s.resultRef ?? null,
        base: s.base ?? null,
        startedAt: s.startedAt ?? null,
        finishedAt: s.finishedAt ?? null,
        locks: took.get(i.id) ?? [...new Set(i.resourceLocks.map(normalizeLockKey))],
        dependsOn: dependenciesOf(i),
        ...startRule(i),
        ...(s.parent === undefined ? {} : { parent: s.parent, hops: s.hops ?? 1 }),
      };
    });
    const emitted = entries.some((e) => e.kind === 'emit');
    const called = entries.some((e) => e.kind === 'call');
    return {
      format: called ? AUDIT_FORMAT_V5 : emitted ? AUDIT_FORMAT_V4 : items.some((i) => i.always || i.continueOnError) ? AUDIT_FORMAT_V3 : AUDIT_FORMAT,
      runId: 'p-1',
      repository: null,
      planDigest: 'a'.repeat(64),
      base: BASE,
      integrationHead: state.integrationHead,
      state: state.status,
      items,
      ...(emitted ? { limits: { maxHops: 3, maxItems: 1000 } } : {}),
      entries,
      root: merkleRootHex(entries.map((e) => e.hash)),
      anchor: null,
      signature: null,
      report: { intact: false, claim: 'none', guarantee: 'none', terminal: false, failures: [] },
    };
  }
}

const messages = (r: AuditReport) => r.failures.map((f) => `${f.code}: ${f.message}`);

describe('every transition the engine writes replays clean (§4 tables)', () => {
  const cases: Array<[string, () => Drive]> = [
    [
      'a retry after a failure, and a lost attempt',
      () => {
        const d = new Drive(
          plan([item('a', [], ['src/'], { retry: { maxAttempts: 2, backoff: { initialSeconds: 0, factor: 1, maxSeconds: 0 } } }), item('b', ['a'])]),
        );
        d.fail('a', 2, true)
          .step(3)
          .step(4, { type: 'item-lost', itemId: 'a', attempt: d.attempt('a'), reason: 'server killed' })
          .step(5);
        return d.succeed('a', 6).succeed('b', 7);
      },
    ],
    [
      'an item timeout with a retry left, then success',
      () => {
        const d = new Drive(
          plan([item('a', [], [], { timeoutSeconds: 1, retry: { maxAttempts: 2, backoff: { initialSeconds: 0, factor: 1, maxSeconds: 0 } } })]),
        );
        d.step(5000).step(5001);
        return d.succeed('a', 5002);
      },
    ],
    [
      'a cancel while items run, wait and are pending, with an if: always item',
      () => {
        const d = new Drive(plan([item('a', [], ['x']), item('b', [], ['x']), item('c', ['a']), item('report', ['c'], [], { if: 'always' })]));
        d.step(2, { type: 'cancel-run', reason: 'enough' });
        return d.succeed('report', 3);
      },
    ],
    [
      'the run deadline: running fails, pending is cancelled; an always item still runs; then a cancelled item is retried',
      () => {
        const p: Plan = { ...plan([item('a'), item('b', ['a']), item('cleanup', ['b'], [], { if: 'always' })]), timeoutSeconds: 10 };
        const d = new Drive(p);
        d.step(20_000).succeed('cleanup', 20_001);
        return d.step(20_002, { type: 'retry-item', itemId: 'b', reason: 'once more' });
      },
    ],
    [
      'a failure, its skipped dependents, then retry --failed and retry of one item',
      () => {
        const d = new Drive(plan([item('a'), item('b', ['a']), item('c', ['b'])]));
        d.fail('a', 2).step(3, { type: 'retry-failed', reason: 'flaky' }).fail('a', 4).step(5, { type: 'retry-item', itemId: 'a', reason: 'again' });
        return d.succeed('a', 6).succeed('b', 7).succeed('c', 8);
      },
    ],
    [
      'continue_on_error and if: always',
      () => {
        const d = new Drive(
          plan([
            item('lint', [], [], { continue_on_error: true }),
            item('build', ['lint']),
            item('after', ['build']),
            item('report', ['after'], [], { if: 'always' }),
          ]),
        );
        return d.fail('lint', 2).fail('build', 3).succeed('report', 4);
      },
    ],
    [
      'items emitted at run time, and a call',
      () => {
        const x = item('x', [], ['out/x']);
        const d = new Drive(plan([item('a', [], ['out/'])]));
        const call: ChildCall = {
          call: 'a.1/checker#1',
          parent: 'a.1',
          caller: 'editor',
          declared: ['checker'],
          subagent: 'checker',
          calleeKind: 'agent',
          hop: 1,
          maxHops: 3,
          input: `sha256:${'d'.repeat(64)}`,
          outcome: 'failed',
          startedAt: 2,
          finishedAt: 3,
        };
        d.succeed('a', 4, { emitted: { file: 'items.json', items: [{ item: x, digest: emittedItemDigest(x) }] }, calls: [call] });
        return d.succeed('x', 5);
      },
    ],
  ];

  for (const [name, drive] of cases) {
    it(name, async () => {
      const d = drive();
      const bundle = d.bundle();
      expect(messages(await verifyBundle(bundle)).filter((m) => !m.startsWith('not-terminal'))).toEqual([]);
      // What the engine writes also satisfies the JSON Schema (§8.1).
      expect(checkBundleSchema(bundle)).toEqual({ ok: true });
    });
  }
});

describe('a log Agora never writes fails state, on the bundle alone', () => {
  /** a, then b after it: the engine's own log. */
  const genuine = () => new Drive(plan([item('a', [], ['src/a']), item('b', ['a'], ['src/b'])])).succeed('a', 2).succeed('b', 3);
  const at = (t: readonly Transition[], id: string, to: string) => t.findIndex((e) => e.kind === 'item' && e.itemId === id && e.to === to);

  /** The report of the genuine run's bundle with its log edited by `edit` (and `bundle` edited by `summary`). */
  async function forged(edit: (t: Transition[]) => void, summary: (b: AuditBundle) => void = () => {}): Promise<AuditReport> {
    const d = genuine();
    const t = [...d.transitions];
    edit(t);
    const b = d.bundle(t);
    summary(b);
    return verifyBundle(b);
  }

  it('the genuine log verifies intact and terminal', async () => {
    expect(await verifyBundle(genuine().bundle())).toEqual({ intact: true, claim: 'none', guarantee: 'none', terminal: true, failures: [] });
  });

  it('a run that ends in a state §4 does not have ("banana")', async () => {
    const r = await forged(
      (t) => {
        t[t.length - 1] = { kind: 'run', from: 'running', to: 'banana' as 'done', at: 3 };
      },
      (b) => {
        b.state = 'banana' as 'done';
      },
    );
    expect(r.intact).toBe(false);
    expect(messages(r)).toContain('state: entry 7: the run moves to "banana", which is not a run state');
  });

  it('an item that moves ready → banana → ready', async () => {
    const r = await forged((t) => {
      t.splice(
        at(t, 'a', 'ready') + 1,
        0,
        { kind: 'item', itemId: 'a', from: 'ready', to: 'banana' as 'ready', attempt: 0, at: 1 },
        {
          kind: 'item',
          itemId: 'a',
          from: 'banana' as 'ready',
          to: 'ready',
          attempt: 0,
          at: 1,
        },
      );
    });
    expect(r.intact).toBe(false);
    expect(messages(r)).toEqual(expect.arrayContaining(['state: entry 2: item a moves to "banana", which is not an item state']));
  });

  it('an item that moves ready → failed → pending → ready', async () => {
    const r = await forged((t) => {
      t.splice(
        at(t, 'a', 'ready') + 1,
        0,
        { kind: 'item', itemId: 'a', from: 'ready', to: 'failed', attempt: 0, at: 1, reason: 'no' },
        { kind: 'item', itemId: 'a', from: 'failed', to: 'pending', attempt: 0, at: 1, reason: 'retry' },
        { kind: 'item', itemId: 'a', from: 'pending', to: 'ready', attempt: 0, at: 1 },
      );
    });
    expect(messages(r)).toEqual(['state: entry 2: item a moves from ready to failed, a transition Agora never writes']);
  });

  it('an item that starts from pending, never ready', async () => {
    const r = await forged((t) => {
      const ready = at(t, 'a', 'ready');
      const start = t[at(t, 'a', 'running')]!;
      t.splice(ready, 1);
      t[at(t, 'a', 'running')] = { ...start, from: 'pending' } as Transition;
    });
    expect(messages(r)).toEqual(['state: entry 1: item a moves from pending to running, a transition Agora never writes']);
  });

  it('a run cancelled and reopened while an item still runs', async () => {
    const r = await forged((t) => {
      t.splice(
        at(t, 'a', 'running') + 1,
        0,
        { kind: 'run', from: 'running', to: 'cancelled', at: 1, reason: 'cancelled: x' },
        { kind: 'run', from: 'cancelled', to: 'running', at: 1, reason: 'x' },
      );
    });
    expect(messages(r)).toEqual(['state: entry 3: the run ends cancelled while items are still open: a (running), b (pending)']);
  });

  it('a run that ends while an item is ready, and an item that moves after', async () => {
    const r = await forged((t) => {
      t.splice(at(t, 'b', 'running'), 0, { kind: 'run', from: 'running', to: 'done', at: 2 });
    });
    expect(messages(r)).toEqual(
      expect.arrayContaining([
        'state: entry 5: the run ends done while items are still open: b (ready)',
        'state: entry 6 moves item b while the run is done: items move only while the run is running',
      ]),
    );
  });

  it('a log whose first entry is not the run’s submitted → running', async () => {
    const r = await forged((t) => {
      [t[0], t[1]] = [t[1]!, t[0]!];
    });
    expect(messages(r)).toEqual(["state: entry 0 moves item a before the run was accepted: a log starts with the run's submitted → running"]);
  });
});
