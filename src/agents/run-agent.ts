import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { checkSecretValue } from '../config/secrets.js';
import type { AgentConfig, SubagentConfig } from '../config/types.js';
import { AgoraError, errorMessage } from '../errors.js';
import type { LogSink, WorkerJob, WorkerTarget } from '../executors/types.js';
import { canonicalJson } from '../log/canonical-json.js';
import { runAgentLoop, type AgentEvent } from './loop.js';
import { outputMismatch, parseAnswer } from './output.js';
import { ToolBox } from './tools.js';

/**
 * One attempt of an `agent` subagent, the runner beside the command runner: the loop runs here, in the
 * orchestrator, holding the API key; only the tools touch the workspace (the file tools from here,
 * confined to it; bash and command tools as jobs on the item's target, which never get the key).
 */

export interface AgentOutput {
  /** The final answer: parsed JSON when the subagent declares an outputSchema, else its text. */
  answer: unknown;
  transcript: { turns: number; toolCalls: number; refused: number; inputTokens: number; outputTokens: number; events: AgentEvent[] };
}

export type AgentRunResult = { ok: true; output: AgentOutput } | { ok: false; reason: string; retryable: boolean; stopped?: boolean };

export interface AgentRunArgs {
  name: string;
  subagent: SubagentConfig & { agent: AgentConfig };
  configDir: string;
  /** The job the command runner would have run: workspace, env, declared secrets (never the key). */
  job: WorkerJob;
  target: WorkerTarget | undefined;
  locks: readonly string[];
  apiKey: string;
  /** The serving process's environment (ANTHROPIC_BASE_URL when the config names no baseURL). */
  environment: Record<string, string | undefined>;
  /** Values to keep out of tool output (the declared secrets and the key). */
  secrets: readonly string[];
  log: LogSink;
  signal: AbortSignal;
}

/** The API key the loop uses, read from the serving process's environment; never handed to a worker. */
export function agentApiKey(agent: AgentConfig, environment: Record<string, string | undefined>, itemId: string): string {
  const value = Object.hasOwn(environment, agent.apiKeyEnv) ? environment[agent.apiKeyEnv] : undefined;
  if (value === undefined || value === '') {
    throw new AgoraError(
      'secret-missing',
      `item ${itemId} runs an agent, whose API key ${agent.apiKeyEnv} is not set`,
      `export ${agent.apiKeyEnv} in the environment of \`agora orch serve\` (only the orchestrator's loop reads it)`,
    );
  }
  checkSecretValue(agent.apiKeyEnv, value, `item ${itemId}`);
  return value;
}

export async function runAgent(args: AgentRunArgs): Promise<AgentRunResult> {
  const { agent } = args.subagent;
  const promptFile = resolve(args.configDir, agent.prompt);
  let system: string;
  try {
    system = await readFile(promptFile, 'utf8');
  } catch (e) {
    return { ok: false, reason: `the prompt file ${promptFile} of subagent "${args.name}" cannot be read (${errorMessage(e)}); create it or fix agent.prompt`, retryable: false };
  }
  const baseURL = agent.baseURL ?? args.environment.ANTHROPIC_BASE_URL;
  const client = new Anthropic({ apiKey: args.apiKey, authToken: null, ...(baseURL ? { baseURL } : {}) });
  const tools = new ToolBox(agent, {
    workspaceDir: args.job.workspaceDir,
    locks: args.locks,
    target: args.target,
    baseJob: args.job,
    secrets: args.secrets,
    signal: args.signal,
  });
  const events: AgentEvent[] = [];
  const onEvent = (event: AgentEvent) => {
    events.push(event);
    args.log.write(`[agent] ${canonicalJson(event)}\n`, 'stdout');
  };
  let result;
  try {
    result = await runAgentLoop({
      client,
      model: agent.model,
      maxTokens: agent.maxTokens,
      maxTurns: agent.maxTurns,
      system,
      task: args.job.stdin ?? '{}',
      tools,
      signal: args.signal,
      onEvent,
    });
  } catch (e) {
    return apiFailure(e, baseURL);
  }
  if (!result.ok) {
    args.log.write(`[agent] failed: ${result.reason}\n`, 'stderr');
    return { ok: false, reason: result.reason, retryable: result.retryable, stopped: args.signal.aborted };
  }
  args.log.write(`[agent] final answer: ${result.answer}\n`, 'stdout');
  let answer: unknown = result.answer;
  if (args.subagent.outputSchema) {
    const parsed = parseAnswer(result.answer);
    if (!parsed.ok) return { ok: false, reason: parsed.reason, retryable: false };
    const mismatch = outputMismatch(args.subagent.outputSchema, parsed.value, args.name);
    if (mismatch) return { ok: false, reason: mismatch, retryable: false };
    answer = parsed.value;
  }
  const toolEvents = events.filter((e) => e.type === 'tool-call');
  const modelEvents = events.filter((e) => e.type === 'model-call');
  return {
    ok: true,
    output: {
      answer,
      transcript: {
        turns: result.turns,
        toolCalls: toolEvents.length,
        refused: toolEvents.filter((e) => e.outcome === 'refused').length,
        inputTokens: modelEvents.reduce((n, e) => n + e.inputTokens, 0),
        outputTokens: modelEvents.reduce((n, e) => n + e.outputTokens, 0),
        events,
      },
    },
  };
}

/** What the SDK threw, after its own retries, as an attempt failure: rate limits and server errors may pass on a retry. */
function apiFailure(e: unknown, baseURL: string | undefined): AgentRunResult {
  if (e instanceof Anthropic.APIUserAbortError) return { ok: false, reason: 'stopped', retryable: true, stopped: true };
  const where = `the Messages API${baseURL ? ` at ${baseURL}` : ''}`;
  if (e instanceof Anthropic.APIConnectionError) return { ok: false, reason: `${where} cannot be reached: ${errorMessage(e)}`, retryable: true };
  if (e instanceof Anthropic.APIError) {
    const status = e.status ?? 0;
    const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
    const fix = status === 401 || status === 403 ? '; check the API key' : status === 404 ? '; check agent.model and agent.baseURL' : retryable ? ' (after the client\'s own retries)' : '';
    return { ok: false, reason: `${where} answered ${status}: ${errorMessage(e)}${fix}`, retryable };
  }
  throw e;
}
