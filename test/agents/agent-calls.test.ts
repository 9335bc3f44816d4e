import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agora, CLI, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { keyLeaks, patchOutput } from '../support/agent-runs.js';
import type { Transition } from '../../src/engine/types.js';
import { appendEntries } from '../../src/log/entry.js';
import { merkleRootHex } from '../../src/log/merkle.js';
import {
  lastToolResults,
  say,
  startMessagesApi,
  turnOf,
  useTool,
  type MessagesApi,
  type MessagesRequest,
  type Reply,
  type Seen,
} from '../support/messages-api.js';

/**
 * Agents calling agents: one `orch run` on a queue of concurrency 1 (a child runs in its parent's slot,
 * so a call cannot wait for a slot its parent holds) against a loopback Messages API. Each subagent has
 * its own prompt, so the script knows who is asking.
 */

const CANARY = 'sk-ant-canary-Calls9ZxP4mL0wR8yT2';

/** What each caller's model read back from its call, by subagent. */
const toldBack = new Map<string, { content: string; isError: boolean }>();

function whoAsks(req: MessagesRequest): string {
  return /^You are (\S+)\./.exec(req.system ?? '')?.[1] ?? 'unknown';
}

/** A caller: calls `tool` with `input` at turn 1, then repeats what it was told. */
function caller(req: MessagesRequest, who: string, tool: string, input: unknown): Reply {
  if (turnOf(req) === 1) return useTool(tool, input);
  const result = lastToolResults(req)[0] ?? { content: '(nothing)', isError: true };
  toldBack.set(who, result);
  return say(`${who} heard: ${result.content}`);
}

function script(req: MessagesRequest, seen: Seen): Reply | Promise<Reply> {
  const who = whoAsks(req);
  switch (who) {
    case 'lead':
      return caller(req, who, 'call_scribe', { note: 'from the lead' });
    case 'scribe':
      if (turnOf(req) === 1) {
        const input = JSON.parse(req.messages[0]!.content as string) as { note: string; dir?: string };
        return useTool('write_file', { path: `out/${input.dir ?? 'calls'}/from-child.md`, content: `the child wrote: ${input.note}\n` });
      }
      return say(`wrote ${lastToolResults(req)[0]!.content.replace(/^wrote \d+ bytes to /, '')}`);
    case 'a':
      return caller(req, who, 'call_b', {});
    case 'b':
      return caller(req, who, 'call_c', {});
    case 'c':
      return caller(req, who, 'call_d', {});
    case 'd':
      return say('d answered');
    case 'thrifty':
      return caller(req, who, 'call_rambler', {});
    case 'rambler':
      return useTool('list_files', {});
    case 'loner':
      return caller(req, who, 'call_rambler', {});
    case 'hurried':
      return caller(req, who, 'call_sleeper', {});
    case 'flaky':
      // Calls, then answers in a shape its outputSchema refuses: the attempt fails after its child ran.
      return caller(req, who, 'call_e', {});
    case 'e':
      return say('e answered');
    case 'sleeper':
      // Never answers: the call must be stopped for it (the connection closes), and then this reply goes nowhere.
      return seen.closed.then(() => say('too late'));
    default:
      return say(`unknown subagent ${who}`);
  }
}

const SCRIPTED = [
  'set -e',
  'agora() { "$NODE" "$CLI" "$@"; }',
  `echo '{"note": "from a command", "dir": "script"}' | agora call scribe --input -`,
  `agora call rambler --input '{}' 2>&1 || echo "the undeclared call exited $?"`,
  `agora call scribe --input '{"dir": "script"}' 2>&1 || echo "the bad input exited $?"`,
  'agora call echoer',
  'echo "the item sees socket=${AGORA_CALL_SOCKET:+set}"',
].join('\n');

let api: MessagesApi;
let repo: string;
let runOutput: { code: number | null; stdout: string; stderr: string };
let status: { items: Array<{ id: string; status: string; reason?: string; resultRef?: string; calls?: Array<Record<string, unknown>> }> };

