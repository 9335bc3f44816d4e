import { Writable, type Duplex, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LABEL_ATTEMPT, LABEL_ITEM, LABEL_MANAGED, LABEL_RUN, LABEL_SCOPE } from './docker-spec.js';
import type { WorkerJob } from './types.js';
import { TargetUnreachable } from './target-unreachable.js';

/**
 * Talking to the Docker-compatible engine for the docker target: finding and reaping the target's
 * containers by label, attaching to and demultiplexing a container's output, waiting for an exit that
 * a dropped connection cannot hide, and telling an unreachable engine from an error it answered with.
 */

/** While a container runs, how often it is inspected to notice an engine that went away. */
const HEARTBEAT_MS = 1000;
/** How long a single short request (inspect) may take before the engine counts as unreachable. */
const REQUEST_TIMEOUT_MS = 30_000;

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

/** Containers of one attempt (normally zero or one). */
export async function findAttempt(docker: Docker, scope: string, runId: string, itemId: string, attempt: number): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: {
      label: [`${LABEL_MANAGED}=true`, `${LABEL_SCOPE}=${scope}`, `${LABEL_RUN}=${runId}`, `${LABEL_ITEM}=${itemId}`, `${LABEL_ATTEMPT}=${attempt}`],
    },
  });
}

/**
 * Removes the managed containers of `scope` whose attempt is not live. An engine that cannot be reached
 * is a {@link TargetUnreachable}: the caller goes on without the removal.
 */
export async function reapOrphans(docker: Docker, scope: string, isLive: (runId: string, itemId: string, attempt: number) => boolean): Promise<number> {
  try {
    return await removeOrphans(docker, scope, isLive);
  } catch (e) {
    throw asUnreachable(docker, e);
  }
}

/** `e` as a {@link TargetUnreachable} when it says the engine could not be reached; otherwise `e` itself. */
export function asUnreachable(docker: Docker, e: unknown): unknown {
  if (!isConnectionError(e)) return e;
  return new TargetUnreachable('docker', `docker engine unreachable at ${describeEngine(docker)}: ${messageOf(e)}; ${UNREACHABLE_FIX}`);
}

async function removeOrphans(docker: Docker, scope: string, isLive: (runId: string, itemId: string, attempt: number) => boolean): Promise<number> {
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

export function statusOf(e: unknown): number | undefined {
  const code = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EACCES',
  'ECONNABORTED',
]);

export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; statusCode?: unknown } | null;
  if (err === null || typeof err !== 'object' || err.statusCode !== undefined) return false;
  if (typeof err.code === 'string' && CONNECTION_ERRORS.has(err.code)) return true;
  return typeof err.message === 'string' && /socket hang up|premature close|aborted/i.test(err.message);
}

export function messageOf(e: unknown): string {
  const err = e as { json?: { message?: unknown }; message?: unknown } | null;
  if (typeof err?.json?.message === 'string') return err.json.message;
  return typeof err?.message === 'string' ? err.message : String(e);
}

/** A container's output on its way to the job's log: from a stream while it runs, completed after its exit. */
export interface ContainerOutput {
  /** Settles when the stream ends (or fails). */
  ended: Promise<void>;
  /**
   * Stops writing what the stream brings, and completes the log from the engine's record of the output
   * (`GET /containers/{id}/logs`, every byte since the start): whatever the stream had not delivered by
   * now. A stream may end, or be cut, before it brought everything (a busy engine delivers an attach
   * stream's last bytes late); the engine's record is whole. Call once the container has exited.
   */
  complete(container: Docker.Container): Promise<void>;
}

/**
 * Demultiplexes a container's output stream, handing each chunk to `write` with its stream's name.
 * Settles when the stream ends, closes or fails.
 */
function demux(docker: Docker, stream: Readable | Duplex, write: (chunk: Buffer, name: 'stdout' | 'stderr') => void): Promise<void> {
  const sinkFor = (name: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        write(chunk, name);
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

/** A stream of the container's multiplexed output, demultiplexed into the job's log (see {@link ContainerOutput}). */
export function pipeToLog(docker: Docker, stream: Readable | Duplex, job: WorkerJob): ContainerOutput {
  const delivered = { stdout: 0, stderr: 0 };
  let open = true;
  const ended = demux(docker, stream, (chunk, name) => {
    if (!open) return;
    delivered[name] += chunk.length;
    job.log.write(chunk, name);
  });
  return {
    ended,
    async complete(container) {
      open = false;
      let record: Readable | undefined;
      try {
        record = (await withTimeout(container.logs({ stdout: true, stderr: true, follow: true }), REQUEST_TIMEOUT_MS)) as unknown as Readable | undefined;
      } catch {
        // no record kept (a log driver that keeps none): what the stream brought is all there is
      }
      if (record === undefined) return;
      const skip = { ...delivered };
      const read = demux(docker, record, (chunk, name) => {
        const left = chunk.subarray(Math.min(skip[name], chunk.length));
        skip[name] -= chunk.length - left.length;
        if (left.length > 0) job.log.write(left, name);
      });
      // Following an exited container's record ends at its end; an engine that never ends it is cut.
      if (
        (await withTimeout(
          read.then(() => true),
          RECORD_READ_MS,
        )) === undefined
      ) {
        job.log.write(`agora: the container engine did not finish sending the output within ${RECORD_READ_MS / 1000} s; the log may be incomplete\n`, 'stderr');
      }
      record.destroy();
    },
  };
}

/** How long reading an exited container's recorded output may take before it is cut. */
const RECORD_READ_MS = 30_000;

/**
 * Attaches to a created container before it starts. Dockerode's own `attach` writes its options as a
 * JSON request body, which a hijacked connection delivers into the worker's stdin (Podman does); this
 * dials the same endpoint with an empty body instead.
 */
export function attachStreams(docker: Docker, container: Docker.Container, withStdin: boolean): Promise<Duplex> {
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

export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function inspectOrUndefined(c: Docker.Container): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await c.inspect();
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

export async function removeQuietly(c: Docker.Container): Promise<void> {
  try {
    await c.remove({ force: true, v: true });
  } catch {
    // Gone already, or the engine is unreachable: reapOrphans cleans up after a restart.
  }
}

/**
 * Resolves once the container is no longer running. The engine's wait call alone is not enough: when
 * the connection drops after the engine sent the response headers, dockerode's promise never settles.
 * So the container is also inspected every HEARTBEAT_MS; an inspect that fails (engine gone) rejects.
 */
export async function waitForExit(container: Docker.Container): Promise<void> {
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
