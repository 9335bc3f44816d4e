import { describe, expect, it } from 'vitest';
import { childDeadline, DownstreamBudget } from '../../src/agents/call-limits.js';
import { MAX_HOPS_DEFAULT, maxHopsRefusal } from '../../src/agents/max-hops.js';

/** The limits of a dependency call, as pure rules (the end-to-end cases are in agent-calls.test.ts). */

describe('call limits', () => {
  it('spends tokens as well as model calls, and a nested budget from every budget above it', () => {
    const outer = new DownstreamBudget({ tokens: 1000 }, 'the outer budget');
    const inner = new DownstreamBudget({ modelCalls: 10 }, 'the inner budget', outer);
    inner.spend(600);
    expect(inner.refusal()).toBeUndefined();
    inner.spend(500);
    expect(inner.refusal()).toBe('the outer budget is spent: 1100 of 1000 tokens used');
    expect(outer.refusal()).toBe('the outer budget is spent: 1100 of 1000 tokens used');
  });

  it("gives a child at most its own timeout and never past its caller's deadline less the reserve", () => {
    expect(childDeadline(0, undefined, undefined)).toEqual({});
    expect(childDeadline(0, undefined, 5)).toEqual({ deadline: 5000 });
    expect(childDeadline(0, 60_000, 600)).toEqual({ deadline: 54_000 }); // a tenth held back
    expect(childDeadline(0, 10_000, 600)).toEqual({ deadline: 8000 }); // at least 2 s held back
    expect(childDeadline(0, 60_000, 5)).toEqual({ deadline: 5000 });
    expect(childDeadline(0, 2500, 600).refusal).toBe('refused: the caller has 2500 ms left before its deadline, too little to hand on to a call');
  });

  it('counts the item as hop 0 and refuses the call that would pass max_hops', () => {
    expect(MAX_HOPS_DEFAULT).toBe(3);
    expect(maxHopsRefusal(['a', 'b', 'c'], 'd', 3)).toBeUndefined();
    expect(maxHopsRefusal(['a', 'b', 'c', 'd'], 'e', 3)).toBe(
      'refused by max_hops (3): calling e would make hop 4 of the chain a → b → c → d → e; do this part yourself or answer with what you have',
    );
    expect(maxHopsRefusal(['a'], 'b', 0)).toContain('max_hops (0)');
  });
});
