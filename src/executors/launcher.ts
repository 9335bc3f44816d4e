/**
 * Child processes started by a small launcher process.
 *
 * A process start from the orchestrator costs it far more than the start: libuv forks the whole process,
 * holds its thread until the child has exec'd, and afterwards every page the orchestrator writes takes a
 * copy-on-write fault once. On the VMs this project runs on, measured: 5 ms of blocked thread per start
 * for a small Node process, and about 30 ms of kernel time per start for a 200 MiB one that keeps
 * working; in `bench/local-fanout` the orchestrator spent more time in the kernel than in JavaScript.
 * Here one launcher (a bare Node process, started on first use and again if it dies) starts the workers
 * and forwards each child's pipes and exit as messages; the caller gets an object with the parts of a
 * ChildProcess it uses. Signals need no forwarding: `process.kill` reaches any pid. The launcher is the
 * workers' parent and reaps them; when its channel to this process closes (the orchestrator exited or
 * died), it SIGKILLs its workers' groups and exits.
 *
 * Every start is published on the diagnostics channel {@link SPAWN_CHANNEL} (the launcher's own spawn is
 * out of sight of this process's hooks).
 */
import { channel } from 'node:diagnostics_channel';
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Bytes of output the launcher may hold unsent before it pauses its children's output. */
const UNSENT_HIGH = 1024 * 1024;

/** The diagnostics channel each start is published on, as `{ file, args }`. */
export const SPAWN_CHANNEL = 'agora:launcher-spawn';
const spawns = channel(SPAWN_CHANNEL);

export interface LaunchOptions {
  cwd: string;
  /** The child's whole environment. */
  env: Record<string, string>;
  /** In its own session and process group (pgid = pid), as `spawn`'s `detached`. */
  detached: boolean;
}

