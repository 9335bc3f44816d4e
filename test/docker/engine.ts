import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { LogSink, WorkerJob } from '../../src/executors/types.js';

/** The socket `/work/shared/tools/container-engine.sh start` serves Podman's Docker API on. */
export const DEFAULT_ENGINE = 'unix:///tmp/agora-podman.sock';
export const START_SCRIPT = 'sh ../shared/tools/container-engine.sh start';
export const BUSYBOX = 'localhost/agora-busybox:test';
export const NODE = 'localhost/agora-node:test';

/** A client for DOCKER_HOST, or the Podman socket the start script serves when DOCKER_HOST is unset. */
export function engineClient(host = process.env.DOCKER_HOST ?? DEFAULT_ENGINE): Docker {
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  return new Docker();
}

/**
 * Connects to the test engine. Unreachable: under CI that is a failure (thrown); elsewhere the suite is
 * skipped with a warning naming the start script. Returns undefined when skipping.
 */
export async function connectEngine(): Promise<Docker | undefined> {
  const docker = engineClient();
  try {
    await docker.ping();
    return docker;
  } catch (e) {
    const why = `no container engine at ${process.env.DOCKER_HOST ?? DEFAULT_ENGINE} (${(e as Error).message})`;
    if (process.env.CI) throw new Error(`${why}; CI must run \`${START_SCRIPT}\` before the docker tests`, { cause: e });
    console.warn(`skipping docker tests: ${why}; start one with \`${START_SCRIPT}\``);
    return undefined;
  }
}

/** A temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A job with a fresh redacting log sink and the busybox image unless told otherwise. */
export function makeJob(partial: Partial<WorkerJob> & Pick<WorkerJob, 'runId' | 'itemId' | 'workspaceDir' | 'command'>): WorkerJob & { log: LogSink } {
  const secrets = partial.secrets ?? {};
  return {
    attempt: 1,
    env: {},
    secrets,
    log: createLogSink({ secrets: Object.values(secrets) }),
    options: { image: BUSYBOX },
    ...partial,
  };
}

/** Containers this project's target created (label agora.managed=true), optionally of one run. */
export async function managedContainers(docker: Docker, runId?: string): Promise<Docker.ContainerInfo[]> {
  const label = ['agora.managed=true', ...(runId ? [`agora.run=${runId}`] : [])];
  return docker.listContainers({ all: true, filters: { label } });
}

/** A run id unique to this test process, so parallel suites never see each other's containers. */
export function uniqueRunId(name: string): string {
  return `${name}-${process.pid}-${Date.now().toString(36)}`;
}

/**
 * A gate a containerised worker waits at until the test opens it: for tests that must act while a
 * container runs (cut the engine connection, kill the server), however slow the machine. The container's
 * filesystem is its own, so `open()` creates the gate's file inside every running container of the run
 * with an exec; a container started after `open()` waits until it is opened again.
 */
export interface ContainerGate {
  /** Shell: loops until the gate is open in this container. */
  readonly wait: string;
  /** Opens the gate in the run's running containers; resolves with how many it opened (at least one). */
  open(): Promise<number>;
}

const GATE_FILE = '/tmp/agora-gate-open';
/** The shell loop every container gate waits in (the same for every run: each container has its own /tmp). */
export const CONTAINER_GATE_WAIT = `while [ ! -e ${GATE_FILE} ]; do sleep 0.1; done`;

export function containerGate(docker: Docker, runId: string): ContainerGate {
  return {
    wait: CONTAINER_GATE_WAIT,
    async open() {
      const running = (await managedContainers(docker, runId)).filter((c) => c.State === 'running');
      if (running.length === 0) throw new Error(`no running container of run ${runId} to open the gate in`);
      for (const info of running) {
        const exec = await docker.getContainer(info.Id).exec({ Cmd: ['/bin/sh', '-c', `: > ${GATE_FILE}`], AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({ hijack: true, stdin: false });
        stream.resume();
        await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('close', resolve).on('error', reject));
        const { ExitCode } = await exec.inspect();
        if (ExitCode !== 0) throw new Error(`opening the gate in container ${info.Id.slice(0, 12)} exited ${ExitCode}`);
      }
      return running.length;
    },
  };
}
