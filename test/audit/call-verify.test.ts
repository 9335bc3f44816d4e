import { describe, expect, it } from 'vitest';
import { acceptRun, step } from '../../src/index.js';
import type { Run } from '../../src/index.js';
import { AUDIT_FORMAT_V3, AUDIT_FORMAT_V5, type AuditBundle, type BundleItem } from '../../src/audit/bundle.js';
import { Failures } from '../../src/audit/verify/failures.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { ReplayStep } from '../../src/audit/verify/replay.js';
import type { ChildCall, Transition } from '../../src/engine/types.js';
import { appendEntries, type AuditEntry } from '../../src/log/entry.js';
import { merkleRootHex } from '../../src/log/merkle.js';
import { dependenciesOf } from '../../src/plan/dag.js';
import { BASE, item, plan } from '../engine/helpers.js';

/**
 * Format v5: the child attempts an attempt ran (its calls to dependencies) are `call` entries right after
 * the attempt's outcome. Each test tampers with one thing a call entry says, rebuilds the chain and the
 * root around it (so only the meaning is wrong), and expects the check that covers it to fail.
 */

const D = 'sha256:' + 'd'.repeat(64);

/** lead (an agent) calls scribe (an agent), which calls tool (a command); hop 1 and 2 of a chain of max_hops 2. */
const CALLS: ChildCall[] = [
  {
    call: 'a.1/scribe#1',
    parent: 'a.1',
    caller: 'lead',
    declared: ['scribe'],
    subagent: 'scribe',
    calleeKind: 'agent',
    hop: 1,
    maxHops: 2,
    input: D,
    output: D,
    outcome: 'ok',
    deadline: 900,
    startedAt: 10,
    finishedAt: 20,
  },
  {
    call: 'a.1/scribe#1/tool#1',
    parent: 'a.1/scribe#1',
    caller: 'scribe',
    declared: ['tool'],
    subagent: 'tool',
    calleeKind: 'command',
    hop: 2,
    maxHops: 2,
    input: D,
    outcome: 'failed',
    deadline: 800,
    startedAt: 12,
    finishedAt: 15,
  },
];

/** The engine's own transitions of a run in which item a's attempt 1 ran `calls` and succeeded, then b ran. */
function runLog(calls: ChildCall[] = CALLS): { transitions: Transition[]; run: Run } {
  let r = acceptRun(plan([item('a', [], ['out/']), item('b', ['a'])]), { runId: 'r', base: BASE, concurrency: 2, now: 1 });
  const transitions = [...r.transitions];
  for (const [id, now] of [
    ['a', 30],
    ['b', 40],
  ] as const) {
    const attempt = r.run.state.items[id]!.attempts;
    r = step(r.run, [{ type: 'item-succeeded', itemId: id, attempt, resultRef: `git:${id}`, integrationHead: BASE, ...(id === 'a' ? { calls } : {}) }], now);
    transitions.push(...r.transitions);
  }
  return { transitions, run: r.run };
}

function bundleOf(run: Run, transitions: readonly Transition[], format: AuditBundle['format'] = AUDIT_FORMAT_V5): AuditBundle {
  const entries = appendEntries(null, 'r', transitions);
  const items: BundleItem[] = run.plan.items.map((i) => {
    const s = run.state.items[i.id]!;
    return {
      id: i.id,
      status: s.status,
      reason: s.reason ?? null,
      attempts: s.attempts,
      resultRef: s.resultRef ?? null,
      base: s.base ?? null,
      startedAt: s.startedAt ?? null,
      finishedAt: s.finishedAt ?? null,
      locks: i.resourceLocks,
      dependsOn: dependenciesOf(i),
    };
  });
  return {
    format,
    runId: 'r',
    repository: null,
    planDigest: 'p'.repeat(64),
    base: BASE,
    integrationHead: BASE,
    state: run.state.status,
    items,
    entries,
    root: merkleRootHex(entries.map((e) => e.hash)),
    anchor: null,
    signature: null,
    report: { intact: false, claim: 'none', guarantee: 'none', terminal: false, failures: [] },
  };
}

/** The whole verifier over a bundle whose log is `transitions`, chained and rooted afresh: what it finds besides the chain. */
async function failuresOf(transitions: readonly Transition[], run: Run, format?: AuditBundle['format']): Promise<string[]> {
  const report = await verifyBundle(bundleOf(run, transitions, format));
  return report.failures.map((f) => `${f.code}: ${f.message}`);
}

/** The run's transitions with call entry `n` (0-based among the call entries) changed by `edit`. */
function tampered(transitions: readonly Transition[], n: number, edit: (c: Extract<Transition, { kind: 'call' }>) => Transition): Transition[] {
  let k = -1;
  return transitions.map((t) => (t.kind === 'call' && ++k === n ? edit(t) : t));
}

