import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';
import { loadConfig } from '../../src/config/load.js';
import { loadFixture } from '../../src/testing/fixture-load.js';
import { runFixture } from '../../src/testing/run-fixture.js';

afterAll(cleanupTempDirs);

/**
 * `agora test` with mocked dependency calls: a mock lists the calls its agent would make, and each goes
 * through the orchestrator's real call path (the attempt's call socket, declared dependencies, max_hops,
 * the budget, the child attempt and its audit entry), answered by the callee's own mock.
 */

const CONFIG = `export const orch = {
  queues: { default: { concurrency: 1 } },
  subagents: {
    planner: {
      agent: { prompt: 'prompts/planner.md', model: 'm', maxTurns: 5 },
      dependencies: ['checker', 'lint'],
      maxHops: 1,
    },
    checker: {
      agent: { prompt: 'prompts/checker.md', model: 'm', maxTurns: 3 },
      dependencies: ['lint'],
      inputSchema: { type: 'object', required: ['path'], properties: { path: { type: 'string' } } },
    },
    lint: { command: ['sh', '-c', 'true'] },
    deploy: { command: ['sh', '-c', 'true'] },
  },
};
`;

const PLAN = {
  id: 'calls',
  queue: 'default',
  items: [
    {
      id: 'fix',
      executor: 'dispatch',
      inputs: { subagent: 'planner', workerInput: { task: 'fix' } },
      depends_on: [],
      resourceLocks: ['src/'],
    },
  ],
};

