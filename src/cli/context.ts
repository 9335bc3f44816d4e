import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { OrchConfig } from '../config/types.js';
import { AgoraError } from '../errors.js';
import { createTargets as createWorkerTargets, targetScope } from '../executors/targets.js';
import type { WorkerTarget } from '../executors/types.js';
import { openLocalStore, type LocalGitStore } from '../git/local-store.js';
import type { AttemptContext } from '../runs/attempt.js';
import { RunRefs } from '../runs/refs.js';
import { WorkspacePool } from '../runs/workspace-pool.js';

/** What every verb needs: the repository, the config, the ref layout, and (for serving) the targets. */
export interface CliContext {
  store: LocalGitStore;
  config: OrchConfig;
  refs: RunRefs;
  /** `<gitdir>/agora`: live logs, pidfiles, the serve lock. Never committed. (Workspaces live outside the repository.) */
  scratchDir: string;
}

export interface GlobalOptions {
  repo?: string;
  config?: string;
}

export async function openContext(opts: GlobalOptions): Promise<CliContext> {
  const cwd = process.cwd();
  const repoDir = resolve(cwd, opts.repo ?? '.');
  if (!existsSync(repoDir)) {
    throw new AgoraError('repo-not-found', `--repo ${repoDir} does not exist`, 'pass the path of a git repository');
  }
  const store = await openLocalStore(repoDir);
  const config = await loadConfig({ ...(opts.config ? { file: resolve(cwd, opts.config) } : {}), cwd });
  return { store, config, refs: new RunRefs(config.refNamespace), scratchDir: join(store.gitdir, 'agora') };
}

/**
 * The targets a serve process offers: local always; docker when the config asks for it or DOCKER_HOST is
 * set (a plan's command item may name `target: 'docker'`), its containers scoped to this host and repository.
 */
export async function createTargets(ctx: CliContext): Promise<Record<string, WorkerTarget>> {
  return createWorkerTargets({
    config: ctx.config,
    stateDir: join(ctx.scratchDir, 'pids'),
    scope: targetScope(ctx.store.gitdir),
    offerWhenDockerHost: true,
  });
}

export function attemptContext(ctx: CliContext, targets: Record<string, WorkerTarget>): AttemptContext {
  return {
    store: ctx.store,
    refs: ctx.refs,
    config: ctx.config,
    targets,
    scratchDir: ctx.scratchDir,
    workspaces: WorkspacePool.outsideRepository(ctx.store),
    environment: process.env,
    clock: Date.now,
  };
}
