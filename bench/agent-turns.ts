/**
 * bench/agent-turns: the managed loop's own cost per model turn (issue 18). An agent runs TURNS turns
 * against the loopback Messages API of the tests; every turn but the last asks for one write_file (in
 * scope), so a turn is: build and digest the request, the SDK's HTTP call, parse, one tool call on a
 * real workspace directory, the events to the log. Beside it, in the same run and against the same
 * server, plain `fetch` POSTs of the same request bodies (the server's own response time as a client
 * sees it, without the SDK or the loop). Reported: ms per turn of both, the overhead per turn (the
 * difference) and its ratio to the server's response time. ROUNDS alternating rounds, medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runAgent } from '../src/agents/run-agent.js';
import { createLogSink } from '../src/executors/log-sink.js';
import { lastToolResults, say, startMessagesApi, turnOf, useTool, type MessagesRequest } from '../test/support/messages-api.js';
import { median, report } from './lib.js';

const TURNS = Number(process.env.TURNS ?? 20);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const KEY = 'sk-ant-bench-0123456789abcdef';

const bodies: MessagesRequest[] = [];
const api = await startMessagesApi((req) => {
  bodies.push(req);
  const turn = turnOf(req);
  if (turn > 1 && lastToolResults(req)[0]?.isError) throw new Error(`tool failed: ${lastToolResults(req)[0]!.content}`);
  return turn < TURNS ? useTool('write_file', { path: `out/f${turn}.txt`, content: `turn ${turn}\n`.repeat(20) }) : say('done');
});

async function agentRound(): Promise<number> {
  const ws = mkdtempSync(join(tmpdir(), 'agora-bench-agent-'));
  const log = createLogSink({ secrets: [KEY] });
  const start = performance.now();
  const result = await runAgent({
    name: 'bench',
    subagent: { agent: { prompt: 'bench/agent-turns.ts', model: 'bench-model', maxTurns: TURNS, maxTokens: 1024, mode: 'strict', apiKeyEnv: 'ANTHROPIC_API_KEY', baseURL: api.url } },
    configDir: process.cwd(),
    job: { runId: 'bench', itemId: 'agent', attempt: 1, workspaceDir: ws, command: [], env: {}, secrets: {}, stdin: '{"task":"bench"}', log },
    target: undefined,
    locks: ['out/'],
    apiKey: KEY,
    environment: {},
    secrets: [KEY],
    log,
    signal: new AbortController().signal,
  });
  const ms = performance.now() - start;
  await log.close();
  rmSync(ws, { recursive: true, force: true });
  if (!result.ok || result.output.transcript.turns !== TURNS) throw new Error(`the agent did not run ${TURNS} turns: ${JSON.stringify(result)}`);
  return ms / TURNS;
}

/** The same request bodies the loop sent, POSTed one after another with fetch. */
async function rawRound(sent: MessagesRequest[]): Promise<number> {
  const start = performance.now();
  for (const body of sent) {
    const res = await fetch(`${api.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': KEY }, body: JSON.stringify(body) });
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
await api.close();
const perTurn = median(agent);
const server = median(raw);
report('agent-turns', {
  turns: TURNS,
  rounds: ROUNDS,
  msPerTurnLoop: +perTurn.toFixed(2),
  msPerTurnServer: +server.toFixed(2),
  overheadMsPerTurn: +(perTurn - server).toFixed(2),
  overheadRatio: +((perTurn - server) / server).toFixed(2),
  loopRounds: agent.map((x) => +x.toFixed(2)),
  serverRounds: raw.map((x) => +x.toFixed(2)),
  load: (await import('node:os')).loadavg()[0],
});
