import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isWithin } from '../path-inside.js';
import { findConfigFile } from '../config/find.js';
import { loadConfig } from '../config/load.js';
import { offeredEnvironment } from '../config/secrets.js';
import type { OrchConfig } from '../config/types.js';
import { AgoraError, isAgoraError } from '../errors.js';
import { createTargets as createWorkerTargets, targetScope } from '../executors/targets.js';
import type { WorkerTarget } from '../executors/types.js';
import { discoverRepository } from '../git/discover.js';
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

/**
 * Opens the repository and the config a command means. The repository: `--repo`, else the one git would
 * find from the working directory (`GIT_DIR`, or the nearest enclosing repository). The config:
 * `--config`, else the nearest `agora.config.mjs` from the plan's directory (when the command has a plan
 * inside the repository) or the working directory, upward to the repository's root and never past it.
 */
export async function openContext(opts: GlobalOptions, planFile?: string): Promise<CliContext> {
  const cwd = process.cwd();
  const store = await openRepository(opts, await repositoryDir(opts, cwd));
  const config = await loadConfig(await configChoice(opts, cwd, planFile, store.dir ?? store.gitdir));
  return { store, config, refs: new RunRefs(config.refNamespace), scratchDir: join(store.gitdir, 'agora') };
}

/**
 * The config alone, for commands that need no repository (`validate`): found from the plan's directory
 * upward to the enclosing repository's root, or in the plan's directory when it is in none. Says which.
 */
export async function openConfigFor(opts: GlobalOptions, planFile: string): Promise<{ config: OrchConfig; file: string | null; repo: string | null }> {
  const cwd = process.cwd();
  const planDir = dirname(resolve(cwd, planFile));
  const repo = opts.repo ? await repositoryDir(opts, cwd) : await discoverRepository(planDir);
  const choice = await configChoice(opts, cwd, planFile, repo);
  return { config: await loadConfig(choice), file: choice.file, repo };
}

/** The directory `--repo` names, which must exist. */
export function namedDirectory(repo: string, cwd: string): string {
  const repoDir = resolve(cwd, repo);
  if (!existsSync(repoDir)) throw new AgoraError('repo-not-found', `--repo ${repoDir} does not exist`, 'pass the path of a git repository');
  return repoDir;
}

/** The store of `dir`; a `--repo` that is no repository is named as the option given. */
async function openRepository(opts: GlobalOptions, dir: string): Promise<LocalGitStore> {
  try {
    return await openLocalStore(dir);
  } catch (e) {
    if (opts.repo === undefined || !isAgoraError(e) || e.code !== 'repo-not-found') throw e;
    throw new AgoraError(
      'repo-not-found',
      `--repo ${dir} is not a git repository`,
      'check the path: --repo names a git work tree or a bare repository (`git init` makes one)',
      { cause: e },
    );
  }
}

async function repositoryDir(opts: GlobalOptions, cwd: string): Promise<string> {
  if (opts.repo !== undefined) return namedDirectory(opts.repo, cwd);
  const found = await discoverRepository(cwd);
  if (found === null) {
    throw new AgoraError(
      'repo-not-found',
      `${cwd} is not a git repository, and neither is any directory above it`,
      'run agora inside a git repository, or pass --repo DIR (`git init` makes one)',
    );
  }
  return found;
}

/**
 * `--config`, else the nearest config from the plan's directory (a plan inside the repository) or the
 * working directory (inside it), upward to the repository's root; from outside the repository, its root
 * alone. Never the working directory's config by default: found nothing means the built-in defaults.
 */
async function configChoice(opts: GlobalOptions, cwd: string, planFile: string | undefined, top: string | null): Promise<{ file: string | null; cwd: string }> {
  if (opts.config) return { file: resolve(cwd, opts.config), cwd };
  const planDir = planFile === undefined ? null : dirname(resolve(cwd, planFile));
  const start = planDir !== null && (top === null || isWithin(planDir, top)) ? planDir : cwd;
  return { file: await findConfigFile(start, top), cwd };
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
    environment: offeredEnvironment(ctx.config, process.env),
    planSecrets: new Set(ctx.config.secrets ?? []),
    keepFinishedWorkers: true, // serve and run reap what a killed process left, when they start
    clock: Date.now,
  };
}
