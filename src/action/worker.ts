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
import { mirrorPrefix, mirrorRef } from '../git/refspec.js';
import { captureWorkspace, materializeWorkspace } from '../git/workspace.js';
import type { Oid } from '../git/types.js';
import { RunRefs } from '../runs/refs.js';
import { emitFileLabel, prepareEmitDir, readEmitFile } from '../runs/emit.js';
import { readRunAt, type StoredRun } from '../runs/state-store.js';
import { plainText } from '../github/untrusted-markdown.js';
import { AgoraError, isAgoraError } from '../errors.js';
import { checkSecretValue } from '../config/secrets.js';
import { redactAll } from '../executors/redact.js';
import { secretInPatchReason, secretsInPatch } from '../runs/patch-secrets.js';
import { fetchInto, fetchMore, pushNewRef } from './fetch-repository.js';
import { jobLog } from './job-log.js';
import { checkDispatchedJob, checkRecordedDispatch } from './worker-check.js';
import { readWorkerInputs, type WorkerInputs } from './worker-inputs.js';

/**
 * `mode: worker`: one attempt of one item, dispatched by the App's `actions` target. The job
 *
 * 1. reads the run's state from the repository and does nothing unless the attempt is the item's current
 *    one (a cancelled run, a timed-out or retried attempt: no effect); refuses (an AgoraError, nothing
 *    claimed or run) a dispatched job that is not the one the App builds from the item in that state
 *    (worker-check.ts), or that asks for a network other than none or bridge, or for root (worker-inputs.ts);
 * 2. claims the attempt by creating `refs/agora/attempt-claims/<run>/<item>/<attempt>` (a push that succeeds only
 *    if no job created it first): of two jobs for one attempt, the one that loses exits without effect; then
 *    reads the run again, and runs nothing if the attempt ended meanwhile (a stop that looked for a claim
 *    before this one existed cancels nothing);
 * 3. runs the item in a container on the runner's engine (no network and user nobody unless the job says
 *    bridge or another non-root user; none of the job's
 *    environment: the item never sees the job's token), in a workspace holding the attempt's base, with
 *    the secrets the item declares (by name, in the dispatched job) taken from the step's `secrets`
 *    input and no others; their values are redacted from the item's log and from the result's reason,
 *    and a workspace holding one is not kept (the orchestrator never has the values to look for them);
 *    the item may emit items (`$AGORA_EMIT/items.json`), checked for those values here too;
 * 4. captures the workspace (and what it emitted) and pushes one result commit to `refs/agora/results/<run>/<item>/<attempt>`,
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
      what: [mirrorRef(refs.run(runId)), mirrorRef(refs.integration(runId)), mirrorPrefix(`${refs.dispatchesPrefix(runId)}${itemId}/`)],
      hint: "the worker job reads the run's refs: give it `permissions: contents: write` (or at least read)",
    }),
  );
  const attemptOf = await currentAttempt(store, refs, inputs);
  if ('why' in attemptOf) return finish('stale', `${name} is not current (${attemptOf.why}): nothing was run`);
  // Anyone who can dispatch the workflow can dispatch a job: it must be the App's, before anything is claimed or run.
  checkDispatchedJob(attemptOf.run, itemId, attempt, inputs.job); // names what differs from the plan
  await checkRecordedDispatch(store, refs, runId, itemId, attempt, inputs.job); // and what the plan cannot tell
  const current = attemptOf.base;
  const by = [env.GITHUB_RUN_ID, env.GITHUB_RUN_ATTEMPT, env.RUNNER_NAME].filter(Boolean).join('/') || 'unknown';
  const claim = await claimCommit(store, name, by);
  if (!(await pushNewRef({ ...git, oid: claim, ref: refs.claim(runId, itemId, attempt) }))) {
    return finish('claimed-elsewhere', `${name} is claimed by another job: nothing was run`);
  }
  // The App may have ended the attempt since the run was read. A stop records the end first, then looks
  // for the attempt's claimant once and cancels it: a job that claimed after that look reads the end here.
  await fetchMore({ ...git, what: [mirrorRef(refs.run(runId))], hint: "the worker job reads the run's state again after it claims the attempt" });
  const still = await currentAttempt(store, refs, inputs);
  if ('why' in still) return finish('stale', `${name} ended while this job claimed it (${still.why}): nothing was run`);
  if (!(await store.hasObject(current))) await fetchMore({ ...git, what: [current], hint: "the worker job fetches the attempt's base commit" });
  const ws = await materializeWorkspace(store, current, join(work, 'workspace'));
  const logPath = join(work, 'item.log');
  const emitTo = join(work, 'emit');
  await prepareEmitDir(emitTo);
  const secrets = declaredSecrets(inputs);
  const values = typeof secrets === 'string' ? [] : Object.values(secrets);
  for (const value of values) core.setSecret(value);
  const log = createLogSink({ path: logPath, secrets: values });
  const abort = new AbortController();
  // A cancelled workflow run signals the step: the container is stopped, not left behind.
  const stop = () => {
    if (abort.signal.aborted) return;
    core.info(`${name}: the workflow run was cancelled; stopping the item's container`);
    abort.abort('the workflow run was cancelled');
  };
  process.once('SIGTERM', stop).once('SIGINT', stop);
  let result: WorkerResult;
  try {
    // A cancelled run's runner sends the step SIGINT, then kills it within seconds: the container gets a
    // short grace, so that it is stopped and removed before the step is killed (not left behind).
    const docker = createDockerTarget({ scope: targetScope(store.gitdir), stopGraceSeconds: STOP_GRACE_SECONDS });
    result =
      typeof secrets === 'string'
        ? { exitCode: null, reason: secrets }
        : await core.group(`Running ${name} in ${String(inputs.job.options.image)}`, () =>
            docker.run(
              {
                runId,
                itemId,
                attempt,
                workspaceDir: ws.dir,
                base: current,
                command: inputs.job.command,
                env: inputs.job.env,
                secrets,
                ...(inputs.job.stdin !== undefined ? { stdin: inputs.job.stdin } : {}),
                log,
                options: inputs.job.options,
                emitDir: emitTo,
              },
              abort.signal,
            ),
          );
  } finally {
    await log.close();
    process.off('SIGTERM', stop).off('SIGINT', stop);
  }
  const itemLog = Buffer.from(log.text());
  // The item's output (secrets already redacted, workflow commands in it shown as text), for whoever reads the job.
  if (itemLog.length > 0) await core.group(`Output of ${name}`, async () => jobLog.info(itemLog.toString('utf8').replace(/\n$/, '')));
  if (abort.signal.aborted) return finish('cancelled', `${name} was stopped: no result`);
  let workspace = ws.baseTree;
  let emitted: string | undefined;
  if (result.exitCode === 0) {
    // What it emitted goes into the pushed result: checked here, where the secrets' values are known.
    const read = await readEmitFile(emitTo, emitFileLabel(itemId, attempt), typeof secrets === 'string' ? {} : secrets);
    if (read.ok) emitted = read.text;
    else result = { exitCode: null, reason: read.reason };
  }
  if (result.exitCode === 0) {
    const captured = await captureWorkspace(ws);
    // The orchestrator has no secret values to search the patch for: a workspace holding one is not pushed.
    const leaked = await secretsInPatch(store, captured.changes, typeof secrets === 'string' ? {} : secrets);
    if (leaked.length > 0) {
      result = { exitCode: null, reason: secretInPatchReason(leaked) };
      emitted = undefined;
    } else workspace = captured.tree;
  }
  if (result.reason !== undefined) result = { ...result, reason: redactAll(result.reason, values) };
  const commit = await writeAttemptResult(store, {
    runId,
    itemId,
    attempt,
    base: current,
    workspace,
    log: itemLog,
    result,
    ...(emitted !== undefined ? { emitted } : {}),
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

/**
 * The secrets the item declares, each from the step's `secrets` input (matched without regard to case, as
 * GitHub's contexts are), or why the attempt fails: a declared secret that is not set, or too short to redact.
 */
