import { describe, expect, it } from 'vitest';
import { BLOCKED_RETRY_MAX_MS, BlockedRuns } from '../../src/runs/blocked-runs.js';

const lockA = { reason: 'refs/x.lock has been held since 2026-01-01T00:00:00.000Z' };
const lockB = { reason: 'refs/y.lock has been held since 2026-01-01T00:00:00.000Z' };

describe('the runs a serve holds back for a blocked ref', () => {
  it('tries a run again after a delay that doubles from one poll up to the bound, and says each block once until the run moves', () => {
    let now = 1_000;
    const blocked = new BlockedRuns(100, () => now);
    expect(blocked.waiting('r')).toBe(false);
    expect(blocked.holdBack('r', lockA)).toContain('the run waits: refs/x.lock');
    const delays: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      const at = blocked.retryAt('r')!;
      delays.push(at - now);
      expect(blocked.waiting('r')).toBe(true);
      now = at;
      expect(blocked.waiting('r')).toBe(false);
      expect(blocked.holdBack('r', lockA)).toBeUndefined(); // the same lock, the same text: said before
    }
    expect(delays.slice(0, 5)).toEqual([100, 200, 400, 800, 1600]);
    expect(delays.at(-1)).toBe(BLOCKED_RETRY_MAX_MS);
    // Another lock in the way once the first is cleared: said too; the run is not tried sooner for it.
    expect(blocked.holdBack('r', lockB)).toContain('the run waits: refs/y.lock');
    expect(blocked.retryAt('r')! - now).toBe(BLOCKED_RETRY_MAX_MS);
    // Another run is held back on its own.
    expect(blocked.holdBack('s', lockA)).toContain('refs/x.lock');
    expect(blocked.retryAt('s')! - now).toBe(100);
    // Moving again: forgotten, so a block that comes back is said again, and tried after one poll.
    blocked.clear('r');
    expect(blocked.retryAt('r')).toBeUndefined();
    expect(blocked.waiting('r')).toBe(false);
    expect(blocked.holdBack('r', lockA)).toContain('refs/x.lock');
    expect(blocked.retryAt('r')! - now).toBe(100);
  });
});
