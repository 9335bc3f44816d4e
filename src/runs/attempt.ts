import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AgentConfig, OrchConfig, SubagentConfig } from '../config/types.js';
import { AgoraError, errorMessage, isAgoraError } from '../errors.js';
import { CALL_SOCKET_ENV } from '../agents/call-socket.js';
import { buildWorkerJob, type BuiltJob } from '../executors/build-job.js';
import { agentApiKey, runAgent, type AgentRunResult } from '../agents/run-agent.js';
import { openCommandCalls, reachableAgentKeyEnv } from '../agents/command-calls.js';
import { createLogSink } from '../executors/log-sink.js';
import { redactAll } from '../executors/redact.js';
import type { LogSink, WorkerTarget } from '../executors/types.js';
import type { LocalGitStore } from '../git/local-store.js';
import { crashPoint } from '../crash-points.js';
import { captureWorkspace, type Workspace, type WorkspaceCapture } from '../git/workspace.js';
import type { Oid } from '../git/types.js';
import { PathOutsideDirectoryError, pathInside } from '../path-inside.js';
import type { Plan, WorkItem } from '../plan/schema.js';
import type { ChildCall, Emission, RunState } from '../engine/types.js';
import { flattenChildren, type ChildRecord } from '../agents/dependency-calls.js';
import { runDeadline } from '../engine/deadline.js';
import { emitDir, prepareEmitDir, readEmission } from './emit.js';
import { SecretParamsUnavailable, workerParams, writeParamsFile } from './params.js';
import { NeedUnavailable, resolveNeeds } from './needs.js';
import { recordPatch } from './patches.js';
import { secretInOutputReason, secretInPatchReason, secretsInOutput, secretsInPatch } from './patch-secrets.js';
import type { RunRefs } from './refs.js';
import type { WorkspacePool } from './workspace-pool.js';

/**
 * One attempt of one item, start to finish: materialise the workspace at the base, run the worker on
 * its target, keep its log, and turn the workspace's changes into a patch commit within the item's
 * scope. Every worker problem becomes an outcome with a reason; nothing here throws for them.
 */

export type AttemptOutcome = (
  | { kind: 'succeeded'; itemId: string; attempt: number; patch: Oid; log?: Oid; exitCode: number | null; emitted?: Emission; calls?: ChildCall[] }
  | { kind: 'failed'; itemId: string; attempt: number; reason: string; retryable: boolean; log?: Oid; exitCode?: number | null; calls?: ChildCall[] }
  | { kind: 'stopped'; itemId: string; attempt: number; log?: Oid }
) & {
  /**
   * Removes the worker the target kept so that a restart could collect it again (the docker target's
   * exited container): call it once the outcome is committed to the run's state, or dropped. It rejects
   * when the worker could not be removed.
   */
  release?: () => Promise<void>;
};

/** The removal of the attempt's worker, once its target handed it back (`WorkerResult.release`). */
interface KeptWorker {
  release?: () => Promise<void>;
}

export interface AttemptContext {
  store: LocalGitStore;
  refs: RunRefs;
  config: OrchConfig;
  targets: Readonly<Record<string, WorkerTarget | undefined>>;
  /** Where live logs and pidfiles go: `<gitdir>/agora` (workspaces and needs are in the pool's work dir, outside the repository). */
  scratchDir: string;
  workspaces: WorkspacePool;
  /** Where secrets are read from (only the declared ones reach a worker). */
  environment: Record<string, string | undefined>;
  /**
   * The names a plan's `command` items may declare as secrets, where `environment` is Agora's own (the
   * CLI: the config's `secrets`); absent where `environment` is the operator's list for the repository.
   */
  planSecrets?: ReadonlySet<string>;
  /**
   * Keep the item's exited worker (the docker target's container) until its outcome is committed, so
   * that a restart before then collects it again: only where a restarted process removes what is left
   * (`serve`, whose start reaps orphans). Elsewhere the target removes it as soon as it is collected.
   */
  keepFinishedWorkers?: boolean;
  clock: () => number;
}

