import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type AnthropicSdk from '@anthropic-ai/sdk';
import { checkSecretValue } from '../config/secrets.js';
import type { AgentConfig, SubagentConfig } from '../config/types.js';
import { AgoraError, errorMessage } from '../errors.js';
import type { LogSink, WorkerJob, WorkerTarget } from '../executors/types.js';
import { canonicalJson } from '../log/canonical-json.js';
import { CALL_TOOL_PREFIX, DependencyCalls, type CallFrame, type ChildRecord, type ChildRequest, type ChildRun } from './dependency-calls.js';
import { runAgentLoop, type AgentEvent } from './loop.js';
import { MAX_HOPS_DEFAULT } from './max-hops.js';
import { outputMismatch, parseAnswer } from './output.js';
import { runJobOnTarget, ToolBox } from './tools.js';

/**
 * One attempt of an `agent` subagent, the runner beside the command runner: the loop runs here, in the
 * orchestrator, holding the API key; only the tools touch the workspace (the file tools from here,
 * confined to it; bash and command tools as jobs on the item's target, which never get the key).
 */

export interface AgentOutput {
  /** The final answer: parsed JSON when the subagent declares an outputSchema, else its text. */
  answer: unknown;
  transcript: { turns: number; toolCalls: number; refused: number; inputTokens: number; outputTokens: number; events: AgentEvent[]; children?: ChildRecord[] };
}

export type AgentRunResult =
  | { ok: true; output: AgentOutput }
  /** `children`: the child attempts the failed attempt ran (its audit records them all the same). */
  | { ok: false; reason: string; retryable: boolean; stopped?: boolean; children?: ChildRecord[] };

/** What every loop and dependency call of one attempt shares: its workspace, scope, target, key and log. */
export interface CallHost {
  configDir: string;
  /** The job the command runner would have run: workspace, env, declared secrets (never the key). */
  job: WorkerJob;
  target: WorkerTarget | undefined;
  locks: readonly string[];
  /** The key the loops use, and the variable it was read from; undefined when no agent can be reached. */
  apiKey: string | undefined;
  apiKeyEnv: string | undefined;
  /** The serving process's environment (ANTHROPIC_BASE_URL when the config names no baseURL). */
  environment: Record<string, string | undefined>;
  /** Values to keep out of tool output (the declared secrets and the key). */
  secrets: readonly string[];
  log: LogSink;
  /** Every subagent of the config: the dependencies a subagent may call, and theirs. */
  subagents?: Readonly<Record<string, SubagentConfig>>;
}

export interface AgentRunArgs extends Omit<CallHost, 'apiKey' | 'apiKeyEnv'> {
  name: string;
  subagent: SubagentConfig & { agent: AgentConfig };
  apiKey: string;
  signal: AbortSignal;
  /** Epoch ms by which the attempt must be done (its item's or its run's deadline), if it has one. */
  deadline?: number;
}

/** The API key the loop uses, read from the serving process's environment; never handed to a worker. */
export function agentApiKey(agent: Pick<AgentConfig, 'apiKeyEnv'>, environment: Record<string, string | undefined>, itemId: string): string {
  const value = Object.hasOwn(environment, agent.apiKeyEnv) ? environment[agent.apiKeyEnv] : undefined;
  if (value === undefined || value === '') {
    throw new AgoraError(
      'secret-missing',
      `item ${itemId} runs an agent (or calls one), whose API key ${agent.apiKeyEnv} is not set`,
      `export ${agent.apiKeyEnv} in the environment of \`agora orch serve\` (only the orchestrator's loop reads it)`,
    );
  }
  checkSecretValue(agent.apiKeyEnv, value, `item ${itemId}`);
  return value;
}

