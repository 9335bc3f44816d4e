import { codeSpan, plainText } from '../github/untrusted-markdown.js';
import type { PullRequestEvent } from './pull-request-event.js';

/**
 * Why `mode: run` must not start on this job, decided before anything is fetched or written: an event
 * that is not a pull request's head arriving (`pull_request` opened, synchronize or reopened: not a
 * `closed` pull request, not `pull_request_target`, which runs the base's workflow with a write token
 * for a head that may be a fork's), a pull request from a fork (its job's token is read-only and it has no OIDC identity, and its plan is a
 * stranger's code), or a job without `id-token: write` (the audit could not be signed). Pure.
 */
export interface RunRefusal {
  problem: string;
  fix: string;
}

/** The `pull_request` activity types on which the head is new or back: the only ones a run starts on. */
const RUN_ACTIONS = ['opened', 'synchronize', 'reopened'];

export function runRefusal(event: PullRequestEvent, env: NodeJS.ProcessEnv): RunRefusal | null {
  if (event.eventName !== 'pull_request' || !RUN_ACTIONS.includes(event.action)) {
    return {
      problem: `this job ran on a ${event.eventName} event with action "${event.action || '(none)'}"; mode run drives a pull request's plan only on a pull_request event opened, synchronize or reopened (a closed pull request's head is not run)`,
      fix: 'trigger the workflow with `on: pull_request` and its default activity types (opened, synchronize, reopened), as examples/workflows/agora-run.yml does',
    };
  }
  if (event.headRepository.toLowerCase() !== event.repository.toLowerCase()) {
    const from = event.headRepository === '' ? 'a fork that no longer exists' : `the fork ${event.headRepository}`;
    return {
      problem: `pull request #${event.number} comes from ${from}, not from ${event.repository}: Agora does not run a fork's plan (the job's token is read-only, the job has no OIDC identity, and the plan is code from outside the repository)`,
      fix: "to run it, push the branch to this repository and open the pull request from there (after reviewing the plan); a fork's audited result can be checked with `mode: verify`",
    };
  }
  if (!env.ACTIONS_ID_TOKEN_REQUEST_URL || !env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) {
    return {
      problem:
        'the job has no OIDC identity (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set), so the audit bundle could not be signed keyless',
      fix: 'grant the job `permissions: id-token: write` (with `contents: write` and `checks: write`), as examples/workflows/agora-run.yml does',
    };
  }
  return null;
}

/** The job summary of a refusal: the problem (it may name a fork) and the branch as text; the fix is ours. */
export function refusalSummary(event: PullRequestEvent, r: RunRefusal): string {
  return [
    '## Agora run: refused',
    '',
    `Pull request #${event.number}, head ${codeSpan(event.head.slice(0, 12))} on ${codeSpan(event.headRef)}: nothing was run and nothing was written.`,
    '',
    plainText(r.problem),
    '',
    `**To fix:** ${r.fix}`,
    '',
  ].join('\n');
}
