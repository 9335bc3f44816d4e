import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { WorkerJob } from './types.js';

/**
 * What an attempt's container is, decided before the engine is asked anything: the job's `docker`
 * options checked and defaulted, the container's deterministic name, its labels (run, item, attempt,
 * scope) and environment, and the create request with its confinement (read-only root, no capabilities,
 * no network unless configured, `/workspace` and `/agora` anonymous volumes: see docker-target.ts for why).
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
/** Where the attempt's call socket (`agora call`) is mounted in the container of the item's own worker. */
export const CONTAINER_CALL_SOCKET = '/run/agora/call.sock';
/**
 * The container directory of the attempt's control files (an anonymous volume, like `/workspace`, only
 * when the job has one): `params.json` (`$AGORA_PARAMS`) and `emit/` (`$AGORA_EMIT`).
 */
export const CONTAINER_CONTROL = '/agora';
export const CONTAINER_PARAMS = `${CONTAINER_CONTROL}/params.json`;
export const CONTAINER_EMIT = `${CONTAINER_CONTROL}/emit`;

/** True when the job's container needs the control volume. */
export function hasControlFiles(job: WorkerJob): boolean {
  return job.paramsFile !== undefined || job.emitDir !== undefined;
}

const DEFAULT_USER = '65534:65534';
const DEFAULT_PIDS = 256;

/**
 * The container name of an attempt: deterministic, so that the engine itself refuses a second one. A job
 * beside the attempt's own worker (`subJob`: a tool's, a dependency's) gets a name of its own.
 */
export function containerName(runId: string, itemId: string, attempt: number, scope = DEFAULT_SCOPE, subJob?: string): string {
  const digest = createHash('sha256')
    .update(JSON.stringify(subJob === undefined ? [scope, runId, itemId, attempt] : [scope, runId, itemId, attempt, subJob]))
    .digest('hex')
    .slice(0, 16);
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

/** A job's docker options, checked and defaulted. */
export type Validated = {
  image: string;
  user: string;
  owner: { uid: number; gid: number };
  network: string;
  memory?: { text: string; bytes: number };
  cpus?: number;
  pids: number;
};

export function validateOptions(raw: Record<string, unknown>): Validated | string {
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
    if (typeof raw.pids !== 'number' || !Number.isInteger(raw.pids) || raw.pids < 1)
      return `docker options: pids ${JSON.stringify(raw.pids)} must be a positive integer`;
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
  // The host path in job.env means nothing in the container: the socket is mounted here.
  if (job.callSocket !== undefined) env.AGORA_CALL_SOCKET = CONTAINER_CALL_SOCKET;
  else delete env.AGORA_CALL_SOCKET;
  // Likewise the control files: copied into the container's own volume (docker-target.ts).
  if (job.paramsFile !== undefined) env.AGORA_PARAMS = CONTAINER_PARAMS;
  else delete env.AGORA_PARAMS;
  if (job.emitDir !== undefined) env.AGORA_EMIT = CONTAINER_EMIT;
  else delete env.AGORA_EMIT;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

export function labelsOf(job: WorkerJob, scope: string): Record<string, string> {
  return {
    [LABEL_RUN]: job.runId,
    [LABEL_ITEM]: job.itemId,
    [LABEL_ATTEMPT]: String(job.attempt),
    [LABEL_MANAGED]: 'true',
    [LABEL_SCOPE]: scope,
  };
}

export function createSpec(job: WorkerJob, o: Validated, scope: string): Docker.ContainerCreateOptions {
  const hasStdin = job.stdin !== undefined;
  return {
    name: containerName(job.runId, job.itemId, job.attempt, scope, job.subJob),
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
    Volumes: { [CONTAINER_WORKSPACE]: {}, ...(hasControlFiles(job) ? { [CONTAINER_CONTROL]: {} } : {}) },
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
      // Only the socket file is mounted (not its private directory): it serves this attempt's calls only.
      Binds: job.callSocket !== undefined ? [`${job.callSocket}:${CONTAINER_CALL_SOCKET}`] : [],
      AutoRemove: false,
    },
  };
}
