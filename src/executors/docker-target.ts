import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import type { DockerOptions } from '../config/types.js';
import { extractWorkspace, packWorkspace } from './docker-archive.js';
import { EMIT_FILE } from './control-files.js';
import { copyEmitted, packControl } from './docker-control.js';
import {
  asUnreachable,
  attachStreams,
  describeEngine,
  findAttempt,
  inspectOrUndefined,
  isConnectionError,
  messageOf,
  pipeToLog,
  reapOrphans,
  removeQuietly,
  statusOf,
  UNREACHABLE_FIX,
  waitForExit,
  withTimeout,
  type ContainerOutput,
} from './docker-engine.js';
import {
  CONTAINER_CALL_SOCKET,
  CONTAINER_EMIT,
  CONTAINER_WORKSPACE,
  containerName,
  createSpec,
  DEFAULT_SCOPE,
  hasControlFiles,
  validateOptions,
  type Validated,
} from './docker-spec.js';
import type { WorkerJob, WorkerResult, WorkerTarget, WorkspaceBridge } from './types.js';

export {
  CONTAINER_WORKSPACE,
  DEFAULT_SCOPE,
  LABEL_ATTEMPT,
  LABEL_ITEM,
  LABEL_MANAGED,
  LABEL_RUN,
  LABEL_SCOPE,
  containerEnv,
  containerName,
  parseMemory,
  parseNumericUser,
} from './docker-spec.js';
export { describeEngine, UNREACHABLE_FIX } from './docker-engine.js';

/**
 * The `docker` target: each attempt is one container on a Docker-compatible engine (Docker, or Podman's
 * Docker API), named and labelled after its run, item and attempt so that a restarted orchestrator can
 * find it again (`canResume`, then `run` re-attaches) or reap it (`reapOrphans`).
 *
 * The workspace travels through the archive API, never a bind mount: it is put into `/workspace` before
 * the start and read back after the exit, so the engine may be remote (tcp://, ssh://). So do the
 * attempt's control files, in a volume `/agora` of their own (docker-control.ts): the parameters go in,
 * an emitted `items.json` comes out. The one bind
 * mount is the call socket of a worker that calls its dependencies (`job.callSocket`, mounted read-write
 * at /run/agora/call.sock): that needs the engine on this host, and a remote one is refused.
 *
 * Why `/workspace` (and `/agora`) is an anonymous volume: the root filesystem is read-only, so the workspace needs its
 * own writable mount. A tmpfs does not work: a put before the start lands in the image layer underneath
 * (Podman copies it up into the tmpfs at start — Docker does not), and whatever the worker writes is gone
 * with the tmpfs when the container exits, before it can be read back. An anonymous volume (no host path,
 * removed with the container) keeps both the put and the worker's writes. A fresh volume's root is
 * owned by root, so the archive is put at `/` with a `workspace/` entry owned by the worker's uid:gid:
 * Podman applies that entry's ownership to the volume root (a put at `/workspace` does not), which is
 * what lets a non-root worker write there. Verified on Podman 4.3; Docker Engine refuses archive puts
 * under a read-only root, which this target does not yet work around.
 *
 * This module runs an attempt (create, put, attach, start, wait, collect, or resume one left behind);
 * what the container is comes from docker-spec.ts, the engine calls from docker-engine.ts.
 */

const DEFAULT_STOP_GRACE_SECONDS = 10;
/**
 * After the container exited, how long its output stream may take to end before it is cut; what it had
 * not brought by then is read from the engine's record of the output (`ContainerOutput.complete`).
 */
const STREAM_DRAIN_MS = 2000;