interface Child {
  id: string;
  subagent: string;
  parent: string;
  hop: number;
  deadline?: number;
  outcome: string;
  reason?: string;
  events: Array<Record<string, unknown>>;
  children: Child[];
}

beforeAll(async () => {
  api = await startMessagesApi(script);
  const names = ['lead', 'scribe', 'a', 'b', 'c', 'd', 'thrifty', 'rambler', 'loner', 'hurried', 'sleeper', 'flaky', 'e'];
  const agent = (name: string, extra: Record<string, unknown> = {}) => ({
    agent: { prompt: `prompts/${name}.md`, model: 'claude-test-model', baseURL: api.url },
    ...extra,
  });
  const config = {
    queues: { default: { concurrency: 1 } },
    subagents: {
      lead: agent('lead', { dependencies: ['scribe'] }),
      scribe: agent('scribe', {
        description: 'Writes a note into out/calls/.',
        inputSchema: { type: 'object', required: ['note'], properties: { note: { type: 'string' } } },
      }),
      a: agent('a', { dependencies: ['b'], maxHops: 2 }),
      b: agent('b', { dependencies: ['c'] }),
      c: agent('c', { dependencies: ['d'] }),
      d: agent('d'),
      thrifty: agent('thrifty', { dependencies: ['rambler'], callBudget: { modelCalls: 2 } }),
      rambler: agent('rambler'),
      loner: agent('loner'),
      hurried: agent('hurried', { dependencies: ['sleeper'] }),
      sleeper: agent('sleeper', { timeoutSeconds: 600 }),
      flaky: agent('flaky', { dependencies: ['e'], outputSchema: { type: 'object' } }),
      e: agent('e'),
      // A command worker calls through `agora call`, as a sandboxed worker would: no network, a socket.
      scripted: {
        command: ['/bin/sh', '-c', SCRIPTED],
        env: { NODE: process.execPath, CLI },
        dependencies: ['scribe', 'echoer'],
      },
      // A command dependency: its job must not get the item's socket (it would call as the item, at hop 0).
      echoer: { command: ['/bin/sh', '-c', 'echo "echoer sees socket=${AGORA_CALL_SOCKET:-none}"'] },
    },
  };
  const item = (id: string, subagent: string, locks: string[], extra: Record<string, unknown> = {}) => ({
    id,
    executor: 'dispatch',
    inputs: { subagent, workerInput: {} },
    depends_on: [],
    resourceLocks: locks,
    ...extra,
  });
  const plan = {
    id: 'calls',
    queue: 'default',
    items: [
      item('edits', 'lead', ['out/calls/']),
      item('chain', 'a', []),
      item('budget', 'thrifty', []),
      item('undeclared', 'loner', []),
      item('deadline', 'hurried', [], { timeoutSeconds: 5 }),
      item('scripted', 'scripted', ['out/script/']),
      item('failing', 'flaky', []),
    ],
  };
  repo = makeRepo({
    'README.md': '# project\n',
    'plan.json': JSON.stringify(plan),
    'agora.config.mjs': `export const orch = ${JSON.stringify(config)};\n`,
    ...Object.fromEntries(names.map((n) => [`prompts/${n}.md`, `You are ${n}. Answer briefly.`])),
  });
  runOutput = await agora(repo, ['orch', 'run', 'plan.json'], { ANTHROPIC_API_KEY: CANARY });
  status = JSON.parse((await agora(repo, ['orch', 'status', 'calls-1', '--calls'])).stdout) as typeof status;
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
    transcript: { events: Array<Record<string, unknown>>; children?: Child[] };
  }>(repo, byId(id).resultRef!);
/** The attempt's log as the server wrote it (`orch logs` shows the same, redacted, text; one CLI start less). */
const liveLog = (id: string) => readFileSync(join(repo, '.git', 'agora', 'logs', 'calls-1', `${id}.1.log`), 'utf8');
const asked = (who: string) => api.seen.filter((s) => whoAsks(s.body) === who);

describe('agents calling agents', () => {
  it('runs every item, children in their parent slot, on a queue of concurrency 1', () => {
    expect(runOutput.code, runOutput.stderr).toBe(1); // failing fails, by design
    expect(status.items.map((i) => [i.id, i.status])).toEqual([
      ['edits', 'done'],
      ['chain', 'done'],
      ['budget', 'done'],
      ['undeclared', 'done'],
      ['deadline', 'done'],
      ['scripted', 'done'],
      ['failing', 'failed'],
    ]);
  });

  it("shows each item's child attempts in orch status --calls, nested ones after their parent, a failed attempt's too", () => {
    expect(byId('chain').calls).toEqual([
      { attempt: 1, id: 'chain.1/b#1', subagent: 'b', caller: 'a', parent: 'chain.1', hop: 1, outcome: 'ok' },
      { attempt: 1, id: 'chain.1/b#1/c#1', subagent: 'c', caller: 'b', parent: 'chain.1/b#1', hop: 2, outcome: 'ok' },
    ]);
    expect(byId('scripted').calls!.map((c) => c.id)).toEqual(['scripted.1/scribe#1', 'scripted.1/echoer#1']);
    expect(byId('deadline').calls).toEqual([
      expect.objectContaining({
        id: 'deadline.1/sleeper#1',
        outcome: 'stopped',
        deadline: expect.any(Number),
        reason: expect.stringMatching(/^stopped at the deadline/),
      }),
    ]);
    expect(byId('undeclared').calls).toBeUndefined(); // a refused call starts no child
    // The attempt failed (its answer did not match its outputSchema) after its child answered: the audit log still has the child.
    expect(byId('failing').reason).toMatch(/^the final answer is not JSON .*declares an outputSchema/);
    expect(byId('failing').calls).toEqual([{ attempt: 1, id: 'failing.1/e#1', subagent: 'e', caller: 'flaky', parent: 'failing.1', hop: 1, outcome: 'ok' }]);
  });

  it('gives the caller one tool per dependency, from its description and input schema', () => {
    const tools = asked('lead')[0]!.body.tools!;
    expect(tools.map((t) => t.name)).toEqual(['read_file', 'write_file', 'list_files', 'call_scribe']);
    expect(tools[3]).toMatchObject({ description: 'Writes a note into out/calls/.', input_schema: { type: 'object', required: ['note'] } });
    expect(asked('loner')[0]!.body.tools!.map((t) => t.name)).toEqual(['read_file', 'write_file', 'list_files']);
  });

  it("puts a child's edit in its parent's patch, and keeps the child's events apart, naming its parent and hop", async () => {
    expect(git(repo, 'show', `${patchOf('edits')}:out/calls/from-child.md`)).toBe('the child wrote: from the lead\n');
    expect(git(repo, 'diff', '--name-only', `${patchOf('edits')}^`, patchOf('edits')).trim()).toBe('out/calls/from-child.md');
    const output = outputOf('edits');
    expect(output.answer).toBe('lead heard: wrote out/calls/from-child.md');
    // The parent's own events: its two model calls and the call, which names the child attempt.
    expect(output.transcript.events.map((e) => e.type)).toEqual(['model-call', 'tool-call', 'model-call']);
    expect(output.transcript.events[1]).toMatchObject({ tool: 'call_scribe', child: 'edits.1/scribe#1', outcome: 'ok' });
    const [child] = output.transcript.children!;
    expect(child).toMatchObject({ id: 'edits.1/scribe#1', subagent: 'scribe', parent: 'edits.1', hop: 1, outcome: 'ok' });
    expect(child!.events.map((e) => e.type)).toEqual(['model-call', 'tool-call', 'model-call']);
    expect(child!.events[1]).toMatchObject({ tool: 'write_file', path: 'out/calls/from-child.md', outcome: 'ok' });
    const log = (await agora(repo, ['orch', 'logs', 'calls-1', 'edits'])).stdout;
    expect(log).toContain('[agent] {"hop":1,"id":"edits.1/scribe#1","parent":"edits.1","subagent":"scribe","type":"call-start"}');
    expect(log).toMatch(/\[agent edits\.1\/scribe#1\] \{"input":"sha256:[0-9a-f]{64}","ms":\d+,"outcome":"ok","path":"out\/calls\/from-child.md"/);
  });

  it('refuses the call that would pass max_hops and tells the calling model why; the chain still answers', () => {
    expect(asked('b')).toHaveLength(2);
    expect(asked('c')).toHaveLength(2);
    expect(asked('d')).toHaveLength(0);
    expect(toldBack.get('c')).toEqual({
      isError: true,
      content: 'refused by max_hops (2): calling d would make hop 3 of the chain a → b → c → d; do this part yourself or answer with what you have',
    });
    const chain = outputOf('chain').transcript.children!;
    expect(chain[0]).toMatchObject({ id: 'chain.1/b#1', hop: 1, outcome: 'ok' });
    expect(chain[0]!.children[0]).toMatchObject({ id: 'chain.1/b#1/c#1', parent: 'chain.1/b#1', hop: 2, outcome: 'ok', children: [] });
  });

  it("stops a child when its caller's downstream budget is spent, and tells the caller", () => {
    expect(asked('rambler')).toHaveLength(2);
    expect(toldBack.get('thrifty')!.isError).toBe(true);
    expect(toldBack.get('thrifty')!.content).toBe(
      'the call to rambler (budget.1/rambler#1) failed: the budget of a call made by thrifty is spent: 2 of 2 model calls made',
    );
  });

  it('refuses a call to a subagent that is not a declared dependency, saying so', () => {
    expect(toldBack.get('loner')).toEqual({
      isError: true,
      content: "refused: rambler is not a dependency of loner; it declares none (its config's dependencies)",
    });
    expect(outputOf('undeclared').transcript.events[1]).toMatchObject({ tool: 'call_rambler', outcome: 'refused' });
  });

  it("stops a child that would outlive its parent's deadline, in time for the parent to answer", async () => {
    const sleeper = asked('sleeper');
    expect(sleeper).toHaveLength(1);
    await sleeper[0]!.closed; // the child's call was aborted, not left to run
    expect(toldBack.get('hurried')!.content).toMatch(/^the call to sleeper \(deadline\.1\/sleeper#1\) stopped: stopped at the deadline its caller gave it/);
    const [child] = outputOf('deadline').transcript.children!;
    expect(child).toMatchObject({ outcome: 'stopped' });
    // The log names the deadline it was given: the parent's less the reserve, not its own 600 s.
    const log = liveLog('deadline');
    const start = JSON.parse(/\[agent\] (\{.*"type":"call-start"\})/.exec(log)![1]!) as { deadline: number };
    expect(start.deadline).toBe(child!.deadline);
  });

  it('lets a command worker call a dependency through agora call, under the same rules, its child in the output', async () => {
    expect(git(repo, 'show', `${patchOf('scripted')}:out/script/from-child.md`)).toBe('the child wrote: from a command\n');
    const output = outputOf('scripted') as unknown as { calls: Child[] };
    expect(output.calls).toEqual([
      expect.objectContaining({ id: 'scripted.1/scribe#1', subagent: 'scribe', parent: 'scripted.1', hop: 1, outcome: 'ok' }),
      expect.objectContaining({ id: 'scripted.1/echoer#1', subagent: 'echoer', parent: 'scripted.1', hop: 1, outcome: 'ok' }),
    ]);
    const log = liveLog('scripted');
    expect(log).toContain('wrote out/script/from-child.md\n');
    expect(log).toContain(
      "agora: agora call rambler: refused: rambler is not a dependency of scripted; it may call only scribe, echoer (its config's dependencies)",
    );
    expect(log).toContain('the undeclared call exited 1');
    expect(log).toContain('agora call scribe: the input does not match the input schema of scribe: $.note: missing required property "note"');
    expect(log).toContain('the bad input exited 1');
    // A command dependency runs as a job with its output handed back, and without the item's socket.
    expect(log).toContain('exit 0\nechoer sees socket=none\n');
    expect(log).toContain('the item sees socket=set');
  });

  it('records each child attempt as its own audit entry after its attempt, naming its parent; verify checks them against the plan', async () => {
    const file = join(repo, '.git', 'calls.audit.json');
    const audit = await agora(repo, ['orch', 'audit', 'calls-1', '--out', file]);
    expect(audit.code, audit.stderr).toBe(0);
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { format: string; entries: Array<Record<string, unknown>>; root: string };
    expect(bundle.format).toBe('agora.audit/v5');
    const calls = bundle.entries.filter((e) => e.kind === 'call');
    expect(calls.map((c) => c.call)).toEqual([
      'edits.1/scribe#1',
      'chain.1/b#1',
      'chain.1/b#1/c#1',
      'budget.1/rambler#1',
      'deadline.1/sleeper#1',
      'scripted.1/scribe#1',
      'scripted.1/echoer#1',
      'failing.1/e#1',
    ]);
    const edits = calls[0]!;
    expect(edits).toEqual({
      kind: 'call',
      itemId: 'edits',
      attempt: 1,
      at: expect.any(Number),
      call: 'edits.1/scribe#1',
      parent: 'edits.1',
      caller: 'lead',
      declared: ['scribe'],
      subagent: 'scribe',
      calleeKind: 'agent',
      hop: 1,
      maxHops: 3,
      input: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      output: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      outcome: 'ok',
      startedAt: expect.any(Number),
      finishedAt: expect.any(Number),
      seq: expect.any(Number),
      runId: 'calls-1',
      prevHash: expect.any(String),
      hash: expect.any(String),
    });
    // Right after the attempt's outcome, in the same state commit; a failed attempt's child too.
    const before = (call: Record<string, unknown>) => bundle.entries[bundle.entries.indexOf(call) - 1];
    expect(before(edits)).toMatchObject({ kind: 'item', itemId: 'edits', from: 'running', to: 'done' });
    expect(before(calls[7]!)).toMatchObject({ kind: 'item', itemId: 'failing', from: 'running', to: 'failed' });
    expect(calls[2]).toMatchObject({ parent: 'chain.1/b#1', caller: 'b', hop: 2, maxHops: 2 });
    expect(calls[4]).toMatchObject({ outcome: 'stopped', deadline: expect.any(Number) });
    expect(calls[4]).not.toHaveProperty('output');
    expect(calls[6]).toMatchObject({ parent: 'scripted.1', caller: 'scripted', calleeKind: 'command', declared: ['scribe', 'echoer'] });
    const verified = await agora(repo, ['verify', file, '--repo', '.', '--json']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    // Tampered: edits's call says subagent a made it (the chain and root rebuilt around the change). Only
    // the plan can tell: item edits dispatches to lead.
    const forged = bundle.entries.map((e) => (e === edits ? { ...e, caller: 'a' } : e));
    const rechained = appendEntries(
      null,
      'calls-1',
      forged.map(({ seq: _s, runId: _r, prevHash: _p, hash: _h, ...t }) => t as unknown as Transition),
    );
    const tamperedFile = join(repo, '.git', 'calls.tampered.audit.json');
    writeFileSync(tamperedFile, JSON.stringify({ ...bundle, entries: rechained, root: merkleRootHex(rechained.map((e) => e.hash)) }));
    const alone = await agora(repo, ['verify', tamperedFile, '--json']);
    expect(alone.code).toBe(0); // the bundle alone cannot know what edits dispatches to
    const withRepo = await agora(repo, ['verify', tamperedFile, '--repo', '.', '--json']);
    expect(withRepo.code).not.toBe(0);
    const failures = (JSON.parse(withRepo.stdout) as { failures: Array<{ code: string; message: string }> }).failures;
    expect(failures).toContainEqual({
      code: 'call-parent',
      message: `entry ${String(edits.seq)}: a call of edits.1 says a called, but item edits dispatches to lead`,
      entry: edits.seq,
      item: 'edits',
    });
  });

  it('keeps the API key out of the logs, the state, the audit bundle, the patches and every object', async () => {
    expect(await keyLeaks(repo, 'calls-1', CANARY, runOutput.stdout + runOutput.stderr)).toEqual([]);
    // The children used the key: it was in the loop, only there.
    expect(asked('scribe').every((s) => s.headers.authorization === `Bearer ${CANARY}` || s.headers['x-api-key'] === CANARY)).toBe(true);
  });
});
