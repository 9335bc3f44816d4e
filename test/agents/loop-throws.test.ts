import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApi, type MessagesApi } from '../support/messages-api.js';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';

/**
 * An agent's loop that throws (not the model's doing: here a proxy in front of the Messages API answers
 * 200 with a page of its own, which the SDK hands back as text, so reading the answer's fields throws)
 * fails its attempt like any other failure: the log is kept and the reason says what failed, redacted
 * like every reason, instead of the attempt ending as an internal error with no log.
 */

let api: MessagesApi;
let repo: string;
let item: { status: string; reason?: string };

beforeAll(async () => {
  api = await startMessagesApi(() => ({ kind: 'raw', status: 200, contentType: 'text/html', body: '<html>signed out</html>' }));
  const config = { subagents: { editor: { agent: { prompt: 'p.md', model: 'm', baseURL: api.url, tools: ['read_file'] } } } };
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
      reason: expect.stringMatching(/^the agent loop failed: .*(undefined|reading)/),
    });
    expect(item.reason).not.toContain('internal error');
    const logs = await agora(repo, ['orch', 'logs', 'deep-1', 'edit']);
    expect(logs.code).toBe(0);
  });
});
