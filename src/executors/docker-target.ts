import { createHash } from 'node:crypto';
import { Writable, type Duplex, type Readable } from 'node:stream';
import Docker from 'dockerode';
import type { DockerOptions } from '../config/types.js';
import { extractWorkspace, packWorkspace } from './docker-archive.js';
import type { WorkerJob, WorkerResult, WorkerTarget } from './types.js';

/**
 * The `docker` target: each attempt is one container on a Docker-compatible engine (Docker, or Podman's
 * Docker API), named and labelled after its run, item and attempt so that a restarted orchestrator can
 * find it again (`canResume`, then `run` re-attaches) or reap it (`reapOrphans`).
 *
 * The workspace travels through the archive API, never a bind mount: it is put into `/workspace` before
 * the start and read back after the exit, so the engine may be remote (tcp://, ssh://).
 *
 * Why `/workspace` is an anonymous volume: the root filesystem is read-only, so the workspace needs its
 * own writable mount. A tmpfs does not work: a put before the start lands in the image layer underneath
 * (Podman copies it up into the tmpfs at start — Docker does not), and whatever the worker writes is gone
 * with the tmpfs when the container exits, before it can be read back. An anonymous volume (no host path,
 * removed with the container) keeps both the put and the worker's writes. A fresh volume's root is
 * owned by root, so the archive is put at `/` with a `workspace/` entry owned by the worker's uid:gid:
 * Podman applies that entry's ownership to the volume root (a put at `/workspace` does not), which is
 * what lets a non-root worker write there. Verified on Podman 4.3; Docker Engine refuses archive puts
 * under a read-only root, which this target does not yet work around.
 */

/** Labels on every container this target creates. */
export const LABEL_MANAGED = 'agora.managed';
export const LABEL_RUN = 'agora.run';
export const LABEL_ITEM = 'agora.item';
export const LABEL_ATTEMPT = 'agora.attempt';
/** Which server owns a container: canResume and reapOrphans never touch another scope's containers. */
export const LABEL_SCOPE = 'agora.scope';
export const DEFAULT_SCOPE = 'default';

/** The container path of the workspace. */
export const CONTAINER_WORKSPACE = '/workspace';

const DEFAULT_USER = '65534:65534';
const DEFAULT_PIDS = 256;
const DEFAULT_STOP_GRACE_SECONDS = 10;
/** After the container exited, how long its output stream may take to drain before it is cut. */
const STREAM_DRAIN_MS = 2000;
/** While a container runs, how often it is inspected to notice an engine that went away. */
const HEARTBEAT_MS = 1000;
/** How long a single short request (inspect) may take before the engine counts as unreachable. */
const REQUEST_TIMEOUT_MS = 30_000;

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
    run: (job, signal) => runJob(docker, grace, { ...defaults, ...(job.options ?? {}) }, job, signal, scope),
    canResume: async (runId, itemId, attempt) => (await findAttempt(docker, scope, runId, itemId, attempt)).length > 0,
    reapOrphans: (isLive) => reapOrphans(docker, scope, isLive),
  };
}

/** The container name of an attempt: deterministic, so that the engine itself refuses a second one. */
export function containerName(runId: string, itemId: string, attempt: number, scope = DEFAULT_SCOPE): string {
  const digest = createHash('sha256').update(JSON.stringify([scope, runId, itemId, attempt])).digest('hex').slice(0, 16);
  return `agora-${itemId.slice(0, 40)}-${attempt}-${digest}`;
}

/** Parses `512m`, `1g`, `64M`, `100k`, `1024` (bytes) into bytes; undefined when it is not such a size. */
export function parseMemory(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as 'b'];
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 ? bytes : undefined;
}

/** `1000` or `1000:1000` → uid/gid (gid defaults to uid); undefined for a user name. */
export function parseNumericUser(user: string): { uid: number; gid: number } | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) return undefined;
  const uid = Number(m[1]);
  return { uid, gid: m[2] === undefined ? uid : Number(m[2]) };
}

