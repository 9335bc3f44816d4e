import { tempSuffix } from '../temp-name.js';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathInside } from '../path-inside.js';
import { readBootId, readProcStat, type ProcStat } from '../process-identity.js';
import type { WorkerJob, WorkerResult, WorkerTarget } from './types.js';
import { LauncherLost, spawnFromLauncher, type LaunchedChild } from './launcher.js';

/**
 * The `local` target: each worker is a child process in its own process group (and session), so that
 * stopping it — or cleaning up after it — reaches every process it started. Linux: process identity
 * after a restart is checked through /proc.
 */

export interface LocalTargetOptions {
  /** Directory for pidfiles (`<stateDir>/<run>/<item>.<attempt>[+<job>].pid`, {@link pidfilePath}), read back by `reapOrphans`. */
  stateDir: string;
  /** How long a stopped worker gets between SIGTERM and SIGKILL. Default 5000 ms. */
  killGraceMs?: number;
}

/** What a pidfile records about a running worker. */
export interface WorkerPidRecord {
  runId: string;
  itemId: string;
  attempt: number;
  /** The job beside the attempt's own worker this process is (`WorkerJob.subJob`: a tool's, a dependency's); absent for the worker. */
  subJob?: string;
  pid: number;
  pgid: number;
  /** ISO time the worker was started. */
  startedAt: string;
  /** The leader's start time after boot in clock ticks (field 22 of /proc/<pid>/stat), when known. */
  startTime?: number;
  /** /proc/sys/kernel/random/boot_id at start, when known. */
  bootId?: string;
}

/** Variables copied from the orchestrator's own environment when set; nothing else of it reaches a worker. */
export const INHERITED_ENV_VARS = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR'] as const;

const DEFAULT_KILL_GRACE_MS = 5000;
/** After the worker is gone, how long to wait for its output pipes to drain before cutting them. */
const PIPE_DRAIN_MS = 2000;
const POLL_MS = 50;

/**
 * Creates the local child-process target. `run` writes the worker's output to `job.log` but does not
 * close it: the caller owns the sink (and closes it once `run` resolves).
 */
export function createLocalTarget(opts: LocalTargetOptions): WorkerTarget {
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  return {
    name: 'local',
    // The worker reads $AGORA_PARAMS and writes $AGORA_EMIT where they are, on this host.
    controlFiles: ['params', 'emit'],
    run: (job, signal) => runLocal(job, signal, opts.stateDir, killGraceMs),
    reapOrphans: async (isLive) => reapOrphans(opts.stateDir, isLive),
  };
}

/** The worker's whole environment: a minimal base, the job's env and secrets, then Agora's own variables. */
export function workerEnvironment(job: WorkerJob, parent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV_VARS) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, job.env, job.secrets);
  env.AGORA_RUN = job.runId;
  env.AGORA_ITEM = job.itemId;
  env.AGORA_ATTEMPT = String(job.attempt);
  env.AGORA_WORKSPACE = job.workspaceDir;
  return env;
}

/**
 * One pidfile per job, so that a job beside the attempt's own worker (`subJob`: a tool's, a command
 * dependency's, which share its run, item and attempt) neither overwrites the worker's record nor removes
 * it when it ends: `<stateDir>/<run>/<item>.<attempt>.pid` for the worker, `<item>.<attempt>+<job>.pid`
 * for a job beside it, `<job>` the first 16 hex digits of sha256 of its `subJob` (any text, made a file
 * name). `+` is no character of an id, so no job's name is another item's or attempt's. The ids are
 * validated, and proven here to stay in place.
 */
export function pidfilePath(stateDir: string, runId: string, itemId: string, attempt: number, subJob?: string): string {
  const job = subJob === undefined ? '' : `+${createHash('sha256').update(subJob).digest('hex').slice(0, 16)}`;
  return pathInside(stateDir, [runId, `${itemId}.${attempt}${job}.pid`], 'run id and item id');
}

