import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { OrchConfig } from '../config/types.js';
import { AgoraError } from '../errors.js';
import { createLocalTarget } from '../executors/local-target.js';
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
  /** `<gitdir>/agora`: workspaces, live logs, pidfiles, the serve lock. Never committed. */
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

/** The targets a serve process offers: local always; docker when DOCKER_HOST is set or the config asks for it. */
export async function createTargets(ctx: CliContext): Promise<Record<string, WorkerTarget>> {
  const targets: Record<string, WorkerTarget> = {
    local: createLocalTarget({ stateDir: join(ctx.scratchDir, 'pids') }),
  };
  const wantsDocker =
    ctx.config.commandTarget === 'docker' || Object.values(ctx.config.subagents).some((s) => s.target === 'docker');
  if (wantsDocker || process.env.DOCKER_HOST) {
    try {
      const { createDockerTarget } = await import('../executors/docker-target.js');
      // Run ids are unique per repository only: containers are scoped to this host and repository.
      const scope = createHash('sha256').update(`${hostname()}\0${ctx.store.gitdir}`).digest('hex').slice(0, 16);
      targets.docker = createDockerTarget({ scope });
    } catch (e) {
      if (wantsDocker) throw new AgoraError('docker-unavailable', `cannot set up the docker target: ${(e as Error).message}`);
    }
  }
  return targets;
}

export function attemptContext(ctx: CliContext, targets: Record<string, WorkerTarget>): AttemptContext {
  return {
    store: ctx.store,
    refs: ctx.refs,
    config: ctx.config,
    targets,
    scratchDir: ctx.scratchDir,
    workspaces: WorkspacePool.forScratch(ctx.store, ctx.scratchDir),
    environment: process.env,
    clock: Date.now,
  };
}
