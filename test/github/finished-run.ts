import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRun } from '../../src/runs/state-store.js';
import { agora, makeRepo } from '../support/repo.js';
import type { AppWorld } from './app-world.js';

/**
 * A finished local run of a one-item plan `id` (run `<id>-1`), with its plan commit (where the gate goes)
 * pushed to the world's repository on GitHub under `refs/fixtures/<id>` (and its integration head under
 * `refs/fixtures/<id>-landed`): what a finish of the App works
 * on, without the App driving it. (Not a branch: a push to a branch hands plan.json to the App, which
 * would run and publish the same plan while the test watches the release requests.) Real parts:
 * `agora orch run` in a temp repository, a git push to the simulator.
 */
export async function finishedRun(w: AppWorld, id: string) {
  const repo = makeRepo({
    'plan.json': JSON.stringify({
      id,
      queue: 'default',
      items: [{ id: 'a', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] }],
    }),
  });
  expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0);
  const store = await openLocalStore(repo);
  const refs = new RunRefs();
  const run = (await readRun(store, refs, `${id}-1`))!;
  const gateSha = run.state.base;
  const appClient = (await w.probot.auth()) as typeof w.octokit;
  const { token } = (await appClient.rest.apps.createInstallationAccessToken({ installation_id: w.installationId })).data;
  // (Asynchronously: the simulator answers from this process.)
  await promisify(execFile)(
    'git',
    [
      'push',
      '-q',
      `${w.sim.gitUrl.replace('http://', `http://x-access-token:${token}@`)}/${w.fullName}.git`,
      `${gateSha}:refs/fixtures/${id}`,
      `${run.state.integrationHead}:refs/fixtures/${id}-landed`,
    ],
    { cwd: repo },
  );
  // `landedSha`: the head a branch would have once its patches landed (where a green gate goes).
  return { store, refs, run, gateSha, landedSha: run.state.integrationHead };
}
