import { createHash } from 'node:crypto';
import type Anthropic from '@anthropic-ai/sdk';
import { canonicalJson } from '../log/canonical-json.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.js';
import type { ToolBox } from './tools.js';

/**
 * The managed loop: ask the model, run the tools it asks for, hand the results back, until it answers
 * without asking for a tool or `maxTurns` model calls are spent. Each model call and each tool call
 * becomes an {@link AgentEvent} (inputs as digests, never the key or the content), told to `onEvent`
 * as it happens.
 */

export type AgentEvent =
  | {
      type: 'model-call';
      turn: number;
      model: string;
      /** sha256 of the canonical JSON of the request body (system, messages, tools). */
      request: string;
      stopReason: string | null;
      inputTokens: number;
      outputTokens: number;
      ms: number;
    }
  | { type: 'tool-call'; turn: number; tool: string; input: string; path?: string; child?: string; outcome: 'ok' | 'refused' | 'error'; ms: number };

export interface LoopArgs {
  client: Pick<Anthropic, 'messages'>;
  model: string;
  maxTokens: number;
  maxTurns: number;
  system: string;
  /** The first user message: the item's input. */
  task: string;
  tools: ToolBox;
  signal: AbortSignal;
  onEvent(event: AgentEvent): void;
  clock?: () => number;
  /** A callee's downstream budget: asked before each model call, charged after it. */
  budget?: { refusal(): string | undefined; spend(tokens: number): void };
}

export type LoopResult = { ok: true; answer: string; turns: number } | { ok: false; reason: string; turns: number; retryable: boolean };

/**
 * The deepest value {@link digest} takes: its canonical JSON is written by recursion, which would overflow
 * the stack a few thousand levels down. Tool inputs are held to {@link MAX_JSON_DEPTH}, well inside it
 * together with the request around them.
 */
export const MAX_DIGEST_DEPTH = 512;

export function digest(value: unknown): string {
  if (nestsDeeperThan(value, MAX_DIGEST_DEPTH)) throw new RangeError(`cannot digest a value nested deeper than ${MAX_DIGEST_DEPTH} levels`);
  return `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex')}`;
}

export async function runAgentLoop(args: LoopArgs): Promise<LoopResult> {
  const clock = args.clock ?? Date.now;
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content: args.task }];
  const tools = args.tools.specs as Anthropic.Tool[];
  for (let turn = 1; turn <= args.maxTurns; turn++) {
    const body = { model: args.model, max_tokens: args.maxTokens, system: args.system, messages, tools };
    const request = digest(body);
    const spent = args.budget?.refusal();
    if (spent !== undefined) return { ok: false, reason: spent, turns: turn - 1, retryable: false };
    const started = clock();
    const response = await args.client.messages.create(body, { signal: args.signal });
    args.budget?.spend(response.usage.input_tokens + response.usage.output_tokens);
    args.onEvent({
      type: 'model-call',
      turn,
      model: args.model,
      request,
      stopReason: response.stop_reason,
      inputTokens: response.usage.input_tokens,
      outputTokens: response.usage.output_tokens,
      ms: clock() - started,
    });
    const calls = response.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
    if (calls.length === 0) {
      if (response.stop_reason === 'refusal') return { ok: false, reason: `the model refused the task at turn ${turn}`, turns: turn, retryable: false };
      if (response.stop_reason === 'max_tokens') {
        return {
          ok: false,
          reason: `the model's answer was cut off at maxTokens (${args.maxTokens}) at turn ${turn}; raise agent.maxTokens`,
          turns: turn,
          retryable: false,
        };
      }
      const answer = response.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n');
      return { ok: true, answer, turns: turn };
    }
    // An input nested too deeply is refused by the tool box; the conversation keeps `{}` in its place, since
    // every later request (its digest, the SDK's JSON) would otherwise have to walk it.
    const tooDeep = new Set(calls.filter((call) => nestsDeeperThan(call.input, MAX_JSON_DEPTH)));
    const content = response.content.map((b) => (b.type === 'tool_use' && tooDeep.has(b) ? { ...b, input: {} } : b));
    messages.push({ role: 'assistant', content: content as Anthropic.ContentBlockParam[] });
    const results: Anthropic.ToolResultBlockParam[] = [];
    for (const call of calls) {
      const callStarted = clock();
      const result = await args.tools.call(call.name, call.input);
      args.onEvent({
        type: 'tool-call',
        turn,
        tool: call.name,
        input: digest(tooDeep.has(call) ? {} : (call.input ?? null)),
        ...(result.path !== undefined ? { path: result.path } : {}),
        ...(result.child !== undefined ? { child: result.child } : {}),
        outcome: result.refused ? 'refused' : result.isError ? 'error' : 'ok',
        ms: clock() - callStarted,
      });
      results.push({ type: 'tool_result', tool_use_id: call.id, content: result.content, ...(result.isError ? { is_error: true } : {}) });
      if (args.signal.aborted) return { ok: false, reason: 'stopped', turns: turn, retryable: true };
    }
    messages.push({ role: 'user', content: results });
  }
  return {
    ok: false,
    reason: `reached maxTurns (${args.maxTurns}) without a final answer: the model still asked for tools; raise agent.maxTurns or narrow the task`,
    turns: args.maxTurns,
    retryable: false,
  };
}
