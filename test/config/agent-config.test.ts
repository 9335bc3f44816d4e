import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, MAX_SCHEMA_DEPTH } from '../../src/config/load.js';
import { InvalidInputError } from '../../src/errors.js';

/** `agent` subagents in agora.config.mjs: what loads, and the bad input refused when the config is loaded. */

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agora-agent-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configWith(subagents: string): Promise<string> {
  const file = join(dir, 'agora.config.mjs');
  await writeFile(file, `export const orch = { subagents: ${subagents} };\n`);
  return file;
}

async function problemsOf(file: string): Promise<Array<{ path: string; message: string }>> {
  try {
    await loadConfig({ cwd: dir, file });
  } catch (e) {
    if (!(e instanceof InvalidInputError)) throw e;
    expect(e.code).toBe('config-invalid');
    expect(e.source).toBe(file);
    return e.problems;
  }
  throw new Error('expected the config to be refused');
}

describe('agent subagents in the config', () => {
  it('loads an agent with its defaults filled in', async () => {
    await writeFile(join(dir, 'editor.md'), 'You edit files.');
    const file = await configWith(`{ editor: { agent: { prompt: 'editor.md', model: 'claude-x' }, outputSchema: { type: 'object' } } }`);
    const config = await loadConfig({ cwd: dir, file });
    expect(config.subagents.editor).toEqual({
      agent: { prompt: 'editor.md', model: 'claude-x', maxTurns: 20, maxTokens: 4096, mode: 'strict', apiKeyEnv: 'ANTHROPIC_API_KEY' },
      outputSchema: { type: 'object' },
    });
  });

  it('refuses a prompt file that does not exist, naming the file and the fix', async () => {
    const file = await configWith(`{ editor: { agent: { prompt: 'prompts/missing.md', model: 'claude-x' } } }`);
    expect(await problemsOf(file)).toEqual([
      {
        path: '$.orch.subagents.editor.agent.prompt',
        message: `prompt file not found: ${join(dir, 'prompts/missing.md')}; create it, or give its path relative to the config's directory ${dir}`,
      },
    ]);
  });

  it('refuses a tool input schema and an output schema that are not valid JSON Schema', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const file = await configWith(`{ linter: {
      agent: { prompt: 'p.md', model: 'm', tools: ['read_file', { name: 'lint', description: 'Lint a file', inputSchema: { type: 'objekt' }, command: ['npx', 'eslint'] }] },
      outputSchema: { type: 'object', required: 'summary' },
    } }`);
    const problems = await problemsOf(file);
    expect(problems.map((p) => p.path)).toEqual(['$.orch.subagents.linter.agent.tools[1].inputSchema', '$.orch.subagents.linter.outputSchema']);
    for (const p of problems) expect(p.message).toMatch(/^is not a valid JSON Schema: /);
  });

  it('refuses a tool input schema nested too deeply for a request to carry, before any attempt sends it', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    // 65 nested properties: 131 levels of objects, past MAX_SCHEMA_DEPTH (128); 63 (127 levels) load.
    const nested = (depth: number) =>
      'X'
        .repeat(depth)
        .split('')
        .reduce((inner) => `{ type: 'object', properties: { x: ${inner} } }`, `{ type: 'string' }`);
    const tool = (depth: number) => `{ name: 'lint', description: 'Lint', inputSchema: ${nested(depth)}, command: ['true'] }`;
    const file = await configWith(`{ linter: { agent: { prompt: 'p.md', model: 'm', tools: [${tool(65)}] } } }`);
    expect(await problemsOf(file)).toEqual([
      {
        path: '$.orch.subagents.linter.agent.tools[0].inputSchema',
        message: `nests objects and arrays deeper than ${MAX_SCHEMA_DEPTH} levels; flatten it (with $defs and $ref, say)`,
      },
    ]);
    await loadConfig({ cwd: dir, file: await configWith(`{ linter: { agent: { prompt: 'p.md', model: 'm', tools: [${tool(63)}] } } }`) });
  });

  it("refuses bash in strict mode, an agent that also has a command, and the API key among the workers' secrets", async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const file = await configWith(`{
      a: { agent: { prompt: 'p.md', model: 'm', tools: ['bash'] } },
      b: { command: ['node', 'x.mjs'], agent: { prompt: 'p.md', model: 'm' } },
      c: { agent: { prompt: 'p.md', model: 'm' }, secrets: ['GH_TOKEN', 'ANTHROPIC_API_KEY'] },
      d: { env: {} },
    }`);
    const problems = await problemsOf(file);
    expect(problems.map((p) => p.path)).toEqual([
      '$.orch.subagents.a.agent.tools[0]',
      '$.orch.subagents.b.agent',
      '$.orch.subagents.c.secrets[1]',
      '$.orch.subagents.d.command',
    ]);
    expect(problems[0]!.message).toContain('set agent.mode to "flexible"');
    expect(problems[2]!.message).toContain('only the loop holds');
    expect(problems[3]!.message).toContain('either a command');
  });

  it("refuses an agent's API key among the secrets offered to plans, or another subagent's secrets", async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const file = join(dir, 'agora.config.mjs');
    await writeFile(
      file,
      `export const orch = { secrets: ['DEPLOY_TOKEN', 'MODEL_KEY'], subagents: {
        writer: { agent: { prompt: 'p.md', model: 'm', apiKeyEnv: 'MODEL_KEY' } },
        deployer: { command: ['./deploy'], secrets: ['MODEL_KEY', 'DEPLOY_TOKEN'] },
      } };\n`,
    );
    const problems = await problemsOf(file);
    expect(problems.map((p) => p.path)).toEqual(['$.orch.secrets[1]', '$.orch.subagents.deployer.secrets[0]']);
    for (const p of problems) expect(p.message).toContain('MODEL_KEY is the API key of agent writer');
  });

  it('refuses dependencies on undefined subagents and a cycle of dependencies, at the entry that closes it', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const agent = `agent: { prompt: 'p.md', model: 'm' }`;
    const file = await configWith(`{
      planner: { ${agent}, dependencies: ['coder', 'ghost'] },
      coder: { ${agent}, dependencies: ['reviewer'] },
      reviewer: { ${agent}, dependencies: ['planner'] },
      tester: { command: ['npm', 'test'], dependencies: ['tester'] },
      leaf: { ${agent}, dependencies: ['tester'] },
    }`);
    expect(await problemsOf(file)).toEqual([
      {
        path: '$.orch.subagents.planner.dependencies[1]',
        message: 'names subagent "ghost", which is not defined: define it under orch.subagents, or remove it',
      },
      {
        path: '$.orch.subagents.reviewer.dependencies[0]',
        message:
          'makes a cycle of dependencies (planner → coder → reviewer → planner): a call could come back to a subagent that is already calling; remove one of these dependencies',
      },
      {
        path: '$.orch.subagents.tester.dependencies[0]',
        message:
          'makes a cycle of dependencies (tester → tester): a call could come back to a subagent that is already calling; remove one of these dependencies',
      },
    ]);
  });

  it('refuses a command worker with dependencies on the actions target, which has no channel for agora call; an agent there may call', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const agent = `agent: { prompt: 'p.md', model: 'm' }`;
    const file = await configWith(`{
      runner: { command: ['./work.sh'], target: 'actions', docker: { image: 'x' }, dependencies: ['helper'] },
      looper: { ${agent}, target: 'actions', docker: { image: 'x' }, dependencies: ['helper'] },
      boxed: { command: ['./work.sh'], target: 'docker', docker: { image: 'x' }, dependencies: ['helper'] },
      helper: { ${agent} },
    }`);
    expect(await problemsOf(file)).toEqual([
      {
        path: '$.orch.subagents.runner.dependencies',
        message:
          'a command worker on the actions target cannot call its dependencies: a runner has no channel back to the orchestrator for agora call; run this subagent on the local or docker target, or make it an agent (its loop calls from the orchestrator)',
      },
    ]);
  });

  it('refuses an agent on the actions target that has bash or a command tool, or reaches a command dependency; file tools and agent calls pass', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const on = `target: 'actions', docker: { image: 'x' }`;
    const file = await configWith(`{
      shell: { agent: { prompt: 'p.md', model: 'm', mode: 'flexible', tools: ['read_file', 'bash'] }, ${on} },
      tooled: { agent: { prompt: 'p.md', model: 'm', tools: [{ name: 'lint', description: 'd', inputSchema: { type: 'object' }, command: ['lint'] }] }, ${on} },
      far: { agent: { prompt: 'p.md', model: 'm' }, ${on}, dependencies: ['middle'] },
      middle: { agent: { prompt: 'p.md', model: 'm' }, dependencies: ['worker'] },
      worker: { command: ['./work.sh'] },
      fine: { agent: { prompt: 'p.md', model: 'm', tools: ['read_file', 'write_file'] }, ${on}, dependencies: ['middle2'] },
      middle2: { agent: { prompt: 'p.md', model: 'm', tools: ['list_files'] } },
      local: { agent: { prompt: 'p.md', model: 'm', mode: 'flexible', tools: ['bash'] }, dependencies: ['worker'] },
    }`);
    const tail =
      ", which would run as a job beside the item's own on a runner: the actions target runs one job per attempt, the item's own; run this agent on the local or docker target, or remove that";
    const head = 'an agent on the actions target can use its file tools and call agents, but ';
    expect(await problemsOf(file)).toEqual([
      { path: '$.orch.subagents.far.target', message: `${head}its dependency worker is a command${tail}` },
      { path: '$.orch.subagents.shell.target', message: `${head}it has the bash tool${tail}` },
      { path: '$.orch.subagents.tooled.target', message: `${head}it has the command tool lint${tail}` },
    ]);
  });

  it('refuses a dependency whose name cannot be part of its call tool, and a maxHops or callBudget out of range', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const agent = `agent: { prompt: 'p.md', model: 'm' }`;
    const file = await configWith(`{
      caller: { ${agent}, dependencies: ['has space'], maxHops: 17, callBudget: { modelCalls: 0 } },
      'has space': { ${agent} },
    }`);
    const problems = await problemsOf(file);
    expect(problems.map((p) => p.path)).toEqual(['$.orch.subagents.caller.callBudget.modelCalls', '$.orch.subagents.caller.maxHops']);
    const names = await problemsOf(await configWith(`{ caller: { ${agent}, dependencies: ['has space'] }, 'has space': { ${agent} } }`));
    expect(names).toEqual([
      {
        path: '$.orch.subagents.caller.dependencies[0]',
        message:
          'names subagent "has space", whose name cannot be a tool name (call_has space): a callable subagent\'s name is 1-59 letters, digits, _ or -; rename it',
      },
    ]);
  });

  it('refuses a command tool named like a built-in tool or a call tool, which it would be taken for, in either mode', async () => {
    await writeFile(join(dir, 'p.md'), 'x');
    const tool = (name: string) => `{ name: '${name}', description: 'Runs the linter', inputSchema: { type: 'object' }, command: ['./lint'] }`;
    const file = await configWith(`{
      linter: { agent: { prompt: 'p.md', model: 'm', tools: ['read_file', ${tool('bash')}, ${tool('write_file')}] } },
      loose: { agent: { prompt: 'p.md', model: 'm', mode: 'flexible', tools: [${tool('read_file')}, ${tool('list_files')}, ${tool('call_checker')}] }, dependencies: ['checker'] },
      checker: { agent: { prompt: 'p.md', model: 'm' } },
      fine: { agent: { prompt: 'p.md', model: 'm', tools: [${tool('bash_lint')}, ${tool('caller')}] } },
    }`);
    const builtin = (name: string) =>
      `command tool ${name} has the name of a built-in tool (read_file, write_file, list_files, bash), which it would be taken for; give it a name of its own, like "${name}_wrapper"`;
    expect(await problemsOf(file)).toEqual([
      { path: '$.orch.subagents.linter.agent.tools[1].name', message: builtin('bash') },
      { path: '$.orch.subagents.linter.agent.tools[2].name', message: builtin('write_file') },
      { path: '$.orch.subagents.loose.agent.tools[0].name', message: builtin('read_file') },
      { path: '$.orch.subagents.loose.agent.tools[1].name', message: builtin('list_files') },
      {
        path: '$.orch.subagents.loose.agent.tools[2].name',
        message:
          'command tool call_checker starts with call_, which names the tools that call dependencies; give it a name that does not, or declare the subagent to call in dependencies',
      },
    ]);
  });
});
