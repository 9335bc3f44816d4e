import { describe, expect, it } from 'vitest';
import type { RunState } from '../../src/engine/types.js';
import { table } from '../../src/cli/render.js';

describe('the terminal table', () => {
  it("shows a worker's control characters as text, so an escape sequence in a reason cannot drive the terminal", () => {
    const state = {
      runId: 'r-1',
      status: 'failed',
      queue: 'default',
      base: 'b'.repeat(40),
      integrationHead: 'b'.repeat(40),
      acceptedAt: 0,
      finishedAt: 1000,
      items: {
        a: { id: 'a', status: 'failed', attempts: 1, reason: 'wrote outside its write scope: evil\u001b]0;pwned\u0007\u001b[2J.txt\u009b31m' },
      },
    } as unknown as RunState;
    const shown = table(state, 1000);
    expect(shown).toContain('evil\ufffd]0;pwned\ufffd\ufffd[2J.txt\ufffd31m');
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    expect(shown).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});
