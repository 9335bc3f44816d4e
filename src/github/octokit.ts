import Bottleneck from 'bottleneck';
import { ProbotOctokit } from 'probot';
import { ConditionalRequestCache, conditionalRequests, type ConditionalRequestOptions } from './conditional-requests.js';

/** The installation client the app talks to GitHub with (Probot's Octokit, with its plugins). */
export type Octokit = InstanceType<typeof ProbotOctokit>;

/**
 * The app's Octokit class: Probot's, with Octokit's throttling and retry plugins on and a secondary-limit
 * handler that waits `retry-after` and tries again. Probot 14 installs its own throttle handlers, and its
 * `onSecondaryRateLimit` only logs: without this class a 403 "secondary rate limit" fails the request
 * (a check run never completes, the run never finishes).
 *
 * Every GET is conditional (see conditional-requests.ts): a repeated read of unchanged data is a 304,
 * which costs no rate limit, and the client still gets the full 200 it had.
 */

/** Octokit's throttle options the app sets (plus anything the plugin accepts, e.g. its Bottleneck groups). */
export interface AgoraThrottleOptions {
  /** Milliseconds per second of `retry-after` (Octokit's default 1000; tests shrink it). */
  retryAfterBaseValue?: number;
  [option: string]: unknown;
}

export interface AgoraOctokitOptions {
  /** How many times one request is retried after a secondary-limit 403 (default 5). */
  secondaryRetries?: number;
  /** How many times one request is retried after the primary limit ran out (default 2). */
  primaryRetries?: number;
  throttle?: AgoraThrottleOptions;
  /** plugin-retry's options (5xx and other retryable errors): `retries` (default 3), `retryAfterBaseValue` (ms per unit, default 1000). */
  retry?: { retries?: number; retryAfterBaseValue?: number };
  /** Called on every limit hit (logging). */
  /**
   * Conditional GETs with ETags (default on): `false` turns them off; an object sets the LRU's bounds
   * (`maxEntries` default 1,000, `maxBytes` default 32 MiB) or passes the `cache` to use (tests read its stats).
   */
  conditionalRequests?: boolean | (ConditionalRequestOptions & { cache?: ConditionalRequestCache });
  onLimit?: (kind: 'secondary' | 'primary', retryAfterSeconds: number, request: { method: string; url: string }, retryCount: number) => void;
}

type RequestOptions = { method: string; url: string };

/** The app's Octokit class, with the write queues its clients share (one queue per installation). */
export type AgoraOctokitClass = typeof ProbotOctokit & { readonly writeQueues: Bottleneck.Group };

/**
 * The write queues of one app: GitHub asks for a second between content-creating requests, and
 * the throttling plugin spaces writes through a queue per key. The plugin's own queues are module
 * globals shared by every client in the process; these belong to the class, and Probot keys each
 * installation client by its installation id, so one installation's writes never wait behind
 * another's (each has GitHub's budget of its own) and two apps in one process share nothing.
 */
function writeQueues(): Bottleneck.Group {
  return new Bottleneck.Group({ id: 'agora-write', maxConcurrent: 1, minTime: 1000, timeout: 120_000 });
}

/** The write queue's key of an installation's client: its installation id (none for the app's own client). */
function queueKey(instance: { auth?: { installationId?: unknown } }): { id?: string } {
  const id = instance.auth?.installationId;
  return typeof id === 'number' || typeof id === 'string' ? { id: String(id) } : {};
}

/** Probot's Octokit with the app's throttling and retry settings; pass it as Probot's `Octokit` option. */
export function agoraOctokit(opts: AgoraOctokitOptions = {}): AgoraOctokitClass {
  const secondaryRetries = opts.secondaryRetries ?? 5;
  const primaryRetries = opts.primaryRetries ?? 2;
  const conditional = opts.conditionalRequests ?? true;
  // One cache per class: Probot makes a new client per webhook and per app.auth(), and they should all hit it.
  const Base =
    conditional === false
      ? ProbotOctokit
      : (ProbotOctokit.plugin(
          conditionalRequests(conditional === true ? new ConditionalRequestCache() : (conditional.cache ?? new ConditionalRequestCache(conditional))),
        ) as typeof ProbotOctokit);
  const write = (opts.throttle?.write as Bottleneck.Group | undefined) ?? writeQueues();
  const Agora = Base.defaults((instance: { throttle?: { id?: unknown }; retry?: object; auth?: { installationId?: unknown } }) => ({
    ...instance,
    // Probot passes its own (non-retrying) handlers in `instance.throttle`; ours replace the handlers. It
    // passes the installation's id as the queue key only for `app.auth(id)`: the client a webhook's context
    // gets (octokit-auth-probot) carries the id in `auth` alone, and would share the plugin's `no-id` queue.
    throttle: {
      write,
      ...queueKey(instance),
      ...instance.throttle,
      ...opts.throttle,
      enabled: true,
      onSecondaryRateLimit: (retryAfter: number, options: RequestOptions, _octokit: unknown, retryCount: number) => {
        opts.onLimit?.('secondary', retryAfter, options, retryCount);
        return retryCount < secondaryRetries;
      },
      onRateLimit: (retryAfter: number, options: RequestOptions, _octokit: unknown, retryCount: number) => {
        opts.onLimit?.('primary', retryAfter, options, retryCount);
        return retryCount < primaryRetries;
      },
    },
    ...(opts.retry ? { retry: { ...instance.retry, ...opts.retry } } : {}),
  })) as typeof ProbotOctokit;
  return Object.assign(Agora, { writeQueues: write });
}
