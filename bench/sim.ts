/**
 * bench/sim: the GitHub simulator's throughput.
 *  1. sustained check-run updates per second (PATCH through auth, limits, contract checks, webhooks),
 *     beside a reference: a bare node:http JSON server hit by the same client in the same run;
 *  2. a clone + commit + push round trip of a 1,000-file repository over smart HTTP until its push
 *     webhook arrives, beside the same clone + push against the bare repository on disk (file://).
 * Prints one JSON line per result.  Run: npx tsx bench/sim.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { startGitHubSim } from '@agora/github-sim';
import { median, report } from './lib.js';

const run = promisify(execFile);
const git = (args: string[], cwd?: string) =>
  run('git', args, {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' },
    maxBuffer: 1 << 26,
  });

/** Requests per second of `send` for `ms` milliseconds with `concurrency` in flight. */
async function sustained(send: () => Promise<number>, ms: number, concurrency: number): Promise<{ rps: number; errors: number; n: number }> {
  const end = performance.now() + ms;
  let n = 0;
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const status = await send();
        if (status >= 300) errors++;
        n++;
      }
    }),
  );
  return { rps: n / ((performance.now() - start) / 1000), errors, n };
}

async function main(): Promise<void> {
  const hooks = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', () => r()));
  const webhookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/`;
  const sim = await startGitHubSim({ limits: { requestsPerHour: 1e9 } });
  const app = sim.createApp({ webhookUrl, secret: 's' });
  const files: Record<string, string> = {};
  for (let i = 0; i < 1000; i++) files[`src/dir${i % 20}/file${i}.txt`] = `line ${i}\n`.repeat(20);
  const repo = await sim.createRepo('bench', 'repo', files);
  const installationId = sim.installApp(app.appId, repo.fullName);
  // Mint a token as the app would (JWT → access token) once.
  const auth = createAppAuth({ appId: app.appId, privateKey: app.privateKey, installationId, request: new Octokit({ baseUrl: sim.apiUrl }).request });
  const { token } = await auth({ type: 'installation' });
  const headers = { authorization: `token ${token}`, 'content-type': 'application/json' };

  // 1. check-run updates vs a bare JSON server
  const created = await fetch(`${sim.apiUrl}/repos/bench/repo/check-runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'bench', head_sha: repo.headSha, status: 'in_progress' }),
  });
  const { id } = (await created.json()) as { id: number };
  let k = 0;
  const patch = async (): Promise<number> => {
    const res = await fetch(`${sim.apiUrl}/repos/bench/repo/check-runs/${id}`, {
      method: 'PATCH',
      headers,
      body: JSON.stringify({ output: { title: 't', summary: `update ${k++}` } }),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;
  const ref = async (): Promise<number> => {
    const res = await fetch(bareUrl, { method: 'PATCH', headers, body: '{"output":{}}' });
    await res.arrayBuffer();
    return res.status;
  };
  await sustained(patch, 500, 8);
  const sim1 = await sustained(patch, 3000, 8);
  const ref1 = await sustained(ref, 3000, 8);
  await sim.settle();
  report('sim-check-run-updates', {
    concurrency: 8,
    seconds: 3,
    requestsPerSecond: Math.round(sim1.rps),
    errors: sim1.errors,
    referenceBareHttpPerSecond: Math.round(ref1.rps),
    ratioToReference: +(sim1.rps / ref1.rps).toFixed(3),
    contractViolations: sim.contractViolations.length,
  });

  // 2. clone + commit + push of 1,000 files, until the push webhook is delivered
  const url = new URL(`${sim.gitUrl}/bench/repo.git`);
  url.username = 'x-access-token';
  url.password = token;
  const simRuns: number[] = [];
  const fileRuns: number[] = [];
  for (let i = 0; i < 5; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'bench-sim-'));
    try {
      const before = sim.webhookDeliveries.length;
      const t0 = performance.now();
      await git(['clone', '--quiet', url.toString(), dir]);
      await writeFile(join(dir, 'src', 'dir0', 'file0.txt'), `change ${i}\n`);
      await git(['commit', '-q', '-am', `change ${i}`], dir);
      await git(['push', '-q', 'origin', `HEAD:refs/heads/bench-${i}`], dir);
      await sim.settle();
      simRuns.push(performance.now() - t0);
      if (!sim.webhookDeliveries.slice(before).some((d) => d.event === 'push')) throw new Error('no push webhook');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const dir2 = await mkdtemp(join(tmpdir(), 'bench-file-'));
    try {
      const t0 = performance.now();
      await git(['clone', '--quiet', `file://${sim.repoDir('bench/repo')}`, dir2]);
      await writeFile(join(dir2, 'src', 'dir0', 'file0.txt'), `file ${i}\n`);
      await git(['commit', '-q', '-am', `file ${i}`], dir2);
      await git(['push', '-q', 'origin', `HEAD:refs/heads/file-${i}`], dir2);
      fileRuns.push(performance.now() - t0);
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  }
  report('sim-clone-push-1000-files', {
    runs: simRuns.length,
    medianMs: Math.round(median(simRuns)),
    referenceFileProtocolMedianMs: Math.round(median(fileRuns)),
    ratioToReference: +(median(simRuns) / median(fileRuns)).toFixed(2),
  });

  await sim.close();
  bare.close();
  hooks.close();
}

await main();
