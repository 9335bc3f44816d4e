/**
 * Which process wrote a lock, recorded so that a later process can prove that writer is gone
 * (docs/storage.md). A pid alone proves nothing: pids are reused (in a container the same small pid
 * comes back after every restart), and a killed child of a parent that does not reap stays a zombie
 * whose pid still answers `kill(pid, 0)`. So a writer is recorded with its host, the kernel's boot id
 * and its start time (field 22 of `/proc/<pid>/stat`), and it is gone when the host is this one and the
 * machine rebooted since, or no process has that pid, or the process with that pid is a zombie, or it
 * started at another time (the pid was reused).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessIdentity {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id, or null where there is no /proc. */
  boot: string | null;
  /** The process's start time in clock ticks since boot, or null where there is no /proc. */
  start: number | null;
}

/**
 * How old a file must be before it is removed for a writer that {@link liveness} judges gone (a secret
 * store a killed `submit` left, a ref value a killed process did not rename): two containers that share a
 * host name and a kernel judge each other's pids wrongly, and each such file is written and used within
 * seconds by a live writer.
 */
export const GONE_WRITER_MIN_AGE_MS = 10 * 60_000;

/** `gone`: provably not running; `alive`: running (or cannot be told apart from running); `elsewhere`: another host. */
export type ProcessLiveness = 'gone' | 'alive' | 'elsewhere';

let self: ProcessIdentity | undefined;

/** This process. */
export function selfIdentity(): ProcessIdentity {
  self ??= { pid: process.pid, host: hostname(), boot: readBootId(), start: readProcStat(process.pid)?.startTime ?? null };
  return self;
}

export function liveness(id: ProcessIdentity): ProcessLiveness {
  const me = selfIdentity();
  if (id.host !== me.host) return 'elsewhere';
  if (id.boot !== null && me.boot !== null && id.boot !== me.boot) return 'gone';
  try {
    process.kill(id.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
  }
  if (me.boot === null) return 'alive'; // no /proc: a pid that answers may be the writer
  let stat: ProcStat | undefined;
  try {
    stat = parseProcStat(id.pid, readFileSync(`/proc/${id.pid}/stat`, 'utf8'));
  } catch (e) {
    // Gone since it answered; any other failure (too many open files, say) proves nothing.
    return (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : 'alive';
  }
  if (stat.state === 'Z' || stat.state === 'X') return 'gone';
  if (id.start !== null && Number.isInteger(stat.startTime) && stat.startTime !== id.start) return 'gone';
  return 'alive';
}

/** Parses an identity recorded as JSON (by `JSON.stringify(selfIdentity())`), or null if it is not one. */
export function parseIdentity(value: unknown): ProcessIdentity | null {
  const v = value as Partial<ProcessIdentity> | null;
  if (typeof v !== 'object' || v === null) return null;
  if (!Number.isInteger(v.pid) || typeof v.host !== 'string') return null;
  if (v.boot !== null && typeof v.boot !== 'string') return null;
  if (v.start !== null && !Number.isInteger(v.start)) return null;
  return { pid: v.pid as number, host: v.host, boot: v.boot ?? null, start: v.start ?? null };
}

/** The kernel's boot id, or null where there is no /proc. */
export function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** What /proc/<pid>/stat says about a process. */
export interface ProcStat {
  pid: number;
  /** One-letter state: R, S, D, Z (zombie), X (dead), … */
  state: string;
  pgrp: number;
  /** Start time after boot in clock ticks (field 22 of /proc/<pid>/stat). */
  startTime: number;
}

/** Parses /proc/<pid>/stat; undefined when the process does not exist (or there is no /proc). */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(pid, text);
}

/** The fields of a /proc/<pid>/stat text. */
function parseProcStat(pid: number, text: string): ProcStat {
  // `pid (comm) state ppid pgrp …`: comm may contain spaces and parentheses, so split after the last `)`.
  // fields[0] is field 3 of proc(5) (state), so field N is fields[N - 3].
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0] ?? '?', pgrp: Number(fields[2]), startTime: Number(fields[19]) };
}
