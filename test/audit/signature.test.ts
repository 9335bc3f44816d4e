import { createHash } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/audit/keys.js';
import { signKeyless, signWithKey } from '../../src/audit/signers.js';
import { buildStatement, statementDigest, statementPayload, type InTotoStatement } from '../../src/audit/statement.js';
import { trustMaterialFromRoot } from '../../src/audit/trust.js';
import { exactIdentityPattern, verifySigstoreBundle } from '../../src/audit/verify-signature.js';
import { signBytes } from './sign-bytes.js';
import { startSigstoreMock, type SigstoreMock } from './sigstore-mock.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function statementOver(root: string): InTotoStatement {
  return buildStatement({
    bundleSha256: sha('bundle'),
    runId: 'run-1',
    root,
    planDigest: `sha256:${sha('plan')}`,
    entries: 12,
    patches: [
      { itemId: 'b', commit: 'b'.repeat(40) },
      { itemId: 'a', commit: 'a'.repeat(40) },
    ],
  });
}

const STATEMENT = statementOver(sha('root'));
const OTHER = statementOver(sha('another root'));
const IDENTITY = 'https://github.com/acme/widgets/.github/workflows/agora.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

function expectFailure(result: Awaited<ReturnType<typeof verifySigstoreBundle>>, reason: RegExp): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.code).toBe('signature');
  expect(result.reason).toMatch(reason);
}

