import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStatement } from '../../src/audit/bundle.js';
import { parseAuditBundle } from '../../src/audit/verify/parse.js';
import { verifySigstoreBundle } from '../../src/audit/verify-signature.js';
import type { AppSigner } from '../../src/github/audit-release.js';
import { startSigstoreMock, type SigstoreMock } from '../audit/sigstore-mock.js';
import { checkRuns, runReleases, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { plainText } from '../../src/github/untrusted-markdown.js';

/**
 * The app with a keyless signer: Fulcio, Rekor and the TSA are @sigstore/mock's, served on 127.0.0.1 (real
 * HTTP, real certificates); the gate verifies the Sigstore bundle against the mock's trusted root and the
 * expected identity, offline.
 */

const IDENTITY = 'https://github.com/octo/demo/.github/workflows/agora.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

const plan = (id: string) =>
  `${JSON.stringify({ id, queue: 'default', items: [{ id: 'write', executor: 'command', inputs: { run: `echo ${id} > out-${id}.txt` }, depends_on: [], resourceLocks: [`out-${id}.txt`] }] }, null, 2)}\n`;

/** Pushes a one-item plan to `branch`, waits, and returns what a user sees: the release's assets (bytes) and the gate. */
async function runPlan(w: AppWorld, id: string) {
  const branch = `keyless-${id}`;
  const planSha = await w.sim.push(w.fullName, { branch, files: { 'plan.json': plan(id) }, message: `Plan ${id}` });
  await w.quiesce();
  const runId = `${id}-${planSha.slice(0, 12)}`;
  const releases = await runReleases(w, runId);
  expect(releases).toHaveLength(1);
  const { assets } = releases[0]!;
  const head = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: `heads/${branch}` })).data.object.sha;
  expect(head).not.toBe(planSha); // the patch commit was pushed on top of the plan commit
  const gate = (await checkRuns(w, head)).get('agora / audit');
  return { runId, assets, gate };
}

