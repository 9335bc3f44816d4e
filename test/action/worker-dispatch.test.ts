import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerMode } from '../../src/action/worker.js';
import { isAgoraError } from '../../src/errors.js';
import { BUSYBOX } from '../docker/engine.js';
import { eventually, scaled } from '../support/eventually.js';
import { checkRuns, runBound, until, type AppWorld } from '../github/app-world.js';
import { actionsConfig, startWorkerWorld, workerApi } from './worker-world.js';

/**
 * `mode: worker` given a dispatch that is not the App's: anyone with `actions: write` can dispatch the
 * worker workflow with any `job`. The App dispatches real attempts on the simulator (no runner takes
 * them); each case runs the worker step in this process (src/action/worker.ts, the code the committed
 * action/dist is built from) with the App's dispatch inputs, changed or as they are. A changed one is
 * refused before the attempt is claimed; the App's own runs, and the App records its result.
 */
describe("mode: worker and dispatches that are not the App's", () => {
  let w: AppWorld;
  let dir: string;
  let token: string;
  let plansha: string;
  const canary = 'canary-value-0123456789';
  const other = 'other-value-0123456789';
  const secrets = { CANARY_TOKEN: canary, OTHER_TOKEN: other, github_token: 'ghs_not-for-items' };

  beforeAll(async () => {
    const config = actionsConfig({
      // Long enough that no attempt times out while the cases run: no runner ever takes these jobs.
      actions: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: 3600 },
      subagents: { echo: { command: ['/bin/sh', '-c', 'printf %s "$AGORA_INPUT" > sub.txt'], target: 'actions', docker: { image: BUSYBOX } } },
    });
    w = await startWorkerWorld(config);
    dir = await mkdtemp(join(tmpdir(), 'agora-worker-dispatch-'));
    const app = (await w.probot.auth()) as typeof w.octokit;
    token = (await app.rest.apps.createInstallationAccessToken({ installation_id: w.installationId })).data.token;
    const items = [
      {
        id: 'victim',
        executor: 'command',
        inputs: {
          run: 'printf %s "$CANARY_TOKEN" | wc -c > victim.txt; echo "$GREETING" >> victim.txt',
          env: { GREETING: 'hello' },
          secrets: ['CANARY_TOKEN'],
          image: BUSYBOX,
        },
        depends_on: [],
        resourceLocks: ['victim.txt'],
      },
      { id: 'sub', executor: 'dispatch', inputs: { subagent: 'echo', workerInput: { n: 1 } }, depends_on: [], resourceLocks: ['sub.txt'] },
      { id: 'up', executor: 'command', inputs: { run: 'echo up > up.txt' }, depends_on: [], resourceLocks: ['up.txt'] },
      {
        id: 'down',
        executor: 'command',
        inputs: { run: 'echo "$AGORA_NEEDS" | grep -q \'"kind":"output"\' && echo down > down.txt' },
        needs: { u: { from: 'up', select: { kind: 'output', path: 'up.txt' } } },
        depends_on: ['up'],
        resourceLocks: ['down.txt'],
      },
    ];
    plansha = await w.sim.push(w.fullName, {
      branch: 'forge',
      files: { 'plan.json': `${JSON.stringify({ id: 'forge', queue: 'default', items }, null, 2)}\n` },
      message: 'Add the forge plan',
    });
    await until('three worker jobs dispatched', async () => (await workerApi(w).runs()).length === 3, w, runBound(1));
  }, scaled(180_000));
  afterAll(async () => {
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const git = () => w.sim.sim.repo(w.fullName).git;
  const refsUnder = async (prefix: string) => [...(await git().refs()).keys()].filter((r) => r.startsWith(prefix));

  /** The App's dispatch of `item`'s first attempt: the workflow run's id and its inputs. */
  async function dispatchOf(item: string): Promise<{ runId: number; inputs: Record<string, string> }> {
    let found: { runId: number; inputs: Record<string, string> } | undefined;
    await until(
      `the App's dispatch of ${item}`,
      async () => {
        for (const r of await workerApi(w).runs()) {
          const inputs = w.sim.sim.actions.runs.get(Number(r.id))!.inputs as Record<string, string>;
          if (inputs.item === item && inputs.attempt === '1') found = { runId: Number(r.id), inputs };
        }
        return found !== undefined;
      },
      w,
      runBound(1),
    );
    return found!;
  }

  /** The dispatched job of `item`, changed by `change` (a copy). */
  async function jobOf(item: string, change: (job: Record<string, unknown>) => void = () => undefined): Promise<string> {
    const job = JSON.parse((await dispatchOf(item)).inputs.job!) as Record<string, unknown>;
    change(job);
    return JSON.stringify(job);
  }

  /**
   * The worker step as the shipped workflow runs it (`mode: worker`, the dispatch's inputs, `toJSON(secrets)`),
   * in this process: what it threw, and its `status` output.
   */
  async function runWorker(item: string, job: string): Promise<{ error?: unknown; status?: string }> {
    const { runId, inputs } = await dispatchOf(item);
    const temp = await mkdtemp(join(dir, 'job-'));
    const files = { GITHUB_EVENT_PATH: join(temp, 'event.json'), GITHUB_OUTPUT: join(temp, 'output'), GITHUB_STEP_SUMMARY: join(temp, 'summary') };
    await writeFile(files.GITHUB_EVENT_PATH, JSON.stringify({ inputs, repository: { clone_url: `${w.sim.gitUrl}/${w.fullName}.git` } }));
    await writeFile(files.GITHUB_OUTPUT, '');
    await writeFile(files.GITHUB_STEP_SUMMARY, '');
    const env: Record<string, string> = {
      ...files,
      INPUT_MODE: 'worker',
      INPUT_TOKEN: token,
      INPUT_RUN: inputs.run!,
      INPUT_ITEM: inputs.item!,
      INPUT_ATTEMPT: inputs.attempt!,
      INPUT_JOB: job,
      INPUT_SECRETS: JSON.stringify(secrets),
      GITHUB_REPOSITORY: w.fullName,
      GITHUB_RUN_ID: String(runId),
      GITHUB_RUN_ATTEMPT: '1',
      RUNNER_NAME: 'in-process',
      RUNNER_TEMP: temp,
    };
    Object.assign(process.env, env);
    let error: unknown;
    try {
      await workerMode(process.env);
    } catch (e) {
      error = e;
    } finally {
      for (const name of Object.keys(env)) delete process.env[name];
    }
    const status = /^status<<(\S+)\n([^\n]*)\n\1$/m.exec(await readFile(files.GITHUB_OUTPUT, 'utf8'))?.[2];
    return { error, ...(status !== undefined ? { status } : {}) };
  }

  /** Runs the worker with `job` for `item` and expects it refused with `code`, its message matching `message`, nothing claimed. */
  async function expectRefused(item: string, job: string, code: string, message: RegExp): Promise<void> {
    const { error, status } = await runWorker(item, job);
    expect(isAgoraError(error), String(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    expect((error as Error).message).toMatch(message);
    expect(status).toBeUndefined();
    // Refused before the claim: the App's own job can still take the attempt, and nothing ran.
    expect(await refsUnder('refs/agora/attempt-claims/')).toEqual([]);
    expect(await refsUnder('refs/agora/results/')).toEqual([]);
  }

  it(
    'refuses a job whose command, environment, stdin or image is not what the plan gives the item, before it claims the attempt',
    async () => {
      const mismatch = 'action-dispatch-mismatch';
      await expectRefused(
        'victim',
        await jobOf('victim', (j) => (j.command = ['/bin/sh', '-c', 'printf %s "$CANARY_TOKEN" > victim.txt'])),
        mismatch,
        /forge-\S+\/victim attempt 1 does not match the plan: its command is not the one the plan gives the item; nothing was run/,
      );
      await expectRefused(
        'victim',
        await jobOf('victim', (j) => ((j.env as Record<string, string>).GREETING = 'changed')),
        mismatch,
        /its environment variable GREETING is not/,
      );
      await expectRefused(
        'victim',
        await jobOf('victim', (j) => ((j.env as Record<string, string>).LD_PRELOAD = '/tmp/x.so')),
        mismatch,
        /its environment variable LD_PRELOAD is not/,
      );
      await expectRefused('victim', await jobOf('victim', (j) => (j.options = { image: 'localhost/agora-node:test' })), mismatch, /its container option image/);
      await expectRefused(
        'victim',
        await jobOf('victim', (j) => (j.options = { image: BUSYBOX, network: 'bridge' })),
        mismatch,
        /its container option network/,
      );
      // A dispatch item: the subagent comes from the App's config, its workerInput from the plan.
      await expectRefused('sub', await jobOf('sub', (j) => (j.stdin = '{"n":2}')), mismatch, /its stdin is not the one the plan gives the item/);
      await expectRefused(
        'sub',
        await jobOf('sub', (j) => ((j.env as Record<string, string>).AGORA_INPUT = '{"n":2}')),
        mismatch,
        /its environment variable AGORA_INPUT is not/,
      );
      // The job of another item of the run, dispatched under this item's name.
      await expectRefused('up', await jobOf('victim'), mismatch, /forge-\S+\/up attempt 1 does not match the plan: its command/);
    },
    scaled(runBound(2)),
  );

  it(
    "refuses a job the App did not record, though the plan cannot tell it apart: a dispatch item's subagent command or secrets",
    async () => {
      const unrecorded = /is not the one the App recorded at refs\/agora\/dispatches\/forge-\S+\/sub\/1 \(the record holds another job\); nothing was run/;
      // The subagent's command, environment and secret names come from the App's config, which the runner never sees.
      await expectRefused(
        'sub',
        await jobOf('sub', (j) => (j.command = ['/bin/sh', '-c', 'printf %s "$CANARY_TOKEN" > sub.txt'])),
        'action-dispatch-mismatch',
        unrecorded,
      );
      await expectRefused('sub', await jobOf('sub', (j) => (j.secrets = ['CANARY_TOKEN'])), 'action-dispatch-mismatch', unrecorded);
      expect(await refsUnder('refs/agora/dispatches/')).toEqual(
        expect.arrayContaining([expect.stringMatching(/^refs\/agora\/dispatches\/forge-\S+\/sub\/1$/), expect.stringMatching(/\/victim\/1$/)]),
      );
    },
    scaled(runBound(1)),
  );

  it(
    'refuses a job that asks for a secret its item does not declare',
    async () => {
      await expectRefused(
        'victim',
        await jobOf('victim', (j) => (j.secrets = ['CANARY_TOKEN', 'OTHER_TOKEN'])),
        'action-dispatch-mismatch',
        /does not match the plan: it asks for secret OTHER_TOKEN, which the item does not declare/,
      );
      await expectRefused(
        'up',
        await jobOf('up', (j) => (j.secrets = ['CANARY_TOKEN'])),
        'action-dispatch-mismatch',
        /up attempt 1 does not match the plan: it asks for secret CANARY_TOKEN, which the item does not declare/,
      );
    },
    scaled(runBound(1)),
  );

  it(
    "refuses the runner's host network, another container's network and root, whatever the plan",
    async () => {
      const refused = 'action-container-refused';
      const options = (extra: Record<string, unknown>) => (j: Record<string, unknown>) => (j.options = { ...(j.options as object), ...extra });
      await expectRefused(
        'victim',
        await jobOf('victim', options({ network: 'host' })),
        refused,
        /network "host" is not one an item on the actions target may have/,
      );
      await expectRefused('sub', await jobOf('sub', options({ network: 'container:runner' })), refused, /network "container:runner"/);
      await expectRefused('victim', await jobOf('victim', options({ user: '0:0' })), refused, /user "0:0" is root/);
      await expectRefused('sub', await jobOf('sub', options({ user: '1000:0' })), refused, /user "1000:0" is root/);
      await expectRefused('up', await jobOf('up', options({ user: 'root' })), refused, /user "root" is not a numeric uid:gid/);
    },
    scaled(runBound(1)),
  );

  it(
    'runs the jobs the App dispatched as they are (a command item with a secret, a dispatch item, an item with needs), and the App records them',
    async () => {
      expect(await runWorker('victim', await jobOf('victim'))).toEqual({ status: 'succeeded' });
      expect(await runWorker('sub', await jobOf('sub'))).toEqual({ status: 'succeeded' });
      expect(await runWorker('up', await jobOf('up'))).toEqual({ status: 'succeeded' });
      // down starts once the App recorded up's result: its $AGORA_NEEDS names files on the App's host.
      await expectRefusedNeeds();
      expect(await runWorker('down', await jobOf('down'))).toEqual({ status: 'succeeded' });
      await until('the agora check to complete', async () => (await checkRuns(w, plansha)).get('agora')?.status === 'completed', w, runBound(4));
      const checks = await checkRuns(w, plansha);
      for (const id of ['victim', 'sub', 'up', 'down']) {
        expect(checks.get(`agora / ${id}`)?.conclusion, `${id}: ${checks.get(`agora / ${id}`)?.output.summary}`).toBe('success');
      }
      const head = (await git().resolve('refs/heads/forge', 'commit'))!;
      expect(await git().text(['show', `${head}:victim.txt`])).toMatch(new RegExp(`^\\s*${canary.length}\\nhello\\n$`));
      expect(await git().text(['show', `${head}:sub.txt`])).toBe('{"n":1}');
      expect(await git().text(['show', `${head}:down.txt`])).toBe('down\n');
    },
    scaled(runBound(4, 2)),
  );

  it(
    'a job whose attempt is cancelled while it claims it runs nothing, though the stop looked for a claim before there was one',
    async () => {
      const late = {
        id: 'late',
        executor: 'command',
        inputs: { run: 'echo ran > late.txt', image: BUSYBOX },
        depends_on: [],
        resourceLocks: ['late.txt'],
      };
      const sha = await w.sim.push(w.fullName, {
        branch: 'late',
        files: { 'plan.json': `${JSON.stringify({ id: 'late', queue: 'default', items: [late] }, null, 2)}\n` },
        message: 'Add the late plan',
      });
      const job = await jobOf('late');
      // The job has read the run (the attempt is current) and pushes its claim: just then, the branch is
      // deleted and the App cancels the run. Its stop looks for the claim, finds none, and cancels nothing.
      let held = 0;
      w.sim.setFaults({
        beforeGitRequest: async (r) => {
          if (r.token !== token || r.service !== 'receive-pack' || r.method !== 'POST' || held > 0) return;
          held += 1;
          await w.octokit.rest.git.deleteRef({ owner: w.owner, repo: w.repo, ref: 'heads/late' });
          await eventually('the App to cancel the late run', async () => (await checkRuns(w, sha)).get('agora / late')?.conclusion === 'cancelled', {
            within: runBound(1),
          });
        },
      });
      try {
        expect(await runWorker('late', job)).toEqual({ status: 'stale' });
      } finally {
        w.sim.setFaults({});
      }
      expect(held).toBe(1);
      expect(await refsUnder('refs/agora/attempt-claims/late-')).toHaveLength(1);
      expect(await refsUnder('refs/agora/results/late-')).toEqual([]);
    },
    scaled(runBound(2)),
  );

  /** down's dispatch with its $AGORA_NEEDS naming another upstream: refused; nothing of down claimed. */
  async function expectRefusedNeeds(): Promise<void> {
    const job = await jobOf('down', (j) => {
      const env = j.env as Record<string, string>;
      const needs = JSON.parse(env.AGORA_NEEDS!) as Record<string, Record<string, string>>;
      needs.u!.path = 'victim.txt';
      env.AGORA_NEEDS = JSON.stringify(needs);
    });
    const { error } = await runWorker('down', job);
    expect((error as { code?: string }).code).toBe('action-dispatch-mismatch');
    expect((error as Error).message).toMatch(/its environment variable AGORA_NEEDS is not/);
    expect(await refsUnder('refs/agora/attempt-claims/forge-')).not.toContainEqual(expect.stringMatching(/\/down\//));
  }
});
