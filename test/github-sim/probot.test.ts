import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Probot, createNodeMiddleware } from 'probot';
import { startGitHubSim, type GitHubSim } from '@agora/github-sim';

/** Probot's own HTTP middleware receives the simulator's webhooks and calls back through its Octokit. */
describe('a Probot app against the simulator', () => {
  let sim: GitHubSim;
  let server: Server;
  const seen: string[] = [];
  beforeAll(async () => {
    sim = await startGitHubSim({ strict: true });
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;
    const app = sim.createApp({ webhookUrl: url, secret: 'probot-secret' });
    const probot = new Probot({ appId: app.appId, privateKey: app.privateKey, secret: 'probot-secret', baseUrl: sim.apiUrl, logLevel: 'fatal' });
    const middleware = await createNodeMiddleware(
      (p) => {
        p.onAny(async (context) => {
          seen.push(`${context.name}.${String((context.payload as { action?: string }).action)}`);
        });
        p.on('pull_request.opened', async (context) => {
          await context.octokit.rest.checks.create(
            context.repo({
              name: 'agora',
              head_sha: context.payload.pull_request.head.sha,
              status: 'completed' as const,
              conclusion: 'failure' as const,
              actions: [{ label: 'Retry', identifier: 'retry', description: 'Run it again' }],
            }),
          );
        });
        p.on('check_run.requested_action', async (context) => {
          await context.octokit.rest.checks.update(
            context.repo({
              check_run_id: context.payload.check_run.id,
              conclusion: 'success' as const,
              output: { title: 'Retried', summary: `by ${context.payload.sender.login}` },
            }),
          );
        });
      },
      { probot },
    );
    server.on('request', (req, res) => {
      void middleware(req, res, () => {
        res.writeHead(404).end();
      });
    });
    await sim.createRepo('octo', 'demo', { 'plan.json': '{}' });
    sim.installApp(app.appId, 'octo/demo');
  });
  afterAll(async () => {
    await sim.close();
    server.closeAllConnections();
    server.close();
  });

  it('opens a PR → the app creates a check run → a button click → the app completes it', async () => {
    await sim.push('octo/demo', { branch: 'plan', files: { 'plan.json': '{"id":"r"}' }, message: 'plan' });
    await sim.openPullRequest('octo/demo', { head: 'plan', base: 'main', title: 'Run plan' });
    await sim.settle();
    const run = [...sim.sim.state.checkRuns.values()].find((r) => r.name === 'agora');
    expect(run).toMatchObject({ status: 'completed', conclusion: 'failure' });
    sim.clickCheckRunButton('octo/demo', run!.id, 'retry', 'octo');
    await sim.settle();
    expect(run).toMatchObject({ status: 'completed', conclusion: 'success', output: { summary: 'by octo' } });
    expect(seen).toEqual(
      expect.arrayContaining([
        'installation.created',
        'push.undefined',
        'pull_request.opened',
        'check_run.created',
        'check_run.requested_action',
        'check_run.completed',
      ]),
    );
    expect(sim.webhookDeliveries.every((d) => d.status === 'OK')).toBe(true);
    expect(sim.contractViolations).toEqual([]);
  });
});
