import { describe, expect, it } from 'vitest';
import { acceptRun, step } from '../../src/index.js';
import type { StepResult } from '../../src/index.js';
import { AUDIT_FORMAT, AUDIT_FORMAT_V3, startRule, type AuditBundle } from '../../src/audit/bundle.js';
import { Failures } from '../../src/audit/verify/failures.js';
import { ReplayStep } from '../../src/audit/verify/replay.js';
import { appendEntries, type AuditEntry } from '../../src/log/entry.js';
import { dependenciesOf } from '../../src/plan/dag.js';
import type { Plan } from '../../src/plan/schema.js';
import { BASE, item, plan } from '../engine/helpers.js';

/** The engine's own log of a run in which `lint` (continue_on_error) fails and `report` (if: always) runs after a skip. */
function runLog(p: Plan): { entries: AuditEntry[]; last: StepResult } {
  let r = acceptRun(p, { runId: 'r', base: BASE, concurrency: 4, now: 1 });
  const transitions = [...r.transitions];
  const fail = (id: string, now: number) => {
    r = step(r.run, [{ type: 'item-failed', itemId: id, attempt: r.run.state.items[id]!.attempts, reason: 'exit 1', retryable: false }], now);
    transitions.push(...r.transitions);
  };
  fail('lint', 2);
  fail('build', 3);
  r = step(r.run, [{ type: 'item-succeeded', itemId: 'report', attempt: 1, resultRef: 'git:x', integrationHead: 'h' }], 4);
  transitions.push(...r.transitions);
  return { entries: appendEntries(null, 'r', transitions), last: r };
}

function replayCodes(p: Plan, format: AuditBundle['format'], flags: boolean): string[] {
  const { entries } = runLog(p);
  const bundle = {
    format,
    items: p.items.map((i) => ({ id: i.id, locks: [], dependsOn: dependenciesOf(i), ...(flags ? startRule(i) : {}) })),
  } as unknown as AuditBundle;
  const f = new Failures();
  const replay = new ReplayStep(bundle, f, false);
  entries.forEach((e, i) => replay.push(e, i));
  return f.list.map((x) => `${x.code}: ${x.message}`);
}

describe('verify: start rules of if: always and continue_on_error', () => {
  const p = plan([
    item('lint', [], [], { continue_on_error: true }),
    item('build', ['lint']),
    item('after', ['build']),
    item('report', ['after'], [], { if: 'always' }),
  ]);

  it('a v3 bundle carrying the plan flags replays the run with no order failure', () => {
    expect(runLog(p).last.run.state.status).toBe('failed');
    expect(replayCodes(p, AUDIT_FORMAT_V3, true)).toEqual([]);
  });

  it('the same flags in a v2 bundle widen nothing: both starts are order failures', () => {
    expect(replayCodes(p, AUDIT_FORMAT, true)).toEqual([
      expect.stringMatching(/^order: entry \d+: item build started while its dependency lint was failed$/),
      expect.stringMatching(/^order: entry \d+: item report started while its dependency after was skipped$/),
    ]);
  });

  it('a v3 bundle without the flags is held to the plain rule', () => {
    expect(replayCodes(p, AUDIT_FORMAT_V3, false)).toHaveLength(2);
  });
});
