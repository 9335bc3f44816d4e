import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { OrchConfig } from '../config/types.js';
import { AgoraError, errorMessage } from '../errors.js';
import { createLocalTarget } from './local-target.js';
import type { WorkerTarget } from './types.js';

/**
 * The worker targets a process offers, created in one place for the CLI (`serve`, `orch run`) and the
 * GitHub App (one set per repository mirror): `local` unless told not to (the app offers it only to
 * repositories its operator trusts); `docker` when the config names it.
 */

export interface CreateTargetsOptions {
  /** The orchestrator's own config (for the app: AGORA_CONFIG, never a repository's file). */
  config: OrchConfig;
  /** Where the local target keeps its pidfiles (`<scratch>/pids`). */
  stateDir: string;
  /**
   * The owner of this process's containers (see {@link targetScope}): a docker target re-attaches to
   * and reaps only containers of its own scope, so parallel Agoras on one engine leave each other alone.
   */
  scope: string;
  /**
   * Also offer docker when the config does not name it but DOCKER_HOST is set, so that a plan's command
   * item may ask for `target: 'docker'` on its own. The CLI does (the plan is the operator's); the app
   * does not (plans come from repositories: only its own config decides). Default false.
   */
  offerWhenDockerHost?: boolean;
  /** Offer `local` (a process on this host, with this user's rights). Default true; the app decides per repository. */
  offerLocal?: boolean;
  /** Seconds a stopped container has between SIGTERM and the kill (the docker target's default when unset). */
  dockerStopGraceSeconds?: number;
}

/** Whether `config` runs anything on `target`: command items by default, or any subagent. */
export function configWantsTarget(config: OrchConfig, target: 'docker' | 'actions'): boolean {
  return config.commandTarget === target || Object.values(config.subagents).some((s) => s.target === target);
}

/** Whether `config` runs anything on the docker target. */
export function configWantsDocker(config: OrchConfig): boolean {
  return configWantsTarget(config, 'docker');
}

/**
 * The docker scope of a repository served from `gitdir` on this host. Run ids are unique per repository
 * only, so containers are owned by host and repository: two checkouts (or two app mirrors) never share one.
 */
export function targetScope(gitdir: string, host: string = hostname()): string {
  return createHash('sha256').update(`${host}\0${gitdir}`).digest('hex').slice(0, 16);
}

/**
 * The docker scope of the GitHub App's containers for one repository: what every replica of one app
 * shares for it — the origin of the URL it was cloned from (the GitHub host, never credentials or the
 * path), the repository's full name (case-insensitive, as GitHub treats it) and the ref namespace the
 * runs live under (run ids are unique only within one) — never a local path or host name. So a replica
 * that takes a run over from a dead one finds the dead one's still-running container on a shared engine
 * (`canResume`, then `run` re-attaches), and the engine's name check refuses a second container for one
 * attempt whichever replica asks. Never equal to a {@link targetScope}: the digested texts differ in shape.
 */
export function repositoryScope(args: { cloneUrl: string; fullName: string; refNamespace: string }): string {
  let origin: string;
  try {
    const url = new URL(args.cloneUrl);
    // `null` for schemes without an origin (file:, ssh:): protocol and host still name the server.
    origin = url.origin !== 'null' ? url.origin : `${url.protocol}//${url.host}`;
  } catch {
    origin = args.cloneUrl; // not a URL (an scp-style or local path): the whole text identifies it
  }
  return createHash('sha256').update(`github\0${origin}\0${args.fullName.toLowerCase()}\0${args.refNamespace}`).digest('hex').slice(0, 16);
}

/**
 * Creates the targets. The docker target does not contact the engine here: an engine that is down when
 * an item runs fails that attempt as an infrastructure failure whose reason names the engine address and
 * how to reach one, and the item is retried per its policy (the engine may come back). Setting the
 * target up at all failing (the client library missing, a DOCKER_HOST it cannot parse) is an error
 * when the config asks for docker, and docker is left out otherwise.
 */
export async function createTargets(opts: CreateTargetsOptions): Promise<Record<string, WorkerTarget>> {
  const targets: Record<string, WorkerTarget> = opts.offerLocal === false ? {} : { local: createLocalTarget({ stateDir: opts.stateDir }) };
  const wanted = configWantsDocker(opts.config);
  // The engine client reads DOCKER_HOST from the process environment itself.
  const dockerHost = process.env.DOCKER_HOST;
  if (wanted || (opts.offerWhenDockerHost && dockerHost)) {
    try {
      const { createDockerTarget } = await import('./docker-target.js');
      targets.docker = createDockerTarget({
        scope: opts.scope,
        ...(opts.dockerStopGraceSeconds !== undefined ? { stopGraceSeconds: opts.dockerStopGraceSeconds } : {}),
      });
    } catch (e) {
      if (wanted) {
        throw new AgoraError(
          'docker-unavailable',
          `cannot set up the docker target (DOCKER_HOST=${dockerHost ?? 'unset: unix:///var/run/docker.sock'}): ${errorMessage(e)}`,
          'set DOCKER_HOST to a reachable Docker-compatible engine (unix:///path/to/docker.sock, tcp://host:2376, ssh://user@host), or run the subagents and command items on target local',
          { cause: e },
        );
      }
    }
  }
  return targets;
}
