import { createHash } from 'node:crypto';
import type { ProbotOctokit } from 'probot';

/**
 * Conditional GETs for Octokit: the app never pays for an answer it already has.
 *
 * For every GET answered 200 with an `ETag` (or, without one, a `Last-Modified`), the response is kept
 * under (who asked, what exactly was asked). The next identical GET carries `If-None-Match` (or
 * `If-Modified-Since`); when GitHub answers 304 — which does not count against the rate limit — the
 * kept response is handed back as a 200 with its data and headers (the 304's fresh rate-limit headers
 * on top), so callers, `octokit.paginate` and the throttling plugin see an ordinary response.
 *
 * It works at the fetch level, under authentication: the plugin's `hook.wrap('request')` gives each
 * request a fetch that consults the cache, so the key sees the final URL (query and page included) and
 * the real `Authorization` header. Who asked is a SHA-256 of that header (the token itself is never
 * stored); an app JWT, re-signed every few seconds, is keyed by the app it names (`iss`) instead, so the
 * app's own reads revalidate too. Entries are never shared between identities. Non-GET requests, errors
 * and 200s without a validator are never kept; a GET that fails drops its entry. Memory is bounded: an
 * LRU of at most `maxEntries` entries and `maxBytes` bytes.
 *
 * The cache belongs to the Octokit class (`agoraOctokit()` makes one per class), so the many short-lived
 * clients Probot creates (one per webhook, one per `app.auth(id)`) share it.
 */

export interface ConditionalRequestOptions {
  /** Most responses kept (default 1,000). */
  maxEntries?: number;
  /** Most bytes kept, bodies and headers (default 32 MiB). */
  maxBytes?: number;
  /** Largest single response kept (default `maxBytes / 8`); larger ones pass through unkept. */
  maxEntryBytes?: number;
}

/** What the cache did so far (for tests, benches and logs). */
export interface ConditionalRequestStats {
  /** GETs answered 304 and served from the cache. */
  hits: number;
  /** Cacheable GETs that went out without a validator or came back with new data. */
  misses: number;
  /** Responses kept (a changed answer replaces its entry and counts again). */
  stores: number;
  /** Entries dropped to stay within `maxEntries` / `maxBytes`. */
  evictions: number;
  /** Entries held now. */
  entries: number;
  /** Bytes held now. */
  bytes: number;
}

interface Entry {
  /** The validator header to send next time and its value. */
  validator: ['if-none-match' | 'if-modified-since', string];
  statusText: string;
  headers: [string, string][];
  body: Uint8Array;
  url: string;
  bytes: number;
}

type Fetch = typeof globalThis.fetch;

/** Fetches that already have a cache in front (a retried request must not get a second one). */
const WRAPPED = new WeakSet<Fetch>();

/** Headers a kept or merged response must not carry over (they describe the transfer, not the data). */
const TRANSFER_HEADERS = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive']);