export interface DockerTargetOptions {
  /** The engine client. Default: `new Docker()`, which reads DOCKER_HOST (unix://, tcp://, ssh://). */
  docker?: Docker;
  /** Seconds between the polite stop signal and the kill when a run is aborted. Default 10. */
  stopGraceSeconds?: number;
  /** Options applied under each job's own `options` (e.g. a default image). */
  defaults?: Partial<DockerOptions>;
  /**
   * The owner of this target's containers, e.g. a digest of the host and the repository. Run ids are
   * unique per repository only, so two repositories served on one engine must not share names, and a
   * restarting server must reap only its own orphans. Default `default`.
   */
  scope?: string;
}

/** Creates the docker target. `run` writes to `job.log` but does not close it: the caller owns the sink. */
export function createDockerTarget(opts: DockerTargetOptions = {}): WorkerTarget {
  const docker = opts.docker ?? new Docker();
  const grace = opts.stopGraceSeconds ?? DEFAULT_STOP_GRACE_SECONDS;
  const defaults = opts.defaults ?? {};
  const scope = opts.scope ?? DEFAULT_SCOPE;
  return {
    name: 'docker',
    // $AGORA_PARAMS and $AGORA_EMIT travel through the archive API (docker-control.ts).
    controlFiles: ['params', 'emit'],
    run: (job, signal) => runJob(docker, grace, { ...defaults, ...(job.options ?? {}) }, job, signal, scope),
    canResume: async (runId, itemId, attempt) => {
      try {
        return (await findAttempt(docker, scope, runId, itemId, attempt)).length > 0;
      } catch (e) {
        throw asUnreachable(docker, e);
      }
    },
    reapOrphans: (isLive) => reapOrphans(docker, scope, isLive),
  };
}

function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (typeof r === 'string' && r !== '') return r;
  if (r instanceof Error && r.name !== 'AbortError' && r.message !== '') return r.message;
  return 'aborted';
}

/** At most this many skipped names are listed in the log line. */
const SKIPPED_NAMES_SHOWN = 5;

/**
 * Says in the attempt's log that the workspace archive's `.git` entries were left in the container (a
 * repository a worker made at its workspace root never reaches the host's workspace).
 */
function logSkippedGitEntries(job: WorkerJob, names: readonly string[]): void {
  if (names.length === 0) return;
  const shown = names.slice(0, SKIPPED_NAMES_SHOWN).join(', ') + (names.length > SKIPPED_NAMES_SHOWN ? `, … (${names.length} in all)` : '');
  job.log.write(
    `agora: left ${names.length} entr${names.length === 1 ? 'y' : 'ies'} under the workspace's top-level .git in the container (${shown}); a repository at the workspace root is never copied back, and the patch never includes .git\n`,
    'stderr',
  );
}

