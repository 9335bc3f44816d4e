import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAppServer, type RunningApp } from '../../src/github/main.js';
import { startGitHubSim, type GitHubSim } from '@agora/github-sim';
import { freePort } from '../support/free-port.js';
import { scaled } from '../support/eventually.js';
import { agora } from '../support/repo.js';

/** `agora app` as started from the environment: Probot's own Server receiving the simulator's webhooks. */
describe('agora app (the server entry point)', () => {
  let sim: GitHubSim;
  let app: RunningApp;
  let cacheDir: string;
  beforeAll(async () => {
    sim = await startGitHubSim({ strict: true });
    const port = await freePort();
    const gh = sim.createApp({ webhookUrl: `http://127.0.0.1:${port}/api/github/webhooks`, secret: 's3cret' });
    cacheDir = await mkdtemp(join(tmpdir(), 'agora-app-main-'));
    app = await startAppServer({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      APP_ID: String(gh.appId),
      PRIVATE_KEY: gh.privateKey,
      WEBHOOK_SECRET: 's3cret',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'fatal',
      AGORA_GITHUB_API_URL: sim.apiUrl,
      AGORA_CACHE_DIR: cacheDir,
    });
    await sim.createRepo('octo', 'demo', { 'README.md': '# demo\n' });
    sim.installApp(gh.appId, 'octo/demo');
  }, scaled(60_000));
  afterAll(async () => {
    await app?.stop();
    await sim?.close();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('refuses to start without the app identity, naming what is missing', async () => {
    await expect(startAppServer({ APP_ID: '1' })).rejects.toThrow(/WEBHOOK_SECRET, PRIVATE_KEY \(or PRIVATE_KEY_PATH\)/);
  });

  it('refuses to start without git, naming it and PATH, without a stack', async () => {
    // The CLI as a child (node by its own path), its PATH holding no git: the mirror could never fetch.
    const gh = sim.createApp({ webhookUrl: 'http://127.0.0.1:9/unused', secret: 's3cret' });
    const env = {
      PATH: cacheDir,
      APP_ID: String(gh.appId),
      PRIVATE_KEY: gh.privateKey,
      WEBHOOK_SECRET: 's3cret',
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      AGORA_GITHUB_API_URL: sim.apiUrl,
      AGORA_CACHE_DIR: cacheDir,
    };
    const res = await agora(cacheDir, ['app'], env, scaled(20_000)); // an app that started anyway would never exit
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`agora: agora app needs the git command, and none runs from PATH=${cacheDir}`);
    expect(res.stderr).toContain('hint: install git where the app runs');
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses a bad number in the environment, naming the variable and what it means', async () => {
    const { agoraFromEnv } = await import('../../src/github/app.js');
    await expect(agoraFromEnv({ AGORA_MAX_ITEMS: 'lots', AGORA_CACHE_DIR: cacheDir })).rejects.toMatchObject({
      source: 'AGORA_MAX_ITEMS',
      message: expect.stringContaining('"lots" is not a number ≥ 1'),
      hint: expect.stringContaining('the most items a plan may have'),
    });
    await expect(agoraFromEnv({ AGORA_LEASE_SECONDS: '2', AGORA_CACHE_DIR: cacheDir })).rejects.toMatchObject({ source: 'AGORA_LEASE_SECONDS' });
    await expect(agoraFromEnv({ AGORA_ITEM_CHECKS: '-1', AGORA_CACHE_DIR: cacheDir })).rejects.toMatchObject({
      source: 'AGORA_ITEM_CHECKS',
      hint: expect.stringContaining('larger plans show failures only'),
    });
    const agora = await agoraFromEnv({ AGORA_LEASE_SECONDS: '30', AGORA_MAX_ITEMS: '50', AGORA_ITEM_CHECKS: '100', AGORA_CACHE_DIR: cacheDir });
    await agora.close();
  });

  it('receives a signed push and answers with a check run', async () => {
    const sha = await sim.push('octo/demo', { branch: 'p', files: { 'plan.json': '{"id": "x", "items": [' }, message: 'broken plan' });
    for (let i = 0; i < 3; i += 1) {
      await sim.settle();
      await app.agora.idle();
    }
    const run = [...sim.sim.state.checkRuns.values()].find((r) => r.headSha === sha && r.name === 'agora');
    expect(run).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(run!.output.summary).toContain('is not a valid plan');
    expect(sim.webhookDeliveries.filter((d) => d.event === 'push').every((d) => d.statusCode === 200)).toBe(true);
  });
});
