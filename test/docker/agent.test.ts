import type Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { lastToolResults, say, startMessagesApi, turnOf, useTool } from '../support/messages-api.js';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { BUSYBOX, DEFAULT_ENGINE, connectEngine } from './engine.js';

/**
 * An agent on the docker target: the loop stays in the orchestrator, its bash runs in the item's
 * container (as nobody, without the key), and the file tools see what the container wrote.
 */

const docker: Docker | undefined = await connectEngine();
const KEY = 'sk-ant-docker-canary-5tT8qLw2';
afterAll(cleanupTempDirs);

describe.skipIf(!docker)('an agent on the docker target', () => {
  it('runs bash in the container, reads its file back with read_file, and records it as the patch', async () => {
    const seen: string[] = [];
    const api = await startMessagesApi((req) => {
      const turn = turnOf(req);
      if (turn > 1) seen.push(lastToolResults(req)[0]?.content ?? '');
      if (turn === 1) return useTool('bash', { command: 'mkdir -p out/dock && id -u > out/dock/uid.txt && env | grep -c ANTHROPIC; echo ran' });
      if (turn === 2) return useTool('read_file', { path: 'out/dock/uid.txt' });
      return say('done in a container');
    });
    try {
      const config = `export const orch = { subagents: { boxed: {
        target: 'docker', docker: { image: '${BUSYBOX}' },
        agent: { prompt: 'prompt.md', model: 'm', mode: 'flexible', tools: ['bash', 'read_file'], baseURL: '${api.url}' },
      } } };\n`;
      const plan = {
        id: 'dockagent',
        queue: 'default',
        items: [{ id: 'boxed', executor: 'dispatch', inputs: { subagent: 'boxed', workerInput: {} }, depends_on: [], resourceLocks: ['out/dock/'] }],
      };
      const repo = makeRepo({ 'agora.config.mjs': config, 'prompt.md': 'Work in the container.', 'plan.json': JSON.stringify(plan) });
      const r = await agora(
        repo,
        ['orch', 'run', 'plan.json'],
        { DOCKER_HOST: process.env.DOCKER_HOST ?? DEFAULT_ENGINE, ANTHROPIC_API_KEY: KEY },
        scaled(180_000),
      );
      expect(r.code, r.stderr).toBe(0);
      // bash ran as the container's user (nobody), with no ANTHROPIC_* variable at all.
      expect(seen[0]).toMatch(/^exit 1\n0\nran\n$|^exit 0\n0\nran\n$/);
      expect(seen[1]).toBe('65534\n');
      const patch = git(repo, 'rev-parse', 'refs/agora/patches/dockagent-1/boxed').trim();
      expect(git(repo, 'show', `${patch}:out/dock/uid.txt`)).toBe('65534\n');
    } finally {
      await api.close();
    }
  });
});