/** What an unreachable engine's reason tells the operator to do. */
export const UNREACHABLE_FIX =
  'start the engine there, or set DOCKER_HOST to a reachable one (unix:///path/to/docker.sock, tcp://host:2376, ssh://user@host) and restart Agora';

/** How the engine is addressed, for messages: `unix:///path`, `tcp://host:port`, `ssh://host`. */
export function describeEngine(docker: Docker): string {
  const modem = docker.modem as unknown as { socketPath?: unknown; host?: string; port?: number | string; protocol?: string };
  if (typeof modem.socketPath === 'string') return `unix://${modem.socketPath}`;
  if (modem.host !== undefined) {
    const protocol = modem.protocol === 'ssh' ? 'ssh' : 'tcp';
    return `${protocol}://${modem.host}${modem.port !== undefined ? `:${modem.port}` : ''}`;
  }
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

type Validated = {
  image: string;
  user: string;
  owner: { uid: number; gid: number };
  network: string;
  memory?: { text: string; bytes: number };
  cpus?: number;
  pids: number;
};

function validateOptions(raw: Record<string, unknown>): Validated | string {
  const image = raw.image;
  if (typeof image !== 'string' || image === '') return 'docker options: `image` is required (the image the worker runs in)';
  const user = raw.user === undefined ? DEFAULT_USER : raw.user;
  if (typeof user !== 'string' || user === '') return 'docker options: `user` must be a uid[:gid] such as 65534:65534';
  const owner = parseNumericUser(user);
  if (!owner) return `docker options: user ${JSON.stringify(user)} is not numeric; give uid:gid (e.g. 1000:1000) so the workspace can be owned by it`;
  const network = raw.network === undefined ? 'none' : raw.network;
  if (typeof network !== 'string' || network === '') return 'docker options: `network` must be a network name such as none or bridge';
  const v: Validated = { image, user, owner, network, pids: DEFAULT_PIDS };
  if (raw.memory !== undefined) {
    const bytes = typeof raw.memory === 'string' ? parseMemory(raw.memory) : undefined;
    if (bytes === undefined) return `docker options: memory ${JSON.stringify(raw.memory)} is not a size like 512m or 1g`;
    v.memory = { text: raw.memory as string, bytes };
  }
  if (raw.cpus !== undefined) {
    if (typeof raw.cpus !== 'number' || !(raw.cpus > 0)) return `docker options: cpus ${JSON.stringify(raw.cpus)} must be a positive number`;
    v.cpus = raw.cpus;
  }
  if (raw.pids !== undefined) {
    if (typeof raw.pids !== 'number' || !Number.isInteger(raw.pids) || raw.pids < 1) return `docker options: pids ${JSON.stringify(raw.pids)} must be a positive integer`;
    v.pids = raw.pids;
  }
  return v;
}

/** The container's environment: the job's env, its secrets, then Agora's own variables (which win). */
export function containerEnv(job: WorkerJob): string[] {
  const env: Record<string, string> = { ...job.env, ...job.secrets };
  env.AGORA_RUN = job.runId;
  env.AGORA_ITEM = job.itemId;
  env.AGORA_ATTEMPT = String(job.attempt);
  env.AGORA_WORKSPACE = CONTAINER_WORKSPACE;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function labelsOf(job: WorkerJob, scope: string): Record<string, string> {
  return {
    [LABEL_RUN]: job.runId,
    [LABEL_ITEM]: job.itemId,
    [LABEL_ATTEMPT]: String(job.attempt),
    [LABEL_MANAGED]: 'true',
    [LABEL_SCOPE]: scope,
  };
}

function createSpec(job: WorkerJob, o: Validated, scope: string): Docker.ContainerCreateOptions {
  const hasStdin = job.stdin !== undefined;
  return {
    name: containerName(job.runId, job.itemId, job.attempt, scope),
    Image: o.image,
    // The job's argv replaces whatever entrypoint the image has.
    Entrypoint: job.command.slice(0, 1),
    Cmd: job.command.slice(1),
    WorkingDir: CONTAINER_WORKSPACE,
    User: o.user,
    Env: containerEnv(job),
    Labels: labelsOf(job, scope),
    Tty: false,
    AttachStdin: hasStdin,
    OpenStdin: hasStdin,
    StdinOnce: hasStdin,
    AttachStdout: true,
    AttachStderr: true,
    Volumes: { [CONTAINER_WORKSPACE]: {} },
    HostConfig: {
      NetworkMode: o.network,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,mode=1777' },
      ...(o.memory ? { Memory: o.memory.bytes, MemorySwap: o.memory.bytes } : {}),
      ...(o.cpus !== undefined ? { NanoCpus: Math.round(o.cpus * 1e9) } : {}),
      PidsLimit: o.pids,
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Binds: [],
      AutoRemove: false,
    },
  };
}

/** Containers of one attempt (normally zero or one). */
async function findAttempt(docker: Docker, scope: string, runId: string, itemId: string, attempt: number): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: {
      label: [`${LABEL_MANAGED}=true`, `${LABEL_SCOPE}=${scope}`, `${LABEL_RUN}=${runId}`, `${LABEL_ITEM}=${itemId}`, `${LABEL_ATTEMPT}=${attempt}`],
    },
  });
}

