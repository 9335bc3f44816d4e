import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { loadConfig } from '../../src/config/load.js';
import { loadFixture } from '../../src/testing/fixture-load.js';
import { runFixture } from '../../src/testing/run-fixture.js';

afterAll(cleanupTempDirs);

/** `agora test` run as a user runs it: the CLI in a real project directory. */

function writeFixture(repo: string, name: string, fixture: unknown): string {
  mkdirSync(join(repo, 'tests'), { recursive: true });
  const file = `tests/fixture-${name}.json`;
  writeFileSync(join(repo, file), `${JSON.stringify(fixture, null, 2)}\n`);
  return file;
}

const counts = (shard: number, body: string) => ({ when: { shard }, files: { [`counts/${shard}.json`]: body } });

const wordcountMocks = {
  subagents: {
    'count-words': {
      output: 'counted\n',
      cases: [counts(1, '{"a": 1}\n'), counts(2, '{"a": 2}\n'), counts(3, '{"b": 1}\n'), counts(4, '{}\n')],
    },
    'merge-counts': { output: 'merge-counts: 4 shards\n', files: { 'totals.json': '{"a": 3, "b": 1}\n' } },
  },
};

describe('agora test', () => {
  it('runs a fixture through the real engine with mocked workers; the patches are real commits and the project is untouched', async () => {
    const repo = makeRepo({}, 'map-reduce');
    writeFixture(repo, 'wordcount', {
      plan: '../plan.json',
      mocks: wordcountMocks,
      expect: {
        run: 'done',
        items: {
          reduce: { state: 'done', attempts: 1, output: { equals: 'merge-counts: 4 shards\n' } },
          'count-words.shard-3': { output: { contains: 'counted' } },
        },
        files: { 'totals.json': { equals: '{"a": 3, "b": 1}\n' }, 'counts/3.json': { contains: '"b"' }, 'shards/1.txt': { exists: true } },
      },
    });
    const refsBefore = git(repo, 'for-each-ref');
    const r = await agora(repo, ['test', '--verbose']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PASS tests\/fixture-wordcount\.json {2}\(5 items, 5 mocked calls, run done, /m);
    // --verbose: each mocked call, with the input it was given and the mock that answered.
    expect(r.stdout).toContain('mock count-words.shard-2 attempt 1 input {"shard":2} ← $.mocks.subagents.count-words.cases[1]: exit 0, wrote counts/2.json');
    expect(r.stdout).toContain('mock reduce attempt 1 input {} ← $.mocks.subagents.merge-counts: exit 0, wrote totals.json');
    // The reducer ran after every mapper: the engine's order, not the mocks'.
    const calls = [...r.stdout.matchAll(/mock (\S+) attempt/g)].map((m) => m[1]);
    expect(calls.slice(-1)).toEqual(['reduce']);
    expect(calls.sort()).toEqual(['count-words.shard-1', 'count-words.shard-2', 'count-words.shard-3', 'count-words.shard-4', 'reduce']);
    expect(r.stdout).toContain('1 fixture: 1 passed, 0 failed');
    // The project's repository got no ref, and its files no change: the run happened in a sandbox.
    expect(git(repo, 'for-each-ref')).toBe(refsBefore);
    expect(git(repo, 'status', '--porcelain', '--untracked-files=no')).toBe('');
  });

  it("a plan whose matrix reads a file: read from the project's files on disk, the fixture run's base; a missing one is refused", async () => {
    const repo = makeRepo({}, 'map-reduce');
    const plan = JSON.parse(readFileSync(join(repo, 'plan.json'), 'utf8')) as { items: Array<{ matrix?: unknown }> };
    plan.items[0]!.matrix = { shard: { file: 'ci/shards.json' } };
    writeFileSync(join(repo, 'plan.json'), JSON.stringify(plan));
    mkdirSync(join(repo, 'ci'));
    writeFileSync(join(repo, 'ci/shards.json'), '[1, 2, 3, 4]'); // on disk, not committed: agora test runs what is on disk
    writeFixture(repo, 'wordcount', {
      plan: '../plan.json',
      mocks: wordcountMocks,
      expect: { run: 'done', files: { 'totals.json': { equals: '{"a": 3, "b": 1}\n' } } },
    });
    const r = await agora(repo, ['test']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^PASS tests\/fixture-wordcount\.json {2}\(5 items, 5 mocked calls, run done, /m);
    rmSync(join(repo, 'ci/shards.json'));
    const missing = await agora(repo, ['test']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `$.items[0].matrix.shard: the matrix file "ci/shards.json" (read in the project's files on disk (the fixture run's base)) does not exist`,
    );
  });

  it("a mock that writes outside its item's locks fails the item through the real scope check; unmet expectations are a readable diff and exit 1", async () => {
    const repo = makeRepo({}, 'map-reduce');
    const mocks = structuredClone(wordcountMocks);
    mocks.subagents['count-words'].cases[1] = { when: { shard: 2 }, files: { 'counts/1.json': 'stray\n' } }; // outside count-words.shard-2's counts/2.json
    writeFixture(repo, 'scope', {
      plan: '../plan.json',
      mocks,
      expect: {
        run: 'done',
        items: { 'count-words.shard-2': { state: 'done' }, 'count-words.shard-1': { output: { equals: 'counted\nmore\n' } } },
        files: { 'totals.json': { exists: true } },
      },
    });
    const r = await agora(repo, ['test']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL tests/fixture-scope.json');
    expect(r.stdout).toMatch(/ {2}run\n {4}expected: done\n {4}actual: {3}failed\n/);
    expect(r.stdout).toContain('count-words.shard-2 failed: wrote outside its write scope (counts/2.json): counts/1.json');
    expect(r.stdout).toContain('reduce skipped: upstream count-words.shard-2 failed');
    expect(r.stdout).toMatch(/ {2}item count-words.shard-2: state\n {4}expected: done\n {4}actual: {3}failed \(wrote outside its write scope/);
    // A text to be equal is shown as a line diff.
    expect(r.stdout).toContain('  item count-words.shard-1: output (- expected, + actual)\n      counted\n    - more\n');
    expect(r.stdout).toContain('  file totals.json\n    expected: present in the integration head\n    actual:   absent');
    expect(r.stdout).toContain('1 fixture: 0 passed, 1 failed');
  });

  it('a fixture that does not match its plan is refused before anything runs, naming the file, each JSON path and the fix', async () => {
    const repo = makeRepo({}, 'map-reduce');
    const good = writeFixture(repo, 'a-good', { plan: '../plan.json', mocks: wordcountMocks, expect: { run: 'done' } });
    const bad = writeFixture(repo, 'b-bad', {
      plan: '../plan.json',
      inputs: { 'count-words.shard-9': { workerInput: { shard: 9 } } },
      mocks: { subagents: { 'count-word': {}, 'merge-counts': { files: { '../escape': 'x' } } } },
      expect: { items: { reduse: { state: 'done' } } },
    });
    const r = await agora(repo, ['test', '--verbose', good, bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(''); // nothing ran, not even the good fixture
    expect(r.stderr).toContain('agora: tests/fixture-b-bad.json: ');
    expect(r.stderr).toContain('$.expect.items.reduse: names item "reduse", which the plan does not have (did you mean "reduce"?)');
    expect(r.stderr).toContain('$.inputs["count-words.shard-9"]: names item "count-words.shard-9", which the plan does not have');
    expect(r.stderr).toContain(
      '$.mocks: item "count-words.shard-1" (subagent "count-words") has no mock; add mocks.items.count-words.shard-1 or mocks.subagents.count-words',
    );
    expect(r.stderr).toContain(
      '$.mocks.subagents.count-word: mocks subagent "count-word", which no dispatch item of the plan uses and no mock calls (did you mean "count-words"?)',
    );
    expect(r.stderr).toContain('$.mocks.subagents.merge-counts.files["../escape"]: has an empty, "." or ".." component');
    expect(r.stderr).toContain('hint: fix each problem at its JSON path in the fixture');
    expect(r.stderr).not.toContain('    at '); // no stack
  });

  it("inputs that break the plan's rules, a misspelt field and an item fixture with a bad item are each named at the fixture's path", async () => {
    const repo = makeRepo({}, 'map-reduce');
    const inputs = writeFixture(repo, 'inputs', {
      plan: '../plan.json',
      inputs: { 'count-words.shard-1': { workerInput: { shard: 'one' } } },
      mocks: wordcountMocks,
      expect: { run: 'done' },
    });
    const r1 = await agora(repo, ['test', inputs]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/\$\.inputs\["count-words\.shard-1"\]: with these inputs the plan breaks a rule: \$\.items\[0\]\.inputs\.workerInput\.shard: /);
    const typo = writeFixture(repo, 'typo', { plan: '../plan.json', mocks: wordcountMocks, expect: { run: 'done' }, expects: {} });
    const r2 = await agora(repo, ['test', typo]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('$.expects');
    const item = writeFixture(repo, 'item', {
      item: { id: 'one', executor: 'command', inputs: {}, resourceLocks: ['../up'] },
      mocks: { items: { one: {} } },
      expect: { run: 'done' },
    });
    const r3 = await agora(repo, ['test', item]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/\$\.item\.resourceLocks\[0\]: /);
    const empty = writeFixture(repo, 'empty', { plan: '../plan.json', mocks: wordcountMocks, expect: {} });
    const r4 = await agora(repo, ['test', empty]);
    expect(r4.code).toBe(1);
    expect(r4.stderr).toContain('$.expect: expects nothing');
  });

  it("runs an item fixture; a subagent's declared secret gets a placeholder, never the caller's value", async () => {
    const repo = makeRepo({
      'agora.config.mjs': "export const orch = { subagents: { deploy: { command: ['false'], secrets: ['DEPLOY_TOKEN'] } } };\n",
    });
    writeFixture(repo, 'deploy', {
      item: { id: 'deploy', executor: 'dispatch', inputs: { subagent: 'deploy' }, resourceLocks: ['deployed.txt'] },
      mocks: { subagents: { deploy: { output: 'deployed\n', files: { 'deployed.txt': 'yes\n' } } } },
      expect: { run: 'done', items: { deploy: { output: { equals: 'deployed\n' } } }, files: { 'deployed.txt': { equals: 'yes\n' } } },
    });
    // Unset where it runs: a real run would fail the item; the fixture passes on a placeholder.
    const r = await agora(repo, ['test']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('PASS tests/fixture-deploy.json');
    expect(r.code).toBe(0);
    // What the mocked worker was given, with the real value set beside it.
    const config = await loadConfig({ cwd: repo });
    const fixture = await loadFixture('tests/fixture-deploy.json', config, repo, repo);
    const real = 'the-real-token-value';
    process.env.DEPLOY_TOKEN = real;
    try {
      const run = await runFixture(fixture, { projectDir: repo, config });
      expect(run.calls.map((c) => c.secrets)).toEqual([{ DEPLOY_TOKEN: expect.stringMatching(/^agora-test-placeholder-DEPLOY_TOKEN/) }]);
      expect(JSON.stringify(run)).not.toContain(real);
    } finally {
      delete process.env.DEPLOY_TOKEN;
    }
  });

  it("gives a command item's secret a placeholder where the config offers it, and fails the item where it does not", async () => {
    const item = (id: string, secret: string) => ({ id, executor: 'command', inputs: { run: 'false', secrets: [secret] }, depends_on: [], resourceLocks: [] });
    const repo = makeRepo({
      'agora.config.mjs': "export const orch = { secrets: ['OFFERED_TOKEN'] };\n",
      'plan.json': JSON.stringify({ id: 'sec', queue: 'default', items: [item('offered', 'OFFERED_TOKEN'), item('unoffered', 'HOST_TOKEN')] }),
    });
    writeFixture(repo, 'secrets', {
      plan: '../plan.json',
      mocks: { items: { offered: { output: 'ok\n' }, unoffered: { output: 'ok\n' } } },
      expect: {
        run: 'failed',
        items: {
          offered: { state: 'done' },
          unoffered: { state: 'failed', reason: { contains: 'needs secret HOST_TOKEN, which agora.config.mjs does not offer to plans' } },
        },
      },
    });
    const r = await agora(repo, ['test'], { OFFERED_TOKEN: 'offered-real-1234', HOST_TOKEN: 'host-real-5678' });
    expect(r.stdout).toContain('PASS tests/fixture-secrets.json');
    expect(r.code).toBe(0);
  });

  it('with no fixture to run, says where it looked', async () => {
    const repo = makeRepo({ 'README.md': 'x\n' });
    const r = await agora(repo, ['test']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('agora: no fixtures to run: tests holds no fixture-*.json');
  });
});
