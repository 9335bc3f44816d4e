import { describe, expect, it } from 'vitest';
import { ActionsTarget } from '../../src/executors/actions-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { GitStore } from '../../src/git/types.js';
import { RunRefs } from '../../src/runs/refs.js';

/**
 * The actions target has one worker job, one claim and one result ref per attempt. A job run beside the
 * item's own (an agent's bash or command tool, a command dependency) would be dispatched under the
 * attempt's name and be answered with the first job's result: it is refused before anything is sent.
 */
describe('the actions target and a job beside the item’s own', () => {
  it('refuses it, naming the job and the fix, without dispatching anything', async () => {
    let asked = 0;
    const target = new ActionsTarget({
      api: () => {
        asked++;
        return Promise.reject(new Error('no dispatch may be sent'));
      },
      store: {} as GitStore,
      refs: new RunRefs('refs/agora/'),
      fetchRefs: () => Promise.reject(new Error('no result may be fetched')),
    });
    const result = await target.run(
      {
        runId: 'r-1',
        itemId: 'agent',
        attempt: 1,
        workspaceDir: '/nonexistent',
        command: ['/bin/sh', '-c', 'ls'],
        env: {},
        secrets: {},
        log: createLogSink({ secrets: [] }),
        subJob: 'job-1',
      },
      new AbortController().signal,
    );
    expect(result).toEqual({
      exitCode: null,
      infrastructureFailure: false,
      reason:
        "the actions target runs only the item's own worker, not a job beside it (job-1): run the item's subagent on the local or docker target for its bash, command tools or command dependencies (docs/agents.md)",
    });
    expect(asked).toBe(0);
  });
});