async function reapOrphans(docker: Docker, scope: string, isLive: (runId: string, itemId: string, attempt: number) => boolean): Promise<number> {
  const managed = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_SCOPE}=${scope}`] } });
  let reaped = 0;
  for (const info of managed) {
    const labels = info.Labels ?? {};
    const runId = labels[LABEL_RUN];
    const itemId = labels[LABEL_ITEM];
    const attempt = Number(labels[LABEL_ATTEMPT]);
    const live = runId !== undefined && itemId !== undefined && Number.isInteger(attempt) && isLive(runId, itemId, attempt);
    if (live) continue;
    try {
      await docker.getContainer(info.Id).remove({ force: true, v: true });
      reaped++;
    } catch (e) {
      if (statusOf(e) !== 404) throw e; // already gone: someone else reaped it
    }
  }
  return reaped;
}

function statusOf(e: unknown): number | undefined {
  const code = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EACCES', 'ECONNABORTED']);

function isConnectionError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; statusCode?: unknown } | null;
  if (err === null || typeof err !== 'object' || err.statusCode !== undefined) return false;
  if (typeof err.code === 'string' && CONNECTION_ERRORS.has(err.code)) return true;
  return typeof err.message === 'string' && /socket hang up|premature close|aborted/i.test(err.message);
}

function messageOf(e: unknown): string {
  const err = e as { json?: { message?: unknown }; message?: unknown } | null;
  if (typeof err?.json?.message === 'string') return err.json.message;
  return typeof err?.message === 'string' ? err.message : String(e);
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

/** A stream of the container's multiplexed output, demultiplexed into the job's log. */
function pipeToLog(docker: Docker, stream: Readable | Duplex, job: WorkerJob): Promise<void> {
  const sinkFor = (name: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        job.log.write(chunk, name);
        done();
      },
    });
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  docker.modem.demuxStream(stream, sinkFor('stdout'), sinkFor('stderr'));
  return ended;
}

/**
 * Attaches to a created container before it starts. Dockerode's own `attach` writes its options as a
 * JSON request body, which a hijacked connection delivers into the worker's stdin (Podman does); this
 * dials the same endpoint with an empty body instead.
 */
function attachStreams(docker: Docker, container: Docker.Container, withStdin: boolean): Promise<Duplex> {
  const query = { stream: true, stdin: withStdin, stdout: true, stderr: true };
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/containers/${container.id}/attach?`,
        method: 'POST',
        options: query,
        isStream: true,
        hijack: withStdin,
        openStdin: withStdin,
        file: withStdin ? Buffer.alloc(0) : undefined,
        statusCodes: { 101: true, 200: true, 404: 'no such container', 500: 'server error' },
      } as unknown as Parameters<typeof docker.modem.dial>[0],
      (err: unknown, stream: unknown) => (err ? reject(err) : resolve(stream as Duplex)),
    );
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
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
  const name = containerName(job.runId, job.itemId, job.attempt, scope);
  let container: Docker.Container | undefined;
  try {
    const existing = await inspectOrUndefined(docker.getContainer(name));
    if (existing !== undefined) {
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
    if (signal.aborted) {
      await removeQuietly(container);
      container = undefined;
      return { exitCode: null, reason: `stopped: ${abortReason(signal)}` };
    }
    const stream = await attachStreams(docker, container, job.stdin !== undefined);
    const drained = pipeToLog(docker, stream, job);
    try {
      await container.start();
      if (job.stdin !== undefined) stream.end(job.stdin);
      const result = await waitAndCollect(docker, grace, o, job, signal, container, drained);
      container = undefined; // collected and removed
      return result;
    } finally {
      stream.destroy();
    }
  } catch (e) {
    if (isConnectionError(e)) {
      return { exitCode: null, reason: `docker engine unreachable at ${describeEngine(docker)}: ${messageOf(e)}; ${UNREACHABLE_FIX}`, infrastructureFailure: true };
    }
    return { exitCode: null, reason: `docker: ${messageOf(e)}`, infrastructureFailure: true };
  } finally {
    if (container !== undefined) await removeQuietly(container);
  }
}

