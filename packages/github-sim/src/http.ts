/** HTTP plumbing shared by the simulator: GitHub-shaped errors and body reading. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Where GitHub's error bodies point; the exact page does not matter to clients, its presence does. */
export const DOCS = 'https://docs.github.com/rest';

/** An error answered in GitHub's error shape `{ message, documentation_url, status, errors? }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
    readonly documentationUrl: string = DOCS,
  ) {
    super(message);
  }

  /** The JSON body GitHub would send. */
  body(): Record<string, unknown> {
    return { message: this.message, documentation_url: this.documentationUrl, status: String(this.status), ...this.extra };
  }
}

export const notFound = (): HttpError => new HttpError(404, 'Not Found');

/** GitHub's 422 "Validation Failed" with field errors. */
export function validationFailed(errors: Record<string, unknown>[], message = 'Validation Failed'): HttpError {
  return new HttpError(422, message, { errors });
}

/** Reads a request body fully (bounded by `maxBytes`; beyond it 413). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, 'Payload too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON request body the way GitHub does: empty is `{}`, junk is 400 "Problems parsing JSON". */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'Problems parsing JSON');
  }
}

/** Writes a JSON (or empty) response. */
export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined || status === 204 || status === 304) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}
