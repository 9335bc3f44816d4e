/**
 * The second host release-asset downloads are sent to. GitHub answers `GET …/releases/assets/{id}` with
 * `Accept: application/octet-stream` by a 302 to a short-lived signed URL on another host
 * (objects.githubusercontent.com); the signature in the URL is the credential there, and a request that
 * also carries an Authorization header is refused, as a storage service refuses two auth mechanisms.
 * Here that host is a second listener on 127.0.0.1 (another port: another origin).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Asset } from './state.js';

/** One request the objects host saw (tests check that no credential reached it). */
export interface ObjectRequest {
  path: string;
  /** Whether the request carried an Authorization header (it must not). */
  authorization: boolean;
  status: number;
}

/** How long a signed download URL is good for (GitHub's are minutes). */
const URL_TTL_MS = 5 * 60_000;

export class ObjectsHost {
  private readonly key = randomBytes(32);
  readonly requests: ObjectRequest[] = [];

  constructor(
    readonly origin: string,
    private readonly assetById: (id: number) => Asset | undefined,
  ) {}

  /** The signed URL the API redirects an asset download to. */
  signedUrl(asset: Asset, now = Date.now()): string {
    const expires = String(now + URL_TTL_MS);
    return `${this.origin}/release-assets/${asset.id}?expires=${expires}&signature=${this.sign(asset.id, expires)}`;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.origin);
    const answer = (status: number, body: Buffer | string, headers: Record<string, string> = {}): void => {
      this.requests.push({ path: url.pathname, authorization: req.headers.authorization !== undefined, status });
      res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(body);
    };
    const m = /^\/release-assets\/(\d+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return answer(404, 'Not Found');
    if (req.headers.authorization !== undefined) {
      return answer(400, 'Only one auth mechanism allowed; the signed URL is the credential, the Authorization header must not be sent');
    }
    const expires = url.searchParams.get('expires') ?? '';
    const given = Buffer.from(url.searchParams.get('signature') ?? '', 'utf8');
    const wanted = Buffer.from(this.sign(Number(m[1]), expires), 'utf8');
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return answer(403, 'Signature does not match');
    if (!(Number(expires) > Date.now())) return answer(403, 'Request has expired');
    const asset = this.assetById(Number(m[1]));
    if (!asset) return answer(404, 'Not Found');
    answer(200, asset.data, { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename=${encodeURIComponent(asset.name)}` });
  }

  private sign(id: number, expires: string): string {
    return createHmac('sha256', this.key).update(`${id}:${expires}`).digest('hex');
  }
}
