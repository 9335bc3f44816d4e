import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditBundle } from '../../src/audit/bundle.js';
import { startSigstoreMock, type SigstoreMock } from '../audit/sigstore-mock.js';
import { finishedRun, type FinishedRun } from '../audit/bundle-fixture.js';
import { agora, cleanupTempDirs, tempDir } from '../support/repo.js';
import { scaled } from '../support/eventually.js';

/**
 * `agora orch audit --keyless` end to end through the CLI process: the child signs against @sigstore/mock's
 * Fulcio, Rekor and TSA on 127.0.0.1 (real HTTP, real certificates), then `agora verify` checks the result
 * offline with the exact identity and issuer and the mock's trusted root.
 */

const IDENTITY = 'https://github.com/acme/widgets/.github/workflows/agora.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

let mock: SigstoreMock;
let run: FinishedRun;
let dir: string;
let rootFile: string;

beforeAll(async () => {
  mock = await startSigstoreMock();
  run = await finishedRun();
  dir = tempDir('agora-keyless-cli-');
  rootFile = join(dir, 'trusted_root.json');
  writeFileSync(rootFile, JSON.stringify(mock.trustedRoot, null, 2));
}, scaled(120_000));
afterAll(async () => {
  await mock?.stop();
  cleanupTempDirs();
});

describe('agora orch audit --keyless, then agora verify', () => {
  let out: string;

  it(
    'signs through the mock Fulcio/Rekor/TSA and checks the new signature against the trusted root',
    async () => {
      out = join(dir, 'run.audit.json');
      const before = { cert: mock.requests.get('/api/v2/signingCert') ?? 0, log: mock.requests.get('/api/v1/log/entries') ?? 0 };
      const r = await agora(
        run.repo,
        [
          'orch',
          'audit',
          run.runId,
          '--keyless',
          '--fulcio-url',
          mock.fulcioUrl,
          '--rekor-url',
          mock.rekorUrl,
          '--tsa-url',
          mock.tsaUrl,
          '--rekor-entry-type',
          'intoto',
          '--trusted-root',
          rootFile,
          '--out',
          out,
        ],
        { SIGSTORE_ID_TOKEN: mock.identityToken({ sub: IDENTITY, iss: ISSUER }) },
      );
      expect(r.stderr).toContain('intact — tamper-evident (external-immutable)');
      expect(r.code).toBe(0);
      expect(mock.requests.get('/api/v2/signingCert')).toBe(before.cert + 1);
      expect(mock.requests.get('/api/v1/log/entries')).toBe(before.log + 1);
      const bundle = JSON.parse(readFileSync(out, 'utf8')) as AuditBundle;
      expect(bundle.signature).toMatchObject({ kind: 'keyless', identity: IDENTITY, issuer: ISSUER, rekorUrl: mock.rekorUrl, claim: 'tamper-evident' });
      expect(bundle.report).toMatchObject({ intact: true, claim: 'tamper-evident', guarantee: 'external-immutable' });
      const sigstore = JSON.parse(readFileSync(join(dir, 'run.audit.sigstore.json'), 'utf8')) as {
        verificationMaterial: { certificate?: unknown; tlogEntries: unknown[] };
      };
      expect(sigstore.verificationMaterial.certificate).toBeTruthy();
      expect(sigstore.verificationMaterial.tlogEntries).toHaveLength(1);
    },
    scaled(120_000),
  );

  it(
    'agora verify with the exact identity, issuer and trusted root: intact, tamper-evident; with the repository too',
    async () => {
      const trust = ['--certificate-identity', IDENTITY, '--certificate-oidc-issuer', ISSUER, '--trusted-root', rootFile];
      const alone = await agora(dir, ['verify', out, ...trust, '--json']);
      expect(alone.code).toBe(0);
      expect(JSON.parse(alone.stdout)).toMatchObject({ intact: true, claim: 'tamper-evident', guarantee: 'external-immutable', failures: [] });
      const withRepo = await agora(dir, ['verify', out, ...trust, '--repo', run.repo]);
      expect(withRepo.code).toBe(0);
      expect(withRepo.stdout).toMatch(/^run fanout-1-1 \(done\): intact — tamper-evident \(external-immutable\)/);
      expect(withRepo.stdout).toContain('signature: checked');
    },
    scaled(120_000),
  );

  it(
    'agora verify fails with another identity, another issuer, or without the trusted root',
    async () => {
      const wrongIdentity = await agora(dir, [
        'verify',
        out,
        '--certificate-identity',
        `${IDENTITY}x`,
        '--certificate-oidc-issuer',
        ISSUER,
        '--trusted-root',
        rootFile,
      ]);
      expect(wrongIdentity.code).not.toBe(0);
      expect(wrongIdentity.stdout).toContain(
        `FAIL signature: certificate identity is ${JSON.stringify(IDENTITY)}, expected exactly ${JSON.stringify(`${IDENTITY}x`)}`,
      );
      const wrongIssuer = await agora(dir, [
        'verify',
        out,
        '--certificate-identity',
        IDENTITY,
        '--certificate-oidc-issuer',
        'https://accounts.example.com',
        '--trusted-root',
        rootFile,
      ]);
      expect(wrongIssuer.code).not.toBe(0);
      expect(wrongIssuer.stdout).toMatch(/FAIL signature: certificate issuer is/);
      const noRoot = await agora(dir, ['verify', out, '--certificate-identity', IDENTITY, '--certificate-oidc-issuer', ISSUER]);
      expect(noRoot.code).not.toBe(0);
      expect(noRoot.stderr).toMatch(/--trusted-root/);
    },
    scaled(120_000),
  );

  it(
    'an unknown --rekor-entry-type is refused before anything is signed or written',
    async () => {
      const signed = mock.requests.get('/api/v2/signingCert') ?? 0;
      const r = await agora(
        run.repo,
        [
          'orch',
          'audit',
          run.runId,
          '--keyless',
          '--fulcio-url',
          mock.fulcioUrl,
          '--rekor-url',
          mock.rekorUrl,
          '--rekor-entry-type',
          'hashedrekord',
          '--out',
          join(dir, 'never.json'),
        ],
        {
          SIGSTORE_ID_TOKEN: mock.identityToken({ sub: IDENTITY, iss: ISSUER }),
        },
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('--rekor-entry-type "hashedrekord" is not an entry type');
      expect(mock.requests.get('/api/v2/signingCert') ?? 0).toBe(signed);
    },
    scaled(60_000),
  );
});
