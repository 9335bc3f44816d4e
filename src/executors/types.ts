/**
 * The executor port. An executor (`command`, `dispatch`) turns a work item into a WorkerJob; a target
 * (`local`, `docker`, `actions`) runs the job in isolation. The engine, not the worker, turns the
 * workspace's changes into the patch commit afterwards.
 */

/** Where a worker's output goes: bounded in size, secrets redacted, kept per attempt. */
export interface LogSink {
  write(chunk: string | Uint8Array, stream: 'stdout' | 'stderr'): void;
  /** Flush and close; resolves once the kept log is final (and in the sink's file, when it has one). */
  close(): Promise<void>;
  /** The last `maxBytes` of what was written (already redacted). */
  tail(maxBytes?: number): string;
}

export interface WorkerJob {
  runId: string;
  itemId: string;
  attempt: number;
  /**
   * Host directory holding the materialised workspace (the integration head at dispatch). The worker's
   * changes must be visible here when `run` resolves (a remote target copies them back).
   */
  workspaceDir: string;
  /** The commit the workspace holds (the item's base); a remote target checks its result was built on it. */
  base?: string;
  /** argv; a `command` item is `['/bin/sh', '-c', inputs.run]`. */
  command: string[];
  /** Non-secret environment for the worker. */
  env: Record<string, string>;
  /** Declared secrets only: passed as environment variables, redacted from every log. */
  secrets: Record<string, string>;
  /**
   * Declared secrets whose values the target itself supplies, so that they never pass through this
   * process: the `actions` target's job reads them from the repository's Actions secrets on the runner.
   */
  secretNames?: string[];
  /** Written to the worker's stdin, then stdin is closed. */
  stdin?: string;
  log: LogSink;
  /** Target-specific settings from the subagent config (image, network, memory, cpus, …). */
  options?: Record<string, unknown>;
  /**
   * The host path of the attempt's call socket (`agora call`), for the item's own worker only (never its
   * children's jobs). The local target finds it in `env` already; the docker target mounts it into the
   * container and points `$AGORA_CALL_SOCKET` there.
   */
  callSocket?: string;
  /**
   * The host path of the attempt's parameters file (`$AGORA_PARAMS`, mode 0600), for the item's own
   * worker only. The local target finds it in `env` already; the docker target copies it into the
   * container (`/agora/params.json`, readable by the worker only) and points the variable there.
   */
  paramsFile?: string;
  /**
   * The host directory an item emits into (`$AGORA_EMIT`), for the item's own worker only. The local
   * target finds it in `env` already; the docker target gives the worker an empty `/agora/emit` and,
   * after the exit, copies the control file the engine reads (`items.json`) from there into this one.
   */
  emitDir?: string;
  /**
   * Set on a job an attempt runs beside its own worker (a tool's, a command dependency's): it shares the
   * attempt's run, item and attempt, so this names it apart (the docker target's container name).
   */
  subJob?: string;
  /**
   * Told when the worker's workspace is a copy apart from `workspaceDir` (a container's), with the bridge
   * between the two, and told `undefined` once the worker has exited: a call the worker makes meanwhile
   * pulls the copy into `workspaceDir` before its child runs and pushes the result back after.
   */
  onWorkspace?(bridge: WorkspaceBridge | undefined): void;
  /**
   * Set by a caller that records the result durably after `run` resolves (an attempt: its outcome goes
   * into the run's state): the target then keeps what a restart would collect the worker from again (the
   * docker target's exited container) and hands its removal back as {@link WorkerResult.release}, so that
   * a crash before the record loses nothing. A worker that was stopped is not kept: its result is never
   * recorded. Without it, `run` leaves nothing behind.
   */
  keepUntilReleased?: boolean;
}

/** A running worker's own copy of its workspace, and the host's directory it was taken from. */
export interface WorkspaceBridge {
  /** Replaces `workspaceDir`'s content with the worker's copy as it is now. */
  pull(): Promise<void>;
  /** Writes `workspaceDir`'s files into the worker's copy (new and changed files; a deletion does not carry). */
  push(): Promise<void>;
}

