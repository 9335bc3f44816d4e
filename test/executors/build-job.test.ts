import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OrchConfig } from '../../src/config/types.js';
import { MIN_SECRET_LENGTH, SecretTooShortError } from '../../src/config/secrets.js';
import { AgoraError } from '../../src/errors.js';
import { buildWorkerJob } from '../../src/executors/build-job.js';
import { createLocalTarget } from '../../src/executors/local-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkItem } from '../../src/plan/schema.js';

let root: string;
let workspace: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agora-job-'));
  workspace = join(root, 'ws');
  await mkdir(workspace);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function config(over: Partial<OrchConfig> = {}): OrchConfig {
  return {
    queues: {},
    defaultConcurrency: 2,
    subagents: {
      reviewer: {
        command: [
          '/bin/sh',
          '-c',
          'cat > stdin.json; printf %s "$AGORA_INPUT" > env-input.json; printf %s "$AGORA_CONFIG_DIR" > config-dir.txt; printf %s "$REVIEW_TOKEN" > token.txt; echo "token $REVIEW_TOKEN"',
        ],
        secrets: ['REVIEW_TOKEN'],
        env: { MODE: 'strict' },
      },
      boxed: {
        command: ['node', 'worker.js'],
        target: 'docker',
        docker: { image: 'node:20-alpine', memory: '256m' },
      },
    },
    shapes: {},
    refNamespace: 'refs/agora/',
    commandTarget: 'local',
    configDir: '/repo/.agora',
    ...over,
  };
}

function item(executor: string, inputs: Record<string, unknown>): WorkItem {
  return { id: 'it-1', executor, inputs, depends_on: [], resourceLocks: [] };
}

function build(i: WorkItem, cfg = config(), environment: Record<string, string | undefined> = {}) {
  return buildWorkerJob({
    item: i,
    config: cfg,
    runId: 'r1',
    attempt: 2,
    workspaceDir: workspace,
    log: createLogSink({ secrets: [] }),
    environment,
  });
}

function thrown(fn: () => unknown): AgoraError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AgoraError);
    return e as AgoraError;
  }
  throw new Error('expected an AgoraError');
}

describe('buildWorkerJob: command', () => {
  it('runs inputs.run under /bin/sh -c with its env and declared secrets', () => {
    const { job, target } = build(item('command', { run: 'make test', env: { CI: '1' }, secrets: ['NPM_TOKEN'] }), config(), {
      NPM_TOKEN: 'npm_abc12345',
      OTHER: 'not declared',
    });
    expect(target).toBe('local');
    expect(job).toMatchObject({
      runId: 'r1',
      itemId: 'it-1',
      attempt: 2,
      workspaceDir: workspace,
      command: ['/bin/sh', '-c', 'make test'],
      env: { CI: '1' },
      secrets: { NPM_TOKEN: 'npm_abc12345' },
    });
    expect(job.stdin).toBeUndefined();
    expect(job.options).toBeUndefined();
  });

  it('picks the docker target from inputs or the config, with the image', () => {
    expect(build(item('command', { run: 'x', target: 'docker', image: 'alpine:3' }))).toMatchObject({
      target: 'docker',
      job: { options: { image: 'alpine:3' } },
    });
    expect(build(item('command', { run: 'x' }), config({ commandTarget: 'docker', commandImage: 'debian:12' }))).toMatchObject({
      target: 'docker',
      job: { options: { image: 'debian:12' } },
    });
    expect(thrown(() => build(item('command', { run: 'x', target: 'docker' }))).code).toBe('image-missing');
  });

  it('names the item and the input when inputs are malformed', () => {
    const e = thrown(() => build(item('command', { run: 42 })));
    expect(e.code).toBe('inputs-invalid');
    expect(e.message).toBe('item it-1: inputs.run must be a non-empty shell command');
    expect(thrown(() => build(item('command', { run: 'x', env: { A: 1 } }))).message).toContain('inputs.env.A');
    expect(thrown(() => build(item('command', { run: 'x', secrets: 'TOKEN' }))).message).toContain('inputs.secrets');
    expect(thrown(() => build(item('command', { run: 'x', target: 'k8s' }))).message).toContain('inputs.target');
  });

  it('fails with secret-missing when a declared secret is not set', () => {
    const e = thrown(() => build(item('command', { run: 'x', secrets: ['DEPLOY_KEY'] }), config(), { DEPLOY_KEY: undefined }));
    expect(e.code).toBe('secret-missing');
    expect(e.message).toBe('item it-1 needs secret DEPLOY_KEY, which is not set');
    expect(e.hint).toContain('agora orch serve');
  });

  it('refuses a secret shorter than the minimum, naming it and the fix, for command and dispatch items', () => {
    const e = thrown(() => build(item('command', { run: 'x', secrets: ['DEPLOY_KEY'] }), config(), { DEPLOY_KEY: 'sh0rt!' }));
    expect(e).toBeInstanceOf(SecretTooShortError);
    expect(e.code).toBe('secret-too-short');
    expect(e.message).toBe(`secret DEPLOY_KEY (needed by item it-1) is shorter than ${MIN_SECRET_LENGTH} characters, too short to redact from logs reliably`);
    expect(e.hint).toContain(`give DEPLOY_KEY a value of at least ${MIN_SECRET_LENGTH} characters`);
    expect(`${e.message} ${e.hint}`).not.toContain('sh0rt!'); // names the secret, never its value
    expect(thrown(() => build(item('dispatch', { subagent: 'reviewer' }), config(), { REVIEW_TOKEN: '1234567' })).code).toBe('secret-too-short');
    expect(build(item('dispatch', { subagent: 'reviewer' }), config(), { REVIEW_TOKEN: '12345678' }).job.secrets).toEqual({ REVIEW_TOKEN: '12345678' });
  });
});

