import { describe, expect, it } from 'vitest';
import { checkRole, gateExternalId, GATE_CHECK_NAME, itemCheckName, itemExternalId, RUN_CHECK_NAME, runExternalId } from '../../src/github/check-names.js';

describe("the App's check names and external ids", () => {
  it('gives an item called audit a check of its own, never the gate', () => {
    expect(itemCheckName('build')).toBe('agora / build');
    expect(itemCheckName('audit')).toBe('agora / item audit');
    expect(itemCheckName('audit')).not.toBe(GATE_CHECK_NAME);
    expect(itemExternalId('p-1', 'audit')).not.toBe(gateExternalId('p-1'));
  });

  it('reads each check back as what it is about', () => {
    expect(checkRole(RUN_CHECK_NAME, runExternalId('p-1'))).toEqual({ kind: 'run', runId: 'p-1' });
    expect(checkRole(itemCheckName('audit'), itemExternalId('p-1', 'audit'))).toEqual({ kind: 'item', runId: 'p-1', itemId: 'audit' });
    expect(checkRole(itemCheckName('a.b'), itemExternalId('p-1', 'a.b'))).toEqual({ kind: 'item', runId: 'p-1', itemId: 'a.b' });
    expect(checkRole(GATE_CHECK_NAME, gateExternalId('p-1'))).toEqual({ kind: 'gate' });
    expect(checkRole(GATE_CHECK_NAME, 'p-1/audit')).toEqual({ kind: 'gate' }); // a gate written before `:audit`
  });

  it('is not fooled by checks that are not ours or not whole', () => {
    expect(checkRole('ci / build', 'p-1/build')).toBeUndefined();
    expect(checkRole(RUN_CHECK_NAME, 'p-1/x')).toBeUndefined();
    expect(checkRole(RUN_CHECK_NAME, '')).toBeUndefined();
    expect(checkRole('agora / x', 'p-1')).toBeUndefined();
    expect(checkRole('agora / x', '/x')).toBeUndefined();
    expect(checkRole('agora / x', 'p-1/')).toBeUndefined();
  });
});
