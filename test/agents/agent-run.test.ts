import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { findSecret } from '../support/secret-search.js';
import { keyLeaks, patchOutput } from '../support/agent-runs.js';
import {
  failWith,
  lastToolResults,
  say,
  startMessagesApi,
  taskOf,
  turnOf,
  useTool,
  type MessagesApi,
  type MessagesRequest,
  type Reply,
} from '../support/messages-api.js';

/**
 * `agent` subagents end to end: the real CLI runs a plan whose items are managed loops against a
 * loopback Messages API; the loop runs in the orchestrator, the tools act on each item's workspace.
 */

const CANARY = 'sk-ant-canary-7Hq2v9ZxP4mL0wR8yT';
const PROMPT = 'You edit files of the repository you are given. Answer briefly.';

const failuresBefore = new Map<string, number>();
const shellResults: string[] = [];

/** Each item's script, picked by its input's `scenario`. */
function script(req: MessagesRequest): Reply {
  const task = taskOf(req);
  const scenario = String(task.scenario);
  const turn = turnOf(req);
  const results = lastToolResults(req);
  switch (scenario) {
    case 'edit':
      return turn === 1 ? useTool('write_file', { path: 'out/edit/hello.txt', content: 'hello from the agent\n' }) : say('wrote out/edit/hello.txt');
    case 'stray':
      if (turn === 1) return useTool('write_file', { path: 'README.md', content: 'taken over\n' });
      if (turn === 2) {
        // The refusal must say why, so that the model can recover.
        if (!results[0]?.isError || !results[0].content.includes("outside this item's write scope (out/stray/)"))
          return say(`NOT TOLD WHY: ${JSON.stringify(results)}`);
        return useTool('write_file', { path: 'out/stray/notes.md', content: 'kept inside my scope\n' });
      }
      return say('recovered');
    case 'malformed':
      if (turn === 1) return useTool('write_file', { path: 'out/malformed/x.txt' });
      if (turn === 2) {
        if (!results[0]?.isError || !results[0].content.includes('missing required property "content"')) return say(`NOT TOLD: ${JSON.stringify(results)}`);
        return useTool('write_file', { path: 'out/malformed/x.txt', content: 'now with content\n' });
      }
      return say('fixed my call');
    case 'loop':
      return useTool('list_files', {});
    case 'flaky': {
      // A rate limit, then a server error: the SDK's own retries get past both.
      const n = failuresBefore.get(scenario) ?? 0;
      failuresBefore.set(scenario, n + 1);
      if (n === 0) return failWith(429, 'rate_limit_error', 'Number of requests has exceeded your rate limit', { 'retry-after-ms': '5' });
      if (n === 1) return failWith(500, 'api_error', 'Internal server error', { 'retry-after-ms': '5' });
      return say('```json\n{"count": 3, "summary": "three files"}\n```');
    }
    case 'wrong-shape':
      return say('{"count": "three"}');
    case 'shell':
      if (turn === 1) return useTool('bash', { command: 'env; echo AGORA_DONE' });
      shellResults.push(results[0]?.content ?? '');
      return say('looked around');
    default:
      return failWith(400, 'invalid_request_error', `unknown scenario ${scenario}`);
  }
}

let api: MessagesApi;
let repo: string;
let runOutput: { code: number | null; stdout: string; stderr: string };
let status: { items: Array<{ id: string; status: string; reason?: string; resultRef?: string }> };

const item = (id: string, subagent: string, scenario: string, locks: string[]) => ({
  id,
  executor: 'dispatch',
  inputs: { subagent, workerInput: { scenario } },
  depends_on: [],
  resourceLocks: locks,
});

beforeAll(async () => {
  api = await startMessagesApi(script);
  const agent = (extra: Record<string, unknown> = {}) => ({ agent: { prompt: 'prompts/editor.md', model: 'claude-test-model', baseURL: api.url, ...extra } });
  const config = {
    subagents: {
      editor: agent(),
      looper: agent({ maxTurns: 3 }),
      counter: {
        ...agent(),
        outputSchema: { type: 'object', required: ['count', 'summary'], properties: { count: { type: 'integer' }, summary: { type: 'string' } } },
      },
      shell: agent({ mode: 'flexible', tools: ['bash'] }),
    },
  };
  const plan = {
    id: 'agents',
    queue: 'default',
    items: [
      item('edits', 'editor', 'edit', ['out/edit/']),
      item('strays', 'editor', 'stray', ['out/stray/']),
      item('malformed', 'editor', 'malformed', ['out/malformed/']),
      item('loops', 'looper', 'loop', []),
      item('flaky', 'counter', 'flaky', []),
      item('wrong-shape', 'counter', 'wrong-shape', []),
      item('shell', 'shell', 'shell', []),
    ],
  };
  repo = makeRepo({
    'README.md': '# project\n',
    'plan.json': JSON.stringify(plan),
    'agora.config.mjs': `export const orch = ${JSON.stringify(config)};\n`,
    'prompts/editor.md': PROMPT,
  });
  runOutput = await agora(repo, ['orch', 'run', 'plan.json'], { ANTHROPIC_API_KEY: CANARY });
  status = JSON.parse((await agora(repo, ['orch', 'status', 'agents-1'])).stdout) as typeof status;
});