/** An LRU of GET responses keyed by identity and request; shared by every client of one Octokit class. */
export class ConditionalRequestCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxEntryBytes: number;
  private bytes = 0;
  private readonly counts = { hits: 0, misses: 0, stores: 0, evictions: 0 };

  constructor(opts: ConditionalRequestOptions = {}) {
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries ?? 1000));
    this.maxBytes = Math.max(1, Math.floor(opts.maxBytes ?? 32 * 1024 * 1024));
    this.maxEntryBytes = Math.min(this.maxBytes, Math.max(1, Math.floor(opts.maxEntryBytes ?? this.maxBytes / 8)));
  }

  stats(): ConditionalRequestStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.bytes };
  }

  /** The keys held, least recently used first: `<identity hash> <accept> <api version> <url>` (no credentials). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  /** `fetch` with this cache in front of it (GETs only; everything else passes straight through). */
  wrapFetch(inner: Fetch): Fetch {
    const wrapped: Fetch = async (input, init) => {
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      if (method !== 'GET') return inner(input, init);
      const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
      // A caller that sends its own validator manages its own 304s.
      if (headers.has('if-none-match') || headers.has('if-modified-since')) return inner(input, init);
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const key = cacheKey(url, headers);
      const entry = this.take(key);
      if (entry) headers.set(entry.validator[0], entry.validator[1]);
      const res = await inner(input, { ...init, headers });
      if (res.status === 304 && entry) {
        this.counts.hits += 1;
        this.put(key, entry, false);
        return replay(entry, res);
      }
      this.counts.misses += 1;
      if (res.status !== 200) return res; // errors (and a stray 304) are never kept; the old entry stays dropped
      const etag = res.headers.get('etag');
      const lastModified = res.headers.get('last-modified');
      if (!etag && !lastModified) return res;
      const length = Number(res.headers.get('content-length') ?? NaN);
      const json = /\bjson\b/i.test(res.headers.get('content-type') ?? '');
      // Only bodies known to be small (or JSON, read whole by Octokit anyway) are buffered; downloads stream on.
      if (!(length <= this.maxEntryBytes) && !json) return res;
      const body = new Uint8Array(await res.arrayBuffer());
      const kept: [string, string][] = [...res.headers].filter(([name]) => !TRANSFER_HEADERS.has(name.toLowerCase()));
      const fresh: Entry = {
        validator: etag ? ['if-none-match', etag] : ['if-modified-since', lastModified!],
        statusText: res.statusText,
        headers: kept,
        body,
        url: res.url || url,
        bytes: key.length + body.byteLength + kept.reduce((n, [k, v]) => n + k.length + v.length, 0),
      };
      if (fresh.bytes <= this.maxEntryBytes) this.put(key, fresh, true);
      return rebuild(body, 200, fresh.statusText, new Headers(kept), fresh.url);
    };
    WRAPPED.add(wrapped);
    return wrapped;
  }

  /** Removes and returns the entry (it goes back, most recent, on a 304 or a fresh 200). */
  private take(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    return entry;
  }

  private put(key: string, entry: Entry, stored: boolean): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    if (stored) this.counts.stores += 1;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
      this.counts.evictions += 1;
    }
  }
}

/** The Octokit plugin: every request of every client of the class gets `cache`'s fetch. */
export function conditionalRequests(cache: ConditionalRequestCache = new ConditionalRequestCache()) {
  return (octokit: Pick<InstanceType<typeof ProbotOctokit>, 'hook'>): { conditionalRequests: ConditionalRequestCache } => {
    octokit.hook.wrap('request', (request, options) => {
      // before-after-hook hands every inner layer the same options object (an argument passed to
      // `request` is ignored), so the fetch is set on it in place; retries reuse it as is.
      const inner = (options.request?.fetch as Fetch | undefined) ?? globalThis.fetch;
      if (!WRAPPED.has(inner)) options.request = { ...options.request, fetch: cache.wrapFetch(inner) };
      return request(options);
    });
    return { conditionalRequests: cache };
  };
}

/**
 * `<identity> <accept> <api-version> <url>`. The identity is a hash: of the app id for an app JWT
 * (`Bearer` + three base64url parts whose payload names `iss`), else of the whole Authorization header.
 */
function cacheKey(url: string, headers: Headers): string {
  const auth = headers.get('authorization') ?? '';
  const identity = createHash('sha256')
    .update(appOfJwt(auth) ?? `header:${auth}`)
    .digest('base64url')
    .slice(0, 32);
  return `${identity} ${headers.get('accept') ?? ''} ${headers.get('x-github-api-version') ?? ''} ${url}`;
}

function appOfJwt(auth: string): string | null {
  const m = /^bearer\s+([\w-]+)\.([\w-]+)\.[\w-]+$/i.exec(auth.trim());
  if (!m) return null;
  try {
    const payload = JSON.parse(Buffer.from(m[2]!, 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' || typeof payload.iss === 'number' ? `app-jwt:${payload.iss}` : null;
  } catch {
    return null;
  }
}

/** The kept response as a 200, with the 304's headers (rate limits, date, request id) over the kept ones. */
function replay(entry: Entry, notModified: Response): Response {
  const headers = new Headers(entry.headers);
  for (const [name, value] of notModified.headers) if (!TRANSFER_HEADERS.has(name.toLowerCase())) headers.set(name, value);
  void notModified.body?.cancel().catch(() => undefined);
  return rebuild(entry.body, 200, entry.statusText || 'OK', headers, entry.url);
}

function rebuild(body: Uint8Array, status: number, statusText: string, headers: Headers, url: string): Response {
  const res = new Response(body.byteLength > 0 ? body.slice() : null, { status, statusText, headers });
  Object.defineProperty(res, 'url', { value: url }); // Octokit reports `response.url`
  return res;
}
