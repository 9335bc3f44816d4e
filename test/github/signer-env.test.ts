import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/audit/keys.js';
import { InvalidInputError } from '../../src/errors.js';
import { PUBLIC_FULCIO_URL, PUBLIC_REKOR_URL, signerFromEnv } from '../../src/github/signer-env.js';
import { cleanupTempDirs, tempDir } from '../support/repo.js';

/** signerFromEnv: which signer the app's environment configures, and every way it can be wrong. */

const ROOT_JSON = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

let dir: string;
const key = generateSigningKey();

beforeAll(() => {
  dir = tempDir('agora-signer-env-');
  writeFileSync(join(dir, 'signing.key.pem'), key.privateKeyPem);
  writeFileSync(join(dir, 'signing.pub.pem'), key.publicKeyPem);
  writeFileSync(join(dir, 'trusted_root.json'), JSON.stringify(ROOT_JSON));
  writeFileSync(join(dir, 'not-json.json'), 'hello');
  writeFileSync(join(dir, 'not-a-root.json'), JSON.stringify({ mediaType: 'application/json' }));
});
afterAll(cleanupTempDirs);

/** The InvalidInputError signerFromEnv rejects with; fails the test when it resolves. */
async function refusal(env: NodeJS.ProcessEnv): Promise<InvalidInputError> {
  try {
    await signerFromEnv(env, dir);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError);
    return e as InvalidInputError;
  }
  throw new Error(`expected ${JSON.stringify(Object.keys(env))} to be refused`);
}

const KEYLESS = { AGORA_SIGNER: 'keyless', SIGSTORE_ID_TOKEN: 'header.payload.sig' };

describe('the key signer', () => {
  it('no signer variables: no signer (unsigned audits)', async () => {
    expect(await signerFromEnv({}, dir)).toBeUndefined();
    expect(await signerFromEnv({ PATH: '/usr/bin', HOME: '/root' }, dir)).toBeUndefined();
  });

  it('AGORA_SIGNING_KEY as PEM text, or as a path relative to cwd; AGORA_SIGNER=key says the same', async () => {
    const fromText = await signerFromEnv({ AGORA_SIGNING_KEY: key.privateKeyPem }, dir);
    expect(fromText).toEqual({ kind: 'key', privateKeyPem: key.privateKeyPem });
    const fromPath = await signerFromEnv({ AGORA_SIGNING_KEY: 'signing.key.pem', AGORA_SIGNER: 'key' }, dir);
    expect(fromPath).toEqual({ kind: 'key', privateKeyPem: key.privateKeyPem });
  });

  it('a bad key, a missing key and contradictory settings are refused, naming the variable and the fix', async () => {
    const cases: Array<[NodeJS.ProcessEnv, string, RegExp, RegExp]> = [
      [{ AGORA_SIGNING_KEY: 'absent.pem' }, 'AGORA_SIGNING_KEY', /AGORA_SIGNING_KEY/, /./],
      [{ AGORA_SIGNING_KEY: 'signing.pub.pem' }, 'AGORA_SIGNING_KEY', /public key/, /private/],
      [{ AGORA_SIGNING_KEY: '  ' }, 'AGORA_SIGNING_KEY', /is empty/, /agora keys generate/],
      [{ AGORA_SIGNER: 'key' }, 'AGORA_SIGNING_KEY', /not set, but AGORA_SIGNER=key/, /agora keys generate/],
      [{ AGORA_SIGNER: 'cosign' }, 'AGORA_SIGNER', /"cosign" is not a signer/, /AGORA_SIGNER=keyless/],
      [{ ...KEYLESS, AGORA_SIGNING_KEY: key.privateKeyPem }, 'AGORA_SIGNING_KEY', /AGORA_SIGNER=keyless signs without a key/, /unset AGORA_SIGNING_KEY/],
      [
        { AGORA_SIGNING_KEY: key.privateKeyPem, AGORA_FULCIO_URL: 'https://fulcio.example.com' },
        'AGORA_FULCIO_URL',
        /signer is not keyless/,
        /AGORA_SIGNER=keyless/,
      ],
      [{ AGORA_CERT_IDENTITY: 'x', AGORA_CERT_ISSUER: 'y' }, 'AGORA_CERT_IDENTITY', /AGORA_SIGNER is unset/, /unset AGORA_CERT_IDENTITY, AGORA_CERT_ISSUER/],
    ];
    for (const [env, source, message, hint] of cases) {
      const e = await refusal(env);
      expect(e.source, JSON.stringify(env)).toBe(source);
      expect(e.code).toBe('invalid-environment');
      expect(e.message).toMatch(message);
      expect(e.hint ?? '').toMatch(hint);
    }
  });
});