afterAll(async () => {
  await api?.close();
  cleanupTempDirs();
});

const byId = (id: string) => status.items.find((i) => i.id === id)!;
const patchOf = (id: string) => byId(id).resultRef!.replace(/^git:/, '');
const outputOf = (id: string) =>
  patchOutput<{
    answer: unknown;
    transcript: { turns: number; toolCalls: number; refused: number; events: Array<Record<string, unknown>> };
  }>(repo, byId(id).resultRef!);

describe('agent subagents', () => {
  it('edits a file in scope: the loop calls the API with the prompt and the key, the change is the patch, the answer the output', () => {
    expect(byId('edits').status, JSON.stringify(byId('edits'))).toBe('done');
    expect(git(repo, 'show', `${patchOf('edits')}:out/edit/hello.txt`)).toBe('hello from the agent\n');
    expect(git(repo, 'diff', '--name-only', `${patchOf('edits')}^`, patchOf('edits')).trim()).toBe('out/edit/hello.txt');
    const output = outputOf('edits');
    expect(output.answer).toBe('wrote out/edit/hello.txt');
    expect(output.transcript).toMatchObject({ turns: 2, toolCalls: 1, refused: 0 });
    // Each model call and tool call is an event, its input a digest.
    expect(output.transcript.events.map((e) => e.type)).toEqual(['model-call', 'tool-call', 'model-call']);
    expect(output.transcript.events[1]).toMatchObject({
      tool: 'write_file',
      path: 'out/edit/hello.txt',
      outcome: 'ok',
      input: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    const first = api.seen.find((s) => taskOf(s.body).scenario === 'edit')!;
    expect(first.body.system).toBe(PROMPT);
    expect(first.body.tools!.map((t) => t.name)).toEqual(['read_file', 'write_file', 'list_files']);
    // The SDK sends the key as a bearer token (or x-api-key): the loop used it, so it had it.
    expect(api.seen.every((s) => s.headers.authorization === `Bearer ${CANARY}` || s.headers['x-api-key'] === CANARY)).toBe(true);
  });

  it('refuses a write outside the scope, tells the model why, and lets it recover', () => {
    expect(byId('strays').status, JSON.stringify(byId('strays'))).toBe('done');
    expect(outputOf('strays').answer).toBe('recovered');
    expect(outputOf('strays').transcript.refused).toBe(1);
    expect(git(repo, 'diff', '--name-only', `${patchOf('strays')}^`, patchOf('strays')).trim()).toBe('out/stray/notes.md');
  });

  it('hands a malformed tool call back with the schema problem, and the model can correct it', () => {
    expect(byId('malformed').status, JSON.stringify(byId('malformed'))).toBe('done');
    expect(git(repo, 'show', `${patchOf('malformed')}:out/malformed/x.txt`)).toBe('now with content\n');
  });

  it('fails an item that reaches maxTurns, saying so', () => {
    expect(byId('loops')).toMatchObject({ status: 'failed' });
    expect(byId('loops').reason).toContain('reached maxTurns (3) without a final answer');
    expect(api.seen.filter((s) => taskOf(s.body).scenario === 'loop').length).toBe(3);
  });

  it('gets past a 429 and a 500, and keeps output that matches the outputSchema as JSON', () => {
    expect(byId('flaky').status, JSON.stringify(byId('flaky'))).toBe('done');
    expect(outputOf('flaky').answer).toEqual({ count: 3, summary: 'three files' });
    expect(api.seen.filter((s) => taskOf(s.body).scenario === 'flaky').length).toBe(3);
  });

  it('fails output that does not match the outputSchema, naming the JSON paths', () => {
    expect(byId('wrong-shape').status).toBe('failed');
    expect(byId('wrong-shape').reason).toContain('output does not match the outputSchema of subagent "counter"');
    expect(byId('wrong-shape').reason).toContain('$.count');
    expect(byId('wrong-shape').reason).toContain('$.summary');
  });

  it('runs bash on the target in flexible mode, in a worker that never holds the API key', () => {
    expect(byId('shell').status, JSON.stringify(byId('shell'))).toBe('done');
    expect(shellResults).toHaveLength(1);
    expect(shellResults[0]).toContain('AGORA_ITEM=shell');
    expect(shellResults[0]).toContain('AGORA_DONE');
    expect(shellResults[0]).not.toContain('ANTHROPIC');
  });

  it('keeps the API key out of the logs, the state, the audit bundle, the patches and every object', async () => {
    expect(runOutput.code).toBe(1); // two items fail on purpose
    // The logs are blobs of the state chain (searched as objects) and live files under .git/agora.
    expect(await keyLeaks(repo, 'agents-1', CANARY, runOutput.stdout + runOutput.stderr)).toEqual([]);
    // The log shows the loop's events.
    const log = (await agora(repo, ['orch', 'logs', 'agents-1', 'edits'])).stdout;
    expect(log).toContain('[agent] {"inputTokens"');
    expect(findSecret('the log of edits', log, CANARY)).toEqual([]);
  });
});
