import { info } from '@actions/core';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';

/**
 * The Action's REST client: `@octokit/rest` with the job's token against the job's API (GITHUB_API_URL,
 * so GitHub Enterprise Server and the simulator work), spaced and retried as GitHub asks. A `mode: run`
 * job writes a check run per item: without the throttling plugin a large plan meets GitHub's secondary
 * limit (a 403 with `retry-after`) and the write fails; with it, content-creating requests go through one
 * queue a second apart, a limit hit waits `retry-after` and tries again, and 5xx answers are retried.
 */
const ActionOctokit = Octokit.plugin(throttling, retry);

export interface ActionOctokitOptions {
  /** How many times one request is retried after a secondary-limit 403 (default 5). */
  secondaryRetries?: number;
  /** How many times one request is retried after the primary limit ran out (default 2). */
  primaryRetries?: number;
  /** Milliseconds per second of `retry-after` and of the retry plugin's back-off (default 1000; tests shrink it). */
  retryAfterBaseValue?: number;
  /** Told of every limit hit (default: a line in the job log). */
  onLimit?: (kind: 'secondary' | 'primary', retryAfterSeconds: number, request: { method: string; url: string }, retryCount: number) => void;
}

function logLimit(kind: 'secondary' | 'primary', retryAfterSeconds: number, request: { method: string; url: string }, retryCount: number): void {
  info(`GitHub's ${kind} rate limit: waiting ${retryAfterSeconds} s before ${request.method} ${request.url} (retry ${retryCount + 1})`);
}

export function actionOctokit(token: string, env: NodeJS.ProcessEnv = process.env, opts: ActionOctokitOptions = {}): Octokit {
  const secondaryRetries = opts.secondaryRetries ?? 5;
  const primaryRetries = opts.primaryRetries ?? 2;
  const onLimit = opts.onLimit ?? logLimit;
  const base = opts.retryAfterBaseValue;
  return new ActionOctokit({
    auth: token,
    ...(env.GITHUB_API_URL ? { baseUrl: env.GITHUB_API_URL } : {}),
    userAgent: 'agora-action',
    throttle: {
      ...(base !== undefined ? { retryAfterBaseValue: base } : {}),
      onSecondaryRateLimit: (retryAfter: number, options: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
        onLimit('secondary', retryAfter, options, retryCount);
        return retryCount < secondaryRetries;
      },
      onRateLimit: (retryAfter: number, options: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
        onLimit('primary', retryAfter, options, retryCount);
        return retryCount < primaryRetries;
      },
    },
    ...(base !== undefined ? { retry: { retryAfterBaseValue: base } } : {}),
  });
}
