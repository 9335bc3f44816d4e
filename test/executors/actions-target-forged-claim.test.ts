import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimRunner } from '@agora/github-sim';
import { startWorld, type World } from '@agora/github-sim/harness';
import { ActionsTarget, workerJobName, type ActionsApi } from '../../src/executors/actions-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerJob, WorkerResult } from '../../src/executors/types.js';
import { mirrorRef } from '../../src/git/refspec.js';
import { actionsApi } from '../../src/github/actions-api.js';
import { MirroredGitStore } from '../../src/github/mirrored-store.js';
import type { Octokit } from '../../src/github/octokit.js';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { RunRefs } from '../../src/runs/refs.js';
import { eventually, scaled } from '../support/eventually.js';
import { standInWorker } from './actions-stand-in.js';

/**
 * What a claim ref, which anyone who can push writes, can make the App do: the run it names is trusted
 * (asked about, cancelled) only when GitHub says it is a dispatch of the worker workflow; a run GitHub no
 * longer has ends a re-attached attempt as a lost runner instead of leaving it waiting for ever.
 */
describe('the actions target and the run a claim names', () => {
  let w: World;
  let dir: string;
  let runner: SimRunner;
  const refs = new RunRefs('refs/agora/');
  let processes = 0;
  // A workflow of the repository unrelated to Agora (say, a production deploy), queued for a runner nobody has.
  const deploy = `name: deploy
on: workflow_dispatch
jobs:
  deploy:
    runs-on: [self-hosted, production]
    steps:
      - run: echo deploying
`;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agora-review-'));
    await mkdir(join(dir, 'gates'));
    w = await startWorld({
      files: { 'README.md': '# demo\n', '.github/workflows/agora-worker.yml': standInWorker(join(dir, 'gates')), '.github/workflows/deploy.yml': deploy },
    });
    runner = w.sim.addRunner({ labels: ['agora'], name: 'runner' });
  }, scaled(60_000));
  afterAll(async () => {
    if (dir) for (const item of ['victim', 'gone']) await writeFile(join(dir, 'gates', item), '');
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const onGitHub = (ref: string) => w.sim.sim.repo('octo/demo').git.resolve(ref, 'commit');

  async function orchestrator(wrap: (api: ActionsApi) => ActionsApi = (a) => a) {
    processes += 1;
    const store = new MirroredGitStore(
      await RemoteMirror.open(join(dir, `mirror-${processes}.git`), `${w.sim.gitUrl}/octo/demo.git`, () => w.token()),
      refs.ns,
    );
    await store.fetch([mirrorRef('refs/heads/main')]);
    let dead = false;
    const never = new Promise<never>(() => undefined);
    const counts = { looks: 0 };
    const calls: string[] = [];
    const target = new ActionsTarget({
      config: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: 600 },
      api: async () => {
        if (dead) return never;
        const real = wrap(actionsApi(() => w.octokit as unknown as Octokit, 'octo', 'demo'));
        return {
          ...real,
          cancelRun: (id) => (calls.push(`cancel ${id}`), real.cancelRun(id)),
          workflowRun: (id) => (calls.push(`get ${id}`), real.workflowRun(id)),
        };
      },
      store,
      refs,
      fetchRefs: async (refspecs) => {
        if (dead) return never;
        await store.fetch(refspecs);
        counts.looks++;
      },
      pollMs: 50,
    });
    const start = async (item: string, signal = new AbortController().signal, job?: WorkerJob) => {
      const workspaceDir = join(dir, `workspace-${processes}-${item}`);
      await mkdir(workspaceDir, { recursive: true });
      const j = job ?? jobOf(item, workspaceDir);
      const outcome: { ended?: WorkerResult } = {};
      const done = target.run({ ...j, workspaceDir }, signal).then((r) => (outcome.ended = r));
      return { done, outcome, workspaceDir };
    };
    const looks = (n: number, outcome: { ended?: WorkerResult }) => {
      const before = counts.looks;
      return eventually(`${n} looks`, () => outcome.ended !== undefined || counts.looks >= before + n, { within: scaled(30_000) });
    };
    return { target, store, start, looks, calls, die: () => void (dead = true) };
  }

  function jobOf(item: string, workspaceDir: string, command = ['/bin/sh', '-c', 'true']): WorkerJob {
    return { runId: 'r-1', itemId: item, attempt: 1, workspaceDir, base: w.repo.headSha, command, env: {}, secrets: {}, log: createLogSink({ secrets: [] }) };
  }

  it(
    'a claim pushed by someone with push access, naming another workflow’s run: stopping the attempt never cancels that run',
    async () => {
      // A maintainer's deploy run, queued.
      await actionsApi(() => w.octokit as unknown as Octokit, 'octo', 'demo').dispatch('deploy.yml', 'main', {});
      const deployRun = await eventually('the deploy run', () => [...w.sim.sim.actions.runs.values()].find((r) => r.name === 'deploy'));
      expect(deployRun.status).not.toBe('completed');

      // Someone with `contents: write` (a deploy key suffices: no API access) pre-creates the claim of an attempt.
      const attacker = await orchestrator();
      const claim = await attacker.store.writeCommit({
        tree: await attacker.store.writeTree([]),
        parents: [],
        message: `agora: r-1/victim attempt 1 claimed by ${deployRun.id}/1/evil\n`,
        author: { name: 'x', email: 'x@x', timestamp: 1, timezoneOffset: 0 },
        committer: { name: 'x', email: 'x@x', timestamp: 1, timezoneOffset: 0 },
      });
      expect(await attacker.store.casRef(refs.claim('r-1', 'victim', 1), claim, null)).toBe(true);

      // The App dispatches the attempt and dies; its worker job runs, cannot claim, and ends.
      const first = await orchestrator();
      void first.start('victim');
      await eventually(
        'the worker job to end',
        () => [...w.sim.sim.actions.jobs.values()].find((j) => j.name === workerJobName('r-1', 'victim', 1))?.status === 'completed',
        { within: scaled(30_000) },
      );
      first.die();
      // The next process re-attaches: the claim names the deploy run, which it asks GitHub about.
      const app = await orchestrator();
      expect(await app.target.canResume('r-1', 'victim', 1)).toBe(true);
      const stop = new AbortController();
      const run = await app.start('victim', stop.signal);
      await app.looks(20, run.outcome);
      expect(run.outcome.ended).toBeUndefined();
      // The attempt is stopped (a user's cancel, the item's timeout, a graceful stop of the App, a lost lease).
      stop.abort('cancelled');
      expect(await run.done).toEqual({ exitCode: null, reason: 'stopped' });
      expect(app.calls).not.toContain(`cancel ${deployRun.id}`);
      expect(w.sim.sim.actions.runs.get(deployRun.id)?.conclusion).not.toBe('cancelled');
    },
    scaled(90_000),
  );

  it(
    'a re-attached attempt whose claimant run GitHub no longer has (404) ends as a lost runner',
    async () => {
      const first = await orchestrator();
      void first.start('gone');
      await eventually('the claim', () => onGitHub(refs.claim('r-1', 'gone', 1)));
      first.die();
      w.sim.killRunner(runner.id);
      await eventually(
        'the worker job to end',
        () => [...w.sim.sim.actions.jobs.values()].find((j) => j.name === workerJobName('r-1', 'gone', 1))?.status === 'completed',
      );
      const next = await orchestrator((api) => ({
        ...api,
        workflowRun: () => Promise.reject(Object.assign(new Error('Not Found'), { status: 404 })),
      }));
      expect(await next.target.canResume('r-1', 'gone', 1)).toBe(true);
      const stopGone = new AbortController();
      const resumed = await next.start('gone', stopGone.signal);
      const ended = await resumed.done;
      expect(ended).toMatchObject({ exitCode: null, infrastructureFailure: true });
      expect(ended.reason).toContain('runner lost');
      expect(ended.reason).toContain('gone (GitHub no longer has the run)');
      runner = w.sim.addRunner({ labels: ['agora'], name: 'runner-2' });
    },
    scaled(90_000),
  );
});
