import { readFile } from 'node:fs/promises';
import { AgoraError, errorMessage } from '../errors.js';
import { FULL_COMMIT_ID } from '../audit/verify/pins.js';
import { REPOSITORY_FULL_NAME } from '../audit/statement.js';

/**
 * The pull request a job is about, from the event payload the runner wrote to GITHUB_EVENT_PATH. The head
 * is `pull_request.head.sha`: the commit people pushed, not the merge commit a pull_request workflow
 * checks out (GITHUB_SHA), which no run ever patched.
 */
export interface PullRequestEvent {
  eventName: string;
  /** The payload's `action` (`opened`, `synchronize`, `closed`, …); empty when it has none. */
  action: string;
  number: number;
  head: string;
  base: string;
  /** `owner/name`. */
  repository: string;
  cloneUrl: string;
  /** The pull request's branch (`pull_request.head.ref`). */
  headRef: string;
  /** `owner/name` of the repository the head branch lives in: another one for a pull request from a fork. */
  headRepository: string;
  /** The repository's id and web URL (empty / undefined when the payload lacks them). */
  repositoryId?: number;
  htmlUrl: string;
}

interface Payload {
  action?: unknown;
  pull_request?: { number?: unknown; head?: { sha?: unknown; ref?: unknown; repo?: { full_name?: unknown } | null }; base?: { sha?: unknown } };
  repository?: { full_name?: unknown; clone_url?: unknown; id?: unknown; html_url?: unknown };
}

/** Reads the pull request of the job's event; `mode` names the mode in the message when there is none. */
export async function readPullRequestEvent(env: NodeJS.ProcessEnv = process.env, mode = 'verify'): Promise<PullRequestEvent> {
  const eventName = env.GITHUB_EVENT_NAME ?? '';
  const path = env.GITHUB_EVENT_PATH;
  if (!path)
    throw new AgoraError('action-event', 'GITHUB_EVENT_PATH is not set: this is not a GitHub Actions job', 'run the Agora Action as a step of a workflow');
  let payload: Payload;
  try {
    payload = JSON.parse(await readFile(path, 'utf8')) as Payload;
  } catch (e) {
    throw new AgoraError('action-event', `${path}: the event payload cannot be read (${errorMessage(e)})`, 'run the Agora Action as a step of a workflow');
  }
  const pr = payload.pull_request;
  if (!pr) {
    throw new AgoraError(
      'action-event',
      `mode \`${mode}\` ${mode === 'verify' ? 'checks' : 'runs the plan of'} a pull request, but this job ran on a \`${eventName}\` event, which has none`,
      'trigger the workflow with `on: pull_request` (see docs/actions.md)',
    );
  }
  const head = String(pr.head?.sha ?? '');
  const base = String(pr.base?.sha ?? '');
  const repository = String(payload.repository?.full_name ?? '');
  const cloneUrl = String(payload.repository?.clone_url ?? '');
  if (!FULL_COMMIT_ID.test(head) || !FULL_COMMIT_ID.test(base) || !REPOSITORY_FULL_NAME.test(repository) || !/^https?:\/\//.test(cloneUrl)) {
    throw new AgoraError(
      'action-event',
      `${path}: the pull_request payload lacks a head sha, base sha, repository name or clone URL`,
      'run the Action on a pull_request event GitHub sent',
    );
  }
  const id = payload.repository?.id;
  return {
    eventName,
    action: typeof payload.action === 'string' ? payload.action : '',
    number: Number(pr.number),
    head,
    base,
    repository,
    cloneUrl,
    headRef: String(pr.head?.ref ?? ''),
    // A deleted fork has no head repository at all: not this repository either.
    headRepository: String(pr.head?.repo?.full_name ?? ''),
    ...(typeof id === 'number' ? { repositoryId: id } : {}),
    htmlUrl: String(payload.repository?.html_url ?? ''),
  };
}