async function inspectOrUndefined(c: Docker.Container): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await c.inspect();
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

async function removeQuietly(c: Docker.Container): Promise<void> {
  try {
    await c.remove({ force: true, v: true });
  } catch {
    // Gone already, or the engine is unreachable: reapOrphans cleans up after a restart.
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

/** Waits for the exit (stopping the container on abort), then reads the workspace back and removes it. */
async function waitAndCollect(
  docker: Docker,
  grace: number,
  o: Validated,
  job: WorkerJob,
  signal: AbortSignal,
  container: Docker.Container,
  drained: Promise<void>,
): Promise<WorkerResult> {
  let stopping: Promise<void> | undefined;
  const stop = () => {
    // Failures are not fatal here: already stopped (304) or gone (404) is fine, and an engine that went
    // away is noticed by waitForExit's heartbeat.
    stopping ??= container.stop({ t: grace }).catch(() => undefined);
  };
  signal.addEventListener('abort', stop, { once: true });
  if (signal.aborted) stop();
  try {
    await waitForExit(container);
    await withTimeout(drained, STREAM_DRAIN_MS);
    if (stopping) await stopping;
    const state = (await container.inspect()).State;
    const exitCode = typeof state.ExitCode === 'number' ? state.ExitCode : null;
    const extracted = await extractWorkspace((await container.getArchive({ path: `${CONTAINER_WORKSPACE}/.` })) as unknown as Readable, job.workspaceDir);
    logSkippedGitEntries(job, extracted.skippedGitEntries);
    await container.remove({ force: true, v: true });
    return resultOf(exitCode, o, stopping !== undefined ? abortReason(signal) : undefined);
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Resolves once the container is no longer running. The engine's wait call alone is not enough: when
 * the connection drops after the engine sent the response headers, dockerode's promise never settles.
 * So the container is also inspected every HEARTBEAT_MS; an inspect that fails (engine gone) rejects.
 */
async function waitForExit(container: Docker.Container): Promise<void> {
  const cancelWait = new AbortController();
  const waited = container.wait({ abortSignal: cancelWait.signal }).then(
    () => 'exited' as const,
    (e: unknown) => (cancelWait.signal.aborted ? ('cancelled' as const) : Promise.reject(e)),
  );
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), HEARTBEAT_MS)));
      const first = await Promise.race([waited, tick]).finally(() => clearTimeout(timer));
      if (first === 'exited') return;
      const info = await withTimeout(container.inspect(), REQUEST_TIMEOUT_MS);
      if (info === undefined) throw Object.assign(new Error(`no answer to inspect within ${REQUEST_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' });
      if (!info.State.Running && !info.State.Paused && !info.State.Restarting) return;
    }
  } finally {
    // Do not await the cancelled wait: dockerode may never settle it (see above).
    cancelWait.abort();
    waited.catch(() => undefined);
  }
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