function project(fixtures: Record<string, unknown>): string {
  const repo = makeRepo({
    'agora.config.mjs': CONFIG,
    'plan.json': `${JSON.stringify(PLAN, null, 2)}\n`,
    'prompts/planner.md': 'You are planner.\n',
    'prompts/checker.md': 'You are checker.\n',
    'src/a.txt': 'a\n',
  });
  mkdirSync(join(repo, 'tests'));
  for (const [name, fixture] of Object.entries(fixtures)) writeFileSync(join(repo, `tests/fixture-${name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
  return repo;
}

const calling = {
  plan: '../plan.json',
  mocks: {
    subagents: {
      planner: {
        output: 'planned\n',
        files: { 'src/plan.txt': 'the plan\n' },
        calls: [{ subagent: 'checker', input: { path: 'src/a.txt' } }, { subagent: 'deploy' }, { subagent: 'checker', input: { file: 'src/a.txt' } }],
      },
      // The callee's mock: its edit lands in the caller's patch; its own call to lint is one hop too many.
      checker: { output: 'looks fine\n', files: { 'src/checked.txt': 'checked\n' }, calls: [{ subagent: 'lint' }] },
      lint: { output: 'lint clean\n' },
    },
  },
  expect: {
    run: 'done',
    items: {
      fix: {
        state: 'done',
        calls: [
          { subagent: 'checker', outcome: 'ok', answer: { equals: 'looks fine\n' } },
          { subagent: 'lint', outcome: 'refused', answer: { contains: 'max_hops' } },
          { subagent: 'deploy', outcome: 'refused', answer: { contains: 'deploy is not a dependency of planner' } },
          { subagent: 'checker', outcome: 'refused', answer: { contains: 'input schema of checker' } },
        ],
      },
    },
    files: { 'src/checked.txt': { equals: 'checked\n' }, 'src/plan.txt': { exists: true } },
  },
};

describe('agora test: mocked dependency calls', () => {
  it("runs a mock's calls through the orchestrator's rules, each answered by its callee's mock; unmet call expectations are named", async () => {
    const failingChild = {
      plan: '../plan.json',
      mocks: {
        subagents: {
          planner: { output: 'planned\n', calls: [{ subagent: 'lint' }] },
          lint: { exit: 2, output: 'lint found 3 problems\n' },
        },
      },
      expect: {
        items: {
          // Wrong on purpose: lint failed, and the caller made one call, not two.
          fix: { calls: [{ subagent: 'lint', outcome: 'ok' }] },
        },
      },
    };
    const miscounted = {
      plan: '../plan.json',
      mocks: { subagents: { planner: { calls: [{ subagent: 'lint' }] }, lint: { output: 'ok\n' } } },
      expect: { items: { fix: { calls: [{ subagent: 'lint' }, { subagent: 'checker' }] } } },
    };
    const repo = project({ calling, failing: failingChild, miscounted });
    const r = await agora(repo, ['test', '--verbose']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^PASS tests\/fixture-calling\.json {2}\(1 item, 2 mocked calls, run done, /m);
    // --verbose names the child attempt a callee's mock answered, and the calls a mock makes.
    expect(r.stdout).toContain('mock fix attempt 1 input {"task":"fix"} ← $.mocks.subagents.planner: calls checker, deploy, checker, exit 0');
    expect(r.stdout).toContain('mock fix attempt 1 call fix.1/checker#1 input {"path":"src/a.txt"} ← $.mocks.subagents.checker: calls lint, exit 0');
    // A failed child is the caller's failed call, with the child's exit and output as its answer.
    expect(r.stdout).toContain('FAIL tests/fixture-failing.json');
    expect(r.stdout).toMatch(
      /item fix: calls \[0\] lint\n {4}expected: ok\n {4}actual: {3}failed: the call to lint \(fix\.1\/lint#1\) failed: exit 2\nlint found 3 problems/,
    );
    expect(r.stdout).toContain('FAIL tests/fixture-miscounted.json');
    expect(r.stdout).toContain('  item fix: calls\n    expected: lint, checker\n    actual:   lint (ok)\n');
    expect(r.stdout).toContain('3 fixtures: 1 passed, 2 failed');
    expect(r.code).toBe(1);
  });

  it('a call the orchestrator ran is a child attempt in the audit, verified with the run; a refused one is not', async () => {
    const repo = project({ calling });
    const config = await loadConfig({ cwd: repo });
    const loaded = await loadFixture('tests/fixture-calling.json', config, repo, repo);
    const actual = await runFixture(loaded, { projectDir: repo, config });
    expect(actual.audit).toEqual({ intact: true, failures: [], calls: ['fix.1/checker#1'] });
    expect(actual.items.fix!.calls.map((c) => `${c.subagent} ${c.outcome}`)).toEqual(['checker ok', 'lint refused', 'deploy refused', 'checker refused']);
  });

  it("a command callee's mock cannot call on, as a command dependency's job has no call socket", async () => {
    const repo = project({
      command: {
        plan: '../plan.json',
        mocks: {
          subagents: {
            planner: { calls: [{ subagent: 'lint' }] },
            lint: { output: 'linted\n', calls: [{ subagent: 'checker', input: { path: 'src/a.txt' } }] },
            checker: {},
          },
        },
        expect: { run: 'done' },
      },
    });
    const config = await loadConfig({ cwd: repo });
    const actual = await runFixture(await loadFixture('tests/fixture-command.json', config, repo, repo), { projectDir: repo, config });
    expect(actual.items.fix!.calls.map((c) => `${c.subagent} ${c.outcome}`)).toEqual(['lint ok', 'checker refused']);
    expect(actual.items.fix!.calls[1]!.answer).toContain('cannot call on');
    expect(actual.audit.calls).toEqual(['fix.1/lint#1']);
  });

  it("refuses, before anything runs, a call no mock can answer and calls from a command item's mock", async () => {
    const noMock = {
      plan: '../plan.json',
      mocks: { subagents: { planner: { calls: [{ subagent: 'lint' }] } } },
      expect: { run: 'done' },
    };
    const commandItem = {
      item: { id: 'build', executor: 'command', inputs: { run: 'true' } },
      mocks: { items: { build: { calls: [{ subagent: 'lint' }] } } },
      expect: { run: 'done' },
    };
    const repo = project({ 'no-mock': noMock });
    const r = await agora(repo, ['test']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      '$.mocks.subagents.planner.calls[0].subagent: calls "lint", a dependency of "planner" with no mock to answer it; add mocks.subagents.lint',
    );
    expect(r.stderr).not.toContain('    at ');

    const repo2 = project({ command: commandItem });
    const r2 = await agora(repo2, ['test']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('$.mocks.items.build.calls: makes calls, but the item runs a command, not a subagent');
  });
});
