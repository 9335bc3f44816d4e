import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, initializeTSA, rekorHandler, tsaHandler, type HandlerFn } from '@sigstore/mock';
import type { TrustedRootJson } from '../../src/audit/trust.js';

/**
 * Test helper: @sigstore/mock's Fulcio, Rekor and TSA served from a real HTTP server on 127.0.0.1, with a
 * trusted_root.json-shaped object built from the mock CA, CT log, Rekor and TSA keys. Signing talks to it over
 * real HTTP; verification uses only the returned trust material.
 *
 * Quirks handled here (DESIGN §7):
 * - importing @sigstore/mock loads its own copy of nock, which patches node:http; loopback traffic is allowed
 *   explicitly and the patch is removed again on stop();
 * - the services get a clock at whole seconds (the mock TSA's sub-second times are rejected by @sigstore/core),
 *   set a few seconds ahead so that every certificate the mock creates at start-up is already valid then;
 * - its Rekor stores the proposed entry verbatim, which matches what real Rekor stores for the `intoto` entry
 *   type but not for `dsse`: tests sign with `rekorEntryType: 'intoto'`.
 */

interface MockNock {
  enableNetConnect(matcher?: string | RegExp): void;
  restore(): void;
  isActive(): boolean;
}

/** The nock instance @sigstore/mock itself loaded (its own dependency, not the project's nock). */
function mocksNock(): MockNock {
  const require = createRequire(import.meta.url);
  const fromMock = createRequire(require.resolve('@sigstore/mock'));
  return fromMock('nock') as MockNock;
}

export interface SigstoreMock {
  /** Base URL of the server; Fulcio, Rekor and the TSA all live under it, at their real API paths. */
  url: string;
  fulcioUrl: string;
  rekorUrl: string;
  tsaUrl: string;
  /** The trust material for everything this mock issues, in trusted_root.json form. */
  trustedRoot: TrustedRootJson;
  /** The time every service stamps (whole seconds). */
  clock: Date;
  /** The OIDC issuer the mock Fulcio writes into certificates when a token names none. */
  defaultIssuer: string;
  /** Requests served so far, by path. */
  requests: Map<string, number>;
  /** An (unsigned) OIDC token with these claims; the mock Fulcio decodes without verifying, as documented. */
  identityToken(claims: { sub: string; iss: string } & Record<string, unknown>): string;
  stop(): Promise<void>;
}

type KeyPair = { publicKey: KeyObject; privateKey: KeyObject };

function p256(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function bytes(value: ArrayBuffer | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : Buffer.from(value);
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * `subjectClaim`: the token claim the mock Fulcio puts in the certificate's SAN (default `sub`; GitHub
 * Actions tokens are certified for their `job_workflow_ref` by the real Fulcio).
 */
export async function startSigstoreMock(opts: { subjectClaim?: string } = {}): Promise<SigstoreMock> {
  const nock = mocksNock();
  // The mock's own server, and `localhost`: the name a request over a unix socket (the container engine's) carries.
  nock.enableNetConnect(/^(127\.0\.0\.1|localhost)(:\d+)?$/);

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Whole seconds, and later than the creation of every root/intermediate certificate below (those use the
  // real time when they are made; the margin covers a slow, shared machine, and is checked below).
  const clock = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
  const validFrom = new Date(clock.getTime() - 3_600_000).toISOString();

  const caKeys = p256();
  const ctlog = await initializeCTLog(caKeys, clock);
  const ca = await initializeCA(caKeys, ctlog, clock);
  const tlogKeys = p256();
  const tlog = await initializeTLog(url, tlogKeys, clock);
  const tsa = await initializeTSA(p256(), clock);

  if (Date.now() >= clock.getTime()) throw new Error('mock Sigstore set-up took longer than its clock margin; raise it');

  const routes = new Map<string, HandlerFn>();
  for (const handler of [fulcioHandler(ca, opts.subjectClaim ? { subjectClaim: opts.subjectClaim } : {}), rekorHandler(tlog), tsaHandler(tsa)])
    routes.set(handler.path, handler.fn);
  const requests = new Map<string, number>();

  server.on('request', (req, res) => {
    // One request per connection: a kept-alive socket the server times out (5 s idle by default) while the
    // client sends on it is a "socket hang up" in the signer, seen on a busy machine.
    res.shouldKeepAlive = false;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', url).pathname;
      requests.set(path, (requests.get(path) ?? 0) + 1);
      const fn = req.method === 'POST' ? routes.get(path) : undefined;
      if (!fn) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no mock service at ${req.method} ${path}`);
        return;
      }
      fn(Buffer.concat(chunks).toString('utf8')).then(
        ({ statusCode, response, contentType }) => {
          const body = typeof response === 'string' ? response : bytes(response);
          res.writeHead(statusCode, { 'content-type': contentType ?? 'text/plain' }).end(body);
        },
        (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error)),
      );
    });
  });

  const tlogKeyDer = bytes(tlog.publicKey);
  const ctlogKeyDer = bytes(ctlog.publicKey);
  const trustedRoot: TrustedRootJson = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: url,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: tlogKeyDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: validFrom } },
        logId: { keyId: createHash('sha256').update(tlogKeyDer).digest('base64') },
      },
    ],
    certificateAuthorities: [
      {
        uri: url,
        certChain: { certificates: [{ rawBytes: bytes(ca.rootCertificate).toString('base64') }] },
        validFor: { start: validFrom },
      },
    ],
    ctlogs: [
      {
        baseUrl: url,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: ctlogKeyDer.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: validFrom } },
        logId: { keyId: bytes(ctlog.logID).toString('base64') },
      },
    ],
    timestampAuthorities: [
      {
        uri: url,
        certChain: {
          certificates: [{ rawBytes: bytes(tsa.intCertificate).toString('base64') }, { rawBytes: bytes(tsa.rootCertificate).toString('base64') }],
        },
        validFor: { start: validFrom },
      },
    ],
  };

  return {
    url,
    fulcioUrl: url,
    rekorUrl: url,
    tsaUrl: url,
    trustedRoot,
    clock,
    defaultIssuer: 'https://fake.oidcissuer.com',
    requests,
    identityToken(claims) {
      const now = Math.floor(clock.getTime() / 1000);
      return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ aud: 'sigstore', iat: now, exp: now + 600, ...claims })}.`;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
      // Undo the interception that loading @sigstore/mock switched on.
      if (nock.isActive()) nock.restore();
    },
  };
}
