import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OrchConfig } from '../../src/config/types.js';
import type { Plan } from '../../src/plan/schema.js';
import { offersLocal, policyFromEnv, policyProblems, secretsFor } from '../../src/github/worker-policy.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function file(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agora-policy-'));
  dirs.push(dir);
  await writeFile(join(dir, 'secrets.json'), text);
  return join(dir, 'secrets.json');
}

describe('the worker policy from the app environment', () => {
  it('trusts nobody and gives no secrets unless told', async () => {
    const policy = await policyFromEnv({});
    expect(offersLocal(policy, 42)).toBe(false);
    expect(offersLocal(policy, undefined)).toBe(false);
    expect(secretsFor(policy, 42)).toEqual({});
  });

  it('trusts the listed repository ids only, and gives each repository its own secrets', async () => {
    const secrets = await file(JSON.stringify({ 42: { API_TOKEN: 'token-for-42' }, 7: { OTHER: 'token-for-7' } }));
    const policy = await policyFromEnv({ AGORA_TRUSTED_REPOSITORY_IDS: '42, 1001', AGORA_SECRETS_FILE: secrets });
    expect(offersLocal(policy, 42)).toBe(true);
    expect(offersLocal(policy, 7)).toBe(false);
    expect(secretsFor(policy, 42)).toEqual({ API_TOKEN: 'token-for-42' });
    expect(secretsFor(policy, 1001)).toEqual({});
  });

  it('refuses a name where an id belongs, an unreadable file, a bad shape and a short secret, naming each', async () => {
    await expect(policyFromEnv({ AGORA_TRUSTED_REPOSITORY_IDS: 'octo/demo' })).rejects.toMatchObject({
      code: 'invalid-environment',
      message: expect.stringContaining('"octo/demo" is not a repository id'),
      hint: expect.stringContaining('names can be transferred'),
    });
    await expect(policyFromEnv({ AGORA_SECRETS_FILE: await file('{ nope') })).rejects.toMatchObject({
      message: expect.stringContaining('cannot be read as JSON'),
    });
    const bad = await file(JSON.stringify({ 'octo/demo': { A: 'long-enough-value' }, 5: ['x'], 6: { SHORT: 'abc' } }));
    const e = (await policyFromEnv({ AGORA_SECRETS_FILE: bad }).then(
      () => new Error('accepted'),
      (x: unknown) => x,
    )) as Error;
    expect(e.message).toContain('$.octo/demo: is not a repository id');
    expect(e.message).toContain('$.5: must be an object of secret names to string values');
    expect(e.message).toContain('$.6.SHORT: is shorter than 8 characters');
    expect(e.message).not.toContain('abc');
  });
});

describe('the policy at intake: secrets', () => {
  const config = {
    queues: {},
    defaultConcurrency: 1,
    subagents: {},
    shapes: {},
    refNamespace: 'refs/agora/',
    commandTarget: 'docker',
    configDir: '/c',
  } as OrchConfig;
  const plan = (target: string): Plan =>
    ({
      id: 'p',
      queue: 'default',
      items: [{ id: 'a', executor: 'command', inputs: { run: 'x', target, secrets: ['API_TOKEN'] }, depends_on: [], resourceLocks: [] }],
    }) as unknown as Plan;

  it('asks the operator for a secret on docker, not on actions (the repository Actions secrets hold it)', () => {
    const offered = new Set(['docker', 'actions']);
    expect(policyProblems(plan('docker'), config, offered, {})).toEqual([
      expect.objectContaining({ path: '$.items[0].inputs.secrets[0]', message: expect.stringContaining('needs secret "API_TOKEN"') }),
    ]);
    expect(policyProblems(plan('docker'), config, offered, { API_TOKEN: 'v'.repeat(12) })).toEqual([]);
    expect(policyProblems(plan('actions'), config, offered, {})).toEqual([]);
  });

  it('tells a `mode: run` user what the Action offers, not to ask an App operator they do not have', () => {
    const problems = policyProblems(plan('local'), config, new Set(['docker']), {}, 'action-run');
    expect(problems.map((p) => p.path)).toEqual(['$.items[0].inputs.target', '$.items[0].inputs.secrets[0]']);
    for (const p of problems) {
      expect(p.message).toContain('`mode: run` of the Agora Action');
      expect(p.message).not.toMatch(/operator|AGORA_/);
    }
    // The App's own refusals still name the operator's settings.
    expect(
      policyProblems(plan('local'), config, new Set(['docker']), {})
        .map((p) => p.message)
        .join('\n'),
    ).toMatch(/AGORA_TRUSTED_REPOSITORY_IDS[\s\S]*AGORA_SECRETS_FILE/);
  });

  it("refuses an agent's API key as an item's secret, though the repository's secrets hold it for the agent", () => {
    const withAgent = { ...config, subagents: { writer: { agent: { prompt: 'p.md', model: 'm', apiKeyEnv: 'API_TOKEN' } } } } as unknown as OrchConfig;
    expect(policyProblems(plan('docker'), withAgent, new Set(['docker']), { API_TOKEN: 'v'.repeat(12) })).toEqual([
      expect.objectContaining({ path: '$.items[0].inputs.secrets[0]', message: expect.stringContaining('the API key of an agent') }),
    ]);
  });
});
