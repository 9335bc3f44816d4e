import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExtraTools } from '../../src/agents/tools.js';
import { ToolBox } from '../../src/agents/tools.js';
import type { AgentConfig } from '../../src/config/types.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerJob, WorkerTarget } from '../../src/executors/types.js';

/**
 * The tool box runs a call by what the tool is, never by its name: an operator's command tool named like
 * a built-in (which the config refuses) still runs the operator's command, so a wrapper named bash can
 * never become a shell for the model.
 */

let ws: string;
beforeAll(() => {
  ws = mkdtempSync(join(tmpdir(), 'agora-tools-'));
});
afterAll(() => rmSync(ws, { recursive: true, force: true }));

function box(agent: AgentConfig, extra?: ExtraTools) {
  const ran: string[][] = [];
  const target: WorkerTarget = {
    name: 'recording',
    run: (job) => {
      ran.push(job.command);
      return Promise.resolve({ exitCode: 0 });
    },
  };
  const log = createLogSink({ secrets: [] });
  const baseJob: WorkerJob = { runId: 'r-1', itemId: 'lint', attempt: 1, workspaceDir: ws, command: [], env: {}, secrets: {}, log };
  const tools = new ToolBox(agent, { workspaceDir: ws, locks: [], target, baseJob, secrets: [], signal: new AbortController().signal }, extra);
  return { tools, ran };
}

const strict = (tools: AgentConfig['tools']): AgentConfig => ({ prompt: 'p', model: 'm', maxTurns: 1, maxTokens: 1, mode: 'strict', apiKeyEnv: 'K', tools });
const command = (name: string) => ({
  name,
  description: 'Runs the project linter (only).',
  inputSchema: { type: 'object' },
  command: ['/usr/bin/lint', '--only'],
});

describe('the tool box', () => {
  it("runs an operator's command tool named bash as that command, never as a shell", async () => {
    const { tools, ran } = box(strict(['read_file', command('bash')]));
    expect(tools.specs.map((s) => s.name)).toEqual(['read_file', 'bash']);
    expect(tools.specs[1]!.description).toBe('Runs the project linter (only).');
    const result = await tools.call('bash', { command: 'id; echo PWNED' });
    expect(result).toMatchObject({ isError: false, refused: false });
    expect(ran).toEqual([['/usr/bin/lint', '--only']]);
  });

  it("runs an operator's command tool named read_file as that command", async () => {
    const { tools, ran } = box(strict([command('read_file')]));
    await tools.call('read_file', { path: 'x' });
    expect(ran).toEqual([['/usr/bin/lint', '--only']]);
  });

  it('refuses to be built with a tool of its own named like a call tool, or twice', () => {
    const extra: ExtraTools = { specs: [], handles: (name) => name.startsWith('call_'), call: () => Promise.reject(new Error('not called')) };
    expect(() => box(strict([command('call_checker')]), extra)).toThrow("the agent's tool name call_checker is given twice, or is a call tool's");
    expect(() => box(strict(['read_file', command('read_file')]))).toThrow("the agent's tool name read_file is given twice, or is a call tool's");
  });
});