function declaredSecrets(inputs: WorkerInputs): Record<string, string> | string {
  const given = new Map(Object.entries(inputs.secrets).map(([k, v]) => [k.toUpperCase(), v]));
  const out: Record<string, string> = {};
  for (const name of inputs.job.secrets ?? []) {
    const value = given.get(name.toUpperCase());
    if (value === undefined || value === '') {
      return `secret ${name}, which item ${inputs.itemId} declares, is not an Actions secret of this repository (or of the job's environment), or the worker step is not given the secrets: add it under Settings, Secrets and variables, Actions, and pass \`secrets: \${{ toJSON(secrets) }}\` to the worker step (examples/workflows/agora-worker.yml)`;
    }
    try {
      checkSecretValue(name, value, `item ${inputs.itemId}`);
    } catch (e) {
      if (!isAgoraError(e)) throw e;
      return `${e.message} (${e.hint})`;
    }
    out[name] = value;
  }
  return out;
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

/** The run as its state commit has it and the attempt's base, when it is the item's current attempt; else why not. */
async function currentAttempt(store: LocalGitStore, refs: RunRefs, i: WorkerInputs): Promise<{ run: StoredRun; base: Oid } | { why: string }> {
  const head = await store.resolveRef(refs.run(i.runId));
  if (head === null) return { why: `the repository has no run ${i.runId}` };
  const run = await readRunAt(store, i.runId, head);
  const item = run.state.items[i.itemId];
  if (!item) return { why: `run ${i.runId} has no item ${i.itemId}` };
  if (item.status !== 'running' || item.attempts !== i.attempt) return { why: `the item is ${item.status} at attempt ${item.attempts}` };
  return { run, base: item.base ?? run.state.integrationHead };
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
