import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as core from '@actions/core';
import type { OrchConfig } from '../config/types.js';
import { errorMessage } from '../errors.js';
import { AgoraGitHub, type EventOutcome, type Octokit as AppOctokit, type PlanEvent } from '../github/agora-github.js';
import { ACTION_RUN_POLICY } from '../github/worker-policy.js';
import type { AppSigner } from '../github/audit-release.js';
import { jobLog } from './job-log.js';
import { actionOctokit } from './octokit.js';
import { readPullRequestEvent } from './pull-request-event.js';
import { readRunInputs, type RunInputs } from './run-inputs.js';
import { runReport } from './run-report.js';
import { refusalSummary, runRefusal } from './run-refusal.js';

/**
 * `mode: run`: the whole plan of a pull request driven from the job, no server. The job is the App for
 * one commit: the head of the pull request (`pull_request.head.sha`) is handed to the App's own service
 * ({@link AgoraGitHub}: intake, the run driver, check runs, the patches pushed onto the branch, the
 * audit released and the gate `agora / audit` set on the new head), with the job's token as the
 * installation's and a keyless signer on the job's OIDC identity. Items run in containers on the runner
 * (`command` items on the docker target, no network, none of the job's environment): item code never
 * sees the job's token or its OIDC request token. A pull request from a fork, or a job without
 * `id-token: write`, is refused before anything is written.
 */
/**
 * How long a job waits to take over its head's run from an earlier job: the App's run lease lasts 60 s
 * after its holder's last renewal, and a holder that died renews no more.
 */
const TAKEOVER_WAIT_MS = 120_000;

/** Seconds a stopped item's container has between SIGTERM and the kill (GitHub waits 7.5 s after its SIGINT before its own SIGTERM). */
const STOP_GRACE_SECONDS = 2;

export async function runMode(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const inputs = readRunInputs();
  const event = await readPullRequestEvent(env, 'run');
  const refused = runRefusal(event, env);
  if (refused) {
    await core.summary.addRaw(refusalSummary(event, refused), true).write();
    core.setOutput('status', 'refused');
    core.setFailed(`${refused.problem}\n${refused.fix}`);
    return;
  }
  const [owner, repo] = event.repository.split('/') as [string, string];
  const octokit = actionOctokit(inputs.token, env);
  const temp = join(env.RUNNER_TEMP || tmpdir(), `agora-run-${process.pid}`);
  const outcomes: EventOutcome[] = [];
  const agora = new AgoraGitHub({
    policy: ACTION_RUN_POLICY,
    cacheDir: join(temp, 'mirrors'),
    config: runConfig(inputs, env.GITHUB_WORKSPACE || process.cwd()),
    signer: keylessSigner(inputs),
    onOutcome: (e) => {
      if (e.kind === 'plan') outcomes.push(e.outcome);
    },
    log: jobLog,
    // A cancelled job's step is killed about 10 s after the runner's first signal: the containers must be gone by then.
    containerStopGraceSeconds: STOP_GRACE_SECONDS,
  });
  // A cancelled workflow run's runner sends the step SIGINT, then SIGTERM 7.5 s later, then kills it: Node
  // would exit at once on either, and the finally below would never run. They start the same close.
  let cancelled: Promise<void> | undefined;
  const stop = () => {
    if (cancelled) return;
    jobLog.info('agora: the workflow run was cancelled; stopping the items and giving the run back');
    // Caught here: a rejection left for the finally to see would end the process first, unhandled.
    cancelled = agora.close().catch((e: unknown) => jobLog.warn(`agora: stopping after the cancel failed: ${errorMessage(e)}`));
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  await core.group(`Running the plan of ${event.head.slice(0, 12)} on ${event.headRef}`, async () => {
    try {
      const ev: PlanEvent = {
        // The App's client type is Probot's Octokit; the calls it makes are @octokit/rest's own.
        octokit: octokit as unknown as AppOctokit,
        owner,
        repo,
        cloneUrl: event.cloneUrl,
        ...(event.repositoryId !== undefined ? { repositoryId: event.repositoryId } : {}),
        htmlUrl: event.htmlUrl,
        branch: event.headRef,
        headSha: event.head,
        token: async () => inputs.token,
      };
      agora.onPlanEvent(ev);
      await agora.idle();
      // The run of this head exists already: a re-run of the workflow (an earlier job ran out of time or
      // died). It is taken over from its refs once the earlier job's lease runs out, and driven to its end.
      const first = outcomes.at(-1);
      if (first?.kind === 'exists' && !cancelled) {
        const taken = await agora.takeOver(ev, first.runId, Date.now() + TAKEOVER_WAIT_MS);
        jobLog.info(`agora: ${first.runId}: ${taken.kind === 'held' ? `still driven by ${taken.holder}` : taken.kind}`);
        await agora.idle();
      }
    } finally {
      // Also on a throw: the lease given back (left to expire when the run's finish is not over) and the
      // item containers stopped, or they would outlive the step on a persistent runner.
      await (cancelled ?? agora.close());
      process.off('SIGINT', stop).off('SIGTERM', stop);
    }
  });
  if (cancelled) {
    core.setOutput('status', 'cancelled');
    core.setFailed('the workflow run was cancelled: the items were stopped and the run was given back; a re-run of the workflow takes it over');
    return;
  }
  const report = await runReport({ octokit, event, refNamespace: inputs.refNamespace, token: inputs.token, outcome: outcomes.at(-1), dir: temp });
  await core.summary.addRaw(report.summary, true).write();
  core.setOutput('run-id', report.runId ?? '');
  core.setOutput('status', report.status);
  core.setOutput('bundle-path', report.bundlePath ?? '');
  if (report.failure) core.setFailed(report.failure);
  else jobLog.info(report.line);
}

/**
 * The orchestrator's configuration in a job: `command` items in containers of the `image` input (the
 * docker target, DOCKER_HOST of the runner), at most `concurrency` at once. Nothing is read from the
 * repository's agora.config.mjs: loading it would run the pull request's code in the job's own process,
 * which holds the token and the OIDC request token.
 */
function runConfig(inputs: RunInputs, workspace: string): OrchConfig {
  return {
    queues: {},
    defaultConcurrency: inputs.concurrency,
    subagents: {},
    shapes: {},
    refNamespace: inputs.refNamespace,
    commandTarget: 'docker',
    commandImage: inputs.image,
    configDir: workspace,
  };
}

/** The audit is signed keyless: a Fulcio certificate for the job's OIDC identity (a fresh token per signature), logged in Rekor. */
function keylessSigner(inputs: RunInputs): AppSigner {
  return {
    kind: 'keyless',
    fulcioUrl: inputs.fulcioUrl,
    rekorUrl: inputs.rekorUrl,
    ...(inputs.tsaUrl ? { tsaUrl: inputs.tsaUrl } : {}),
    ...(inputs.rekorEntryType ? { rekorEntryType: inputs.rekorEntryType } : {}),
    identityToken: () => core.getIDToken('sigstore'),
  };
}