export async function runAgent(args: AgentRunArgs): Promise<AgentRunResult> {
  const root: CallFrame = {
    chain: [args.name],
    id: `${args.job.itemId}.${args.job.attempt}`,
    maxHops: args.subagent.maxHops ?? MAX_HOPS_DEFAULT,
    ...(args.deadline !== undefined ? { deadline: args.deadline } : {}),
  };
  const ran = await session({ ...args, apiKeyEnv: args.subagent.agent.apiKeyEnv }, args.name, args.subagent, args.job.stdin ?? '{}', root, args.signal);
  if (!ran.ok)
    return {
      ok: false,
      reason: ran.reason,
      retryable: ran.retryable,
      ...(ran.stopped ? { stopped: true } : {}),
      ...(ran.children.length > 0 ? { children: ran.children } : {}),
    };
  const { events, children } = ran;
  const toolEvents = events.filter((e) => e.type === 'tool-call');
  const modelEvents = events.filter((e) => e.type === 'model-call');
  return {
    ok: true,
    output: {
      answer: ran.answer,
      transcript: {
        turns: ran.turns,
        toolCalls: toolEvents.length,
        refused: toolEvents.filter((e) => e.outcome === 'refused').length,
        inputTokens: modelEvents.reduce((n, e) => n + e.inputTokens, 0),
        outputTokens: modelEvents.reduce((n, e) => n + e.outputTokens, 0),
        events,
        ...(children.length > 0 ? { children } : {}),
      },
    },
  };
}

type SessionResult =
  | { ok: true; answer: unknown; turns: number; events: AgentEvent[]; children: ChildRecord[] }
  | { ok: false; reason: string; retryable: boolean; stopped?: boolean; events: AgentEvent[]; children: ChildRecord[] };

/**
 * One managed loop on the item's workspace: the item's own (hop 0) or a dependency's child attempt,
 * which shares the workspace, the write scope and the target and keeps its own events.
 */
async function session(
  args: CallHost,
  name: string,
  subagent: SubagentConfig & { agent: AgentConfig },
  task: string,
  frame: CallFrame,
  signal: AbortSignal,
): Promise<SessionResult> {
  const { agent } = subagent;
  const events: AgentEvent[] = [];
  const children: ChildRecord[] = [];
  const tag = frame.chain.length === 1 ? '[agent]' : `[agent ${frame.id}]`;
  const fail = (reason: string, retryable: boolean, stopped?: boolean): SessionResult => ({
    ok: false,
    reason,
    retryable,
    ...(stopped ? { stopped } : {}),
    events,
    children,
  });
  const promptFile = resolve(args.configDir, agent.prompt);
  let system: string;
  try {
    system = await readFile(promptFile, 'utf8');
  } catch (e) {
    return fail(`the prompt file ${promptFile} of subagent "${name}" cannot be read (${errorMessage(e)}); create it or fix agent.prompt`, false);
  }
  if (args.apiKey === undefined || agent.apiKeyEnv !== args.apiKeyEnv) {
    return fail(
      `subagent "${name}" reads its API key from ${agent.apiKeyEnv}, but this item holds ${args.apiKeyEnv ?? 'no key'}; every agent an item reaches uses one key: give them the same apiKeyEnv`,
      false,
    );
  }
  const baseURL = agent.baseURL ?? args.environment.ANTHROPIC_BASE_URL;
  // Loaded here, by the first agent item: every other command (and every CLI start) goes without it.
  const sdk = (await import('@anthropic-ai/sdk')).default;
  const client = new sdk({ apiKey: args.apiKey, authToken: null, ...(baseURL ? { baseURL } : {}) });
  const ctx = { workspaceDir: args.job.workspaceDir, locks: args.locks, target: args.target, baseJob: args.job, secrets: args.secrets, signal };
  const calls = openDependencyCalls(args, name, frame, signal, children);
  const tools = new ToolBox(agent, ctx, calls);
  const onEvent = (event: AgentEvent) => {
    events.push(event);
    args.log.write(`${tag} ${canonicalJson(event)}\n`, 'stdout');
  };
  let result;
  try {
    result = await runAgentLoop({
      client,
      model: agent.model,
      maxTokens: agent.maxTokens,
      maxTurns: agent.maxTurns,
      system,
      task,
      tools,
      signal,
      onEvent,
      ...(frame.budget ? { budget: frame.budget } : {}),
    });
  } catch (e) {
    const failed = apiFailure(sdk, e, baseURL);
    return failed.ok ? fail('unreachable', false) : fail(failed.reason, failed.retryable, failed.stopped);
  }
  if (!result.ok) {
    args.log.write(`${tag} failed: ${result.reason}\n`, 'stderr');
    return fail(result.reason, result.retryable, signal.aborted);
  }
  args.log.write(`${tag} final answer: ${result.answer}\n`, 'stdout');
  let answer: unknown = result.answer;
  if (subagent.outputSchema) {
    const parsed = parseAnswer(result.answer);
    if (!parsed.ok) return fail(parsed.reason, false);
    const mismatch = outputMismatch(subagent.outputSchema, parsed.value, name);
    if (mismatch) return fail(mismatch, false);
    answer = parsed.value;
  }
  return { ok: true, answer, turns: result.turns, events, children };
}