export interface WorkerResult {
  /** Exit code, or null when the worker was killed by a signal or never started. */
  exitCode: number | null;
  signal?: string | null;
  /** Set when the worker did not finish on its own: `stopped: timed out`, `out of memory (exit 137, limit 64m)`, `image not found: …`. */
  reason?: string;
  /** True when a retry could help (engine down, image pull failed, …); false for a plain non-zero exit of the worker itself. */
  infrastructureFailure?: boolean;
  /**
   * Present when the target kept the exited worker for `job.keepUntilReleased`: removes it. The caller
   * calls it once the result is durable (or dropped), never before. It rejects when the worker could not
   * be removed (the caller says so; `reapOrphans` removes it when the next serve starts); one already gone
   * is fine, so calling it twice is harmless.
   */
  release?(): Promise<void>;
}

/** An attempt's control file, as a target names those it carries. */
export type ControlFile = 'params' | 'emit';

/** A dependency call's answer, as the caller reads it; `refused` when a rule kept the call from running. */
export interface CallOutcome {
  content: string;
  isError: boolean;
  refused: boolean;
}

/** A dependency call a stand-in answers in place of the callee's loop or job. */
export interface StandInCall {
  /** The child attempt's id: `fix.1/checker#1`. */
  id: string;
  subagent: string;
  input: unknown;
  /** The calling item's job: its workspace is the child's. */
  job: WorkerJob;
  signal: AbortSignal;
  /** Makes a call of the callee's own, under the same rules; absent when the callee cannot call on (a command's job has no call socket). */
  call?: (subagent: string, input: unknown) => Promise<CallOutcome>;
}

export interface WorkerTarget {
  readonly name: string;
  /**
   * True for a stand-in for every worker (the `agora test` mock): it runs an agent item's attempt too, in
   * place of its loop, and it is handed the call socket of every attempt that dispatches to a subagent.
   */
  readonly standsInForAgents?: boolean;
  /** A stand-in's answer to a dependency call, in place of the callee's loop or job. */
  answerCall?(call: StandInCall): Promise<{ ok: boolean; content: string }>;
  /**
   * The attempt's control files this target hands its worker: `params` (`job.paramsFile`,
   * `$AGORA_PARAMS`) and `emit` (`job.emitDir`, `$AGORA_EMIT`). A worker gets none the target does not list.
   */
  readonly controlFiles?: readonly ControlFile[];
  /**
   * Runs the job to completion. Aborting `signal` stops the worker (politely, then by force) and
   * resolves with what happened; it never leaves a process or container behind but one kept until
   * released (`job.keepUntilReleased`).
   */
  run(job: WorkerJob, signal: AbortSignal): Promise<WorkerResult>;
  /**
   * After a restart: true when a worker for exactly this attempt still exists (running, or exited and
   * not yet released; on the `actions` target, a worker job was dispatched for it: its dispatch record,
   * claim or result is on GitHub), so that `run` with the same job re-attaches to it and collects its
   * result instead of starting a new one; collecting it again is harmless. Throws `TargetUnreachable` when
   * the engine (docker's) cannot be asked (the attempt then counts as lost);
   * any other throw fails the run's recovery: a serve does not start, and the App leaves the run to its next
   * sweep (the `actions` target when GitHub cannot be read: its job may still run). Targets whose workers
   * cannot outlive the process (local) omit it.
   */
  canResume?(runId: string, itemId: string, attempt: number): Promise<boolean>;
  /**
   * True when aborting `run` with a {@link HandOver} reason (hand-over.ts) leaves the worker going and
   * resolves at once, so that another process re-attaches to it (`canResume`, then `run`): the attempt is
   * then neither stopped nor recorded lost. Other targets stop their worker on any abort.
   */
  readonly handsOver?: boolean;
  /**
   * For a target that hands over: stops the worker of an attempt that ended while no process watched it
   * (cancelled after its process handed it over or died), if it still runs; nothing when it has ended or
   * never started. Called by a process taking a run over, for every attempt that ended cancelled or failed;
   * calling it again is harmless.
   */
  stopElsewhere?(runId: string, itemId: string, attempt: number): Promise<void>;
  /**
   * After a restart: stop and remove workers left by an earlier process for which `isLive` returns
   * false (kept ones whose result was recorded before their release included). Returns how many were reaped.
   */
  reapOrphans?(isLive: (runId: string, itemId: string, attempt: number) => boolean): Promise<number>;
  close?(): Promise<void>;
}
