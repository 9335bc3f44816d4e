import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RETRY_ACTION } from '../../src/github/check-buttons.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRun } from '../../src/runs/state-store.js';
import { until, commandPlan, checkRuns, restartUntilRunEnds, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';

/** A process that took a run over believes what the checks show, not what the state says they should show. */
describe('resume and the checks a crash left behind', () => {
  let w: AppWorld;
  const marker = join(tmpdir(), `agora-resume-${randomUUID()}`);
  beforeAll(async () => {
    w = await startAppWorld({ sweepMs: 500 });
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await rm(marker, { force: true });
  });

  it('a red check of an item that ended done (the process died before writing it) is turned green by the next process', async () => {
    const gate = workerGate(); // keeps the run going until the crash is over
    const flaky = `if [ -f ${marker} ]; then echo fixed > fixed.txt; else echo x > ${marker}; exit 1; fi`;
    const text = commandPlan('behind', [
      { id: 'flaky', run: flaky, locks: ['fixed.txt'] },
      { id: 'slow', run: `${gate.wait}; echo slow > slow.txt`, locks: ['slow.txt'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'behind', files: { 'plan.json': text }, message: 'A plan whose check falls behind' });
    await until('flaky to fail', async () => (await checkRuns(w, sha)).get('agora / flaky')?.conclusion === 'failure', w);
    const red = (await checkRuns(w, sha)).get('agora / flaky')!;

    // GitHub's API fails from here on (git still works): the Retry is recorded and flaky runs again to
    // `done` in the run's state, but no check write lands; then the process dies.
    w.sim.setFaults({ serverErrorRate: 1 });
    w.sim.clickCheckRunButton(w.fullName, red.id, RETRY_ACTION.identifier, 'octo');
    const store = await openLocalStore(w.sim.repoDir(w.fullName));
    const runId = `behind-${sha.slice(0, 12)}`;
    await until('flaky to end done in the state on GitHub', async () => (await readRun(store, new RunRefs(), runId))?.state.items.flaky?.status === 'done', w);
    await w.agora.kill();
    w.sim.setFaults({});
    expect((await checkRuns(w, sha)).get('agora / flaky')).toMatchObject({ id: red.id, conclusion: 'failure' }); // what the crash left

    await restartUntilRunEnds(w, sha, gate);
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / flaky')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora / slow')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
  });
});
