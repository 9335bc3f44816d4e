import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OrchConfig } from '../../src/config/types.js';
import { BUSYBOX, DEFAULT_ENGINE } from '../docker/engine.js';
import { node24 } from '@agora/github-sim/actions/node24';
import { scaled } from '../support/eventually.js';
import { startAppWorld, type AppWorld, type AppWorldOptions } from '../github/app-world.js';

/**
 * An App world whose command items run on the `actions` target: the committed action/dist is published
 * as `agora-orchestrator/agora@v1`, and the shipped examples/workflows/agora-worker.yml is on the
 * repository's default branch. No runner is registered: each test adds the ones it needs.
 */
process.env.DOCKER_HOST ??= DEFAULT_ENGINE;

export const WORKER = '.github/workflows/agora-worker.yml';

export function actionsConfig(extra: Partial<OrchConfig> = {}): OrchConfig {
  return {
    queues: {},
    defaultConcurrency: 4,
    subagents: {},
    shapes: {},
    refNamespace: 'refs/agora/',
    commandTarget: 'actions',
    commandImage: BUSYBOX,
    actions: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: Math.round(scaled(20_000) / 1000) },
    configDir: process.cwd(),
    ...extra,
  };
}

/** `options` are the App world's (e.g. `sweepMs`, for a restarted App to take over the runs it finds). */
export async function startWorkerWorld(config: OrchConfig, options: Omit<AppWorldOptions, 'config' | 'trusted'> = {}): Promise<AppWorld> {
  await node24();
  const w = await startAppWorld({ ...options, config, trusted: false });
  const files: Record<string, string> = {};
  for (const f of ['action.yml', 'dist/index.js', 'dist/package.json']) files[`action/${f}`] = await readFile(join('action', f), 'utf8');
  const actionRepo = await w.sim.createRepo('agora-orchestrator', 'agora', files);
  await w.sim.push(actionRepo.fullName, { branch: 'v1', files: {}, message: 'v1' });
  await w.sim.push(w.fullName, {
    branch: 'main',
    files: { [WORKER]: await readFile(join('examples', 'workflows', 'agora-worker.yml'), 'utf8') },
    message: 'Add the Agora worker workflow',
  });
  return w;
}

/** The worker workflow's runs, its jobs and a job's log, through the REST API. */
export function workerApi(w: AppWorld) {
  const o = { owner: w.owner, repo: w.repo };
  return {
    runs: async () =>
      (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', { ...o, per_page: 100 })).data.workflow_runs.filter((r) => r.path === WORKER),
    jobsOf: async (runId: number) => (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: runId })).data.jobs,
    logOf: async (jobId: number) => String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: jobId })).data),
  };
}
