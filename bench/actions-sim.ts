/**
 * bench/actions-sim: the simulator's Actions runtime.
 *  1. time from a `workflow_dispatch` request to the first step of its job running (a JS action of
 *     another simulated repository, under Node 24, that prints Date.now() first thing), beside spawning the same Node 24 process directly;
 *  2. the requests the runtime itself makes per job (the action makes none), REST and git smart-HTTP apart.
 * Prints one JSON line per result.  Run: npx tsx bench/actions-sim.ts
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { startGitHubSim } from '@agora/github-sim';
import { node24 } from '@agora/github-sim/actions/node24';
import { median, report } from './lib.js';

const execFileP = promisify(execFile);
const RUNS = 5;
const STAMP = "process.stdout.write('at=' + Date.now() + '\\n');\n";
const WORKFLOW = `on: workflow_dispatch
jobs:
  first:
    runs-on: [self-hosted, bench]
    steps:
      - uses: octo/tools/stamp@main
      - uses: actions/checkout@v4
`;

async function main(): Promise<void> {
  const node = await node24();
  const dir = await mkdtemp(join(tmpdir(), 'bench-actions-'));
  const script = join(dir, 'stamp.js');
  await writeFile(script, STAMP);
  const direct: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = Date.now();
    const { stdout } = await execFileP(node, [script]);
    direct.push(Number(/at=(\d+)/.exec(stdout)![1]) - t0);
  }
  const sim = await startGitHubSim({ strict: true });
  const app = sim.createApp({ webhookUrl: 'http://127.0.0.1:9/none', secret: 's' });
  await sim.createRepo('octo', 'tools', { 'stamp/action.yml': 'name: stamp\nruns:\n  using: node24\n  main: index.js\n', 'stamp/index.js': STAMP });
  await sim.createRepo('octo', 'bench', { '.github/workflows/b.yml': WORKFLOW, 'README.md': 'b' });
  const installationId = sim.installApp(app.appId, 'octo/bench');
  sim.addRunner({ labels: ['bench'] });
  const octokit = new Octokit({ baseUrl: sim.apiUrl, authStrategy: createAppAuth, auth: { appId: app.appId, privateKey: app.privateKey, installationId } });
  const viaSim: number[] = [];
  const perJob: number[] = [];
  const perJobRest: number[] = [];
  const perJobGit: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const before = sim.requests.length;
      const t0 = Date.now();
      await octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
        owner: 'octo',
        repo: 'bench',
        workflow_id: 'b.yml',
        ref: 'main',
      });
      await sim.actionsIdle();
      while ([...sim.sim.actions.jobs.values()].some((j) => j.status !== 'completed')) await sim.actionsIdle();
      const job = [...sim.sim.actions.jobs.values()].at(-1)!;
      viaSim.push(Number(/at=(\d+)/.exec(job.log.join('\n'))?.[1] ?? NaN) - t0);
      // Requests after the dispatch itself (and the token Octokit fetched for it) are the runtime's own.
      const own = sim.requests
        .slice(before)
        .filter(
          (r) =>
            r.route !== '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches' && r.route !== '/app/installations/{installation_id}/access_tokens',
        );
      perJob.push(own.length);
      perJobGit.push(own.filter((r) => r.route === 'git-http').length);
      perJobRest.push(own.filter((r) => r.route !== 'git-http').length);
    }
  } finally {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
  report('actions-sim dispatch-to-first-step', {
    runs: RUNS,
    simMs: viaSim,
    simMedianMs: median(viaSim),
    directNode24Ms: direct,
    directMedianMs: median(direct),
  });
  report('actions-sim requests-per-job', {
    runs: RUNS,
    perJob,
    restPerJob: perJobRest,
    gitPerJob: perJobGit,
    note: "requests the job caused besides the dispatch: the checkout step's git smart-HTTP requests (the runtime reaches the simulator in-process, no REST)",
  });
}

await main();