describe('verify: child attempts (format v5 call entries)', () => {
  const { transitions, run } = runLog();
  const entries = appendEntries(null, 'r', transitions);
  const first = entries.findIndex((e) => e.kind === 'call');
  const second = first + 1;

  it("the engine writes one call entry per child attempt right after its attempt's outcome, and the log verifies", async () => {
    expect(run.state.status).toBe('done');
    const done = entries.findIndex((e) => e.kind === 'item' && e.itemId === 'a' && e.to === 'done');
    expect(first).toBe(done + 1);
    expect(entries[first]).toMatchObject({ kind: 'call', itemId: 'a', attempt: 1, ...CALLS[0] });
    expect(entries[second]).toMatchObject({ kind: 'call', itemId: 'a', attempt: 1, ...CALLS[1] });
    expect(await failuresOf(transitions, run)).toEqual([]);
  });

  it('a call to a subagent its caller did not declare fails call-dependency', async () => {
    expect(
      await failuresOf(
        tampered(transitions, 1, (c) => ({ ...c, declared: ['other'] })),
        run,
      ),
    ).toEqual([`call-dependency: entry ${second}: call a.1/scribe#1/tool#1: scribe called tool, which is not among its declared dependencies (other)`]);
  });

  it('a hop past max_hops, a hop that skips one, or a chain with two limits fails call-hops', async () => {
    // Both entries say max_hops 1: the grandchild is hop 2 of a chain allowed 1.
    const over = tampered(
      tampered(transitions, 0, (c) => ({ ...c, maxHops: 1 })),
      1,
      (c) => ({ ...c, maxHops: 1 }),
    );
    expect(await failuresOf(over, run)).toEqual([`call-hops: entry ${second}: call a.1/scribe#1/tool#1 is hop 2, over max_hops 1`]);
    expect(
      await failuresOf(
        tampered(transitions, 0, (c) => ({ ...c, hop: 2 })),
        run,
      ),
    ).toEqual([
      `call-hops: entry ${first}: call a.1/scribe#1 is recorded at hop 2, but its parent is at hop 0`,
      `call-hops: entry ${second}: call a.1/scribe#1/tool#1 is recorded at hop 2, but its parent is at hop 2`,
    ]);
    expect(
      await failuresOf(
        tampered(transitions, 1, (c) => ({ ...c, maxHops: 5 })),
        run,
      ),
    ).toEqual([`call-hops: entry ${second}: call a.1/scribe#1/tool#1 records max_hops 5, its parent a.1/scribe#1 2: one chain has one limit`]);
  });

  it('a call whose parent is missing, is a command, ran another subagent, or is not the attempt it follows fails call-parent', async () => {
    const orphan = tampered(transitions, 1, (c) => ({ ...c, parent: 'a.1/ghost#1', call: 'a.1/ghost#1/tool#1' }));
    expect(await failuresOf(orphan, run)).toEqual([
      `call-parent: entry ${second}: call a.1/ghost#1/tool#1 names parent a.1/ghost#1, which is neither attempt a.1 nor an earlier call of it`,
    ]);
    // A command dependency cannot call on: only an agent child can be a parent.
    expect(
      await failuresOf(
        tampered(transitions, 0, (c) => ({ ...c, calleeKind: 'command' })),
        run,
      ),
    ).toEqual([`call-parent: entry ${second}: call a.1/scribe#1/tool#1 was made by a.1/scribe#1, a command dependency: only an agent calls on`]);
    expect(
      await failuresOf(
        tampered(transitions, 1, (c) => ({ ...c, caller: 'lead', declared: ['scribe', 'tool'] })),
        run,
      ),
    ).toEqual([
      `call-parent: entry ${second}: call a.1/scribe#1/tool#1 says lead called, but its parent a.1/scribe#1 ran scribe`,
      // lead's declaration there is not the one its own call recorded: one attempt, one config.
      `call-dependency: entry ${second}: call a.1/scribe#1/tool#1 records other dependencies for lead than an earlier call of the same attempt`,
    ]);
    // The calls moved to item b's attempt, which made none: they do not follow that attempt's outcome.
    const elsewhere = tampered(
      tampered(transitions, 0, (c) => ({ ...c, itemId: 'b' })),
      1,
      (c) => ({ ...c, itemId: 'b' }),
    );
    const codes = await failuresOf(elsewhere, run);
    expect(codes[0]).toBe(
      `call-parent: entry ${first}: call a.1/scribe#1 is recorded for attempt b.1, but it does not follow that attempt's outcome: a child attempt is recorded right after the attempt it ran in ends`,
    );
    expect(codes.every((c) => c.startsWith('call-parent:'))).toBe(true);
    // A call entry written on its own, not after an outcome (here: before the run starts anything).
    const detached = [transitions[0]!, transitions.find((t) => t.kind === 'call')!, ...transitions.slice(1).filter((t) => t.kind !== 'call')];
    expect((await failuresOf(detached, run))[0]).toMatch(/^call-parent: entry 1: call a\.1\/scribe#1 is recorded for attempt a\.1, but it does not follow/);
  });

  it("a child given more time than its parent, or running outside its parent's time, fails call-time", async () => {
    expect(
      await failuresOf(
        tampered(transitions, 1, (c) => ({ ...c, deadline: 950 })),
        run,
      ),
    ).toEqual([`call-time: entry ${second}: call a.1/scribe#1/tool#1 was given deadline 950, past its parent's 900`]);
    expect(
      await failuresOf(
        tampered(transitions, 1, (c) => ({ ...c, finishedAt: 25 })),
        run,
      ),
    ).toEqual([`call-time: entry ${second}: call a.1/scribe#1/tool#1 ran 12–25, outside its parent's 10–20`]);
  });

  it('before v5 a call entry is not a transition the format has: state', async () => {
    expect(await failuresOf(transitions, run, AUDIT_FORMAT_V3)).toEqual([
      `state: entry ${first} has kind "call": neither an item nor a run transition`,
      `state: entry ${second} has kind "call": neither an item nor a run transition`,
    ]);
  });

  it('replay reports the subagent each item attempt called as, for the repository check against the plan', () => {
    const f = new Failures();
    const replay = new ReplayStep(bundleOf(run, transitions), f, false);
    entries.forEach((e: AuditEntry, i) => replay.push(e, i));
    expect(replay.finish().rootCallers).toEqual([{ itemId: 'a', attempt: 1, caller: 'lead', entry: first }]);
  });
});
