import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { prepareImageContext } from '../../scripts/image-context.js';
import { signWebhook, type WebhookDelivery } from '@agora/github-sim/webhooks';
import { startGitHubSim, type GitHubSim } from '@agora/github-sim';
import { eventually, scaled } from '../support/eventually.js';
import { connectEngine, NODE, tempDir } from './engine.js';

/**
 * The Dockerfile, built as docs/github-app.md says (`npm run image:context`, then a plain build) on the
 * local node-and-busybox base with no package manager, and run as the App against the simulator on the
 * host: it answers a signed webhook with a check run and refuses an unsigned or badly signed one. A
 * second image without git shows the app refusing to start, naming git.
 */
const docker = await connectEngine();
const SECRET = 'image-s3cret';
const TAG = `localhost/agora-app:test-${process.pid}`;
const NO_GIT_TAG = `localhost/agora-app:test-nogit-${process.pid}`;

async function build(d: Docker, context: string, tag: string, buildargs: Record<string, string>): Promise<void> {
  const stream = await d.buildImage({ context, src: ['Dockerfile', 'app', 'cache', 'git-root'] }, { t: tag, buildargs, rm: true } as Docker.ImageBuildOptions);
  const events = await new Promise<Array<{ error?: string; stream?: string }>>((resolve, reject) =>
    d.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`building ${tag} failed: ${failed.error}\n${events.map((e) => e.stream ?? '').join('')}`);
}

async function logsOf(container: Docker.Container): Promise<string> {
  const raw = await container.logs({ stdout: true, stderr: true, follow: false });
  return Buffer.from(raw).toString('utf8');
}

