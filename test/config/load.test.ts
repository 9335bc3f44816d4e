import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgoraError, InvalidInputError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { validatePlan } from '../../src/plan/validate.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agora-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

async function rejection(promise: Promise<unknown>): Promise<AgoraError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AgoraError) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

const seedConfig = `
export const orch = {
  queues: { default: { concurrency: 2 } },
  subagents: {
    'code-edit': {
      command: ['node', 'edit.mjs'],
      inputSchema: { type: 'object', required: ['file'], properties: { file: { type: 'string' } } },
      secrets: ['OPENAI_API_KEY'],
      target: 'local',
    },
    verify: { command: ['node', 'verify.mjs'], target: 'docker', docker: { image: 'node:20-slim', memory: '512m', cpus: 1 } },
  },
  shapes: { review: { type: 'object', required: ['paths'] } },
};
`;

describe('loadConfig', () => {
  it('uses the built-in defaults when agora.config.mjs is absent', async () => {
    expect(await loadConfig({ cwd: dir })).toEqual({
      queues: {},
      defaultConcurrency: 4,
      subagents: {},
      shapes: {},
      refNamespace: 'refs/agora/',
      commandTarget: 'local',
      secrets: [],
      configDir: dir,
    });
  });

  it('loads the named export `orch` from agora.config.mjs in cwd, fills defaults and sets configDir', async () => {
    await write('agora.config.mjs', seedConfig);
    const config = await loadConfig({ cwd: dir });
    expect(config.configDir).toBe(dir);
    expect(config.queues).toEqual({ default: { concurrency: 2 } });
    expect(config.defaultConcurrency).toBe(4);
    expect(config.refNamespace).toBe('refs/agora/');
    expect(config.subagents['code-edit']).toEqual({
      command: ['node', 'edit.mjs'],
      inputSchema: { type: 'object', required: ['file'], properties: { file: { type: 'string' } } },
      secrets: ['OPENAI_API_KEY'],
      target: 'local',
    });
    expect(config.subagents.verify?.docker).toEqual({ image: 'node:20-slim', memory: '512m', cpus: 1 });
    // The loaded config is a validation context: the seed's subagents are known.
    const item = (id: string, subagent: string, workerInput?: unknown) => ({
      id,
      executor: 'dispatch',
      inputs: workerInput === undefined ? { subagent } : { subagent, workerInput },
      depends_on: [],
      resourceLocks: [],
    });
    const result = validatePlan(
      { id: 'r', queue: 'default', items: [item('a', 'code-edit', { file: 'a.ts' }), item('b', 'verify'), item('c', 'code-edit', {})] },
      config,
    );
    expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual(['$.items[2].inputs.workerInput.file']);
  });

  it('loads a default export with an `orch` property from an explicitly named file in another directory', async () => {
    await mkdir(join(dir, 'conf'));
    const file = await write('conf/team.mjs', 'export default { orch: { defaultConcurrency: 8, refNamespace: "refs/team" } };');
    const config = await loadConfig({ cwd: dir, file: 'conf/team.mjs' });
    expect(config.defaultConcurrency).toBe(8);
    expect(config.refNamespace).toBe('refs/team/');
    expect(config.configDir).toBe(join(dir, 'conf'));
    expect(file.startsWith(config.configDir)).toBe(true);
  });

  it('sees a config file change on the next load', async () => {
    await write('agora.config.mjs', 'export const orch = { defaultConcurrency: 2 };');
    expect((await loadConfig({ cwd: dir })).defaultConcurrency).toBe(2);
    await write('agora.config.mjs', 'export const orch = { defaultConcurrency: 16 };  ');
    expect((await loadConfig({ cwd: dir })).defaultConcurrency).toBe(16);
  });

  it('fails with config-not-found when a named file does not exist', async () => {
    const e = await rejection(loadConfig({ cwd: dir, file: 'missing.mjs' }));
    expect(e.code).toBe('config-not-found');
    expect(e.message).toBe(`config file not found: ${join(dir, 'missing.mjs')}`);
    expect(e.hint).toMatch(/check the path/);
  });

  it('fails with config-load-failed naming the file and the original message when the module throws', async () => {
    const file = await write('agora.config.mjs', 'throw new Error("no API key configured");\nexport const orch = {};');
    const e = await rejection(loadConfig({ cwd: dir }));
    expect(e.code).toBe('config-load-failed');
    expect(e.message).toContain(file);
    expect(e.message).toContain('no API key configured');
    expect(e.hint).toContain(`fix the error in ${file}`);
  });

  it('fails with config-load-failed on a syntax error', async () => {
    await write('broken.mjs', 'export const orch = {');
    const e = await rejection(loadConfig({ cwd: dir, file: 'broken.mjs' }));
    expect(e.code).toBe('config-load-failed');
    expect(e.message).toContain(join(dir, 'broken.mjs'));
  });

  it('fails with config-invalid when the module exports no orch', async () => {
    const file = await write('agora.config.mjs', 'export const config = {};');
    const e = await rejection(loadConfig({ cwd: dir }));
    expect(e).toBeInstanceOf(InvalidInputError);
    expect((e as InvalidInputError).source).toBe(file);
    expect((e as InvalidInputError).problems).toEqual([
      { path: '$.orch', message: expect.stringMatching(/^missing: the module exports no `orch`; write `export const orch/) },
    ]);
  });

  it('reports every problem of an invalid orch by path', async () => {
    await write(
      'agora.config.mjs',
      `export const orch = {
        queues: { default: { concurrency: 0 }, wide: { concurrency: 1000 }, odd: { concurrency: 2.5, max: 3 } },
        subagents: {
          'code-edit': { command: 'node edit.mjs' },
          empty: { command: [] },
          box: { command: ['run'], target: 'docker' },
          leaky: { command: ['x'], secrets: ['API-KEY'], target: 'cloud', docker: { memory: 'lots' } },
          withEnv: { command: ['x'], env: { 'A-B': 'y' } },
        },
        refNamespace: 'agora/',
        commandTarget: 'k8s',
        concurency: 3,
      };`,
    );
    const e = (await rejection(loadConfig({ cwd: dir }))) as InvalidInputError;
    expect(e.code).toBe('config-invalid');
    const byPath = Object.fromEntries(e.problems.map((p) => [p.path, p.message]));
    expect(Object.keys(byPath)).toEqual([
      '$.orch.commandTarget',
      '$.orch.concurency',
      '$.orch.queues.default.concurrency',
      '$.orch.queues.odd.concurrency',
      '$.orch.queues.odd.max',
      '$.orch.queues.wide.concurrency',
      '$.orch.refNamespace',
      '$.orch.subagents.box.docker',
      '$.orch.subagents.code-edit.command',
      '$.orch.subagents.empty.command',
      '$.orch.subagents.leaky.docker.image',
      '$.orch.subagents.leaky.docker.memory',
      '$.orch.subagents.leaky.secrets[0]',
      '$.orch.subagents.leaky.target',
      '$.orch.subagents.withEnv.env.A-B',
    ]);
    expect(byPath['$.orch.subagents.withEnv.env.A-B']).toMatch(/^the key "A-B" is not allowed: must be an environment variable name/);
    expect(byPath['$.orch.subagents.code-edit.command']).toBe('must be an array, not the string "node edit.mjs"');
    expect(byPath['$.orch.subagents.empty.command']).toMatch(/non-empty array like \["node", "edit.mjs"\]/);
    expect(byPath['$.orch.subagents.box.docker']).toMatch(/target "docker" needs docker options with an image/);
    expect(byPath['$.orch.subagents.leaky.secrets[0]']).toMatch(/environment variable name/);
    expect(byPath['$.orch.subagents.leaky.target']).toBe('must be one of "local", "docker", "actions", not the string "cloud"');
    expect(byPath['$.orch.queues.default.concurrency']).toBe('must be at least 1, not number 0');
    expect(byPath['$.orch.queues.wide.concurrency']).toBe('must be at most 256, not number 1000');
    expect(byPath['$.orch.queues.odd.max']).toBe('unknown field "max"; the known fields here are concurrency');
    expect(byPath['$.orch.concurency']).toMatch(
      /^unknown field "concurency" \(did you mean "defaultConcurrency"\?\)|^unknown field "concurency"; the known fields here are queues, defaultConcurrency/,
    );
    expect(byPath['$.orch.refNamespace']).toMatch(/must look like "refs\/agora\/"/);
    expect(e.message).toMatch(/agora\.config\.mjs: 15 problems/);
  });

  it('refuses a subagent on the actions target with a network other than none or bridge, or root; the docker target keeps its choice', async () => {
    await write(
      'agora.config.mjs',
      `export const orch = {
        subagents: {
          hostnet: { command: ['x'], target: 'actions', docker: { image: 'i', network: 'host' } },
          rooted: { command: ['x'], target: 'actions', docker: { image: 'i', user: '0:0' } },
          named: { command: ['x'], target: 'actions', docker: { image: 'i', user: 'nobody' } },
          fine: { command: ['x'], target: 'actions', docker: { image: 'i', network: 'bridge', user: '1000:1000' } },
          local: { command: ['x'], target: 'docker', docker: { image: 'i', network: 'host', user: '0:0' } },
        },
      };`,
    );
    const e = (await rejection(loadConfig({ cwd: dir }))) as InvalidInputError;
    expect(e.problems.map((p) => [p.path, p.message])).toEqual([
      ['$.orch.subagents.hostnet.docker.network', 'network "host" is not one an item on the actions target may have (none or bridge): use none or bridge'],
      [
        '$.orch.subagents.named.docker.user',
        `user "nobody" is not a numeric uid:gid such as 65534:65534: give a numeric uid:gid other than root's, or leave it out (65534:65534)`,
      ],
      [
        '$.orch.subagents.rooted.docker.user',
        `user "0:0" is root (uid or gid 0), which an item on the actions target never runs as: give a numeric uid:gid other than root's, or leave it out (65534:65534)`,
      ],
    ]);
  });

  it('reports input schemas and shapes that are not valid JSON Schema', async () => {
    await write(
      'agora.config.mjs',
      `export const orch = {
        subagents: { schema: { command: ['x'], inputSchema: { type: 'wrong' } } },
        shapes: { review: { required: 'paths' } },
      };`,
    );
    const e = (await rejection(loadConfig({ cwd: dir }))) as InvalidInputError;
    expect(e.problems.map((p) => p.path)).toEqual(['$.orch.shapes.review', '$.orch.subagents.schema.inputSchema']);
    expect(e.problems[0]!.message).toMatch(/^is not a valid JSON Schema: schema is invalid/);
  });
});
