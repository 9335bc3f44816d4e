import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as core from '@actions/core';
import { writeAttemptResult } from '../executors/actions-result.js';
import { createDockerTarget } from '../executors/docker-target.js';
import { createLogSink } from '../executors/log-sink.js';
import { targetScope } from '../executors/targets.js';
import type { WorkerResult } from '../executors/types.js';
import type { LocalGitStore } from '../git/local-store.js';
import { mirrorRef } from '../git/refspec.js';
import { captureWorkspace, materializeWorkspace } from '../git/workspace.js';
import type { Oid } from '../git/types.js';
import { RunRefs } from '../runs/refs.js';
import { readRunAt } from '../runs/state-store.js';
import { plainText } from '../github/untrusted-markdown.js';
import { AgoraError } from '../errors.js';
import { fetchInto, fetchMore, pushNewRef } from './fetch-repository.js';
import { jobLog } from './job-log.js';
import { readWorkerInputs, type WorkerInputs } from './worker-inputs.js';

/**
 * `mode: worker`: one attempt of one item, dispatched by the App's `actions` target. The job
 *
 * 1. reads the run's state from the repository and does nothing unless the attempt is the item's current
 *    one (a cancelled run, a timed-out or retried attempt: no effect);
 * 2. claims the attempt by creating `refs/agora/attempt-claims/<run>/<item>/<attempt>` (a push that succeeds only
 *    if no job created it first): of two jobs for one attempt, the one that loses exits without effect;
 * 3. runs the item in a container on the runner's engine (no network, user nobody, none of the job's
 *    environment: the item never sees the job's token), in a workspace holding the attempt's base;
 * 4. captures the workspace and pushes one result commit to `refs/agora/results/<run>/<item>/<attempt>`,
 *    again only if that ref does not exist. The orchestrator checks the base, the write scope and the
 *    secrets before it records a patch: nothing here is taken on the runner's word.
 */
/** Seconds a stopped item's container has between SIGTERM and the kill (GitHub waits 7.5 s after its SIGINT before its own SIGTERM). */
const STOP_GRACE_SECONDS = 2;

export async function workerMode(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const inputs = readWorkerInputs();
  const cloneUrl = await repositoryUrl(env);
  const refs = new RunRefs(inputs.refNamespace);
  const { runId, itemId, attempt } = inputs;
  const name = `${runId}/${itemId} attempt ${attempt}`;
  const work = join(env.RUNNER_TEMP || tmpdir(), `agora-worker-${process.pid}`);
  const git = { dir: join(work, 'repository.git'), cloneUrl, token: inputs.token };
  const store = await core.group(`Reading run ${runId}`, () =>
    fetchInto({
      ...git,
      what: [mirrorRef(refs.run(runId)), mirrorRef(refs.integration(runId))],
      hint: "the worker job reads the run's refs: give it `permissions: contents: write` (or at least read)",
    }),
  );
  const current = await currentBase(store, refs, inputs);
  if (typeof current !== 'string') return finish('stale', `${name} is not current (${current.why}): nothing was run`);
  const by = [env.GITHUB_RUN_ID, env.GITHUB_RUN_ATTEMPT, env.RUNNER_NAME].filter(Boolean).join('/') || 'unknown';
  const claim = await claimCommit(store, name, by);
  if (!(await pushNewRef({ ...git, oid: claim, ref: refs.claim(runId, itemId, attempt) }))) {
    return finish('claimed-elsewhere', `${name} is claimed by another job: nothing was run`);
  }
  if (!(await store.hasObject(current))) await fetchMore({ ...git, what: [current], hint: "the worker job fetches the attempt's base commit" });
  const ws = await materializeWorkspace(store, current, join(work, 'workspace'));
  const logPath = join(work, 'item.log');
  const log = createLogSink({ path: logPath, secrets: [] });
  const abort = new AbortController();
  // A cancelled workflow run signals the step: the container is stopped, not left behind.
  const stop = () => abort.abort('the workflow run was cancelled');
  process.once('SIGTERM', stop).once('SIGINT', stop);
  let result: WorkerResult;
  try {
    // A cancelled run's runner sends the step SIGINT, then kills it within seconds: the container gets a
    // short grace, so that it is stopped and removed before the step is killed (not left behind).
    const docker = createDockerTarget({ scope: targetScope(store.gitdir), stopGraceSeconds: STOP_GRACE_SECONDS });
    result = await core.group(`Running ${name} in ${String(inputs.job.options.image)}`, () =>
      docker.run(
        {
          runId,
          itemId,
          attempt,
          workspaceDir: ws.dir,
          base: current,
          command: inputs.job.command,
          env: inputs.job.env,
          secrets: {},
          ...(inputs.job.stdin !== undefined ? { stdin: inputs.job.stdin } : {}),
          log,
          options: inputs.job.options,
        },
        abort.signal,
      ),
    );
  } finally {
    await log.close();
    process.off('SIGTERM', stop).off('SIGINT', stop);
  }
  if (abort.signal.aborted) return finish('cancelled', `${name} was stopped: no result`);
  const workspace = result.exitCode === 0 ? (await captureWorkspace(ws)).tree : ws.baseTree;
  const commit = await writeAttemptResult(store, {
    runId,
    itemId,
    attempt,
    base: current,
    workspace,
    log: await readFile(logPath),
    result,
    now: Date.now(),
    by,
  });
  if (!(await pushNewRef({ ...git, oid: commit, ref: refs.result(runId, itemId, attempt) }))) {
    return finish('claimed-elsewhere', `${name} already has a result: this job's was not recorded`);
  }
  await finish(
    result.exitCode === 0 ? 'succeeded' : 'failed',
    `${name} ${result.exitCode === 0 ? 'succeeded' : `failed: ${result.reason ?? `exit ${result.exitCode}`}`}; result ${commit.slice(0, 12)} pushed for the orchestrator to check`,
  );
}