describe('signing with a local key', () => {
  const key = generateSigningKey();
  const stranger = generateSigningKey();

  it('produces a v0.3 DSSE bundle that verifies with the right public key and yields the statement', async () => {
    const { bundle, record } = await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem });
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.dsseEnvelope?.payloadType).toBe('application/vnd.in-toto+json');
    expect(record).toMatchObject({ kind: 'key', claim: 'tamper-detecting', guarantee: 'signed' });
    expect(record.keyId).toMatch(/^[0-9a-f]{64}$/);

    const result = await verifySigstoreBundle(JSON.stringify(bundle), { publicKeyPem: key.publicKeyPem, expected: { statement: STATEMENT } });
    expect(result).toEqual({
      ok: true,
      statement: STATEMENT,
      signer: { kind: 'key', keyId: record.keyId, claim: 'tamper-detecting', guarantee: 'signed' },
    });
    // The digest form of the expectation works the same.
    const byDigest = await verifySigstoreBundle(bundle, { publicKeyPem: key.publicKeyPem, expected: { statementSha256: statementDigest(STATEMENT) } });
    expect(byDigest.ok).toBe(true);
  });

  it('fails with another public key (an untrusted signer)', async () => {
    const { bundle } = await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem });
    const result = await verifySigstoreBundle(bundle, { publicKeyPem: stranger.publicKeyPem, expected: { statement: STATEMENT } });
    expectFailure(result, /SIGNATURE_ERROR|signature verification failed/);
  });

  it('fails when a validly signed bundle over another root is swapped in', async () => {
    const { bundle } = await signWithKey(OTHER, { privateKeyPem: key.privateKeyPem });
    // Cryptographically fine...
    const asItself = await verifySigstoreBundle(bundle, { publicKeyPem: key.publicKeyPem, expected: { statement: OTHER } });
    expect(asItself.ok).toBe(true);
    // ...but not the statement this run expects.
    const result = await verifySigstoreBundle(bundle, { publicKeyPem: key.publicKeyPem, expected: { statement: STATEMENT } });
    expectFailure(result, new RegExp(`Merkle root ${OTHER.predicate.merkleRoot}, expected ${STATEMENT.predicate.merkleRoot}`));
  });

  it('fails when the payload is replaced without re-signing', async () => {
    const { bundle } = await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem });
    const forged = structuredClone(bundle);
    (forged.dsseEnvelope as { payload: string }).payload = Buffer.from(JSON.stringify(OTHER)).toString('base64');
    const result = await verifySigstoreBundle(forged, { publicKeyPem: key.publicKeyPem, expected: { statement: OTHER } });
    expectFailure(result, /signature verification failed/);
  });

  it('fails when the expected statement differs only in a patch subject', async () => {
    const { bundle } = await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem });
    const expected = structuredClone(STATEMENT);
    expected.subject[1] = { name: 'patch:a', digest: { gitCommit: 'c'.repeat(40) } };
    const result = await verifySigstoreBundle(bundle, { publicKeyPem: key.publicKeyPem, expected: { statement: expected } });
    expectFailure(result, /other subjects/);
  });

  it('compares the signed payload byte for byte with the canonical statement: no second meaning verifies', async () => {
    const canonical = statementPayload(STATEMENT).toString('utf8');
    const byStatement = { publicKeyPem: key.publicKeyPem, expected: { statement: STATEMENT } };
    const byDigest = { publicKeyPem: key.publicKeyPem, expected: { statementSha256: statementDigest(STATEMENT) } };
    // The canonical bytes, signed by the same means, verify: the helper is not what fails below.
    expect((await verifySigstoreBundle(await signBytes(canonical, key.privateKeyPem), byStatement)).ok).toBe(true);

    const variants: Array<[string, string, RegExp]> = [
      [
        'an extra predicate field',
        canonical.replace('"predicate":{', '"predicate":{"approvedBy":"nobody",'),
        /the signed payload has \$\.predicate\.approvedBy, which the statement of this bundle does not/,
      ],
      [
        'an extra top-level field',
        canonical.replace('{"_type"', '{"_comment":"x","_type"'),
        /the signed payload has \$\._comment, which the statement of this bundle does not/,
      ],
      [
        'indented JSON (not canonical)',
        JSON.stringify(STATEMENT, null, 2),
        /the signed payload is this bundle's statement, but not its canonical bytes \(RFC 8785\): they differ first at byte 1/,
      ],
      ['reordered keys (not canonical)', JSON.stringify(STATEMENT), /not its canonical bytes \(RFC 8785\): they differ first at byte \d+/],
      [
        'a duplicate merkleRoot key (first another root, last the right one)',
        canonical.replace('"merkleRoot":', `"merkleRoot":"${OTHER.predicate.merkleRoot}","merkleRoot":`),
        /the signed payload repeats the key "merkleRoot" at \$\.predicate\.merkleRoot/,
      ],
      ['trailing whitespace', `${canonical}\n`, /not its canonical bytes \(RFC 8785\): they differ first at byte \d+ \(the payload is 1 byte longer\)/],
    ];
    for (const [what, payload, reason] of variants) {
      const bundle = await signBytes(payload, key.privateKeyPem);
      JSON.parse(payload); // each is valid JSON, and JSON.parse + canonicalisation yields the expected statement or a superset
      expectFailure(await verifySigstoreBundle(bundle, byStatement), reason);
      const r = await verifySigstoreBundle(bundle, byDigest);
      expect(r.ok, what).toBe(false);
    }
  });

  it('gives clear reasons for input that is not a Sigstore bundle', async () => {
    const opts = { publicKeyPem: key.publicKeyPem, expected: { statement: STATEMENT } };
    expectFailure(await verifySigstoreBundle('{ not json', opts), /not JSON/);
    expectFailure(await verifySigstoreBundle('[1,2]', opts), /not a JSON object/);
    expectFailure(
      await verifySigstoreBundle('{"mediaType": "a", "mediaType": "b"}', opts),
      /the signature bundle repeats the key "mediaType" at \$\.mediaType/,
    );
    expectFailure(await verifySigstoreBundle({ hello: 'world' }, opts), /not a Sigstore bundle v0\.3: mediaType is undefined/);
    expectFailure(await verifySigstoreBundle({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }, opts), /not a valid Sigstore bundle/);
    // A public key that is not one: a clear reason, not a throw.
    expectFailure(
      await verifySigstoreBundle((await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem })).bundle, { ...opts, publicKeyPem: 'garbage\n' }),
      /cannot read public key|is not PEM/,
    );
  });
});

