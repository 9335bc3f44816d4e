/**
 * bench/agent-turns: the managed loop's own cost per model turn (issue 18). An agent runs TURNS turns
 * against the loopback Messages API of the tests; every turn but the last asks for one write_file (in
 * scope), so a turn is: build and digest the request, the SDK's HTTP call, parse, one tool call on a
 * real workspace directory, the events to the log. Beside it, in the same run and against the same
 * server, plain `fetch` POSTs of the same request bodies (the server's own response time as a client
 * sees it, without the SDK or the loop). Reported: ms per turn of both, the overhead per turn (the
 * difference) and its ratio to the server's response time. ROUNDS alternating rounds, medians.
 *
 * Then the same for dependency calls: an agent makes CALLS calls to a dependency (another agent, which
 * answers in one turn), one per turn: each call is a child attempt with its frame, limits, tool box
 * and events. The overhead per call is the round's time less the server's time for the same bodies,
 * over CALLS: all the orchestrator adds for one call, the caller's turn that asks for it and the
 * child's own turn included (two model requests per call).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runAgent, type AgentRunArgs, type AgentRunResult } from '../src/agents/run-agent.js';
import { createLogSink } from '../src/executors/log-sink.js';
import { lastToolResults, say, startMessagesApi, turnOf, useTool, type MessagesRequest } from '../test/support/messages-api.js';
import { median, report } from './lib.js';

const TURNS = Number(process.env.TURNS ?? 20);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const CALLS = Number(process.env.CALLS ?? 10);
const CHILD_PROMPT = 'bench/lib.ts';
const KEY = 'sk-ant-bench-0123456789abcdef';

const bodies: MessagesRequest[] = [];
const api = await startMessagesApi((req) => {
  bodies.push(req);
  const turn = turnOf(req);
  if (req.tools?.some((t) => t.name === 'call_child')) return turn <= CALLS ? useTool('call_child', { n: turn }) : say('called');
  if (!req.system?.startsWith('/**\n * bench/agent-turns')) return say('child done');
  if (turn > 1 && lastToolResults(req)[0]?.isError) throw new Error(`tool failed: ${lastToolResults(req)[0]!.content}`);
  return turn < TURNS ? useTool('write_file', { path: `out/f${turn}.txt`, content: `turn ${turn}\n`.repeat(20) }) : say('done');
});

const agentConfig = (prompt: string, maxTurns: number) => ({
  prompt,
  model: 'bench-model',
  maxTurns,
  maxTokens: 1024,
  mode: 'strict' as const,
  apiKeyEnv: 'ANTHROPIC_API_KEY',
  baseURL: api.url,
});

/** One attempt of `subagent` on a fresh workspace directory, timed from the call to its result. */
async function timedAttempt(args: Pick<AgentRunArgs, 'name' | 'subagent' | 'subagents' | 'locks'>): Promise<{ ms: number; result: AgentRunResult }> {
  const ws = mkdtempSync(join(tmpdir(), 'agora-bench-agent-'));
  const log = createLogSink({ secrets: [KEY] });
  const start = performance.now();
  const result = await runAgent({
    ...args,
    configDir: process.cwd(),
    job: { runId: 'bench', itemId: 'agent', attempt: 1, workspaceDir: ws, command: [], env: {}, secrets: {}, stdin: '{"task":"bench"}', log },
    target: undefined,
    apiKey: KEY,
    environment: {},
    secrets: [KEY],
    log,
    signal: new AbortController().signal,
  });
  const ms = performance.now() - start;
  await log.close();
  rmSync(ws, { recursive: true, force: true });
  return { ms, result };
}

/** TURNS turns, each writing a file: ms per turn. */
async function agentRound(): Promise<number> {
  const { ms, result } = await timedAttempt({ name: 'bench', subagent: { agent: agentConfig('bench/agent-turns.ts', TURNS) }, locks: ['out/'] });
  if (!result.ok || result.output.transcript.turns !== TURNS) throw new Error(`the agent did not run ${TURNS} turns: ${JSON.stringify(result)}`);
  return ms / TURNS;
}

/** A caller making CALLS dependency calls: ms for all of them. */
async function callRound(): Promise<number> {
  const caller = { agent: agentConfig('bench/agent-turns.ts', CALLS + 1), dependencies: ['child'] };
  const { ms, result } = await timedAttempt({
    name: 'caller',
    subagent: caller,
    subagents: { caller, child: { agent: agentConfig(CHILD_PROMPT, 2) } },
    locks: [],
  });
  if (!result.ok || result.output.transcript.children?.filter((c) => c.outcome === 'ok').length !== CALLS)
    throw new Error(`the agent did not make ${CALLS} calls: ${JSON.stringify(result)}`);
  return ms;
}

/** The same request bodies the loop sent, POSTed one after another with fetch. */
async function rawRound(sent: MessagesRequest[]): Promise<number> {
  const start = performance.now();
  for (const body of sent) {
    const res = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify(body),
    });
    await res.json();
  }
  return (performance.now() - start) / sent.length;
}

await agentRound(); // warm-up: module loading, the first connection
const agent: number[] = [];
const raw: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  bodies.length = 0;
  agent.push(await agentRound());
  const sent = bodies.slice();
  raw.push(await rawRound(sent));
}
const calls: number[] = [];
const callsRaw: number[] = [];
const callBodies: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  bodies.length = 0;
  calls.push(await callRound());
  const sent = bodies.slice();
  callBodies.push(sent.length);
  callsRaw.push((await rawRound(sent)) * sent.length);
}
await api.close();
const perTurn = median(agent);
const server = median(raw);
// Per call: the round less the server's time for the same bodies, over the calls.
const callOverheads = calls.map((ms, i) => (ms - callsRaw[i]!) / CALLS);
const perCall = median(callOverheads);
const serverPerRequestInCalls = median(callsRaw.map((ms, i) => ms / callBodies[i]!));
report('agent-turns', {
  turns: TURNS,
  rounds: ROUNDS,
  msPerTurnLoop: +perTurn.toFixed(2),
  msPerTurnServer: +server.toFixed(2),
  overheadMsPerTurn: +(perTurn - server).toFixed(2),
  overheadRatio: +((perTurn - server) / server).toFixed(2),
  calls: CALLS,
  overheadMsPerCall: +perCall.toFixed(2),
  overheadPerCallRatio: +(perCall / serverPerRequestInCalls).toFixed(2),
  callRoundsMs: calls.map((x) => +x.toFixed(1)),
  callRoundsServerMs: callsRaw.map((x) => +x.toFixed(1)),
  loopRounds: agent.map((x) => +x.toFixed(2)),
  serverRounds: raw.map((x) => +x.toFixed(2)),
  load: (await import('node:os')).loadavg()[0],
});