async function runJob(
  docker: Docker,
  grace: number,
  rawOptions: Record<string, unknown>,
  job: WorkerJob,
  signal: AbortSignal,
  scope: string,
): Promise<WorkerResult> {
  const o = validateOptions(rawOptions);
  if (typeof o === 'string') return { exitCode: null, reason: o, infrastructureFailure: false };
  if (job.command.length === 0 || job.command[0] === '') {
    return { exitCode: null, reason: 'cannot start worker: the command is empty', infrastructureFailure: false };
  }
  const engine = describeEngine(docker);
  if (job.callSocket !== undefined && !engine.startsWith('unix://')) {
    // A bind mount names a path on the engine's host: a remote engine would mount something else, or nothing.
    return {
      exitCode: null,
      reason: `the worker calls its dependencies (agora call) through a socket on this host, which a container on the engine at ${engine} cannot reach; serve from the engine's host (DOCKER_HOST=unix://…) or make the subagent an agent`,
      infrastructureFailure: false,
    };
  }
  const name = containerName(job.runId, job.itemId, job.attempt, scope, job.subJob);
  let container: Docker.Container | undefined;
  try {
    const existing = await inspectOrUndefined(docker.getContainer(name));
    if (existing !== undefined && job.callSocket !== undefined && socketMountedFrom(existing) !== job.callSocket) {
      // Its socket belonged to the process that started it: a bind mount holds that socket, which nobody
      // answers any more, and cannot be pointed at this process's. Its calls would all fail: start again.
      job.log.write(
        `agora: the container ${name} left by an earlier process calls its dependencies through that process's socket, which no longer answers: removed, and the worker starts again\n`,
        'stderr',
      );
      await docker.getContainer(name).remove({ force: true, v: true });
    } else if (existing !== undefined) {
      const resumed = await resume(docker, grace, o, job, signal, docker.getContainer(name), existing);
      if (resumed !== undefined) return resumed;
    }
    if (signal.aborted) return { exitCode: null, reason: `stopped: ${abortReason(signal)}` };
    try {
      await docker.getImage(o.image).inspect();
    } catch (e) {
      if (statusOf(e) === 404) {
        return { exitCode: null, reason: `image not found: ${o.image}; build or pull it on the engine host first`, infrastructureFailure: false };
      }
      throw e;
    }
    try {
      container = await docker.createContainer(createSpec(job, o, scope));
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
      // Another caller created this attempt's container in between: collect that one, never a second.
      const c = docker.getContainer(name);
      const info = await c.inspect();
      const resumed = await resume(docker, grace, o, job, signal, c, info);
      return resumed ?? { exitCode: null, reason: `container ${name} exists but was never started`, infrastructureFailure: true };
    }
    await container.putArchive(packWorkspace(job.workspaceDir, { prefix: 'workspace/', ...o.owner }), { path: '/' });
    if (hasControlFiles(job)) await container.putArchive(await packControl(job, o.owner), { path: '/' });
    if (signal.aborted) {
      await removeQuietly(container);
      container = undefined;
      return { exitCode: null, reason: `stopped: ${abortReason(signal)}` };
    }
    const stream = await attachStreams(docker, container, job.stdin !== undefined);
    const output = pipeToLog(docker, stream, job);
    try {
      await container.start();
      if (job.stdin !== undefined) stream.end(job.stdin);
      const result = await waitAndCollect(docker, grace, o, job, signal, container, output);
      container = undefined; // collected: removed, or kept until released
      return result;
    } finally {
      stream.destroy();
    }
  } catch (e) {
    if (isConnectionError(e)) {
      return {
        exitCode: null,
        reason: `docker engine unreachable at ${describeEngine(docker)}: ${messageOf(e)}; ${UNREACHABLE_FIX}`,
        infrastructureFailure: true,
      };
    }
    return { exitCode: null, reason: `docker: ${messageOf(e)}`, infrastructureFailure: true };
  } finally {
    if (container !== undefined) await removeQuietly(container);
  }
}

/**
 * Re-attaches to an attempt's container left by an earlier process: a running one is followed (its
 * output since its start goes to the log) and waited for; an exited one is collected. A container that
 * was created but never started is removed and `undefined` returned, so that the caller starts afresh
 * (its workspace may have been put only in part).
 */
async function resume(
  docker: Docker,
  grace: number,
  o: Validated,
  job: WorkerJob,
  signal: AbortSignal,
  container: Docker.Container,
  info: Docker.ContainerInspectInfo,
): Promise<WorkerResult | undefined> {
  if (info.State.Status === 'created' || (info.State.StartedAt ?? '').startsWith('0001-')) {
    await container.remove({ force: true, v: true });
    return undefined;
  }
  const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as Readable;
  try {
    return await waitAndCollect(docker, grace, o, job, signal, container, pipeToLog(docker, stream, job));
  } finally {
    stream.destroy();
  }
}

/**
 * Waits for the exit (stopping the container on abort), then reads the workspace back and removes the
 * container, or, for a job that keeps it until released and was not stopped, hands its removal back
 * (`release`): until then a restart finds it exited and collects it again (`resume`), which reads the
 * same files into a workspace freshly made at the base.
 */
