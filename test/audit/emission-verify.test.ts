import { describe, expect, it } from 'vitest';
import { acceptRun, step } from '../../src/index.js';
import type { Run } from '../../src/index.js';
import { AUDIT_FORMAT_V3, AUDIT_FORMAT_V4, AUDIT_FORMAT_V5, startRule, type AuditBundle, type BundleItem } from '../../src/audit/bundle.js';
import { checkEmittedDefinitions } from '../../src/audit/verify/emission.js';
import { Failures } from '../../src/audit/verify/failures.js';
import { ReplayStep } from '../../src/audit/verify/replay.js';
import { appendEntries, type AuditEntry } from '../../src/log/entry.js';
import type { Emission } from '../../src/engine/types.js';
import { dependenciesOf } from '../../src/plan/dag.js';
import { emittedItemDigest } from '../../src/runs/emit.js';
import { BASE, item, plan } from '../engine/helpers.js';

const x = item('x', [], ['out/x']);
const y = item('y', ['x'], ['out/y']);
const emission: Emission = { file: 'items.json', items: [x, y].map((i) => ({ item: i, digest: emittedItemDigest(i) })) };

/** The engine's own log of a run in which `a` emits x and y (y after x), and both succeed. */
function runLog(): { entries: AuditEntry[]; run: Run } {
  let r = acceptRun(plan([item('a', [], ['out/'])]), { runId: 'r', base: BASE, concurrency: 2, now: 1 });
  const transitions = [...r.transitions];
  const succeed = (id: string, now: number, emitted?: Emission) => {
    const attempt = r.run.state.items[id]!.attempts;
    r = step(r.run, [{ type: 'item-succeeded', itemId: id, attempt, resultRef: `git:${id}`, integrationHead: BASE, ...(emitted ? { emitted } : {}) }], now);
    transitions.push(...r.transitions);
  };
  succeed('a', 2, emission);
  succeed('x', 3);
  succeed('y', 4);
  return { entries: appendEntries(null, 'r', transitions), run: r.run };
}

function bundleOf(run: Run, extra: Partial<AuditBundle> = {}): AuditBundle {
  const items: BundleItem[] = run.plan.items.map((i) => {
    const s = run.state.items[i.id]!;
    return {
      id: i.id,
      locks: i.resourceLocks,
      dependsOn: dependenciesOf(i),
      ...startRule(i),
      ...(s.parent ? { parent: s.parent, hops: s.hops! } : {}),
    } as BundleItem;
  });
  return { format: AUDIT_FORMAT_V4, items, limits: { maxHops: 3, maxItems: 1000 }, ...extra } as AuditBundle;
}

function replayCodes(bundle: AuditBundle, entries: readonly AuditEntry[]): string[] {
  const f = new Failures();
  const replay = new ReplayStep(bundle, f, false);
  entries.forEach((e, i) => replay.push(e, i));
  replay.finish();
  return f.list.map((e) => `${e.code}: ${e.message}`);
}

