import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyCalls, type ChildRecord } from '../../src/agents/dependency-calls.js';
import { MAX_JSON_DEPTH } from '../../src/agents/json-depth.js';
import { runAgentLoop, type AgentEvent } from '../../src/agents/loop.js';
import { runAgent } from '../../src/agents/run-agent.js';
import { ToolBox } from '../../src/agents/tools.js';
import type { AgentConfig, SubagentConfig } from '../../src/config/types.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerJob, WorkerTarget } from '../../src/executors/types.js';
import { lastToolResults, say, startMessagesApi, turnOf, useTool, type MessagesApi } from '../support/messages-api.js';

/**
 * Whatever path or input a model gives a tool, the tool answers it: a path the file system refuses (through
 * a file, a name too long, a loop of links), an input nested too deeply, or a tool that fails in the
 * orchestrator comes back to the model as an error result that names what the model gave, never a path of
 * the host, and the attempt goes on (docs/agents.md).
 */

let root: string;
let ws: string;
let api: MessagesApi;
/** What the model was told for its one tool call, by the tool and input of the scenario (the task). */
const told = new Map<string, Array<{ content: string; isError: boolean }>>();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'agora-tool-errors-'));
  ws = join(root, 'ws');
  mkdirSync(join(ws, 'docs'), { recursive: true });
  writeFileSync(join(ws, 'README.md'), '# hi\n');
  // A loop of links a commit can plant.
  symlinkSync('loop2', join(ws, 'docs', 'loop1'));
  symlinkSync('loop1', join(ws, 'docs', 'loop2'));
  writeFileSync(join(root, 'prompt.md'), 'you edit files');
  api = await startMessagesApi((req) => {
    const task = JSON.parse(String(req.messages[0]!.content)) as { tool: string; input: unknown };
    if (task.tool === 'answer') return say(String(task.input));
    if (turnOf(req) === 1) return useTool(task.tool, task.input);
    told.set(String(req.messages[0]!.content), lastToolResults(req));
    return say('done');
  });
});
afterAll(async () => {
  await api?.close();
  rmSync(root, { recursive: true, force: true });
});

/** A target whose job fails in the orchestrator, with host paths in what it throws. */
const brokenTarget = (): WorkerTarget => ({
  name: 'broken',
  run: () => Promise.reject(new Error(`cannot start the job in ${ws}/docs: /var/lib/agora/pool/7 is busy`)),
});

async function attempt(tool: string, input: unknown, agent: Partial<AgentConfig> = {}, target?: WorkerTarget, outputSchema?: SubagentConfig['outputSchema']) {
  const task = JSON.stringify({ tool, input });
  const log = createLogSink({ secrets: [] });
  const job: WorkerJob = { runId: 'r-1', itemId: 'it', attempt: 1, workspaceDir: ws, command: [], env: {}, secrets: {}, log, stdin: task };
  const result = await runAgent({
    name: 'editor',
    subagent: {
      agent: { prompt: 'prompt.md', model: 'm', maxTurns: 3, maxTokens: 100, mode: 'strict', apiKeyEnv: 'K', baseURL: api.url, ...agent },
      ...(outputSchema ? { outputSchema } : {}),
    },
    apiKey: 'sk-test-0123456789abcdef',
    signal: new AbortController().signal,
    configDir: root,
    job,
    target,
    locks: ['docs/', 'README.md'],
    environment: {},
    secrets: [],
    log,
  });
  return { result, results: told.get(task) ?? [] };
}

describe('a tool call the file system or the orchestrator refuses goes back to the model and the attempt goes on', () => {
  const through = 'goes through a file as if it were a directory: it cannot be used';
  const loop = 'goes through a loop of symbolic links: it cannot be used';
  const long = `docs/${'n'.repeat(300)}`;
  it.each([
    ['read_file through a file (ENOTDIR)', 'read_file', { path: 'README.md/x' }, `path README.md/x ${through}`],
    ['write_file through a file (ENOTDIR)', 'write_file', { path: 'README.md/x', content: 'x' }, `path README.md/x ${through}`],
    ['list_files through a file (ENOTDIR)', 'list_files', { path: 'README.md/x' }, `path README.md/x ${through}`],
    ['read_file on a loop of links (ELOOP)', 'read_file', { path: 'docs/loop1' }, `path docs/loop1 ${loop}`],
    ['write_file through a loop of links (ELOOP)', 'write_file', { path: 'docs/loop1/a.md', content: 'x' }, `path docs/loop1/a.md ${loop}`],
    [
      'read_file of a name too long (ENAMETOOLONG)',
      'read_file',
      { path: long },
      `path ${long} is too long for the file system (a name is at most 255 bytes, the whole path with the workspace's own directory at most 4096): it cannot be used`,
    ],
    [
      'read_file of a path over 4096 bytes',
      'read_file',
      { path: 'a'.repeat(5000) },
      `path ${'a'.repeat(80)}… is 5000 bytes long; a path is at most 4096 bytes`,
    ],
  ])('%s', async (_label, tool, input, message) => {
    const { result, results } = await attempt(tool, input);
    expect(result.ok).toBe(true);
    expect(results).toEqual([{ content: message, isError: true }]);
    if (result.ok) expect(result.output.transcript).toMatchObject({ toolCalls: 1, refused: 1 });
  });

  it('a tool that fails in the orchestrator is an error result without the host paths', async () => {
    const lint = { name: 'lint', description: 'Lint', inputSchema: { type: 'object' }, command: ['lint'] };
    const { result, results } = await attempt('lint', {}, { tools: ['read_file', lint] }, brokenTarget());
    expect(result.ok).toBe(true);
    expect(results).toEqual([{ content: 'lint failed: Error: cannot start the job in docs: <host path> is busy', isError: true }]);
    if (result.ok)
      expect(result.output.transcript.events).toMatchObject([
        { type: 'model-call' },
        { type: 'tool-call', tool: 'lint', outcome: 'error' },
        { type: 'model-call' },
      ]);
  });
});