async function waitAndCollect(
  docker: Docker,
  grace: number,
  o: Validated,
  job: WorkerJob,
  signal: AbortSignal,
  container: Docker.Container,
  output: ContainerOutput,
): Promise<WorkerResult> {
  let stopping: Promise<void> | undefined;
  const stop = () => {
    // Failures are not fatal here: already stopped (304) or gone (404) is fine, and an engine that went
    // away is noticed by waitForExit's heartbeat.
    stopping ??= container.stop({ t: grace }).catch(() => undefined);
  };
  signal.addEventListener('abort', stop, { once: true });
  if (signal.aborted) stop();
  job.onWorkspace?.(containerBridge(container, o, job));
  try {
    await waitForExit(container);
    job.onWorkspace?.(undefined);
    await withTimeout(output.ended, STREAM_DRAIN_MS);
    await output.complete(container);
    if (stopping) await stopping;
    const state = (await container.inspect()).State;
    const exitCode = typeof state.ExitCode === 'number' ? state.ExitCode : null;
    const extracted = await extractWorkspace((await container.getArchive({ path: `${CONTAINER_WORKSPACE}/.` })) as unknown as Readable, job.workspaceDir);
    logSkippedGitEntries(job, extracted.skippedGitEntries);
    if (job.emitDir !== undefined) await collectEmitted(container, job.emitDir);
    const result = resultOf(exitCode, o, stopping !== undefined ? abortReason(signal) : undefined);
    if (job.keepUntilReleased && stopping === undefined) return { ...result, release: () => removeUnlessGone(container) };
    await container.remove({ force: true, v: true });
    return result;
  } finally {
    job.onWorkspace?.(undefined);
    signal.removeEventListener('abort', stop);
  }
}

/** Removes a kept container; one already gone is fine, any other failure is the caller's to report. */
async function removeUnlessGone(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (e) {
    if (statusOf(e) !== 404) throw new Error(`container ${container.id}: ${messageOf(e)}`, { cause: e });
  }
}

/** The host path mounted as a container's call socket, if it has one. */
function socketMountedFrom(info: Docker.ContainerInspectInfo): string | undefined {
  return info.Mounts.find((m) => m.Destination === CONTAINER_CALL_SOCKET)?.Source;
}

/** Copies the worker's `$AGORA_EMIT/items.json`, if it wrote one, into the host's emit directory. */
async function collectEmitted(container: Docker.Container, emitDir: string): Promise<void> {
  let archive: Readable;
  try {
    archive = (await container.getArchive({ path: `${CONTAINER_EMIT}/${EMIT_FILE}` })) as unknown as Readable;
  } catch (e) {
    if (statusOf(e) === 404) return; // it emitted nothing
    throw e;
  }
  await copyEmitted(archive, emitDir);
}

/** The container's `/workspace` and the host's workspace directory, for calls made while it runs. */
function containerBridge(container: Docker.Container, o: Validated, job: WorkerJob): WorkspaceBridge {
  return {
    async pull() {
      const extracted = await extractWorkspace((await container.getArchive({ path: `${CONTAINER_WORKSPACE}/.` })) as unknown as Readable, job.workspaceDir);
      logSkippedGitEntries(job, extracted.skippedGitEntries);
    },
    async push() {
      await container.putArchive(packWorkspace(job.workspaceDir, { prefix: 'workspace/', ...o.owner }), { path: '/' });
    },
  };
}

function resultOf(exitCode: number | null, o: Validated, stoppedBecause: string | undefined): WorkerResult {
  if (stoppedBecause !== undefined) {
    const signal = exitCode === 137 ? 'SIGKILL' : exitCode === 143 ? 'SIGTERM' : null;
    return { exitCode: signal ? null : exitCode, signal, reason: `stopped: ${stoppedBecause}` };
  }
  // Podman leaves State.OOMKilled false on an OOM kill: a SIGKILL under a memory limit is the evidence.
  if (exitCode === 137 && o.memory !== undefined) {
    return { exitCode, signal: 'SIGKILL', reason: `out of memory (exit 137, memory limit ${o.memory.text})` };
  }
  return { exitCode, signal: null };
}
