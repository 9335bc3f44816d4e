/**
 * Webhook delivery like GitHub's: a JSON POST with X-GitHub-Event, X-GitHub-Delivery (a uuid),
 * X-Hub-Signature-256 (HMAC-SHA256 of the exact body) and the legacy X-Hub-Signature (HMAC-SHA1), a 10 s
 * timeout, no automatic redelivery (fault injection can drop a delivery or send it twice).
 * Every attempt is recorded so the app can list and redeliver failures. Also the receiving side:
 * `parseWebhook` verifies a delivery and parses it (what an app does on arrival).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

/** One delivery attempt, as GET /app/hook/deliveries/{id} describes it. */
export interface WebhookDelivery {
  id: number;
  guid: string;
  appId: number;
  event: string;
  action: string | null;
  installationId: number | null;
  repositoryId: number | null;
  deliveredAt: string;
  redelivery: boolean;
  durationSeconds: number;
  /** `OK`, `Invalid HTTP Response: 500`, `timed out`, `failed to connect to host`. */
  status: string;
  /** 0 when no HTTP response arrived. */
  statusCode: number;
  requestHeaders: Record<string, string>;
  body: string;
  responseHeaders: Record<string, string>;
  responseBody: string;
  /** True when fault injection dropped it before it left. */
  dropped: boolean;
}

/** HMAC-SHA256 signature header value of a body. */
export function signWebhook(secret: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

/** The legacy `X-Hub-Signature` GitHub still sends beside the SHA-256 one: HMAC-SHA1 of the body. */
export function signWebhookSha1(secret: string, body: string | Buffer): string {
  return 'sha1=' + createHmac('sha1', secret).update(body).digest('hex');
}

export class WebhookVerificationError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a receiver gets from a verified delivery. */
export interface ParsedWebhook {
  id: string;
  name: string;
  payload: Record<string, unknown>;
}

/**
 * Verifies and parses a webhook the way a receiving app must: required headers present, signature
 * matches the exact bytes (constant-time compare), body is a JSON object. Throws otherwise.
 */
export function parseWebhook(input: { headers: Record<string, string | string[] | undefined>; body: string | Buffer; secret: string }): ParsedWebhook {
  const header = (name: string): string | undefined => {
    const v = input.headers[name] ?? input.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const name = header('x-github-event');
  const id = header('x-github-delivery');
  const signature = header('x-hub-signature-256');
  if (!name || !id) throw new WebhookVerificationError(400, 'missing x-github-event or x-github-delivery');
  if (!signature) throw new WebhookVerificationError(401, 'missing x-hub-signature-256');
  const expected = Buffer.from(signWebhook(input.secret, input.body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new WebhookVerificationError(401, 'signature does not match');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.isBuffer(input.body) ? input.body.toString('utf8') : input.body);
  } catch {
    throw new WebhookVerificationError(400, 'body is not JSON');
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new WebhookVerificationError(400, 'body is not a JSON object');
  }
  return { id, name, payload: payload as Record<string, unknown> };
}

/** Where and how to deliver for one app. */
export interface WebhookTarget {
  appId: number;
  url: string;
  secret: string;
}

/** Sends each app's deliveries in order, records every attempt, and redelivers on request. */
export class WebhookDispatcher {
  readonly deliveries: WebhookDelivery[] = [];
  private nextId = 1;
  /** One ordered queue per app, so a slow receiver delays only its own app's deliveries. */
  private readonly queues = new Map<number, Promise<void>>();
  private pending = 0;

  constructor(
    private readonly opts: {
      timeoutMs: number;
      /** Fault injection: true drops this delivery. */
      shouldDrop: () => boolean;
      /** Fault injection: true sends this delivery twice under one GUID. */
      shouldDuplicate: () => boolean;
      userAgent: string;
    },
  ) {}

  /** Queues a delivery (twice when the duplicate fault says so); returns its GUID. */
  send(target: WebhookTarget, event: string, payload: Record<string, unknown>): string {
    const guid = randomUUID();
    const body = JSON.stringify(payload);
    const times = this.opts.shouldDuplicate() ? 2 : 1;
    for (let i = 0; i < times; i++) this.enqueue(target, event, body, payload, guid, false);
    return guid;
  }

  /** Redelivers a recorded delivery (same GUID and body, `redelivery: true`). */
  redeliver(target: WebhookTarget, delivery: WebhookDelivery): void {
    this.enqueue(target, delivery.event, delivery.body, JSON.parse(delivery.body) as Record<string, unknown>, delivery.guid, true);
  }

  /** Resolves when every queued delivery has been attempted. */
  async idle(): Promise<void> {
    while (this.pending > 0) await Promise.all([...this.queues.values()]);
  }

  private enqueue(target: WebhookTarget, event: string, body: string, payload: Record<string, unknown>, guid: string, redelivery: boolean): void {
    this.pending++;
    const queue = this.queues.get(target.appId) ?? Promise.resolve();
    const next = queue
      .then(() => this.attempt(target, event, body, payload, guid, redelivery))
      .catch(() => undefined)
      .finally(() => {
        this.pending--;
      });
    this.queues.set(target.appId, next);
  }

  private async attempt(
    target: WebhookTarget,
    event: string,
    body: string,
    payload: Record<string, unknown>,
    guid: string,
    redelivery: boolean,
  ): Promise<void> {
    const installation = payload.installation as { id?: number } | undefined;
    const repository = payload.repository as { id?: number } | undefined;
    const headers: Record<string, string> = {
      accept: '*/*',
      'content-type': 'application/json',
      'user-agent': this.opts.userAgent,
      'x-github-event': event,
      'x-github-delivery': guid,
      'x-github-hook-id': String(target.appId),
      'x-github-hook-installation-target-type': 'integration',
      'x-github-hook-installation-target-id': String(target.appId),
      'x-hub-signature': signWebhookSha1(target.secret, body),
      'x-hub-signature-256': signWebhook(target.secret, body),
    };
    const record: WebhookDelivery = {
      id: this.nextId++,
      guid,
      appId: target.appId,
      event,
      action: typeof payload.action === 'string' ? payload.action : null,
      installationId: installation?.id ?? null,
      repositoryId: repository?.id ?? null,
      deliveredAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      redelivery,
      durationSeconds: 0,
      status: 'OK',
      statusCode: 0,
      requestHeaders: headers,
      body,
      responseHeaders: {},
      responseBody: '',
      dropped: false,
    };
    const started = Date.now();
    if (this.opts.shouldDrop()) {
      record.dropped = true;
      record.status = 'failed to connect to host';
      this.deliveries.push(record);
      return;
    }
    try {
      const res = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.opts.timeoutMs) });
      record.statusCode = res.status;
      record.responseHeaders = Object.fromEntries(res.headers.entries());
      record.responseBody = (await res.text()).slice(0, 10_000);
      record.status = res.ok ? 'OK' : `Invalid HTTP Response: ${res.status}`;
    } catch (e) {
      const name = (e as Error).name;
      record.status = name === 'TimeoutError' || name === 'AbortError' ? 'timed out' : 'failed to connect to host';
    }
    record.durationSeconds = (Date.now() - started) / 1000;
    this.deliveries.push(record);
  }
}