describe('with @sigstore/mock services on 127.0.0.1', () => {
  let mock: SigstoreMock;
  let otherMock: SigstoreMock;

  beforeAll(async () => {
    mock = await startSigstoreMock();
    otherMock = await startSigstoreMock();
  });
  afterAll(async () => {
    await otherMock?.stop();
    await mock?.stop();
  });

  it('a key-signed bundle witnessed by Rekor and a TSA verifies against the trusted root', async () => {
    const key = generateSigningKey();
    const { bundle, record } = await signWithKey(STATEMENT, {
      privateKeyPem: key.privateKeyPem,
      rekorUrl: mock.rekorUrl,
      tsaUrl: mock.tsaUrl,
      rekorEntryType: 'intoto',
    });
    expect(bundle.verificationMaterial.tlogEntries).toHaveLength(1);
    expect(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
    expect(record).toMatchObject({ kind: 'key', claim: 'tamper-evident', guarantee: 'external-immutable', rekorUrl: mock.rekorUrl, tsa: mock.tsaUrl });
    expect(record.rekorLogIndex).toBe(Number(bundle.verificationMaterial.tlogEntries[0]?.logIndex));

    const ok = await verifySigstoreBundle(bundle, {
      publicKeyPem: key.publicKeyPem,
      trustedRoot: mock.trustedRoot,
      requireTransparencyLog: true,
      expected: { statement: STATEMENT },
    });
    expect(ok).toMatchObject({
      ok: true,
      signer: { kind: 'key', rekorLogIndex: record.rekorLogIndex, claim: 'tamper-evident', guarantee: 'external-immutable' },
    });

    // Witnesses nobody was told to trust are not silently ignored.
    expectFailure(await verifySigstoreBundle(bundle, { publicKeyPem: key.publicKeyPem, expected: { statement: STATEMENT } }), /no trusted root/);
    // Another log's root does not vouch for this log's entry.
    expectFailure(
      await verifySigstoreBundle(bundle, { publicKeyPem: key.publicKeyPem, trustedRoot: otherMock.trustedRoot, expected: { statement: STATEMENT } }),
      /TLOG|TIMESTAMP|tlog|timestamp/,
    );
    // Requiring a log entry rejects an offline signature.
    const offline = await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem });
    expectFailure(
      await verifySigstoreBundle(offline.bundle, {
        publicKeyPem: key.publicKeyPem,
        trustedRoot: mock.trustedRoot,
        requireTransparencyLog: true,
        expected: { statement: STATEMENT },
      }),
      /expected 1 tlog entries, got 0/,
    );
  });

  describe('keyless (Fulcio certificate + Rekor entry)', () => {
    let signed: Awaited<ReturnType<typeof signKeyless>>;

    beforeAll(async () => {
      signed = await signKeyless(STATEMENT, {
        identityToken: mock.identityToken({ sub: IDENTITY, iss: ISSUER }),
        fulcioUrl: mock.fulcioUrl,
        rekorUrl: mock.rekorUrl,
        tsaUrl: mock.tsaUrl,
        rekorEntryType: 'intoto',
      });
    });

    const verifyAs = (certificateIdentity: string, certificateIssuer: string, trustedRoot: unknown = mock.trustedRoot, bundle: unknown = signed.bundle) =>
      verifySigstoreBundle(bundle as object, { certificateIdentity, certificateIssuer, trustedRoot, expected: { statement: STATEMENT } });

    it('went over HTTP to the mock Fulcio, Rekor and TSA and records the identity', () => {
      expect(mock.requests.get('/api/v2/signingCert')).toBeGreaterThanOrEqual(1);
      expect(mock.requests.get('/api/v1/log/entries')).toBeGreaterThanOrEqual(1);
      expect(mock.requests.get('/api/v1/timestamp')).toBeGreaterThanOrEqual(1);
      expect(signed.bundle.verificationMaterial.certificate?.rawBytes).toBeTruthy();
      expect(signed.record).toMatchObject({
        kind: 'keyless',
        identity: IDENTITY,
        issuer: ISSUER,
        claim: 'tamper-evident',
        guarantee: 'external-immutable',
        rekorUrl: mock.rekorUrl,
      });
      expect(typeof signed.record.rekorLogIndex).toBe('number');
    });

    it('verifies with the exact identity and issuer', async () => {
      const result = await verifyAs(IDENTITY, ISSUER);
      expect(result).toEqual({
        ok: true,
        statement: STATEMENT,
        signer: {
          kind: 'keyless',
          identity: IDENTITY,
          issuer: ISSUER,
          rekorLogIndex: signed.record.rekorLogIndex,
          claim: 'tamper-evident',
          guarantee: 'external-immutable',
        },
      });
    });

    it('fails with a wrong identity or a wrong issuer', async () => {
      const evil = 'https://github.com/evil/widgets/.github/workflows/agora.yml@refs/heads/main';
      const wrongIdentity = await verifyAs(evil, ISSUER);
      expect(wrongIdentity).toEqual({
        ok: false,
        code: 'signature',
        reason: `certificate identity is ${JSON.stringify(IDENTITY)}, expected exactly ${JSON.stringify(evil)}`,
      });
      expectFailure(
        await verifyAs(IDENTITY, 'https://accounts.google.com'),
        /certificate issuer is "https:\/\/token\.actions\.githubusercontent\.com", expected exactly "https:\/\/accounts\.google\.com"/,
      );
      expectFailure(await verifyAs(IDENTITY, `${ISSUER}/`), /certificate issuer is/);
    });

    it('anchors and escapes the identity: prefixes and regex supersets of the real identity fail', async () => {
      const prefix = 'https://github.com/acme/widgets/';
      const superset = 'https://github.com/acme/widgets/.github/workflows/agora.yml@refs/heads/.*';
      // Without anchoring, @sigstore/verify itself would accept both (this is what the test guards against).
      const trust = trustMaterialFromRoot(mock.trustedRoot);
      const raw = new Verifier(trust);
      const entity = toSignedEntity(bundleFromJSON(signed.bundle));
      expect(() => raw.verify(entity, { subjectAlternativeName: prefix, extensions: { issuer: ISSUER } })).not.toThrow();
      expect(() => raw.verify(entity, { subjectAlternativeName: superset, extensions: { issuer: ISSUER } })).not.toThrow();
      // Ours refuses them.
      expectFailure(await verifyAs(prefix, ISSUER), /certificate identity/);
      expectFailure(await verifyAs(superset, ISSUER), /certificate identity/);
      expectFailure(await verifyAs(`${IDENTITY}-extra`, ISSUER), /certificate identity/);
      expectFailure(await verifyAs(IDENTITY.replace('.github', 'xgithub'), ISSUER), /certificate identity/);
      expect(exactIdentityPattern('a.b*c')).toBe('^a\\.b\\*c$');
    });

    it('fails against a trusted root that does not contain this CA and log', async () => {
      expectFailure(await verifyAs(IDENTITY, ISSUER, otherMock.trustedRoot), /Sigstore verification failed/);
    });

    it('fails when the bundle is over another statement', async () => {
      const other = await signKeyless(OTHER, {
        identityToken: mock.identityToken({ sub: IDENTITY, iss: ISSUER }),
        fulcioUrl: mock.fulcioUrl,
        rekorUrl: mock.rekorUrl,
        rekorEntryType: 'intoto',
      });
      // No TSA here: the Rekor entry's integrated time is the one timestamp, which is enough.
      expect((await verifyAs(IDENTITY, ISSUER, mock.trustedRoot, other.bundle)).ok).toBe(false);
      expectFailure(await verifyAs(IDENTITY, ISSUER, mock.trustedRoot, other.bundle), /Merkle root/);
    });

    it('a keyless bundle is refused when a public key is what the verifier trusts, and vice versa', async () => {
      const key = generateSigningKey();
      expectFailure(
        await verifySigstoreBundle(signed.bundle, { publicKeyPem: key.publicKeyPem, expected: { statement: STATEMENT } }),
        /signed with a certificate/,
      );
      const keySigned = await signWithKey(STATEMENT, { privateKeyPem: key.privateKeyPem });
      expectFailure(await verifyAs(IDENTITY, ISSUER, mock.trustedRoot, keySigned.bundle), /signed with a bare key/);
    });

    it('rejects a malformed trusted root with a reason naming it', async () => {
      expectFailure(await verifyAs(IDENTITY, ISSUER, { mediaType: 'nope' }), /trusted root/);
    });
  });

  it('verification is offline: it succeeds after every service is gone', async () => {
    const transient = await startSigstoreMock();
    const { bundle } = await signKeyless(STATEMENT, {
      identityToken: transient.identityToken({ sub: IDENTITY, iss: ISSUER }),
      fulcioUrl: transient.fulcioUrl,
      rekorUrl: transient.rekorUrl,
      tsaUrl: transient.tsaUrl,
      rekorEntryType: 'intoto',
    });
    const trustedRoot = JSON.parse(JSON.stringify(transient.trustedRoot)) as unknown; // as if read from a file
    await transient.stop();
    const result = await verifySigstoreBundle(JSON.stringify(bundle), {
      certificateIdentity: IDENTITY,
      certificateIssuer: ISSUER,
      trustedRoot,
      expected: { statement: STATEMENT },
    });
    expect(result.ok).toBe(true);
  });

  it('signing against an unreachable Fulcio is an AgoraError naming the service', async () => {
    await expect(
      signKeyless(STATEMENT, {
        identityToken: mock.identityToken({ sub: IDENTITY, iss: ISSUER }),
        fulcioUrl: 'http://127.0.0.1:9',
        rekorUrl: mock.rekorUrl,
        retries: 0,
        timeoutMs: 2_000,
      }),
    ).rejects.toMatchObject({ code: 'sign-failed', hint: expect.stringContaining('Fulcio http://127.0.0.1:9') });
  });
});
