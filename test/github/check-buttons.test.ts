import { describe, expect, it } from 'vitest';
import { decideButton } from '../../src/github/check-buttons.js';
import { GATE_CHECK_NAME, gateExternalId, itemCheckName, itemExternalId, RUN_CHECK_NAME, runExternalId } from '../../src/github/check-names.js';

const RUN = 'plan-0123456789ab';

describe('decideButton', () => {
  it("retries the item named by an item check's external id", () => {
    expect(decideButton(itemCheckName('build'), itemExternalId(RUN, 'build'), 'retry')).toEqual({ kind: 'retry-item', runId: RUN, itemId: 'build' });
  });

  it("retries the item called `audit` (its check is not the gate's), never re-running the plan", () => {
    expect(decideButton(itemCheckName('audit'), itemExternalId(RUN, 'audit'), 'retry')).toEqual({ kind: 'retry-item', runId: RUN, itemId: 'audit' });
  });

  it('re-runs the plan from the gate, for its button and for Re-run alike', () => {
    expect(decideButton(GATE_CHECK_NAME, gateExternalId(RUN), 'rerun')).toEqual({ kind: 'rerun-plan' });
    expect(decideButton(GATE_CHECK_NAME, gateExternalId(RUN), 'retry')).toEqual({ kind: 'rerun-plan' });
  });

  it('ignores the run check, with a code', () => {
    expect(decideButton(RUN_CHECK_NAME, runExternalId(RUN), 'retry')).toMatchObject({ kind: 'ignored', code: 'run-check-has-no-button' });
  });

  it('ignores a Re-run plan request on an item check', () => {
    expect(decideButton(itemCheckName('build'), itemExternalId(RUN, 'build'), 'rerun')).toMatchObject({ kind: 'ignored', code: 'item-offers-only-retry' });
  });

  it("ignores checks that are not the App's, naming them", () => {
    expect(decideButton('ci / test', 'whatever', 'retry')).toEqual({
      kind: 'ignored',
      code: 'not-agora-check',
      why: 'not an agora run or item check: ci / test',
    });
    expect(decideButton(itemCheckName('build'), 'no-slash', 'retry')).toMatchObject({ kind: 'ignored', code: 'not-agora-check' });
    expect(decideButton(RUN_CHECK_NAME, `${RUN}/build`, 'retry')).toMatchObject({ kind: 'ignored', code: 'not-agora-check' });
  });
});