async function runLocal(job: WorkerJob, signal: AbortSignal, stateDir: string, killGraceMs: number): Promise<WorkerResult> {
  if (signal.aborted) return { exitCode: null, signal: null, reason: `stopped: ${abortReason(signal)}` };
  const argv0 = job.command[0];
  if (argv0 === undefined || argv0 === '') {
    return { exitCode: null, reason: 'cannot start worker: the command is empty', infrastructureFailure: false };
  }
  if (!isDirectory(job.workspaceDir)) {
    return { exitCode: null, reason: `workspace ${job.workspaceDir} is missing`, infrastructureFailure: true };
  }

  // Before the spawn: a name that cannot be a pidfile must not leave a worker nobody can find.
  const pidfile = pidfilePath(stateDir, job.runId, job.itemId, job.attempt, job.subJob);
  let child: LaunchedChild;
  try {
    // Started by the launcher: a start from this large process costs it milliseconds of kernel time (launcher.ts).
    child = await spawnFromLauncher(argv0, job.command.slice(1), { cwd: job.workspaceDir, env: workerEnvironment(job), detached: true });
  } catch (e) {
    if (e instanceof LauncherLost) return { exitCode: null, reason: `cannot start ${argv0}: ${e.message}`, infrastructureFailure: true };
    return cannotStart(argv0, e);
  }
  const pid = child.pid;
  // detached: the child called setsid(), so it leads its own process group: pgid = pid.
  const pgid = pid;
  try {
    writePidfile(pidfile, {
      runId: job.runId,
      itemId: job.itemId,
      attempt: job.attempt,
      ...(job.subJob !== undefined ? { subJob: job.subJob } : {}),
      pid,
      pgid,
      startedAt: new Date().toISOString(),
      startTime: child.startTime,
      bootId: readBootId() ?? undefined,
    });
  } catch (e) {
    // Without a pidfile a restart could not clean up after this worker: do not run it.
    signalGroup(pgid, 'SIGKILL');
    child.stdout!.destroy();
    child.stderr!.destroy();
    child.stdin!.destroy();
    const message = e instanceof Error ? e.message : String(e);
    return { exitCode: null, reason: `cannot record the worker's pid: ${message}`, infrastructureFailure: true };
  }

  try {
    child.stdout!.on('data', (chunk: Buffer) => job.log.write(chunk, 'stdout'));
    child.stderr!.on('data', (chunk: Buffer) => job.log.write(chunk, 'stderr'));
    // A worker that does not read its stdin closes the pipe: EPIPE is its business, not an error here.
    child.stdin!.on('error', () => {});
    child.stdin!.end(job.stdin ?? '');

    let stop: { reason: string; at: number; sent: NodeJS.Signals } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      if (stop) return;
      stop = { reason: abortReason(signal), at: Date.now(), sent: 'SIGTERM' };
      signalGroup(pgid, 'SIGTERM');
      killTimer = setTimeout(() => {
        stop!.sent = 'SIGKILL';
        signalGroup(pgid, 'SIGKILL');
      }, killGraceMs);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // An abort while the worker was starting found no listener yet.
    if (signal.aborted) onAbort();

    const { code, signal: sig } = await child.exited;
    signal.removeEventListener('abort', onAbort);
    if (stop) {
      // The group got SIGTERM too: give the rest of it what is left of the grace period.
      await waitUntilGroupGone(pgid, stop.at + killGraceMs);
    }
    clearTimeout(killTimer);
    // Background children must not outlive the item.
    if (liveGroupMembers(pgid).length > 0) signalGroup(pgid, 'SIGKILL');
    await waitUntilGroupGone(pgid, Date.now() + killGraceMs);
    // Output still in the pipes is part of the log; a process that escaped the group could hold them open forever.
    const drained = await Promise.race([child.closed.then(() => true), delay(PIPE_DRAIN_MS).then(() => false)]);
    if (!drained) {
      child.stdout!.destroy();
      child.stderr!.destroy();
    }

    if (stop) return { exitCode: null, signal: sig ?? stop.sent, reason: `stopped: ${stop.reason}` };
    if (child.lost) return { exitCode: null, reason: `lost track of the worker: ${child.lost.message}`, infrastructureFailure: true };
    if (sig) return { exitCode: null, signal: sig, reason: `killed by ${sig}`, infrastructureFailure: false };
    return { exitCode: code, signal: null };
  } finally {
    rmSync(pidfile, { force: true });
  }
}

