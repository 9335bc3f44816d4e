import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStatement, AUDIT_FORMAT, AUDIT_FORMAT_V5, paramsDigest, type AuditBundle, type AuditReport } from '../../src/audit/bundle.js';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { generateSigningKey } from '../../src/audit/keys.js';
import { signWithKey } from '../../src/audit/signers.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';
import { clone, rechain } from './bundle-fixture.js';

/**
 * Format v5 records the run's parameters (`params: { values, digest }`). Each test tampers with what the
 * bundle says about them, keeps everything else consistent (the chain and the root rebuilt, the digest
 * recomputed where the forger would), and expects the check that covers it to fail with its own code.
 */

afterAll(cleanupTempDirs);

const SECRET = 'a-secret-value-long-enough';
let repo: string;
let store: LocalGitStore;
const refs = new RunRefs();
let withParams: AuditBundle;
let without: AuditBundle;

beforeAll(async () => {
  const plan = (id: string) =>
    JSON.stringify({ id, queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] });
  repo = makeRepo({ 'with.json': plan('with'), 'without.json': plan('without') });
  const ran = await agora(repo, ['orch', 'run', 'with.json', '--data', 'region=eu', '--data', 'shards=4', '--secret-data', `token=${SECRET}`]);
  expect(ran.code, ran.stderr).toBe(0);
  expect((await agora(repo, ['orch', 'run', 'without.json'])).code).toBe(0);
  store = await openLocalStore(repo);
  withParams = await buildAuditBundle(store, refs, 'with-1', { anchor: true, now: Date.now() });
  without = await buildAuditBundle(store, refs, 'without-1', { anchor: true, now: Date.now() });
}, 600_000);

const codes = (r: AuditReport) => r.failures.map((f) => `${f.code}: ${f.message}`);
const repoOpts = () => ({ store, refs });

describe('verify: run parameters (format v5 params)', () => {
  it('a run with parameters gets a v5 bundle recording them (the secret as ***) by digest, and it verifies with and without the repository', async () => {
    expect(withParams.format).toBe(AUDIT_FORMAT_V5);
    expect(withParams.params).toEqual({
      values: { region: 'eu', shards: '4', token: '***' },
      digest: paramsDigest({ region: 'eu', shards: '4', token: '***' }),
    });
    expect(JSON.stringify(withParams)).not.toContain(SECRET);
    expect(withParams.report.failures).toEqual([]);
    expect((await verifyBundle(withParams, repoOpts())).intact).toBe(true);
    expect((await verifyBundle(withParams)).failures).toEqual([]);
    // A run without parameters stays what it was: v2, no params member.
    expect(without.format).toBe(AUDIT_FORMAT);
    expect('params' in without).toBe(false);
    expect((await verifyBundle(without, repoOpts())).intact).toBe(true);
  });

  it('a digest that is not the one of the values fails params-digest, with or without the repository', async () => {
    const b = clone(withParams);
    b.params!.digest = 'f'.repeat(64);
    const expected = `params-digest: params.digest is ${'f'.repeat(64)}, but sha256 of the canonical JSON of params.values is ${withParams.params!.digest}`;
    expect(codes(await verifyBundle(b))).toEqual([expected]);
    expect(codes(await verifyBundle(b, repoOpts()))).toEqual([expected]);
  });

  it('values changed with their digest recomputed (and the chain and root rebuilt) fail params-mismatch against the repository', async () => {
    const b = rechain(clone(withParams));
    b.params!.values.region = 'us';
    b.params!.digest = paramsDigest(b.params!.values);
    // The bundle alone is consistent: only the repository (or a signature over the original) tells.
    expect(codes(await verifyBundle(b))).toEqual([]);
    const r = codes(await verifyBundle(b, repoOpts()));
    expect(r).toHaveLength(1);
    expect(r[0]).toMatch(/^params-mismatch: the bundle's params differ from those the run's first state commit [0-9a-f]{40} records \(keys region\)$/);
    // The secret's placeholder replaced by a value is a change too.
    const s = clone(withParams);
    s.params!.values.token = 'guessed';
    s.params!.digest = paramsDigest(s.params!.values);
    expect(codes(await verifyBundle(s, repoOpts()))[0]).toMatch(/^params-mismatch: .*\(keys token\)$/);
  });

  it('params removed from the bundle of a run that has them fail params-mismatch, in v5 or passed off as v2', async () => {
    const b = clone(withParams);
    delete b.params;
    const r = codes(await verifyBundle(b, repoOpts()));
    expect(r).toHaveLength(1);
    expect(r[0]).toMatch(/^params-mismatch: the run's first state commit [0-9a-f]{40} records params \(region, shards, token\), but the bundle has none$/);
    b.format = AUDIT_FORMAT;
    expect(codes(await verifyBundle(b, repoOpts()))).toEqual(r);
  });

  it('params added to the bundle of a run without any fail params-mismatch; params in a bundle before v5 fail params-digest', async () => {
    const values = { region: 'eu' };
    const added = { ...clone(without), format: AUDIT_FORMAT_V5, params: { values, digest: paramsDigest(values) } } as AuditBundle;
    const r = codes(await verifyBundle(added, repoOpts()));
    expect(r).toHaveLength(1);
    expect(r[0]).toMatch(/^params-mismatch: the bundle records params, but the run's first state commit [0-9a-f]{40} has none$/);
    const old: AuditBundle = { ...added, format: AUDIT_FORMAT };
    expect(codes(await verifyBundle(old))).toEqual([
      'params-digest: the bundle is agora.audit/v2, which records no params (params are v5): it was edited, or made by something other than Agora',
    ]);
  });

  it('a signature covers the parameters: values changed consistently in a signed bundle fail signature without the repository', async () => {
    const key = generateSigningKey();
    const signed = await signWithKey(auditStatement(withParams), { privateKeyPem: key.privateKeyPem });
    const pinned = { sigstoreBundle: signed.bundle, publicKeyPem: key.publicKeyPem };
    expect(codes(await verifyBundle(withParams, pinned))).toEqual([]);
    const b = clone(withParams);
    b.params!.values.region = 'us';
    b.params!.digest = paramsDigest(b.params!.values);
    const r = await verifyBundle(b, pinned);
    expect(r.intact).toBe(false);
    expect(r.failures.map((f) => f.code)).toEqual(['signature']);
  });
});
