import { createHash, createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signKeyless } from '../../src/audit/signers.js';
import { buildStatement } from '../../src/audit/statement.js';
import { startSigstoreMock, type SigstoreMock } from '../audit/sigstore-mock.js';
import { eventually, scaled } from '../support/eventually.js';
import { startWorld, type World } from '@agora/github-sim/harness';
import { node24 } from '@agora/github-sim/actions/node24';

const o = { owner: 'octo', repo: 'demo' };
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** An action that requests an ID token the way @actions/core's getIDToken does and puts it in the step summary. */
const OIDC_ACTION = 'name: oidc\nruns:\n  using: node24\n  main: index.js\n';
const OIDC_JS = `const fs = require('node:fs');
(async () => {
  const res = await fetch(process.env.ACTIONS_ID_TOKEN_REQUEST_URL + '&audience=sigstore', { headers: { authorization: 'Bearer ' + process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN } });
  if (res.status !== 200) throw new Error('token request: ' + res.status);
  fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, (await res.json()).value);
})().catch((e) => { console.error(e); process.exit(1); });
`;

const OIDC_WORKFLOW = `name: sign
on: workflow_dispatch
permissions:
  id-token: write
  contents: read
jobs:
  sign:
    runs-on: [self-hosted, build]
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/oidc
`;

const NO_ID_WORKFLOW = `on: workflow_dispatch
permissions:
  contents: read
jobs:
  plain:
    runs-on: [self-hosted, build]
    steps:
      - run: test -z "$ACTIONS_ID_TOKEN_REQUEST_URL" && test -z "$ACTIONS_ID_TOKEN_REQUEST_TOKEN"
`;

const FRAGILE_WORKFLOW = `on: workflow_dispatch
jobs:
  fragile:
    runs-on: [self-hosted, fragile]
    steps:
      - run: |
          echo "pid=$$"
          echo waiting
          sleep 600
`;

describe('actions: the OIDC token endpoint, a dispatch failing after effect, a killed runner', () => {
  let w: World;
  let mock: SigstoreMock;
  beforeAll(async () => {
    await node24();
    mock = await startSigstoreMock();
    w = await startWorld({
      files: {
        'README.md': '# demo\n',
        '.github/actions/oidc/action.yml': OIDC_ACTION,
        '.github/actions/oidc/index.js': OIDC_JS,
        '.github/workflows/sign.yml': OIDC_WORKFLOW,
        '.github/workflows/plain.yml': NO_ID_WORKFLOW,
        '.github/workflows/fragile.yml': FRAGILE_WORKFLOW,
      },
    });
    w.sim.addRunner({ labels: ['build'] });
  }, scaled(300_000));
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w?.close();
    await mock?.stop();
  });

  const dispatch = (file: string) =>
    w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: file, ref: 'main' });
  const completedRun = (path: string) =>
    eventually(
      `the run of ${path} completes`,
      async () => {
        const runs = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o)).data.workflow_runs.filter((r) => r.path === path);
        return runs[0]?.status === 'completed' ? runs[0] : undefined;
      },
      { within: 120_000 },
    );
  const jobOf = (runId: number) => [...w.sim.sim.actions.jobs.values()].find((j) => j.runId === runId)!;

  it('a job with id-token: write gets a JWT with GitHub claims, signed by the key the issuer publishes, that the mock Fulcio certifies', async () => {
    await dispatch('sign.yml');
    const run = await completedRun('.github/workflows/sign.yml');
    expect(run.conclusion).toBe('success');
    const job = jobOf(Number(run.id));
    const jwt = job.summary.trim();
    const [h, p, s] = jwt.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string; kid: string };
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    // Discovery → JWKS → the key that verifies the signature.
    const issuer = String(claims.iss);
    const config = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    expect(config.issuer).toBe(issuer);
    const jwks = (await (await fetch(config.jwks_uri)).json()) as { keys: (JsonWebKey & { kid: string })[] };
    const jwk = jwks.keys.find((k) => k.kid === header.kid)!;
    expect(header.alg).toBe('RS256');
    expect(verify('RSA-SHA256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'))).toBe(true);
    expect(claims).toMatchObject({
      aud: 'sigstore',
      sub: 'repo:octo/demo:ref:refs/heads/main',
      repository: 'octo/demo',
      repository_owner: 'octo',
      ref: 'refs/heads/main',
      sha: run.head_sha,
      event_name: 'workflow_dispatch',
      run_id: String(run.id),
      workflow_ref: 'octo/demo/.github/workflows/sign.yml@refs/heads/main',
      job_workflow_ref: 'octo/demo/.github/workflows/sign.yml@refs/heads/main',
      runner_environment: 'self-hosted',
    });
    expect(Number(claims.exp)).toBeGreaterThan(Number(claims.iat));
    // The request token died with the job.
    const late = await fetch(`${issuer}/token?api-version=2.0&audience=sigstore`, { headers: { authorization: `Bearer ${job.idTokenRequest}` } });
    expect(late.status).toBe(401);
    // Keyless signing end to end: the mock Fulcio certifies the token's subject under the simulator's issuer.
    const statement = buildStatement({
      bundleSha256: sha('bundle'),
      runId: 'run-1',
      root: sha('root'),
      planDigest: `sha256:${sha('plan')}`,
      entries: 1,
      patches: [],
    });
    const signed = await signKeyless(statement, {
      identityToken: jwt,
      fulcioUrl: mock.fulcioUrl,
      rekorUrl: mock.rekorUrl,
      tsaUrl: mock.tsaUrl,
      rekorEntryType: 'intoto',
    });
    expect(signed.record).toMatchObject({ kind: 'keyless', identity: 'repo:octo/demo:ref:refs/heads/main', issuer });
  });

  it('a job without id-token: write has no token request variables', async () => {
    await dispatch('plain.yml');
    expect((await completedRun('.github/workflows/plain.yml')).conclusion).toBe('success');
  });

  it('a dispatch answered 502 after it took effect has started its run all the same', async () => {
    const before = [...w.sim.sim.actions.runs.values()].filter((r) => r.workflow.path === '.github/workflows/plain.yml').length;
    w.sim.setFaults({ dispatchErrorAfterEffectRate: 1 });
    try {
      await expect(dispatch('plain.yml')).rejects.toMatchObject({ status: 502 });
    } finally {
      w.sim.setFaults({});
    }
    const runs = [...w.sim.sim.actions.runs.values()].filter((r) => r.workflow.path === '.github/workflows/plain.yml');
    expect(runs).toHaveLength(before + 1);
    expect((await completedRun('.github/workflows/plain.yml')).conclusion).toBe('success');
  });

  it('a runner killed mid-job fails the job as GitHub reports a lost runner, and its step process is gone', async () => {
    const runner = w.sim.addRunner({ labels: ['fragile'], name: 'fragile-1' });
    await dispatch('fragile.yml');
    const job = await eventually('the fragile step printed waiting', () =>
      [...w.sim.sim.actions.jobs.values()].find((j) => j.key === 'fragile' && j.log.some((l) => l.endsWith(' waiting'))),
    );
    w.sim.killRunner(runner.id);
    const run = await completedRun('.github/workflows/fragile.yml');
    expect(run.conclusion).toBe('failure');
    expect(job.log.join('\n')).toContain('The self-hosted runner: fragile-1 lost communication with the server');
    expect(w.sim.sim.actions.runners.has(runner.id)).toBe(false);
    const pid = Number(/pid=(\d+)/.exec(job.log.join('\n'))![1]);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });
});