describe.skipIf(!docker)('the App container image', () => {
  const d = docker as Docker;
  let sim: GitHubSim;
  let port: number;
  let appId: number;
  let privateKey: string;
  let app: Docker.Container;
  let contextDir: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  const checkOn = (sha: string) => [...sim.sim.state.checkRuns.values()].find((r) => r.headSha === sha && r.name === 'agora');
  const post = (headers: Record<string, string>, body: string) => fetch(`http://127.0.0.1:${port}/api/github/webhooks`, { method: 'POST', headers, body });
  /** A delivery's own headers, less the signatures (and what fetch sets itself). */
  const unsignedHeaders = (dl: WebhookDelivery) =>
    Object.fromEntries(Object.entries(dl.requestHeaders).filter(([k]) => !/^(x-hub-signature(-256)?|content-length|host)$/i.test(k)));

  beforeAll(async () => {
    const ctx = await tempDir('agora-image-');
    cleanups.push(ctx.cleanup);
    contextDir = await prepareImageContext({ out: ctx.dir, hostGit: true });
    await build(d, contextDir, TAG, { BASE: NODE, GIT: 'host' });
    cleanups.push(() => d.getImage(TAG).remove({ force: true }));

    sim = await startGitHubSim({ strict: true });
    cleanups.push(() => sim.close());
    port = await freePort();
    const gh = sim.createApp({ webhookUrl: `http://127.0.0.1:${port}/api/github/webhooks`, secret: SECRET });
    appId = gh.appId;
    privateKey = gh.privateKey;
    await sim.createRepo('octo', 'demo', { 'README.md': '# demo\n' });
    sim.installApp(appId, 'octo/demo');

    // Host networking: the container reaches the simulator on 127.0.0.1, and the simulator the app.
    app = await d.createContainer({
      Image: TAG,
      Env: [
        `APP_ID=${appId}`,
        `PRIVATE_KEY=${privateKey}`,
        `WEBHOOK_SECRET=${SECRET}`,
        `PORT=${port}`,
        'HOST=127.0.0.1',
        `AGORA_GITHUB_API_URL=${sim.apiUrl}`,
        'LOG_LEVEL=info',
      ],
      HostConfig: { NetworkMode: 'host' },
    });
    cleanups.push(() => app.remove({ force: true }));
    await app.start();
    await eventually(
      'the app in the container listening',
      async () => {
        const info = await app.inspect();
        if (!info.State.Running) throw new Error(`the container exited ${info.State.ExitCode}:\n${await logsOf(app)}`);
        return (await logsOf(app)).includes(`agora app: listening on port ${port}`);
      },
      { within: 60_000 },
    );
  }, scaled(300_000));

  afterAll(async () => {
    while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
  });

  it('runs as the numeric non-root user the Dockerfile names', async () => {
    const info = await app.inspect();
    expect(info.Config.User).toBe('10001:10001');
    // Podman's form of ps_args (Docker's would be `-o user,args`): the process itself runs as 10001.
    const top = await app.top({ ps_args: 'user,args' } as object);
    expect(top.Processes.find((p: string[]) => p.join(' ').includes('dist/cli/main.js app'))?.[0]).toBe('10001');
  });

  it('refuses an unsigned and a badly signed webhook, and acts on the same body signed', async () => {
    // A real push delivery of a broken plan, dropped by the simulator before it left: its body and signed headers.
    sim.setFaults({ dropWebhookRate: 1 });
    const sha = await sim.push('octo/demo', { branch: 'forged', files: { 'plan.json': '{"id": "x", "items": [' }, message: 'broken plan, never delivered' });
    await sim.settle();
    sim.setFaults({});
    const dropped = sim.webhookDeliveries.find((dl) => dl.dropped && dl.event === 'push' && dl.body.includes(sha));
    expect(dropped).toBeDefined();
    const headers = unsignedHeaders(dropped!);

    // Probot's webhook middleware answers 400 to both, saying which.
    const unsigned = await post(headers, dropped!.body);
    expect(unsigned.status).toBe(400);
    expect(await unsigned.text()).toContain('Required headers missing: x-hub-signature-256');
    const badlySigned = await post({ ...headers, 'x-hub-signature-256': signWebhook('not-the-secret', dropped!.body) }, dropped!.body);
    expect(badlySigned.status).toBe(400);
    expect(await badlySigned.text()).toContain('signature does not match');

    // A signed push the simulator delivers: the app fetches it with git and answers with a failed `agora` check.
    const delivered = await sim.push('octo/demo', { branch: 'p', files: { 'plan.json': '{"id": "y", "items": [' }, message: 'broken plan' });
    const run = await eventually(
      'the agora check on the delivered push',
      async () => {
        await sim.settle();
        return checkOn(delivered)?.status === 'completed' && checkOn(delivered);
      },
      { within: 60_000 },
    );
    expect(run).toMatchObject({ conclusion: 'failure' });
    expect(run.output.summary).toContain('is not a valid plan');
    expect(sim.webhookDeliveries.filter((dl) => dl.event === 'push' && !dl.dropped).every((dl) => dl.statusCode === 200)).toBe(true);
    // The refused body had no effect: the commit it names has no check, even after a later push was handled.
    expect(checkOn(sha)).toBeUndefined();

    // The very body refused above, now correctly signed, is acted on: the refusals were the signature's doing.
    const signed = await post({ ...headers, 'x-hub-signature-256': signWebhook(SECRET, dropped!.body) }, dropped!.body);
    expect(signed.status).toBe(200);
    const forgedRun = await eventually('the agora check on the redelivered push', () => checkOn(sha)?.status === 'completed' && checkOn(sha), {
      within: 60_000,
    });
    expect(forgedRun.output.summary).toContain('is not a valid plan');
  });

  it('stops cleanly on SIGTERM with node as PID 1 (no init in the image)', async () => {
    await app.stop({ t: 30 });
    const info = await app.inspect();
    expect(info.State.ExitCode).toBe(0);
    expect(await logsOf(app)).toContain('SIGTERM: stopping');
  });

  it(
    'refuses to start without git, naming it, when the image has none',
    async () => {
      // The same context: with GIT=base the stage that copies git-root/ is not used.
      await build(d, contextDir, NO_GIT_TAG, { BASE: NODE, GIT: 'base' });
      cleanups.push(() => d.getImage(NO_GIT_TAG).remove({ force: true }));
      const bare = await d.createContainer({
        Image: NO_GIT_TAG,
        Env: [
          `APP_ID=${appId}`,
          `PRIVATE_KEY=${privateKey}`,
          `WEBHOOK_SECRET=${SECRET}`,
          `PORT=${await freePort()}`,
          'HOST=127.0.0.1',
          `AGORA_GITHUB_API_URL=${sim.apiUrl}`,
        ],
        HostConfig: { NetworkMode: 'host' },
      });
      cleanups.push(() => bare.remove({ force: true }));
      await bare.start();
      const exited = await eventually(
        'the app without git to exit',
        async () => {
          const { State } = await bare.inspect();
          return !State.Running && State.Status !== 'created' && State;
        },
        { within: 30_000 },
      );
      const out = await logsOf(bare);
      expect(exited.ExitCode).not.toBe(0);
      expect(out).toContain('agora: agora app needs the git command');
      expect(out).toContain('hint: install git where the app runs');
      expect(out).not.toMatch(/\n\s+at /); // no stack
    },
    scaled(300_000),
  );
});
