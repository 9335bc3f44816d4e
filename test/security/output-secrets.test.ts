import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretsInOutput } from '../../src/runs/patch-secrets.js';
import {
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
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { findSecretInObjects } from '../support/secret-search.js';

/**
 * An item's output is written into its patch commit (the `Agora-Output` trailer), which is kept, pushed
 * and read by dependent items as it is: an output that holds a secret fails the item, as a patch that
 * holds one does, and nothing a ref reaches keeps the value. The agent here is the real loop against a
 * local stand-in for the Messages API; its bash tool runs as a real process.
 */

const KEY = 'sk-ant-output-7Hq2v9ZxP4mL0wR8yT';
const TOKEN = 'tok-OUTPUT-9f8e7d6c5b4a';

/** `quote`: reads a file its bash wrote the secret into, removes it, and quotes the value in its answer; `honest` answers without it. */
function script(req: MessagesRequest): Reply {
  const turn = turnOf(req);
  if (taskOf(req).scenario === 'honest') return say('configured the app');
  if (turn === 1) return useTool('bash', { command: 'printf "token=%s\\n" "$OUTPUT_TOKEN" > out/app.conf' });
  if (turn === 2) return useTool('read_file', { path: 'out/app.conf' });
  if (turn === 3) return useTool('bash', { command: 'rm out/app.conf' });
  return say(`configured the app; ${quoted.trim()}`);
}
/** What the agent's read_file returned (the file's text, secret and all). */
let quoted = '';

let api: MessagesApi;
let repo: string;
let items: Map<string, { status: string; reason?: string; resultRef?: string }>;

beforeAll(async () => {
  api = await startMessagesApi((req) => {
    if (turnOf(req) === 3) quoted = lastToolResults(req)[0]?.content ?? '';
    return script(req);
  });
  const shell = { agent: { prompt: 'p.md', model: 'm', baseURL: api.url, mode: 'flexible', tools: ['bash', 'read_file'] }, secrets: ['OUTPUT_TOKEN'] };
  const item = (id: string) => ({
    id,
    executor: 'dispatch',
    inputs: { subagent: 'shell', workerInput: { scenario: id } },
    depends_on: [],
    resourceLocks: ['out/'],
  });
  repo = makeRepo({
    'out/.keep': '',
    'p.md': 'configure the app',
    'plan.json': JSON.stringify({ id: 'out', queue: 'default', items: [item('quote'), item('honest')] }),
    'agora.config.mjs': `export const orch = ${JSON.stringify({ subagents: { shell } })};\n`,
  });
  await agora(repo, ['orch', 'run', 'plan.json'], { ANTHROPIC_API_KEY: KEY, OUTPUT_TOKEN: TOKEN });
  const status = JSON.parse((await agora(repo, ['orch', 'status', 'out-1'])).stdout) as {
    items: Array<{ id: string; status: string; reason?: string; resultRef?: string }>;
  };
  items = new Map(status.items.map((i) => [i.id, i]));
});
afterAll(async () => {
  await api?.close();
  cleanupTempDirs();
});

describe("an item's output", () => {
  it('that quotes a secret fails the item, names the secret and not its value, and no ref keeps it', async () => {
    expect(quoted).toContain(TOKEN); // the agent did read the value
    expect(items.get('quote')).toMatchObject({ status: 'failed', reason: expect.stringContaining('its output holds the value of secret OUTPUT_TOKEN') });
    expect(items.get('quote')?.reason).not.toContain(TOKEN);
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora/patches/out-1/').trim()).toBe('refs/agora/patches/out-1/honest');
    expect(findSecretInObjects(join(repo, '.git'), 'referenced', TOKEN)).toEqual([]);
  });

  it('without one is kept in the patch commit', () => {
    const honest = items.get('honest')!;
    expect(honest.status).toBe('done');
    expect(git(repo, 'show', '-s', '--format=%B', 'refs/agora/patches/out-1/honest')).toContain('Agora-Output: {"answer":"configured the app"');
  });

  it('is looked through string by string, as written, not as JSON escapes it', () => {
    const secret = 'line one "quoted"\\ and\tmore';
    expect(secretsInOutput({ answer: { nested: [`before ${secret} after`] } }, { S: secret })).toEqual(['S']);
    expect(secretsInOutput({ [`key ${secret}`]: 1 }, { S: secret })).toEqual(['S']);
    expect(secretsInOutput({ answer: Buffer.from(secret).toString('base64') }, { S: secret })).toEqual(['S']);
    expect(secretsInOutput({ answer: 'nothing here' }, { S: secret })).toEqual([]);
    expect(secretsInOutput({ account: 1234567890123 }, { ACCOUNT: '1234567890123' })).toEqual(['ACCOUNT']); // a number, as JSON writes it
    expect(secretsInOutput(undefined, { S: secret })).toEqual([]);
  });
});

describe('items an item emits', () => {
  it('that hold a secret parameter fail the item, and are not stored', async () => {
    const secret = 'param-secret-Zq81xY0w';
    // The worker copies its secret parameter from $AGORA_PARAMS into an item it emits.
    const run = `tok=$(tr -d '\\n ' < "$AGORA_PARAMS" | sed 's/.*"token":"\\([^"]*\\)".*/\\1/'); printf '{"items":[{"id":"x","executor":"command","inputs":{"run":"echo %s"},"depends_on":[],"resourceLocks":[]}]}' "$tok" > "$AGORA_EMIT/items.json"`;
    const plan = { id: 'em', queue: 'default', items: [{ id: 'e', executor: 'command', inputs: { run }, depends_on: [], resourceLocks: [] }] };
    const emitter = makeRepo({ 'plan.json': JSON.stringify(plan) });
    expect((await agora(emitter, ['orch', 'run', 'plan.json', '--secret-data', `token=${secret}`])).code).toBe(1);
    const status = JSON.parse((await agora(emitter, ['orch', 'status', 'em-1'])).stdout) as { items: Array<{ id: string; status: string; reason?: string }> };
    expect(status.items.map((i) => i.id)).toEqual(['e']);
    expect(status.items[0]).toMatchObject({ status: 'failed', reason: expect.stringContaining('holds the value of secret parameter token') });
    expect(findSecretInObjects(join(emitter, '.git'), 'referenced', secret)).toEqual([]);
  });
});