/** An input `depth` levels of arrays deep. */
function nested(depth: number): unknown {
  let v: unknown = 'x';
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('a tool input nested too deeply', () => {
  it('is refused as a tool error, and the conversation goes on without it', async () => {
    // A fake client: the SDK's own JSON cannot carry this input either, which is why the loop must not send it back.
    const requests: Anthropic.MessageCreateParamsNonStreaming[] = [];
    const deep = { path: nested(20_000) };
    const client = {
      messages: {
        create: (body: Anthropic.MessageCreateParamsNonStreaming) => {
          requests.push(structuredClone({ ...body, messages: body.messages.slice(1) }));
          const usage = { input_tokens: 1, output_tokens: 1 };
          return Promise.resolve(
            requests.length === 1
              ? { content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: deep }], stop_reason: 'tool_use', usage }
              : { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', usage },
          );
        },
      },
    } as unknown as Pick<Anthropic, 'messages'>;
    const log = createLogSink({ secrets: [] });
    const baseJob: WorkerJob = { runId: 'r-1', itemId: 'it', attempt: 1, workspaceDir: ws, command: [], env: {}, secrets: {}, log };
    const signal = new AbortController().signal;
    const agent = { prompt: 'p', model: 'm', maxTurns: 3, maxTokens: 100, mode: 'strict', apiKeyEnv: 'K' } as const;
    const tools = new ToolBox(agent, { workspaceDir: ws, locks: [], target: undefined, baseJob, secrets: [], signal });
    const events: AgentEvent[] = [];
    const result = await runAgentLoop({
      client,
      model: 'm',
      maxTokens: 100,
      maxTurns: 3,
      system: 's',
      task: 't',
      tools,
      signal,
      onEvent: (e) => events.push(e),
    });
    expect(result).toEqual({ ok: true, answer: 'ok', turns: 2 });
    expect(requests[1]!.messages).toEqual([
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: {} }] },
      {
        role: 'user',
        content: [
          {
            type: 'tool_result',
            tool_use_id: 'toolu_1',
            content: `refused: the input nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels; send a flatter input`,
            is_error: true,
          },
        ],
      },
    ]);
    expect(events[1]).toMatchObject({ type: 'tool-call', tool: 'read_file', outcome: 'refused' });
  });

  it("fails the attempt as an agent's final answer, saying so, before its output is searched for secrets or written", async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const { result } = await attempt('answer', deep, {}, undefined, { type: 'array' });
    expect(result).toEqual({
      ok: false,
      reason: `the final answer nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels; an output is at most that deep`,
      retryable: false,
    });
  });

  it("is refused to a call (an agent's call_ tool, a worker's call through the socket), before anything walks it", async () => {
    const children: ChildRecord[] = [];
    const subagents: Record<string, SubagentConfig> = { a: { command: ['a'], dependencies: ['b'] }, b: { command: ['b'] } };
    const calls = new DependencyCalls({
      caller: 'a',
      subagents,
      frame: { chain: ['a'], id: 'it.1', maxHops: 3 },
      signal: new AbortController().signal,
      clock: Date.now,
      runChild: () => Promise.reject(new Error(`the child's job failed in ${ws}`)),
      onStart: () => {},
      onEnd: (record) => children.push(record),
    });
    expect(await calls.call('call_b', { x: nested(20_000) })).toEqual({
      content: `refused: the input nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels; send a flatter input`,
      isError: true,
      refused: true,
    });
    expect(children).toEqual([]);
    // A child that throws in the orchestrator is a failed child, recorded, its reason without the host path.
    expect(await calls.call('call_b', { x: nested(MAX_JSON_DEPTH - 1) })).toEqual({
      content: "the call to b (it.1/b#1) failed: the call failed in the orchestrator: Error: the child's job failed in <host path>",
      isError: true,
      refused: false,
      child: 'it.1/b#1',
    });
    expect(children).toMatchObject([{ id: 'it.1/b#1', outcome: 'failed' }]);
  });
});