/**
 * The calls `name` may make to its dependencies from `frame`, as tools of its loop or (for a command)
 * through the call socket; each finished child attempt is added to `children` and logged.
 */
export function openDependencyCalls(args: CallHost, name: string, frame: CallFrame, signal: AbortSignal, children: ChildRecord[]): DependencyCalls {
  const tag = frame.chain.length === 1 ? '[agent]' : `[agent ${frame.id}]`;
  const ctx = { target: args.target, baseJob: args.job, secrets: args.secrets, signal };
  return new DependencyCalls({
    caller: name,
    subagents: args.subagents ?? {},
    frame,
    signal,
    clock: Date.now,
    runChild: (request) => runChild(args, request, ctx),
    onStart: (child) => args.log.write(`${tag} ${canonicalJson({ type: 'call-start', ...child })}\n`, 'stdout'),
    onEnd: (record) => {
      children.push(record);
      const { events: _events, children: _children, ...summary } = record;
      args.log.write(`${tag} ${canonicalJson({ type: 'call-end', ...summary })}\n`, 'stdout');
    },
  });
}

/** A dependency's child attempt: an agent runs its own loop here; a command runs as a job on the item's target. */
async function runChild(args: CallHost, request: ChildRequest, ctx: Parameters<typeof runJobOnTarget>[0]): Promise<ChildRun> {
  const input = JSON.stringify(request.input ?? {});
  const { config } = request;
  const standIn = args.target?.answerCall?.bind(args.target);
  if (standIn) {
    // `agora test`: the callee's mock answers; the calls it makes in turn follow the same rules (an agent's only).
    const children: ChildRecord[] = [];
    const calls = config.agent ? openDependencyCalls(args, request.subagent, request.frame, request.signal, children) : undefined;
    const answer = await standIn({
      id: request.frame.id,
      subagent: request.subagent,
      input: request.input,
      job: args.job,
      signal: request.signal,
      ...(calls ? { call: (callee: string, calleeInput: unknown) => calls.call(`${CALL_TOOL_PREFIX}${callee}`, calleeInput) } : {}),
    });
    return { ...answer, events: [], children };
  }
  if (config.agent) {
    const ran = await session(args, request.subagent, { ...config, agent: config.agent }, input, request.frame, request.signal);
    const content = ran.ok ? (typeof ran.answer === 'string' ? ran.answer : JSON.stringify(ran.answer)) : ran.reason;
    return { ok: ran.ok, content, events: ran.events, children: ran.children };
  }
  const result = await runJobOnTarget(
    { ...ctx, signal: request.signal },
    config.command!,
    input,
    { ...(config.env ?? {}), AGORA_CALL_ID: request.frame.id },
    request.frame.id,
  );
  return { ok: !result.isError, content: result.content, events: [], children: [] };
}

/** What the SDK threw, after its own retries, as an attempt failure: rate limits and server errors may pass on a retry. */
function apiFailure(Anthropic: typeof AnthropicSdk, e: unknown, baseURL: string | undefined): AgentRunResult {
  if (e instanceof Anthropic.APIUserAbortError) return { ok: false, reason: 'stopped', retryable: true, stopped: true };
  const where = `the Messages API${baseURL ? ` at ${baseURL}` : ''}`;
  if (e instanceof Anthropic.APIConnectionError) return { ok: false, reason: `${where} cannot be reached: ${errorMessage(e)}`, retryable: true };
  if (e instanceof Anthropic.APIError) {
    const status = e.status ?? 0;
    const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
    const fix =
      status === 401 || status === 403
        ? '; check the API key'
        : status === 404
          ? '; check agent.model and agent.baseURL'
          : retryable
            ? " (after the client's own retries)"
            : '';
    return { ok: false, reason: `${where} answered ${status}: ${errorMessage(e)}${fix}`, retryable };
  }
  throw e;
}