describe('the app signs keyless against a Sigstore (mock) and the gate verifies it', () => {
  let mock: SigstoreMock;
  let w: AppWorld;
  let tokens = 0;
  // The app's signer, as signerFromEnv builds it from AGORA_SIGNER=keyless and its variables. The tests change
  // what the gate expects between runs (as an operator would by reconfiguring the app).
  let signer: Extract<AppSigner, { kind: 'keyless' }>;

  beforeAll(async () => {
    mock = await startSigstoreMock();
    signer = {
      kind: 'keyless',
      fulcioUrl: mock.fulcioUrl,
      rekorUrl: mock.rekorUrl,
      tsaUrl: mock.tsaUrl,
      rekorEntryType: 'intoto', // the mock's Rekor stores entries verbatim (DESIGN §7)
      identityToken: async () => {
        tokens += 1;
        return mock.identityToken({ sub: IDENTITY, iss: ISSUER });
      },
      trustedRoot: JSON.parse(JSON.stringify(mock.trustedRoot)) as unknown, // as read from AGORA_TRUSTED_ROOT
      certificateIdentity: IDENTITY,
      certificateIssuer: ISSUER,
    };
    w = await startAppWorld({ sign: signer });
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await mock?.stop();
  });

  it(
    'the release has the bundle and its Sigstore bundle, which verifies against the trust material and identity; the gate is success',
    async () => {
      const certs = mock.requests.get('/api/v2/signingCert') ?? 0;
      const { runId, assets, gate } = await runPlan(w, 'good');
      expect([...assets.keys()].sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
      expect(tokens).toBe(1); // one fresh token for the one signature
      expect(mock.requests.get('/api/v2/signingCert')).toBe(certs + 1);

      const bundle = parseAuditBundle(assets.get(`${runId}.audit.json`)!, `${runId}.audit.json`);
      expect(bundle.signature).toMatchObject({ kind: 'keyless', identity: IDENTITY, issuer: ISSUER, rekorUrl: mock.rekorUrl, claim: 'tamper-evident' });
      expect(bundle.report).toMatchObject({ intact: true, claim: 'tamper-evident', guarantee: 'external-immutable', failures: [] });

      // Independently of the app: src/audit's verifier, the published bytes, the mock's trust material.
      const verified = await verifySigstoreBundle(assets.get(`${runId}.audit.sigstore.json`)!, {
        certificateIdentity: IDENTITY,
        certificateIssuer: ISSUER,
        trustedRoot: mock.trustedRoot,
        expected: { statement: auditStatement(bundle) },
      });
      expect(verified).toMatchObject({ ok: true, signer: { kind: 'keyless', identity: IDENTITY, issuer: ISSUER, claim: 'tamper-evident' } });
      // ...and it is bound to this run: another identity does not verify.
      const stranger = await verifySigstoreBundle(assets.get(`${runId}.audit.sigstore.json`)!, {
        certificateIdentity: IDENTITY.replace('octo/demo', 'octo/other'),
        certificateIssuer: ISSUER,
        trustedRoot: mock.trustedRoot,
        expected: { statement: auditStatement(bundle) },
      });
      expect(stranger.ok).toBe(false);

      expect(gate).toMatchObject({ status: 'completed', conclusion: 'success' });
      expect(gate!.output.summary).toContain(`Signed keyless as \`${IDENTITY}\` (issuer \`${ISSUER}\`)`);
      expect(gate!.output.summary).toContain("checked against the app's trusted root and expected identity");
      expect(gate!.output.summary).toContain('claim **tamper-evident** (external-immutable)');
      expect(w.errors).toEqual([]);
    },
    scaled(120_000),
  );

  it(
    'with another expected identity the gate is failure, naming the identity mismatch',
    async () => {
      const expected = 'https://github.com/octo/demo/.github/workflows/release.yml@refs/heads/main';
      signer.certificateIdentity = expected;
      try {
        const { runId, assets, gate } = await runPlan(w, 'wrongid');
        expect([...assets.keys()].sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
        expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure' });
        // Shown as text: the identities are URLs and hold an @, so GitHub must not link or mention them.
        expect(gate!.output.summary).toContain(
          plainText(`audit signature: certificate identity is ${JSON.stringify(IDENTITY)}, expected exactly ${JSON.stringify(expected)}`),
        );
        const bundle = parseAuditBundle(assets.get(`${runId}.audit.json`)!, `${runId}.audit.json`);
        expect(bundle.report.intact).toBe(false);
        expect(bundle.report.failures.map((f) => f.code)).toEqual(['signature']);
      } finally {
        signer.certificateIdentity = IDENTITY;
      }
    },
    scaled(120_000),
  );

  it(
    'without trust material the signature is published but not checked, and the gate says so and why',
    async () => {
      const trustedRoot = signer.trustedRoot;
      delete signer.trustedRoot;
      try {
        const { runId, assets, gate } = await runPlan(w, 'notrust');
        expect([...assets.keys()].sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
        expect(gate).toMatchObject({ status: 'completed', conclusion: 'success' });
        expect(gate!.output.summary).toContain('the signature was **not checked**: the app has no trusted root (AGORA_TRUSTED_ROOT).');
        // The claim rests on what was checked: the anchor in this repository.
        expect(gate!.output.summary).toContain('claim **tamper-detecting** (same-repository)');
        // The published Sigstore bundle still verifies for anyone who has the trust material.
        const bundle = parseAuditBundle(assets.get(`${runId}.audit.json`)!, `${runId}.audit.json`);
        const verified = await verifySigstoreBundle(assets.get(`${runId}.audit.sigstore.json`)!, {
          certificateIdentity: IDENTITY,
          certificateIssuer: ISSUER,
          trustedRoot: mock.trustedRoot,
          expected: { statement: auditStatement(bundle) },
        });
        expect(verified.ok).toBe(true);
      } finally {
        signer.trustedRoot = trustedRoot;
      }
    },
    scaled(120_000),
  );

  it(
    'a signer that cannot sign (Fulcio unreachable) still publishes the anchored bundle; the gate fails naming why',
    async () => {
      const fulcioUrl = signer.fulcioUrl;
      signer.fulcioUrl = 'http://127.0.0.1:9';
      try {
        const { runId, assets, gate } = await runPlan(w, 'nofulcio');
        expect([...assets.keys()]).toEqual([`${runId}.audit.json`, `${runId}.report.html`]);
        expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure' });
        expect(gate!.output.summary).toMatch(/the audit could not be signed: signing the audit statement failed/);
        expect(gate!.output.summary).toContain("Not signed: the app's keyless signer failed");
        const bundle = parseAuditBundle(assets.get(`${runId}.audit.json`)!, `${runId}.audit.json`);
        expect(bundle.signature ?? null).toBeNull();
        expect(bundle.report).toMatchObject({ intact: true, claim: 'tamper-detecting' });
      } finally {
        signer.fulcioUrl = fulcioUrl;
      }
    },
    scaled(120_000),
  );
});
