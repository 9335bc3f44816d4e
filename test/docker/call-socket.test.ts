import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { lastToolResults, say, startMessagesApi, turnOf, useTool, type MessagesRequest } from '../support/messages-api.js';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { DEFAULT_ENGINE, NODE, connectEngine, managedContainers } from './engine.js';

/**
 * `agora call` from a sandboxed worker: a command subagent on the docker target (no network, as nobody)
 * calls its dependencies through the call socket mounted into its container. The client below speaks the
 * socket's protocol as `agora call` does (one JSON line each way); the image has node but no agora.
 */

const docker: Docker | undefined = await connectEngine();
afterAll(cleanupTempDirs);

const CLIENT = `
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
function call(subagent, input) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(process.env.AGORA_CALL_SOCKET);
    let buffered = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ subagent, input }) + '\\n'));
    s.on('data', (d) => (buffered += d));
    s.on('error', reject);
    s.on('end', () => resolve(JSON.parse(buffered)));
  });
}
(async () => {
  fs.mkdirSync('out/dock', { recursive: true });
  fs.writeFileSync('out/dock/before.txt', 'written in the container before the call');
  console.log('socket=' + process.env.AGORA_CALL_SOCKET);
  console.log('interfaces=' + Object.keys(os.networkInterfaces()).join(','));
  console.log('scribe: ' + JSON.stringify(await call('scribe', { note: 'from a container' })));
  console.log('container sees: ' + fs.readFileSync('out/dock/from-child.md', 'utf8'));
  console.log('rambler: ' + JSON.stringify(await call('rambler', {})));
  console.log('echoer: ' + JSON.stringify(await call('echoer', {})));
  fs.writeFileSync('out/dock/after.txt', 'the worker went on after its calls');
})().catch((e) => {
  console.error('client failed: ' + e.message);
  process.exit(2);
});
`;

function script(req: MessagesRequest) {
  // scribe: reads what the container wrote before calling, writes what it saw, answers.
  const turn = turnOf(req);
  if (turn === 1) return useTool('read_file', { path: 'out/dock/before.txt' });
  if (turn === 2) return useTool('write_file', { path: 'out/dock/from-child.md', content: `child saw: ${lastToolResults(req)[0]!.content}` });
  return say('wrote out/dock/from-child.md');
}

describe.skipIf(!docker)('agora call from a container on the docker target', () => {
  it("calls a declared dependency through the mounted socket, with no network; the child sees and changes the container's workspace", async () => {
    const api = await startMessagesApi(script);
    try {
      const config = {
        subagents: {
          scripted: { target: 'docker', docker: { image: NODE }, command: ['node', 'call.cjs'], dependencies: ['scribe', 'echoer'] },
          scribe: { agent: { prompt: 'prompt.md', model: 'm', baseURL: api.url } },
          rambler: { agent: { prompt: 'prompt.md', model: 'm', baseURL: api.url } },
          // A command dependency: its own container, which must not get the item's socket.
          echoer: { command: ['/bin/sh', '-c', 'echo "echoer sees socket=${AGORA_CALL_SOCKET:-none}"; ls /run/agora 2>&1 | head -n 1'] },
        },
      };
      const plan = {
        id: 'dockcall',
        queue: 'default',
        items: [{ id: 'boxed', executor: 'dispatch', inputs: { subagent: 'scripted', workerInput: {} }, depends_on: [], resourceLocks: ['out/dock/'] }],
      };
      const repo = makeRepo({
        'agora.config.mjs': `export const orch = ${JSON.stringify(config)};\n`,
        'prompt.md': 'Write what you are asked to.',
        'call.cjs': CLIENT,
        'plan.json': JSON.stringify(plan),
      });
      const before = new Set((await managedContainers(docker!, 'dockcall-1')).map((c) => c.Id));
      const r = await agora(
        repo,
        ['orch', 'run', 'plan.json'],
        { DOCKER_HOST: process.env.DOCKER_HOST ?? DEFAULT_ENGINE, ANTHROPIC_API_KEY: 'sk-ant-docker-call-canary-7Qw' },
        scaled(240_000),
      );
      const log = readFileSync(join(repo, '.git', 'agora', 'logs', 'dockcall-1', 'boxed.1.log'), 'utf8');
      expect(r.code, `${r.stderr}\n${log}`).toBe(0);
      // The socket is mounted at a fixed path; the container has loopback only (network none).
      expect(log).toContain('socket=/run/agora/call.sock\n');
      expect(log).toContain('interfaces=lo\n');
      expect(log).toContain('scribe: {"ok":true,"content":"wrote out/dock/from-child.md","child":"boxed.1/scribe#1"}');
      // The child read the container's file (pulled before it ran); the container read the child's (pushed after).
      expect(log).toContain('container sees: child saw: written in the container before the call\n');
      // Only declared dependencies: the socket serves this attempt's calls under the same rules.
      expect(log).toContain(
        `rambler: {"ok":false,"content":"refused: rambler is not a dependency of scripted; it may call only scribe, echoer (its config's dependencies)"}`,
      );
      // The command dependency ran in a container of its own, without the socket.
      const echoer = /echoer: (\{.*\})\n/.exec(log)![1]!;
      expect(JSON.parse(echoer)).toMatchObject({ ok: true, child: 'boxed.1/echoer#1' });
      // Podman may add its own report of a stdin it could not forward to a container that had already exited
      // ("Error: write unixpacket @->/proc/self/fd/N/attach: write: broken pipe") to the stream: the engine's line, not the item's.
      expect((JSON.parse(echoer) as { content: string }).content).toMatch(
        /^exit 0\n(?:Error: write unixpacket [^\n]*broken pipe\n)?echoer sees socket=none\n.*No such file or directory/s,
      );
      const patch = git(repo, 'rev-parse', 'refs/agora/patches/dockcall-1/boxed').trim();
      expect(git(repo, 'diff', '--name-only', `${patch}^`, patch).trim().split('\n')).toEqual([
        'out/dock/after.txt',
        'out/dock/before.txt',
        'out/dock/from-child.md',
      ]);
      expect(git(repo, 'show', `${patch}:out/dock/from-child.md`)).toBe('child saw: written in the container before the call');
      // Both children are audited, and the bundle verifies against the repository.
      const bundleFile = join(repo, '.git', 'dockcall.audit.json');
      expect((await agora(repo, ['orch', 'audit', 'dockcall-1', '--out', bundleFile])).code).toBe(0);
      const bundle = JSON.parse(readFileSync(bundleFile, 'utf8')) as { entries: Array<Record<string, unknown>> };
      expect(bundle.entries.filter((e) => e.kind === 'call').map((e) => [e.call, e.calleeKind, e.outcome])).toEqual([
        ['boxed.1/scribe#1', 'agent', 'ok'],
        ['boxed.1/echoer#1', 'command', 'ok'],
      ]);
      expect((await agora(repo, ['verify', bundleFile, '--repo', '.'])).code).toBe(0);
      // Nothing left behind: neither the worker's container nor its dependency's.
      expect((await managedContainers(docker!, 'dockcall-1')).filter((c) => !before.has(c.Id))).toEqual([]);
    } finally {
      await api.close();
    }
  });
});