/** The repository's clone URL, from the dispatch event the runner wrote (GitHub Enterprise Server and the simulator included). */
async function repositoryUrl(env: NodeJS.ProcessEnv): Promise<string> {
  const path = env.GITHUB_EVENT_PATH;
  if (!path || !env.GITHUB_REPOSITORY)
    throw new AgoraError(
      'action-event',
      'GITHUB_EVENT_PATH or GITHUB_REPOSITORY is not set: mode `worker` runs only as a step of a workflow job',
      'run it from the worker workflow (examples/workflows/agora-worker.yml)',
    );
  const event = JSON.parse(await readFile(path, 'utf8')) as { repository?: { clone_url?: unknown } };
  const url = event.repository?.clone_url;
  return typeof url === 'string' && url !== '' ? url : `${(env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '')}/${env.GITHUB_REPOSITORY}.git`;
}

/** The attempt's base when it is the item's current attempt, else why not. */
async function currentBase(store: LocalGitStore, refs: RunRefs, i: WorkerInputs): Promise<Oid | { why: string }> {
  const head = await store.resolveRef(refs.run(i.runId));
  if (head === null) return { why: `the repository has no run ${i.runId}` };
  const run = await readRunAt(store, i.runId, head);
  const item = run.state.items[i.itemId];
  if (!item) return { why: `run ${i.runId} has no item ${i.itemId}` };
  if (item.status !== 'running' || item.attempts !== i.attempt) return { why: `the item is ${item.status} at attempt ${item.attempts}` };
  return item.base ?? run.state.integrationHead;
}

/** A parentless commit with an empty tree naming the job that claims the attempt. */
async function claimCommit(store: LocalGitStore, name: string, by: string): Promise<Oid> {
  const who = { name: 'agora worker', email: 'agora@localhost', timestamp: Math.floor(Date.now() / 1000), timezoneOffset: 0 };
  return store.writeCommit({ tree: await store.writeTree([]), parents: [], message: `agora: ${name} claimed by ${by}\n`, author: who, committer: who });
}

async function finish(status: string, line: string): Promise<void> {
  jobLog.info(`agora: ${line}`);
  core.setOutput('status', status);
  await core.summary.addRaw(`## Agora worker: ${status}\n\n${plainText(line)}\n`, true).write();
}
