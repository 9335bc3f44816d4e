/** Primary and secondary rate limits and seeded fault injection, GitHub-style. */
import { HttpError } from './http.js';
import { SeededRandom } from './random.js';

/** Limits; defaults are GitHub's for an installation token. */
export interface SimLimits {
  /** Primary limit per token owner per hour (default 5,000). */
  requestsPerHour?: number;
  /** Secondary: content-creating requests per minute (default 80). */
  contentCreationPerMinute?: number;
  /** Secondary: content-creating requests per hour (default 500). */
  contentCreationPerHour?: number;
  /** Secondary: concurrent requests per token owner (default 100). */
  concurrentRequests?: number;
  /** Largest accepted request body in bytes (default 100 MiB). */
  maxBodyBytes?: number;
}

/** Faults, drawn from a PRNG seeded by `seed` (one stream per kind, so they stay reproducible). */
export interface SimFaults {
  /** Probability in [0,1] that an API request is answered with a 5xx instead. */
  serverErrorRate?: number;
  /** Added latency per API request: a fixed ms value or a [min, max] range. */
  latencyMs?: number | [number, number];
  /**
   * Added latency per git smart-HTTP request (ref advertisement, fetch, push), before the repository is
   * read or changed: a fixed ms value or a [min, max] range. A push or fetch makes two or three requests.
   */
  gitLatencyMs?: number | [number, number];
  /** Probability in [0,1] that a webhook delivery is dropped (recorded as failed, never sent). */
  dropWebhookRate?: number;
  /**
   * Probability in [0,1] that a webhook is sent twice: two attempts with the same GUID (X-GitHub-Delivery),
   * both `redelivery: false`, as GitHub's at-least-once delivery sometimes does; a receiver must dedupe.
   */
  duplicateWebhookRate?: number;
  /**
   * Probability in [0,1] that a `workflow_dispatch` is answered 502 after it took effect (the dispatch
   * is recorded and its run created): a client that retries must not start the work twice.
   */
  dispatchErrorAfterEffectRate?: number;
  /**
   * Awaited just before an API request is handled (after authentication and limits): another writer acts
   * at exactly that moment, as a concurrent client would (a replica publishing the same release tag
   * first). Requests the hook makes pass through it too.
   */
  beforeRequest?: (request: { method: string; route: string; params: Readonly<Record<string, string>> }) => void | Promise<void>;
  /**
   * Awaited just before an authorised git smart-HTTP request is served (after its added latency). Throwing
   * an HttpError answers the request with its status instead, as GitHub's git endpoints sometimes answer
   * 5xx: `service` is `upload-pack` (a ref advertisement or a fetch) or `receive-pack` (a push).
   */
  beforeGitRequest?: (request: GitRequest) => void | Promise<void>;
}

/** A git smart-HTTP request as `beforeGitRequest` sees it. */
export interface GitRequest {
  method: string;
  owner: string;
  repo: string;
  service: 'upload-pack' | 'receive-pack';
  /** The installation access token it authenticated with: which client sends it (the App, or a job given a token of its own). */
  token: string;
}

export const SECONDARY_LIMIT_MESSAGE =
  'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.';
const SECONDARY_DOCS = 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits';
const PRIMARY_DOCS = 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api';

interface Bucket {
  windowStart: number;
  used: number;
  creations: number[];
  inflight: number;
}

/** Rate-limit state of one token owner, as sent in the x-ratelimit-* headers. */
export interface RateLimitSnapshot {
  limit: number;
  remaining: number;
  reset: number;
  used: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  readonly limits: Required<SimLimits>;