/** Why a start failed, as the launcher saw it (an Error does not cross processes with its code). */
interface ErrorFields {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

type FromLauncher =
  | { op: 'started'; id: number; pid: number; startTime: number | undefined }
  | { op: 'failed'; id: number; error: ErrorFields }
  | { op: 'data'; id: number; fd: 1 | 2; chunk: Uint8Array }
  | { op: 'end'; id: number; fd: 1 | 2 }
  | { op: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { op: 'close'; id: number };

type ToLauncher =
  | ({ op: 'spawn'; id: number; file: string; args: string[] } & LaunchOptions)
  | { op: 'stdin'; id: number; chunk: Uint8Array }
  | { op: 'stdin-end'; id: number }
  | { op: 'destroy'; id: number; fd: 1 | 2 };

/**
 * The launcher, as a CommonJS script given to \`node -e\` (so it starts the same way from tsx, vitest and
 * the Action's bundle). Each child's stdout and stderr chunks, end, exit and close are sent in the order
 * they happen; stdin errors (a child that does not read it) are the child's business.
 *
 * - It ignores the signals a terminal or a service manager sends a whole process group: the orchestrator
 *   decides how its workers stop (SIGTERM, a grace period, SIGKILL), and needs their pipes meanwhile.
 * - It ends when its channel to the orchestrator closes, and takes its live workers' groups with it: an
 *   orchestrator that died between a start and its pidfile could not find them again.
 * - Output waiting to be sent is bounded: above UNSENT_HIGH bytes every child's output is paused (the
 *   child then blocks on its full pipe, as it would on the orchestrator's own), and resumed below half.
 * - A start reports the child's start time (field 22 of /proc/<pid>/stat) read before anything can reap
 *   it, for the pidfile.
 */
const LAUNCHER_SOURCE = `
const { spawn } = require('node:child_process');
const { readFileSync } = require('node:fs');
const children = new Map();
const post = (m) => process.send(m);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(sig, () => {});
process.on('disconnect', () => {
  for (const child of children.values()) { try { process.kill(child.detachedGroup ? -child.pid : child.pid, 'SIGKILL'); } catch {} }
  process.exit(0);
});
const UNSENT_HIGH = ${UNSENT_HIGH};
let unsent = 0;
const paused = new Set();
const forward = (stream, id, fd) => stream.on('data', (chunk) => {
  unsent += chunk.byteLength;
  process.send({ op: 'data', id, fd, chunk }, () => {
    unsent -= chunk.byteLength;
    if (unsent <= UNSENT_HIGH / 2) { for (const s of paused) s.resume(); paused.clear(); }
  });
  if (unsent > UNSENT_HIGH) { stream.pause(); paused.add(stream); }
});
const startTime = (pid) => {
  try { return Number(readFileSync('/proc/' + pid + '/stat', 'utf8').replace(/^.*\\) /s, '').split(' ')[19]); } catch { return undefined; }
};
const fields = (e) => ({ message: String(e && e.message || e), code: e && e.code, errno: e && e.errno, syscall: e && e.syscall, path: e && e.path });
process.on('message', (m) => {
  if (m.op === 'spawn') {
    let child;
    try {
      child = spawn(m.file, m.args, { cwd: m.cwd, env: m.env, detached: m.detached, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      post({ op: 'failed', id: m.id, error: fields(e) });
      return;
    }
    if (child.pid === undefined) {
      child.once('error', (e) => post({ op: 'failed', id: m.id, error: fields(e) }));
      return;
    }
    const id = m.id;
    child.detachedGroup = m.detached;
    children.set(id, child);
    child.on('error', () => {});
    child.stdin.on('error', () => {});
    post({ op: 'started', id, pid: child.pid, startTime: startTime(child.pid) });
    forward(child.stdout, id, 1);
    forward(child.stderr, id, 2);
    child.stdout.on('end', () => post({ op: 'end', id, fd: 1 }));
    child.stderr.on('end', () => post({ op: 'end', id, fd: 2 }));
    child.on('exit', (code, signal) => post({ op: 'exit', id, code, signal }));
    child.on('close', () => { children.delete(id); post({ op: 'close', id }); });
    return;
  }
  const child = children.get(m.id);
  if (child === undefined) return;
  if (m.op === 'stdin') child.stdin.write(m.chunk);
  else if (m.op === 'stdin-end') child.stdin.end();
  else if (m.op === 'destroy') (m.fd === 1 ? child.stdout : child.stderr).destroy();
});
`;

/** How a launched child ended: its exit code, or the signal that ended it. */
export interface LaunchedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A child process started by the launcher. Its ends are promises, settled once whenever they happen: the
 * launcher's messages can arrive in one batch, before the starter has had a turn to listen.
 */
export class LaunchedChild {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The child exited (or, when the launcher died, its end was lost: {@link lost}). */
  readonly exited: Promise<LaunchedExit>;
  /** The child exited and its output was read to the end (or the stream destroyed). */
  readonly closed: Promise<void>;
  /** Set when the launcher died while this child ran: what became of the child is unknown. */
  lost: LauncherLost | undefined;
  private markExited!: (exit: LaunchedExit) => void;
  private markClosed!: () => void;

  constructor(
    readonly pid: number,
    /** Field 22 of /proc/<pid>/stat, read by the launcher before anything could reap the child (undefined without /proc). */
    readonly startTime: number | undefined,
    send: (message: ToLauncher) => void,
    id: number,
  ) {
    this.exited = new Promise((resolve) => (this.markExited = resolve));
    const launcherClosed = new Promise<void>((resolve) => (this.markClosed = resolve));
    const output = (fd: 1 | 2) =>
      new Readable({
        read() {},
        destroy(error, done) {
          // Cut off before its end (not the destroy that follows a normal end): stop reading that pipe there too.
          if (!this.readableEnded) send({ op: 'destroy', id, fd });
          done(error);
        },
      });
    this.stdout = output(1);
    this.stderr = output(2);
    this.stdin = new Writable({
      write(chunk: Buffer, _encoding, done) {
        send({ op: 'stdin', id, chunk });
        done();
      },
      final(done) {
        send({ op: 'stdin-end', id });
        done();
      },
      destroy(error, done) {
        // The destroy that follows a normal end has nothing left to tell.
        if (!this.writableFinished) send({ op: 'stdin-end', id });
        done(error);
      },
    });
    // As a ChildProcess's 'close': once the output has been read to its end (or cut off), not merely sent.
    const read = (stream: Readable) => finished(stream).catch(() => undefined);
    this.closed = Promise.all([launcherClosed, read(this.stdout), read(this.stderr)]).then(() => undefined);
  }

  /** @internal A message about this child from the launcher. */
  receive(m: Exclude<FromLauncher, { op: 'started' | 'failed' }>): void {
    if (m.op === 'data' || m.op === 'end') {
      // Output the caller cut off (destroyed its stream) is dropped, as a ChildProcess's would be.
      const stream = this.streamOf(m.fd);
      if (stream.destroyed) return;
      stream.push(m.op === 'end' ? null : Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
    } else if (m.op === 'exit') this.markExited({ code: m.code, signal: m.signal });
    else this.markClosed();
  }

  /** @internal The launcher died: nothing more will be heard of this child. */
  lose(reason: LauncherLost): void {
    this.lost = reason;
    for (const stream of [this.stdout, this.stderr]) if (!stream.destroyed) stream.push(null);
    this.markExited({ code: null, signal: null });
    this.markClosed();
  }

  private streamOf(fd: 1 | 2): Readable {
    return fd === 1 ? this.stdout : this.stderr;
  }
}

/** The launcher and what is waiting on it; one per process, started on first use. */
class Launcher {
  private readonly process: ChildProcess;
  private nextId = 1;
  private readonly starting = new Map<number, { resolve: (c: LaunchedChild) => void; reject: (e: Error) => void }>();
  private readonly live = new Map<number, LaunchedChild>();
  dead = false;

  constructor() {
    // A bare Node: no loader, no flags of this process's, an empty environment (each start names its own);
    // in its own process group, so that a signal to the orchestrator's group (Ctrl-C) does not reach it.
    this.process = spawn(process.execPath, ['-e', LAUNCHER_SOURCE], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: {},
      detached: true,
    });
    this.process.on('message', (m: FromLauncher) => this.receive(m));
    this.process.on('error', (e) => this.die(new LauncherLost(`the process launcher failed: ${e.message}`)));
    // 'close', not 'exit': messages already on their way are delivered first.
    this.process.on('close', (code, signal) => this.die(new LauncherLost(`the process launcher exited (${signal ?? `code ${code}`})`)));
    this.holdOpen();
  }

  spawn(file: string, args: readonly string[], options: LaunchOptions): Promise<LaunchedChild> {
    const id = this.nextId++;
    const started = new Promise<LaunchedChild>((resolve, reject) => this.starting.set(id, { resolve, reject }));
    this.holdOpen();
    this.send({ op: 'spawn', id, file, args: [...args], ...options });
    return started;
  }

  private receive(m: FromLauncher): void {
    if (m.op === 'started' || m.op === 'failed') {
      const waiting = this.starting.get(m.id);
      this.starting.delete(m.id);
      if (waiting === undefined) return;
      if (m.op === 'failed') waiting.reject(Object.assign(new Error(m.error.message), m.error));
      else {
        const child = new LaunchedChild(m.pid, m.startTime, (message) => this.send(message), m.id);
        this.live.set(m.id, child);
        waiting.resolve(child);
      }
    } else {
      const child = this.live.get(m.id);
      if (m.op === 'close') this.live.delete(m.id);
      child?.receive(m);
    }
    this.holdOpen();
  }

  private send(message: ToLauncher): void {
    if (!this.dead) this.process.send(message);
  }

  /** Keeps this process alive exactly while a start or a child is outstanding, as a child of its own would. */
  private holdOpen(): void {
    const busy = this.starting.size > 0 || this.live.size > 0;
    if (busy) {
      this.process.ref();
      this.process.channel?.ref();
    } else {
      this.process.unref();
      this.process.channel?.unref();
    }
  }

  private die(reason: LauncherLost): void {
    if (this.dead) return;
    this.dead = true;
    // One that failed but lives on must neither linger nor keep this process alive.
    this.process.kill('SIGKILL');
    this.process.unref();
    this.process.channel?.unref();
    for (const { reject } of this.starting.values()) reject(reason);
    this.starting.clear();
    for (const child of this.live.values()) child.lose(reason);
    this.live.clear();
  }
}

/** The launcher died: a start or a child it had is lost (an infrastructure failure, not the command's). */
export class LauncherLost extends Error {
  override readonly name = 'LauncherLost';
}

let launcher: Launcher | undefined;

/**
 * Starts `file` with `args` from the launcher, its stdin, stdout and stderr piped. Resolves once the
 * child has started (its pid known); rejects with the start's error (ENOENT, EACCES, bad arguments) when
 * it could not.
 */
export function spawnFromLauncher(file: string, args: readonly string[], options: LaunchOptions): Promise<LaunchedChild> {
  spawns.publish({ file, args });
  if (launcher === undefined || launcher.dead) launcher = new Launcher();
  return launcher.spawn(file, args, options);
}