export interface AttemptSpec {
  runId: string;
  plan: Plan;
  /** The run's state when the attempt started (for resolving `needs`). */
  state: RunState;
  itemId: string;
  attempt: number;
  base: Oid;
}

/** Stands in until the real sink exists; a job is never run with it. */
const UNATTACHED_LOG: LogSink = {
  write() {
    throw new Error('log sink not attached');
  },
  close: async () => {},
  tail: () => '',
};

/** `<scratch>/logs/<run>/<item>.<attempt>.log`; the ids are validated, and proven here to stay in place. */
export function liveLogPath(scratchDir: string, runId: string, itemId: string, attempt: number): string {
  return pathInside(join(scratchDir, 'logs'), [runId, `${itemId}.${attempt}.log`], 'run id and item id');
}

/** `<work dir>/needs/<run>/<item>.<attempt>/`: where the attempt's `needs` are written (outside the workspace and the repository). */
export function needsDir(workDir: string, runId: string, itemId: string, attempt: number): string {
  return pathInside(join(workDir, 'needs'), [runId, `${itemId}.${attempt}`], 'run id and item id');
}

/**
 * Runs the attempt. A failure's reason is made from what the worker left (its last log line, the paths
 * it wrote), so it passes the same secret redaction as the log before it reaches the state, the audit
 * entries, the bundle and the check runs.
 */
export async function runAttempt(ctx: AttemptContext, spec: AttemptSpec, signal: AbortSignal, workspace?: Promise<Workspace>): Promise<AttemptOutcome> {
  const secrets: string[] = [];
  const children: ChildRecord[] = [];
  const kept: KeptWorker = {};
  let outcome: AttemptOutcome;
  try {
    outcome = await runAttemptWith(ctx, spec, signal, secrets, children, kept, workspace);
  } catch (e) {
    await kept.release?.().catch(() => undefined); // no outcome of this attempt will name it; serve's next start reaps it
    throw e;
  }
  // Every child attempt the attempt ran gets its audit entry with the attempt's outcome, done or failed.
  const calls = outcome.kind === 'stopped' ? [] : childCalls(children);
  const withCalls = calls.length > 0 && outcome.kind !== 'stopped' ? { ...outcome, calls } : outcome;
  const redacted = withCalls.kind === 'failed' ? { ...withCalls, reason: redactAll(withCalls.reason, secrets) } : withCalls;
  return kept.release ? { ...redacted, release: kept.release } : redacted;
}

/** The audit's view of child attempts (pre-order, a caller before its callees); a record without its judgement is left out. */
export function childCalls(children: readonly ChildRecord[]): ChildCall[] {
  const out: ChildCall[] = [];
  for (const c of flattenChildren(children)) {
    if (c.caller === undefined || c.declared === undefined || c.maxHops === undefined || c.calleeKind === undefined) continue;
    if (c.input === undefined || c.startedAt === undefined || c.finishedAt === undefined) continue;
    out.push({
      call: c.id,
      parent: c.parent,
      caller: c.caller,
      declared: c.declared,
      subagent: c.subagent,
      calleeKind: c.calleeKind,
      hop: c.hop,
      maxHops: c.maxHops,
      input: c.input,
      ...(c.output !== undefined ? { output: c.output } : {}),
      outcome: c.outcome,
      ...(c.deadline !== undefined ? { deadline: c.deadline } : {}),
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
    });
  }
  return out;
}

/**
 * `secrets` receives the values the worker was given, once they are known; `children` the child attempts
 * it ran; `kept` the removal of the worker its target kept until the outcome is recorded.
 */
