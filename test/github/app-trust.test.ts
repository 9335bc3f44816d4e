import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { examplePlan, checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { git } from '../support/repo.js';
import { findSecretInObjects } from '../support/secret-search.js';

/**
 * A plan is code, and the app's host holds the private key of every installation: a repository's plan
 * runs only where the operator allows it, with only the secrets the operator gave that repository.
 */

/** A command item, as a hostile plan would write it. */
function hostilePlan(id: string, inputs: Record<string, unknown>): string {
  return `${JSON.stringify({ id, queue: 'default', items: [{ id: 'x', executor: 'command', inputs, depends_on: [], resourceLocks: ['out.txt'] }] }, null, 2)}\n`;
}

const marker = join(tmpdir(), `agora-trust-${randomUUID()}`);
afterEach(async () => rm(marker, { force: true }));

describe('a repository the operator does not trust', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({ trusted: false });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('cannot run a command on the app host by asking for target local: the plan fails at intake, naming the fix, and nothing runs', async () => {
    const sha = await w.sim.push(w.fullName, {
      branch: 'evil',
      files: { 'plan.json': hostilePlan('evil', { run: `touch ${marker}; echo pwned > out.txt`, target: 'local' }) },
      message: 'Innocent change',
    });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']); // no item check: nothing was scheduled
    const agora = checks.get('agora')!;
    expect(agora).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(agora.output.summary).toContain('$.items[0].inputs.target');
    expect(agora.output.summary).toContain('AGORA_TRUSTED_REPOSITORY_IDS');
    expect(existsSync(marker)).toBe(false);
  });

  it('cannot run the example plan either: its subagents run on local, which is offered only to trusted repositories', async () => {
    const sha = await w.sim.push(w.fullName, { branch: 'fanout', files: { 'plan.json': await examplePlan() }, message: 'Fan out' });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']);
    expect(checks.get('agora')!.output.summary).toContain('runs on target "local"');
  });
});

describe('a trusted repository', () => {
  let w: AppWorld;
  const APP_SECRET = `app-only-${randomUUID()}`;
  const SECRET = 'configured-for-this-repository';
  beforeAll(async () => {
    process.env.AGORA_TEST_APP_SECRET = APP_SECRET; // what the app's own environment holds (its private key, say)
    w = await startAppWorld({ secrets: { API_TOKEN: SECRET } });
  }, scaled(60_000));
  afterAll(async () => {
    delete process.env.AGORA_TEST_APP_SECRET;
    await w?.close();
  });

  it("cannot name a variable of the app's own environment as a secret: refused at intake, and nothing runs", async () => {
    const sha = await w.sim.push(w.fullName, {
      branch: 'steal',
      files: { 'plan.json': hostilePlan('steal', { run: `touch ${marker}; echo "$AGORA_TEST_APP_SECRET" > out.txt`, secrets: ['AGORA_TEST_APP_SECRET'] }) },
      message: 'Read a secret',
    });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']);
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(checks.get('agora')!.output.summary).toContain('$.items[0].inputs.secrets[0]');
    expect(checks.get('agora')!.output.summary).toContain('AGORA_SECRETS_FILE');
    expect(existsSync(marker)).toBe(false);
  });

  it('fails an item that writes its secret into a file (base64), naming the secret; GitHub never gets the file', async () => {
    const run = `printf 'token=%s\\n' "$API_TOKEN" | base64 > out.txt`;
    const sha = await w.sim.push(w.fullName, {
      branch: 'keep',
      files: { 'plan.json': hostilePlan('keep', { run, secrets: ['API_TOKEN'] }) },
      message: 'Keep a secret',
    });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / x')).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(checks.get('agora / x')!.output.summary).toContain('wrote the value of secret API_TOKEN into its workspace');
    const gh = w.sim.repoDir(w.fullName);
    expect(git(gh, 'for-each-ref', 'refs/agora/patches/')).toBe('');
    expect(findSecretInObjects(gh, 'all', SECRET)).toEqual([]);
  });

  it('gets the secrets the operator configured for it, and nothing of the app environment', async () => {
    const run = 'test "$API_TOKEN" = configured-for-this-repository && test -z "$AGORA_TEST_APP_SECRET" && echo ok > out.txt';
    const sha = await w.sim.push(w.fullName, {
      branch: 'use',
      files: { 'plan.json': hostilePlan('use', { run, secrets: ['API_TOKEN'] }) },
      message: 'Use a secret',
    });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / x')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
  });
});