function cannotStart(argv0: string, e: unknown): WorkerResult {
  const message = e instanceof Error ? e.message : String(e);
  return { exitCode: null, reason: `cannot start ${argv0}: ${message}`, infrastructureFailure: false };
}

function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (typeof r === 'string' && r !== '') return r;
  if (r instanceof Error && r.message !== '') return r.message;
  return 'aborted';
}

/**
 * Kills the process groups recorded in pidfiles under `stateDir` whose attempt is not live, provided
 * the recorded process is provably the same one (same boot, same start time), and removes those pidfiles.
 * Every pidfile of an attempt counts (its worker's and those of the jobs beside it, and the one an Agora
 * before per-job pidfiles wrote): each is judged by the ids it records, not by its name.
 * Returns how many groups were killed.
 */
async function reapOrphans(stateDir: string, isLive: (runId: string, itemId: string, attempt: number) => boolean): Promise<number> {
  let killed = 0;
  for (const file of listPidfiles(stateDir)) {
    const record = readPidfile(file);
    if (record && isLive(record.runId, record.itemId, record.attempt)) continue;
    if (record && orphanedGroupMembers(record).length > 0) {
      signalGroup(record.pgid, 'SIGKILL');
      killed++;
    }
    rmSync(file, { force: true });
  }
  return killed;
}

/**
 * Running members of the recorded group that belong to the recorded worker. If the leader's pid now
 * names a different process (another start time), the number was reused: nothing of ours is left.
 * Members joined the group after its leader was started, so none may be older than it.
 */
function orphanedGroupMembers(record: WorkerPidRecord): ProcStat[] {
  if (record.startTime === undefined) return [];
  const boot = readBootId();
  if (record.bootId !== undefined && boot !== null && record.bootId !== boot) return [];
  const leader = readProcStat(record.pid);
  if (leader && leader.startTime !== record.startTime) return [];
  return liveGroupMembers(record.pgid).filter((p) => p.startTime >= record.startTime!);
}

function listPidfiles(stateDir: string): string[] {
  const files: string[] = [];
  for (const run of safeReaddir(stateDir)) {
    for (const name of safeReaddir(join(stateDir, run))) {
      if (name.endsWith('.pid')) files.push(join(stateDir, run, name));
    }
  }
  return files;
}

function readPidfile(file: string): WorkerPidRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<WorkerPidRecord>;
    const ok =
      typeof r.runId === 'string' &&
      typeof r.itemId === 'string' &&
      Number.isInteger(r.attempt) &&
      Number.isInteger(r.pid) &&
      Number.isInteger(r.pgid) &&
      r.pid! > 1 &&
      r.pgid! > 1;
    return ok ? (r as WorkerPidRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Written to a temporary name and renamed, so that `reapOrphans` never reads half a record. */
function writePidfile(file: string, record: WorkerPidRecord): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const tmp = `${file}.${tempSuffix()}.tmp`;
  writeFileSync(tmp, JSON.stringify(record) + '\n');
  renameSync(tmp, file);
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function waitUntilGroupGone(pgid: number, deadline: number): Promise<boolean> {
  for (;;) {
    if (liveGroupMembers(pgid).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}

// ---- Linux process facts (/proc) ----

/**
 * Processes of group `pgid` that still run. Zombies do not count: they are dead and only wait to be
 * collected, which an init that does not reap orphans may never do. Without /proc, `kill(-pgid, 0)`.
 */
function liveGroupMembers(pgid: number): ProcStat[] {
  // A group with no process at all (the common case once a worker exited) costs one syscall, not a
  // read of every /proc/<pid>/stat on the machine (several ms a look on a busy host, twice per item).
  if (!groupSignalable(pgid)) return [];
  if (readProcStat(process.pid) === undefined) return [{ pid: pgid, state: '?', pgrp: pgid, startTime: 0 }];
  const members: ProcStat[] = [];
  for (const name of safeReaddir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readProcStat(Number(name));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') members.push(st);
  }
  return members;
}

/** Sends `sig` to every process of group `pgid`; false when the group is gone (or not ours to signal). */
function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

function groupSignalable(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