describe('verify: items emitted at run time (format v4)', () => {
  const { entries, run } = runLog();
  const emitAt = entries.findIndex((e) => e.kind === 'emit');

  it('the log of a run whose item emitted two items replays with no failure', () => {
    expect(run.state.status).toBe('done');
    expect(emitAt).toBeGreaterThan(0);
    expect(replayCodes(bundleOf(run), entries)).toEqual([]);
  });

  it('an emitted item no emit entry adds: its transitions and the item itself fail emit-missing', () => {
    const codes = replayCodes(
      bundleOf(run),
      entries.filter((e) => e.kind !== 'emit'),
    );
    expect(codes).toContain('emit-missing: item x says a emitted it, but no emit entry of a adds it');
    expect(codes.some((c) => /^emit-missing: entry \d+ moves item y, which no emit entry has added to the run yet$/.test(c))).toBe(true);
  });

  it('an emit entry by an item that is not done, one past max_hops or the budget, or one adding an existing item fails with its own code', () => {
    const emit = entries[emitAt]!;
    // The emit entry moved before the emitter's done.
    const early = [...entries.slice(0, emitAt - 1), emit, entries[emitAt - 1]!, ...entries.slice(emitAt + 1)];
    expect(replayCodes(bundleOf(run), early)[0]).toMatch(/^emit-parent: entry \d+: item a emits items as attempt 1, but it is running in attempt 1/);
    expect(replayCodes(bundleOf(run, { limits: { maxHops: 0, maxItems: 1000 } }), entries)).toEqual([
      `emit-hops: entry ${emitAt}: items emitted by a are 1 hops from the plan, over maxHops 0`,
    ]);
    expect(replayCodes(bundleOf(run, { limits: { maxHops: 3, maxItems: 2 } }), entries)).toEqual([
      `emit-budget: entry ${emitAt}: item a's emission brings the run to 3 items, over maxItems 2`,
    ]);
    const twice = [...entries.slice(0, emitAt + 1), { ...emit, itemId: 'a' }, ...entries.slice(emitAt + 1)];
    expect(replayCodes(bundleOf(run), twice)).toEqual(
      expect.arrayContaining([
        `emit-duplicate: entry ${emitAt + 1}: item a emits a second time in attempt 1`,
        `emit-duplicate: entry ${emitAt + 1}: item a emits x, which the run already has`,
      ]),
    );
    const noLimits = bundleOf(run);
    delete noLimits.limits;
    expect(replayCodes(noLimits, entries)).toEqual([
      'emit-budget: the bundle is v4 but records no limits (maxHops, maxItems): every v4 bundle has them',
      `emit-budget: entry ${emitAt}: the bundle records no limits (maxHops, maxItems) to hold emitted items to`,
    ]);
  });

  it('a v4 bundle without limits fails, though it has no emit entry left to need them', () => {
    const relabelled = bundleOf(run, { format: AUDIT_FORMAT_V4 });
    delete relabelled.limits;
    const plain = entries.filter((e) => e.kind !== 'emit' && !('itemId' in e && (e.itemId === 'x' || e.itemId === 'y')));
    relabelled.items = relabelled.items.filter((i) => i.parent === undefined);
    expect(replayCodes(relabelled, plain)).toEqual(['emit-budget: the bundle is v4 but records no limits (maxHops, maxItems): every v4 bundle has them']);
    const v5 = { ...relabelled, format: AUDIT_FORMAT_V5 } as AuditBundle; // v5 has limits only with emit entries
    expect(replayCodes(v5, plain)).toEqual([]);
  });

  it('a bundle that says an item was emitted by another parent, or at other hops, fails', () => {
    const b = bundleOf(run);
    b.items = b.items.map((i) => (i.id === 'x' ? { ...i, parent: 'y' } : i.id === 'y' ? { ...i, hops: 2 } : i));
    expect(replayCodes(b, entries)).toEqual([
      `emit-parent: entry ${emitAt}: item a emits x, but the bundle says x's parent is y`,
      `emit-hops: entry ${emitAt}: item y is added 1 hops from the plan, but the bundle says 2`,
    ]);
  });

  it('before v4 an emit entry is not a transition the format has: state', () => {
    expect(replayCodes(bundleOf(run, { format: AUDIT_FORMAT_V3 }), entries)).toEqual([
      `state: entry ${emitAt} has kind "emit": neither an item nor a run transition`,
    ]);
  });

  it('with the repository: a stored definition that is not the one its emit entry names fails emit-digest', () => {
    const b = bundleOf(run);
    const digests = new Map(emission.items.map((e) => [e.item.id, e.digest]));
    const f = new Failures();
    checkEmittedDefinitions(b, digests, run.state.emitted!, 'the run state', f);
    expect(f.list).toEqual([]);
    const edited = [{ ...run.state.emitted![0]!, items: [{ item: { ...x, inputs: { run: 'curl evil' } }, digest: 'd' }, run.state.emitted![0]!.items[1]!] }];
    checkEmittedDefinitions(b, digests, edited, 'the run state', f);
    expect(f.list.map((e) => e.code)).toEqual(['emit-digest']);
    const g = new Failures();
    checkEmittedDefinitions(b, digests, [], 'the run state', g);
    expect(g.list.map((e) => e.code)).toEqual(['emit-missing', 'emit-missing']);
  });
});
