import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { say, startMessagesApi, type MessagesApi } from '../support/messages-api.js';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';

/**
 * An agent's loop that throws (not the model's doing: here an operator's tool schema nested too deeply for
 * the request's digest) fails its attempt like any other failure: the log is kept and the reason says
 * what failed, redacted like every reason, instead of the attempt ending as an internal error with no log.
 */

let api: MessagesApi;
let repo: string;
let item: { status: string; reason?: string };

/** A JSON schema of `depth` nested properties (twice as many levels of objects). */
function deepSchema(depth: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < depth; i += 1) schema = { type: 'object', properties: { x: schema } };
  return schema;
}

beforeAll(async () => {
  api = await startMessagesApi(() => say('done'));
  const tool = { name: 'lint', description: 'runs the linter', command: ['true'], inputSchema: deepSchema(300) };
  const config = { subagents: { editor: { agent: { prompt: 'p.md', model: 'm', baseURL: api.url, tools: ['read_file', tool] } } } };
  const plan = {
    id: 'deep',
    queue: 'default',
    items: [{ id: 'edit', executor: 'dispatch', inputs: { subagent: 'editor' }, depends_on: [], resourceLocks: [] }],
  };
  repo = makeRepo({ 'p.md': 'edit', 'plan.json': JSON.stringify(plan), 'agora.config.mjs': `export const orch = ${JSON.stringify(config)};\n` });
  const ran = await agora(repo, ['orch', 'run', 'plan.json'], { ANTHROPIC_API_KEY: 'sk-ant-loop-throws-7Hq2v9ZxP4mL0wR8yT' });
  expect(ran.code).toBe(1);
  const status = JSON.parse((await agora(repo, ['orch', 'status', 'deep-1'])).stdout) as { items: Array<{ id: string; status: string; reason?: string }> };
  item = status.items.find((i) => i.id === 'edit')!;
});
afterAll(async () => {
  await api?.close();
  cleanupTempDirs();
});

describe('an agent loop that throws', () => {
  it('fails the attempt with what failed, and keeps its log', async () => {
    expect(item).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('the agent loop failed: cannot digest a value nested deeper than 512 levels'),
    });
    expect(item.reason).not.toContain('internal error');
    const logs = await agora(repo, ['orch', 'logs', 'deep-1', 'edit']);
    expect(logs.code).toBe(0);
  });
});