  constructor(limits: SimLimits = {}) {
    this.limits = {
      requestsPerHour: limits.requestsPerHour ?? 5000,
      contentCreationPerMinute: limits.contentCreationPerMinute ?? 80,
      contentCreationPerHour: limits.contentCreationPerHour ?? 500,
      concurrentRequests: limits.concurrentRequests ?? 100,
      maxBodyBytes: limits.maxBodyBytes ?? 100 * 1024 * 1024,
    };
  }

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b || now - b.windowStart >= 3_600_000) {
      b = { windowStart: now, used: 0, creations: b?.creations ?? [], inflight: b?.inflight ?? 0 };
      this.buckets.set(key, b);
    }
    return b;
  }

  snapshot(key: string, now: number): RateLimitSnapshot {
    const b = this.bucket(key, now);
    return {
      limit: this.limits.requestsPerHour,
      remaining: Math.max(0, this.limits.requestsPerHour - b.used),
      reset: Math.ceil((b.windowStart + 3_600_000) / 1000),
      used: b.used,
    };
  }

  /**
   * Admits a request or throws GitHub's 403. Counts it against the primary limit (call `uncount`
   * when the answer is a 304) and marks it in flight until `release`.
   */
  admit(key: string, label: string, creates: boolean, now: number): void {
    const b = this.bucket(key, now);
    if (b.used >= this.limits.requestsPerHour) {
      throw new HttpError(403, `API rate limit exceeded for ${label}.`, {}, {}, PRIMARY_DOCS);
    }
    if (b.inflight >= this.limits.concurrentRequests) {
      throw new HttpError(403, SECONDARY_LIMIT_MESSAGE, {}, { 'retry-after': '5' }, SECONDARY_DOCS);
    }
    if (creates) {
      b.creations = b.creations.filter((t) => now - t < 3_600_000);
      const lastMinute = b.creations.filter((t) => now - t < 60_000);
      const retry = (oldest: number, window: number): string => String(Math.max(1, Math.ceil((oldest + window - now) / 1000)));
      if (lastMinute.length >= this.limits.contentCreationPerMinute) {
        throw new HttpError(403, SECONDARY_LIMIT_MESSAGE, {}, { 'retry-after': retry(lastMinute[0]!, 60_000) }, SECONDARY_DOCS);
      }
      if (b.creations.length >= this.limits.contentCreationPerHour) {
        throw new HttpError(403, SECONDARY_LIMIT_MESSAGE, {}, { 'retry-after': retry(b.creations[0]!, 3_600_000) }, SECONDARY_DOCS);
      }
      b.creations.push(now);
    }
    b.used++;
    b.inflight++;
  }

  release(key: string, now: number): void {
    const b = this.bucket(key, now);
    b.inflight = Math.max(0, b.inflight - 1);
  }

  /** Conditional requests answered 304 do not count against the primary limit. */
  uncount(key: string, now: number): void {
    const b = this.bucket(key, now);
    b.used = Math.max(0, b.used - 1);
  }
}

/** Seeded fault decisions. */
export class FaultInjector {
  private readonly errors: SeededRandom;
  private readonly latency: SeededRandom;
  private readonly drops: SeededRandom;
  private readonly gitLatency: SeededRandom;
  private readonly afterEffect: SeededRandom;
  private readonly duplicates: SeededRandom;

  constructor(
    private readonly faults: SimFaults,
    seed: number,
  ) {
    this.errors = new SeededRandom(seed ^ 0x5eed0001);
    this.latency = new SeededRandom(seed ^ 0x5eed0002);
    this.drops = new SeededRandom(seed ^ 0x5eed0003);
    this.gitLatency = new SeededRandom(seed ^ 0x5eed0004);
    this.afterEffect = new SeededRandom(seed ^ 0x5eed0005);
    this.duplicates = new SeededRandom(seed ^ 0x5eed0006);
  }

  /** A 5xx status to answer instead, or null. */
  serverError(): number | null {
    const rate = this.faults.serverErrorRate ?? 0;
    if (rate <= 0) return null;
    const roll = this.errors.next();
    const which = this.errors.int(0, 2);
    return roll < rate ? [500, 502, 503][which]! : null;
  }

  latencyMs(): number {
    return draw(this.faults.latencyMs, this.latency);
  }

  gitLatencyMs(): number {
    return draw(this.faults.gitLatencyMs, this.gitLatency);
  }

  dropWebhook(): boolean {
    const rate = this.faults.dropWebhookRate ?? 0;
    return rate > 0 && this.drops.next() < rate;
  }

  duplicateWebhook(): boolean {
    const rate = this.faults.duplicateWebhookRate ?? 0;
    return rate > 0 && this.duplicates.next() < rate;
  }

  /** Lets the test's other writer act before this request is handled. */
  async before(request: { method: string; route: string; params: Readonly<Record<string, string>> }): Promise<void> {
    await this.faults.beforeRequest?.(request);
  }

  /** Lets the test fail (or act before) this git request. */
  async beforeGit(request: GitRequest): Promise<void> {
    await this.faults.beforeGitRequest?.(request);
  }

  /** Whether this dispatch, already done, is answered with a 502. */
  dispatchErrorAfterEffect(): boolean {
    const rate = this.faults.dispatchErrorAfterEffectRate ?? 0;
    return rate > 0 && this.afterEffect.next() < rate;
  }
}

function draw(l: number | [number, number] | undefined, random: SeededRandom): number {
  if (l === undefined) return 0;
  return typeof l === 'number' ? l : random.int(l[0], l[1]);
}