describe('buildWorkerJob: secrets on the actions target', () => {
  const actions = config({ commandTarget: 'actions', commandImage: 'alpine:3' });

  it('sends the declared names only: no value is looked up, not even one this host has', () => {
    const { job, target } = build(item('command', { run: 'x', secrets: ['API_TOKEN'] }), actions, { API_TOKEN: 'host-value-123456' });
    expect(target).toBe('actions');
    expect(job.secrets).toEqual({});
    expect(job.secretNames).toEqual(['API_TOKEN']);
    expect(JSON.stringify(job)).not.toContain('host-value-123456');
    // Not set on this host: not an error here (the runner's Actions secrets decide).
    expect(build(item('command', { run: 'x', secrets: ['API_TOKEN'] }), actions).job.secretNames).toEqual(['API_TOKEN']);
    expect(build(item('command', { run: 'x' }), actions).job.secretNames).toBeUndefined();
    const sub = config({
      subagents: { remote: { command: ['run'], target: 'actions', docker: { image: 'alpine:3' }, secrets: ['REVIEW_TOKEN'] } },
    });
    expect(build(item('dispatch', { subagent: 'remote' }), sub).job).toMatchObject({ secrets: {}, secretNames: ['REVIEW_TOKEN'] });
  });

  it('refuses a name GitHub does not allow for an Actions secret: the job token cannot be asked for', () => {
    for (const name of ['GITHUB_TOKEN', 'github_token', '1ST', 'A-B']) {
      const e = thrown(() => build(item('command', { run: 'x', secrets: [name] }), actions));
      expect(e.code).toBe('inputs-invalid');
      expect(e.message).toContain(`declares secret ${JSON.stringify(name)}, which cannot be a GitHub Actions secret`);
    }
  });
});

describe('buildWorkerJob: dispatch', () => {
  it('builds the subagent job: stdin and $AGORA_INPUT carry the worker input, secrets from the environment', () => {
    const workerInput = { files: ['a.ts'], depth: 2 };
    const { job, target } = build(item('dispatch', { subagent: 'reviewer', workerInput }), config(), { REVIEW_TOKEN: 'rvw-secret-1' });
    expect(target).toBe('local');
    expect(job.command).toEqual(config().subagents.reviewer!.command);
    expect(job.stdin).toBe(JSON.stringify(workerInput));
    expect(job.env).toEqual({ MODE: 'strict', AGORA_INPUT: JSON.stringify(workerInput), AGORA_CONFIG_DIR: '/repo/.agora' });
    expect(job.secrets).toEqual({ REVIEW_TOKEN: 'rvw-secret-1' });
  });

  it('uses {} without a workerInput, and the subagent target and docker options', () => {
    const { job, target } = build(item('dispatch', { subagent: 'boxed' }));
    expect(target).toBe('docker');
    expect(job.stdin).toBe('{}');
    expect(job.options).toEqual({ image: 'node:20-alpine', memory: '256m' });
  });

  it('rejects unknown subagents and executors, and missing secrets', () => {
    const unknown = thrown(() => build(item('dispatch', { subagent: 'toString' })));
    expect(unknown.code).toBe('subagent-unknown');
    expect(unknown.hint).toBe('use one of: reviewer, boxed');
    expect(thrown(() => build(item('shell', { run: 'x' }))).code).toBe('executor-unknown');
    const missing = thrown(() => build(item('dispatch', { subagent: 'reviewer' })));
    expect(missing.message).toBe('item it-1 needs secret REVIEW_TOKEN, which is not set');
  });

  it('runs for real on the local target: the worker reads the input on stdin and in $AGORA_INPUT', async () => {
    const workerInput = { task: 'review', paths: ['src/ä.ts'], n: 3 };
    const { job, target } = build(item('dispatch', { subagent: 'reviewer', workerInput }), config(), { REVIEW_TOKEN: 'rvw-secret-1' });
    expect(target).toBe('local');
    const logPath = join(root, 'it-1.2.log');
    job.log = createLogSink({ path: logPath, secrets: Object.values(job.secrets) });
    const result = await createLocalTarget({ stateDir: join(root, 'state') }).run(job, new AbortController().signal);
    await job.log.close();
    expect(result).toEqual({ exitCode: 0, signal: null });
    const read = (f: string) => readFile(join(workspace, f), 'utf8');
    expect(JSON.parse(await read('stdin.json'))).toEqual(workerInput);
    expect(await read('env-input.json')).toBe(await read('stdin.json'));
    expect(await read('config-dir.txt')).toBe('/repo/.agora');
    expect(await read('token.txt')).toBe('rvw-secret-1');
    expect(await readFile(logPath, 'utf8')).toBe('token ***\n');
  });
});
