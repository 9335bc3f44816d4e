import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAuditBundle } from '../../src/audit/verify/parse.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { agora, cleanupTempDirs, ROOT, tempDir } from '../support/repo.js';

/**
 * A bundle signed by the code that wrote format v1 (test/audit/fixtures/v1, never regenerated) still verifies:
 * `verify` keeps accepting every format version it has signed.
 */

const FIXTURE = join(ROOT, 'test/audit/fixtures/v1');
const BUNDLE = join(FIXTURE, 'fanout-1-1.audit.json');
const PUBLIC_KEY = join(FIXTURE, 'test-signing.pub.pem');

/** The fixture's repository, every ref included, restored from its git bundle. */
function restoreRepository(): string {
  const repo = tempDir('agora-v1-repo-');
  execFileSync('git', ['init', '--quiet', repo]);
  execFileSync('git', ['-C', repo, 'fetch', '--quiet', join(FIXTURE, 'repo.bundle'), 'refs/*:refs/*']);
  return repo;
}

afterAll(cleanupTempDirs);

describe('an agora.audit/v1 bundle signed before format v2', () => {
  it('verifies with its key and its repository', async () => {
    const bundle = parseAuditBundle(readFileSync(BUNDLE, 'utf8'), 'v1 fixture');
    expect(bundle.format).toBe('agora.audit/v1');
    const repo = restoreRepository();
    const report = await verifyBundle(bundle, {
      store: await openLocalStore(repo),
      refs: new RunRefs(),
      sigstoreBundle: readFileSync(join(FIXTURE, 'fanout-1-1.audit.sigstore.json'), 'utf8'),
      publicKeyPem: readFileSync(PUBLIC_KEY, 'utf8'),
      expect: { runId: 'fanout-1-1', planCommit: bundle.base },
    });
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({ intact: true, claim: 'tamper-detecting', guarantee: 'same-repository' });
  });

  it('verifies through the CLI with --key (exit 0), and a one-byte edit of it does not', async () => {
    const dir = tempDir('agora-v1-cli-');
    const r = await agora(dir, ['verify', BUNDLE, '--key', PUBLIC_KEY, '--run', 'fanout-1-1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('intact — tamper-detecting (signed)');

    // The same file with one item's finishedAt moved by a millisecond: the signed bundle digest no longer holds.
    const edited = join(dir, 'fanout-1-1.audit.json');
    writeFileSync(
      edited,
      readFileSync(BUNDLE, 'utf8').replace(/"finishedAt": (\d+)/, (_m, n: string) => `"finishedAt": ${Number(n) + 1}`),
    );
    copyFileSync(join(FIXTURE, 'fanout-1-1.audit.sigstore.json'), join(dir, 'fanout-1-1.audit.sigstore.json'));
    const bad = await agora(dir, ['verify', edited, '--key', PUBLIC_KEY]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toMatch(/FAIL (state|signature)/);
  });
});