describe('the keyless signer', () => {
  it('SIGSTORE_ID_TOKEN and nothing else: public-good Fulcio and Rekor, nothing the gate could check with', async () => {
    const s = await signerFromEnv(KEYLESS, dir);
    expect(s).toMatchObject({ kind: 'keyless', fulcioUrl: PUBLIC_FULCIO_URL, rekorUrl: PUBLIC_REKOR_URL });
    if (s?.kind !== 'keyless') throw new Error('not keyless');
    expect(Object.keys(s).sort()).toEqual(['fulcioUrl', 'identityToken', 'kind', 'rekorUrl']);
    expect(await s.identityToken()).toBe('header.payload.sig');
    expect(PUBLIC_FULCIO_URL).toBe('https://fulcio.sigstore.dev');
    expect(PUBLIC_REKOR_URL).toBe('https://rekor.sigstore.dev');
  });

  it('every keyless variable is read: URLs (trailing slash dropped), entry type, trusted root (relative path), identity and issuer', async () => {
    const s = await signerFromEnv(
      {
        ...KEYLESS,
        AGORA_FULCIO_URL: 'http://127.0.0.1:5555/',
        AGORA_REKOR_URL: 'https://rekor.example.com',
        AGORA_TSA_URL: 'https://tsa.example.com/',
        AGORA_REKOR_ENTRY_TYPE: 'intoto',
        AGORA_TRUSTED_ROOT: 'trusted_root.json',
        AGORA_CERT_IDENTITY: 'https://github.com/o/r/.github/workflows/agora.yml@refs/heads/main',
        AGORA_CERT_ISSUER: 'https://token.actions.githubusercontent.com',
      },
      dir,
    );
    expect(s).toMatchObject({
      kind: 'keyless',
      fulcioUrl: 'http://127.0.0.1:5555',
      rekorUrl: 'https://rekor.example.com',
      tsaUrl: 'https://tsa.example.com',
      rekorEntryType: 'intoto',
      trustedRoot: ROOT_JSON,
      certificateIdentity: 'https://github.com/o/r/.github/workflows/agora.yml@refs/heads/main',
      certificateIssuer: 'https://token.actions.githubusercontent.com',
    });
  });

  it('bad keyless values are refused, naming the variable and the fix', async () => {
    const cases: Array<[NodeJS.ProcessEnv, string, RegExp, RegExp]> = [
      [{ AGORA_SIGNER: 'keyless' }, 'SIGSTORE_ID_TOKEN', /needs an OIDC identity token/, /id-token: write/],
      [{ AGORA_SIGNER: 'keyless', ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/t' }, 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', /needs both/, /id-token: write/],
      [{ AGORA_SIGNER: 'keyless', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'abc' }, 'ACTIONS_ID_TOKEN_REQUEST_URL', /needs both/, /id-token: write/],
      [
        { AGORA_SIGNER: 'keyless', ACTIONS_ID_TOKEN_REQUEST_URL: 'not a url', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'abc' },
        'ACTIONS_ID_TOKEN_REQUEST_URL',
        /"not a url" is not a URL/,
        /id-token/,
      ],
      [{ ...KEYLESS, AGORA_FULCIO_URL: 'fulcio' }, 'AGORA_FULCIO_URL', /"fulcio" is not a URL/, /AGORA_FULCIO_URL=https:\/\/fulcio\.sigstore\.dev/],
      [{ ...KEYLESS, AGORA_REKOR_URL: 'ftp://rekor.example.com' }, 'AGORA_REKOR_URL', /not an http\(s\) URL/, /AGORA_REKOR_URL=https:\/\/rekor\.sigstore\.dev/],
      [{ ...KEYLESS, AGORA_REKOR_ENTRY_TYPE: 'hashedrekord' }, 'AGORA_REKOR_ENTRY_TYPE', /"hashedrekord" is not a Rekor entry type/, /dsse/],
      [
        { ...KEYLESS, AGORA_CERT_IDENTITY: 'https://github.com/o/r/.github/workflows/a.yml@refs/heads/main' },
        'AGORA_CERT_ISSUER',
        /not set, but AGORA_CERT_IDENTITY is/,
        /token\.actions\.githubusercontent\.com/,
      ],
      [
        { ...KEYLESS, AGORA_CERT_ISSUER: 'https://token.actions.githubusercontent.com' },
        'AGORA_CERT_IDENTITY',
        /not set, but AGORA_CERT_ISSUER is/,
        /AGORA_CERT_IDENTITY=/,
      ],
      [{ ...KEYLESS, AGORA_TRUSTED_ROOT: 'absent.json' }, 'AGORA_TRUSTED_ROOT', /absent\.json: cannot be read \(no such file\)/, /trusted_root\.json/],
      [{ ...KEYLESS, AGORA_TRUSTED_ROOT: 'not-json.json' }, 'AGORA_TRUSTED_ROOT', /not JSON/, /never fetches/],
      [{ ...KEYLESS, AGORA_TRUSTED_ROOT: 'not-a-root.json' }, 'AGORA_TRUSTED_ROOT', /not a Sigstore trusted root/, /trusted_root\.json/],
    ];
    for (const [env, source, message, hint] of cases) {
      const e = await refusal(env);
      expect(e.source, JSON.stringify(env)).toBe(source);
      expect(e.message, source).toMatch(message);
      expect(e.hint ?? '', source).toMatch(hint);
    }
  });
});

describe("GitHub Actions' OIDC token", () => {
  let server: Server;
  let base: string;
  const seen: Array<{ path: string; query: URLSearchParams; authorization: string | undefined; method: string | undefined }> = [];
  let answer: (req: IncomingMessage) => { status: number; body: string } = () => ({
    status: 200,
    body: JSON.stringify({ value: `oidc-token-${seen.length}` }),
  });

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      seen.push({ path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, method: req.method });
      const a = answer(req);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const actionsEnv = () => ({
    AGORA_SIGNER: 'keyless',
    ACTIONS_ID_TOKEN_REQUEST_URL: `${base}/_apis/distributedtask/hubs/build/plans/p1/jobs/j1/idtoken?api-version=2.0`,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token-secret',
  });

  it('is fetched with the bearer token and audience sigstore, fresh for every signature, never when the signer is built', async () => {
    seen.length = 0;
    const s = await signerFromEnv(actionsEnv(), dir);
    if (s?.kind !== 'keyless') throw new Error('not keyless');
    expect(seen).toHaveLength(0); // nothing fetched until a signature is made
    expect(await s.identityToken()).toBe('oidc-token-1');
    expect(await s.identityToken()).toBe('oidc-token-2');
    expect(seen).toHaveLength(2);
    for (const r of seen) {
      expect(r.method).toBe('GET');
      expect(r.path).toBe('/_apis/distributedtask/hubs/build/plans/p1/jobs/j1/idtoken');
      expect(r.authorization?.toLowerCase()).toBe('bearer request-token-secret');
      expect(r.query.get('audience')).toBe('sigstore');
      expect(r.query.get('api-version')).toBe('2.0');
    }
  });

  it('SIGSTORE_ID_TOKEN wins over the Actions token endpoint (which is then never asked)', async () => {
    seen.length = 0;
    const s = await signerFromEnv({ ...actionsEnv(), SIGSTORE_ID_TOKEN: 'explicit' }, dir);
    if (s?.kind !== 'keyless') throw new Error('not keyless');
    expect(await s.identityToken()).toBe('explicit');
    expect(seen).toHaveLength(0);
  });

  it('a refusal, a non-JSON answer or one without a value is an error naming the endpoint, never the request token', async () => {
    const s = await signerFromEnv(actionsEnv(), dir);
    if (s?.kind !== 'keyless') throw new Error('not keyless');
    const cases: Array<[{ status: number; body: string }, RegExp]> = [
      [{ status: 403, body: '{"message":"no id-token permission"}' }, /answered 403/],
      [{ status: 200, body: '<html>' }, /not JSON/],
      [{ status: 200, body: '{"count":1}' }, /without a token/],
      [{ status: 200, body: '{"value":""}' }, /without a token/],
    ];
    try {
      for (const [reply, message] of cases) {
        answer = () => reply;
        const e = (await s.identityToken().then(
          () => null,
          (x: unknown) => x,
        )) as { code?: string; message: string; hint?: string } | null;
        expect(e, JSON.stringify(reply)).not.toBeNull();
        expect(e!.code).toBe('oidc-token-failed');
        expect(e!.message).toMatch(message);
        expect(e!.message).toContain(`${base}/_apis/distributedtask/hubs/build/plans/p1/jobs/j1/idtoken`);
        expect(`${e!.message} ${e!.hint}`).not.toContain('request-token-secret');
        expect(e!.hint).toMatch(/id-token: write/);
      }
    } finally {
      answer = () => ({ status: 200, body: JSON.stringify({ value: `oidc-token-${seen.length}` }) });
    }
  });

  it('an unreachable endpoint is an error naming it', async () => {
    const s = await signerFromEnv(
      { AGORA_SIGNER: 'keyless', ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/idtoken', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't' },
      dir,
    );
    if (s?.kind !== 'keyless') throw new Error('not keyless');
    await expect(s.identityToken()).rejects.toMatchObject({ code: 'oidc-token-failed', message: expect.stringContaining('http://127.0.0.1:9/idtoken failed') });
  });
});