async function runAttemptWith(
  ctx: AttemptContext,
  spec: AttemptSpec,
  signal: AbortSignal,
  secrets: string[],
  children: ChildRecord[],
  kept: KeptWorker,
  /** The workspace, already being made ready at `spec.base` (the driver does it while the start is committed). */
  workspace: Promise<Workspace> | undefined,
): Promise<AttemptOutcome> {
  const { runId, itemId, attempt } = spec;
  const ws = await (workspace ?? ctx.workspaces.acquire(spec.base));
  let reusable = true; // nothing has touched it yet
  let captured: WorkspaceCapture | undefined; // what the worker changed and left, once captured
  let paramsFile: string | undefined; // $AGORA_PARAMS, removed when the attempt ends
  try {
    const item = spec.plan.items.find((i) => i.id === itemId);
    if (!item) return { kind: 'failed', itemId, attempt, reason: `item ${itemId} is not in the plan`, retryable: false };
    const logPath = liveLogPath(ctx.scratchDir, runId, itemId, attempt);
    mkdirSync(dirname(logPath), { recursive: true }); // a few syscalls: no round trip through the thread pool
    reusable = false; // from here on, until the attempt says otherwise
    let built: BuiltJob;
    try {
      // The job decides which secrets are declared; the log sink is attached once they are known.
      built = buildWorkerJob({
        item,
        config: ctx.config,
        runId,
        attempt,
        workspaceDir: ws.dir,
        log: UNATTACHED_LOG,
        environment: ctx.environment,
        ...(ctx.planSecrets ? { planSecrets: ctx.planSecrets } : {}),
      });
    } catch (e) {
      if (!isAgoraError(e)) throw e;
      reusable = true;
      return { kind: 'failed', itemId, attempt, reason: e.message + (e.hint ? ` (${e.hint})` : ''), retryable: false };
    }
    try {
      const needs = await resolveNeeds(ctx.store, item, spec.state, needsDir(await ctx.workspaces.workDir(), runId, itemId, attempt));
      if (needs) built.job.env.AGORA_NEEDS = JSON.stringify(needs);
    } catch (e) {
      if (!(e instanceof NeedUnavailable) && !(e instanceof PathOutsideDirectoryError)) throw e;
      reusable = true;
      return { kind: 'failed', itemId, attempt, reason: e.message, retryable: false };
    }
    built.job.base = spec.base;
    // Secret parameter values are redacted from everything made from this attempt, whichever target runs it.
    let params: Awaited<ReturnType<typeof workerParams>> | undefined;
    try {
      params = spec.state.params ? await workerParams(spec.state.params, ctx.scratchDir, runId) : undefined;
    } catch (e) {
      if (!(e instanceof SecretParamsUnavailable)) throw e;
      reusable = true;
      return { kind: 'failed', itemId, attempt, reason: e.message, retryable: false };
    }
    secrets.push(...Object.values(params?.secrets ?? {}));
    const mocked = ctx.targets[built.target]?.standsInForAgents === true;
    const agent = mocked ? undefined : agentOf(item, built);
    // A command subagent with dependencies calls them through the call socket (local and docker targets).
    // A stand-in (`agora test`) gets the socket for every subagent, so a mock's calls meet the same rules.
    const caller = built.subagent && (mocked || (!agent && built.subagent.dependencies?.length)) ? String(item.inputs.subagent) : undefined;
    if (caller && !mocked && built.target !== 'local' && built.target !== 'docker') {
      reusable = true;
      const e = callTargetError(caller, built.target);
      return { kind: 'failed', itemId, attempt, reason: `${e.message} (${e.hint})`, retryable: false };
    }
    // A stand-in's callees are mocks too: no loop runs, so no key is read.
    const keyEnv = agent ? agent.subagent.agent.apiKeyEnv : caller && !mocked ? reachableAgentKeyEnv(ctx.config.subagents, caller) : undefined;
    // $AGORA_EMIT and $AGORA_PARAMS: files of this host, which the local target hands over as they are, the
    // docker target copies in and out of its container and the actions target gets emitted items back in
    // its result (docs/plan.md). An agent item gets neither.
    const controlFiles = agent ? [] : (ctx.targets[built.target]?.controlFiles ?? []);
    const emitTo = controlFiles.includes('emit') ? emitDir(await ctx.workspaces.workDir(), runId, itemId, attempt) : undefined;
    if (emitTo) {
      await prepareEmitDir(emitTo);
      built.job.env.AGORA_EMIT = emitTo;
      built.job.emitDir = emitTo;
    }
    if (params && controlFiles.includes('params')) {
      paramsFile = await writeParamsFile(await ctx.workspaces.workDir(), runId, itemId, attempt, params.values);
      built.job.env.AGORA_PARAMS = paramsFile;
      built.job.paramsFile = paramsFile;
    }
    let apiKey: string | undefined;
    try {
      apiKey = keyEnv ? agentApiKey({ apiKeyEnv: keyEnv }, ctx.environment, itemId) : undefined;
    } catch (e) {
      if (!isAgoraError(e)) throw e;
      reusable = true;
      return { kind: 'failed', itemId, attempt, reason: e.message + (e.hint ? ` (${e.hint})` : ''), retryable: false };
    }
    secrets.push(...Object.values(built.job.secrets), ...(apiKey ? [apiKey] : []));
    const log = createLogSink({ path: logPath, secrets });
    built.job.log = log;
    const target = ctx.targets[built.target];
    if (!target) {
      await log.close();
      reusable = true;
      return {
        kind: 'failed',
        itemId,
        attempt,
        reason: `target "${built.target}" is not available to this server; configure it (e.g. set DOCKER_HOST for docker) or run the item on the local target`,
        retryable: false,
      };
    }
    let output: unknown;
    let logBlob: Oid;
    if (agent && apiKey) {
      // A throw is not the model's doing (an SDK error of another kind, an operator's schema too deep to
      // digest): the attempt fails like any other, its log kept and its reason redacted with the rest.
      const ran = await runAgent({
        ...agent,
        configDir: ctx.config.configDir,
        job: built.job,
        target,
        locks: item.resourceLocks,
        apiKey,
        environment: ctx.environment,
        secrets,
        log,
        signal,
        subagents: ctx.config.subagents,
        ...attemptDeadline(spec),
      }).catch((e: unknown): AgentRunResult => ({ ok: false, reason: `the agent loop failed: ${errorMessage(e)}`, retryable: true }));
      await log.close();
      logBlob = await ctx.store.writeBlob(log.text());
      reusable = true;
      if (signal.aborted || (!ran.ok && ran.stopped)) return { kind: 'stopped', itemId, attempt, log: logBlob };
      if (!ran.ok) children.push(...(ran.children ?? []));
      if (!ran.ok) return { kind: 'failed', itemId, attempt, reason: ran.reason, retryable: ran.retryable, log: logBlob };
      output = ran.output;
      children.push(...(ran.output.transcript.children ?? []));
    } else {
      const calls = caller
        ? await openCommandCalls(
            {
              configDir: ctx.config.configDir,
              job: built.job,
              target,
              locks: item.resourceLocks,
              apiKey,
              apiKeyEnv: keyEnv,
              environment: ctx.environment,
              secrets,
              log,
              subagents: ctx.config.subagents,
            },
            caller,
            built.subagent!,
            attemptDeadline(spec).deadline,
            signal,
          )
        : undefined;
      // Only the item's own worker gets the socket: the jobs of its children (built from built.job) do not, so none can call as the item.
      // It alone may be kept until its outcome is committed (the driver releases it): a restart before then collects it again.
      const job = {
        ...built.job,
        ...(calls ? { env: { ...built.job.env, ...calls.env }, callSocket: calls.env[CALL_SOCKET_ENV], onWorkspace: calls.onWorkspace } : {}),
        ...(ctx.keepFinishedWorkers ? { keepUntilReleased: true } : {}),
      };
      let result;
      try {
        result = await target.run(job, signal);
        kept.release = result.release?.bind(result);
      } finally {
        await calls?.close();
      }
      if (calls && calls.children.length > 0) output = { calls: calls.children };
      children.push(...(calls?.children ?? []));
      await log.close();
      logBlob = await ctx.store.writeBlob(log.text());
      reusable = true;
      if (signal.aborted) return { kind: 'stopped', itemId, attempt, log: logBlob };
      if (result.exitCode !== 0) {
        const why = result.reason ?? `exited with code ${result.exitCode}${result.signal ? ` (${result.signal})` : ''}`;
        const last = lastLine(log.tail(2048));
        return {
          kind: 'failed',
          itemId,
          attempt,
          reason: last ? `${why}: ${last}` : why,
          retryable: true,
          log: logBlob,
          exitCode: result.exitCode,
        };
      }
    }
    const exitCode = agent ? null : 0; // an agent has no exit status
    // Every secret value the worker could reach: none may leave in what it emits, its files or its output.
    const keptOut = {
      ...built.job.secrets,
      ...(keyEnv && apiKey ? { [keyEnv]: apiKey } : {}),
      ...Object.fromEntries(Object.entries(params?.secrets ?? {}).map(([k, v]) => [`parameter ${k}`, v])),
    };
    const emitted = emitTo ? await readEmission(emitTo, spec.plan, item, attempt, ctx.config, keptOut) : { ok: true as const };
    if (!emitted.ok) return { kind: 'failed', itemId, attempt, reason: emitted.reason, retryable: false, log: logBlob, exitCode };
    reusable = false;
    captured = await captureWorkspace(ws);
    crashPoint('workspace-captured');
    reusable = true;
    // Before any commit or ref holds the captured tree: a secret in it fails the item, and nothing refers to it.
    const leaked = await secretsInPatch(ctx.store, captured.changes, keptOut);
    if (leaked.length > 0) return { kind: 'failed', itemId, attempt, reason: secretInPatchReason(leaked), retryable: false, log: logBlob, exitCode };
    const inOutput = secretsInOutput(output, keptOut);
    if (inOutput.length > 0) return { kind: 'failed', itemId, attempt, reason: secretInOutputReason(inOutput), retryable: false, log: logBlob, exitCode };
    const patch = await recordPatch(ctx.store, {
      runId,
      itemId,
      attempt,
      base: spec.base,
      tree: captured.tree,
      changes: captured.changes,
      locks: item.resourceLocks,
      policy: item.scope ?? spec.plan.scope ?? 'fail',
      now: ctx.clock(),
      output,
    });
    if (!patch.ok) return { kind: 'failed', itemId, attempt, reason: patch.reason, retryable: false, log: logBlob, exitCode };
    return { kind: 'succeeded', itemId, attempt, patch: patch.commit, log: logBlob, exitCode, ...(emitted.emission ? { emitted: emitted.emission } : {}) };
  } finally {
    // The file holds secret parameters' real values: it lives as long as the attempt.
    if (paramsFile) await rm(paramsFile, { force: true });
    await ctx.workspaces.release(ws, reusable, captured);
  }
}

