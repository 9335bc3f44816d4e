import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimsDir } from '../../src/github/cache-dir-lock.js';
import { startAppServer, type RunningApp } from '../../src/github/main.js';
import { startGitHubSim, type GitHubSim } from '@agora/github-sim';
import { freePort } from '../support/free-port.js';
import { scaled } from '../support/eventually.js';
import { agora, CLI, exited } from '../support/repo.js';

/**
 * `agora app` as a child process; `ended` resolves with its exit code, or 'listening' once it serves
 * (whichever comes first: an app that starts never exits by itself).
 */
function appProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, 'app'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const listening = new Promise<'listening'>((resolve) =>
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('agora app: listening on port')) resolve('listening');
    }),
  );
  return { child, ended: Promise.race([listening, exited(child)]), stderr: () => stderr };
}

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

  /** A real `agora app` process of a new App on the simulator, on `dir` as its AGORA_CACHE_DIR. */
  async function anotherApp(dir: string) {
    const gh = sim.createApp({ webhookUrl: 'http://127.0.0.1:9/unused', secret: 's3cret' });
    return appProcess({
      APP_ID: String(gh.appId),
      PRIVATE_KEY: gh.privateKey,
      WEBHOOK_SECRET: 's3cret',
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'fatal',
      AGORA_GITHUB_API_URL: sim.apiUrl,
      AGORA_CACHE_DIR: dir,
    });
  }

  it('refuses to start on the AGORA_CACHE_DIR another agora app holds, naming the dir, that process and the fix', async () => {
    // A second real process given the running app's cache dir: started, it would empty the first one's
    // workspaces (under its running workers) whenever both open a repository.
    const second = await anotherApp(cacheDir);
    const ended = await second.ended;
    if (ended === 'listening') second.child.kill('SIGKILL');
    expect(ended).toBe(1);
    expect(second.stderr()).toContain(`agora: the cache dir ${cacheDir} is in use by another agora app process (pid ${process.pid}, since `);
    expect(second.stderr()).toContain('hint: give each agora app process an AGORA_CACHE_DIR of its own (replicas on one host each need one)');
    expect(second.stderr()).not.toMatch(/\n\s+at /);
    // The first app's hold is all there is (the second withdrew its claim), and it still answers webhooks (the last test).
    expect(await readdir(claimsDir(cacheDir))).toHaveLength(1);
  });

  it('starts on the AGORA_CACHE_DIR of an agora app that was killed, removing its claim', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agora-app-main-killed-'));
    try {
      const first = await anotherApp(dir);
      expect(await first.ended).toBe('listening');
      const claims = await readdir(claimsDir(dir));
      expect(claims).toHaveLength(1);
      first.child.kill('SIGKILL');
      await exited(first.child); // and reaped: its pid is free
      // Its claim stays behind (nothing ran at its death); its process is provably gone.
      expect(await readdir(claimsDir(dir))).toEqual(claims);
      const { agoraFromEnv } = await import('../../src/github/app.js');
      const next = await agoraFromEnv({ AGORA_CACHE_DIR: dir });
      const now = await readdir(claimsDir(dir));
      expect(now).toHaveLength(1);
      expect(now).not.toEqual(claims);
      await next.close();
      expect(await readdir(claimsDir(dir))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad number in the environment, naming the variable and what it means', async () => {
    const { agoraFromEnv } = await import('../../src/github/app.js');
    // Its own cache dir: the running app's is held by it.
    const cacheDir = await mkdtemp(join(tmpdir(), 'agora-app-main-env-'));
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
    await rm(cacheDir, { recursive: true, force: true });
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