/** Why a command subagent with dependencies cannot run on `target`: nothing there can reach the call socket. */
export function callTargetError(subagent: string, target: string): AgoraError {
  return new AgoraError(
    'call-target',
    `subagent "${subagent}" declares dependencies and runs as a command on the ${target} target, which cannot reach the orchestrator's call socket (agora call)`,
    'run it on the local or docker target, or make it an agent, whose loop makes the calls from the orchestrator',
  );
}

/** The earlier of the item's deadline and its run's, when either is set: the most time a dependency call can be given. */
function attemptDeadline(spec: AttemptSpec): { deadline?: number } {
  const deadlines = [spec.state.items[spec.itemId]?.deadline, runDeadline(spec.plan, spec.state)].filter((d): d is number => d !== undefined);
  return deadlines.length === 0 ? {} : { deadline: Math.min(...deadlines) };
}

/** The agent subagent a built job dispatches to, if it is one. */
function agentOf(item: WorkItem, built: BuiltJob): { name: string; subagent: SubagentConfig & { agent: AgentConfig } } | undefined {
  const subagent = built.subagent;
  if (!subagent?.agent) return undefined;
  return { name: String(item.inputs.subagent), subagent: { ...subagent, agent: subagent.agent } };
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const line = lines[lines.length - 1] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}…` : line;
}
