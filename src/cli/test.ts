import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { OrchConfig } from '../config/types.js';
import { AgoraError } from '../errors.js';
import { discoverRepository } from '../git/discover.js';
import { judge } from '../testing/expectations.js';
import { loadFixture, type LoadedFixture } from '../testing/fixture-load.js';
import type { MockCall } from '../testing/mock-target.js';
import { runFixture } from '../testing/run-fixture.js';
import { namedDirectory, openConfigFor, type GlobalOptions } from './context.js';
import type { Output } from './output.js';

/**
 * `agora test [fixture…]`: every fixture is checked against its plan first (a bad one stops everything
 * before anything runs), then each runs in its own sandbox with mocked workers; PASS or FAIL per
 * fixture, every unmet expectation under a FAIL. Exit 0 only when every fixture passed.
 */

export interface TestOptions extends GlobalOptions {
  verbose?: boolean;
}

export async function testVerb(files: string[], opts: TestOptions, io: Output): Promise<number> {
  const cwd = process.cwd();
  const projectDir = await projectOf(opts, cwd);
  const chosen = files.length > 0 ? files : await defaultFixtures(projectDir, cwd);
  const loaded: Array<{ fixture: LoadedFixture; config: OrchConfig }> = [];
  for (const file of chosen) {
    const { config } = await openConfigFor(opts, file);
    loaded.push({ fixture: await loadFixture(file, config, cwd, projectDir), config });
  }
  let failed = 0;
  for (const { fixture, config } of loaded) {
    const started = performance.now();
    const onCall = opts.verbose ? (call: MockCall) => io.out(describeCall(call)) : undefined;
    const actual = await runFixture(fixture, { projectDir, config, ...(onCall ? { onCall } : {}) });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const mismatches = judge(fixture.fixture.expect, actual);
    const summary = `${fixture.plan.items.length} item${fixture.plan.items.length === 1 ? '' : 's'}, ${actual.calls.length} mocked call${actual.calls.length === 1 ? '' : 's'}, run ${actual.status}, ${seconds} s`;
    if (mismatches.length === 0) {
      io.out(`PASS ${fixture.file}  (${summary})`);
      continue;
    }
    failed++;
    io.out(`FAIL ${fixture.file}  (${summary})`);
    for (const m of mismatches) {
      io.out(`  ${m.what}`);
      for (const line of m.lines) io.out(`    ${line}`);
    }
  }
  const n = loaded.length;
  io.out(`\n${n} fixture${n === 1 ? '' : 's'}: ${n - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

/** The project whose files are the base: `--repo`, else the work tree around the working directory, else the working directory. */
async function projectOf(opts: GlobalOptions, cwd: string): Promise<string> {
  if (opts.repo !== undefined) return namedDirectory(opts.repo, cwd);
  const found = await discoverRepository(cwd);
  return found !== null && existsSync(join(found, '.git')) ? found : cwd;
}

async function defaultFixtures(projectDir: string, cwd: string): Promise<string[]> {
  const dir = join(projectDir, 'tests');
  const names = existsSync(dir) ? (await readdir(dir)).filter((n) => /^fixture-.+\.json$/.test(n)).sort() : [];
  if (names.length === 0) {
    throw new AgoraError(
      'fixture-not-found',
      `no fixtures to run: ${relative(cwd, dir) || dir} holds no fixture-*.json`,
      'write tests/fixture-<name>.json (docs/testing-plans.md), or name fixture files: agora test path/to/fixture.json',
    );
  }
  return names.map((n) => relative(cwd, join(dir, n)) || join(dir, n));
}

function describeCall(call: MockCall): string {
  const { mock } = call;
  const files = Object.entries(mock.files).map(([p, c]) => (c === null ? `deleted ${p}` : `wrote ${p}`));
  const parts = [
    `exit ${mock.exit}`,
    ...files,
    mock.output === '' ? 'no output' : `output ${JSON.stringify(mock.output.length > 60 ? `${mock.output.slice(0, 59)}…` : mock.output)}`,
  ];
  const calls = mock.calls.length === 0 ? [] : [`calls ${mock.calls.map((c) => c.subagent).join(', ')}`];
  const who = `${call.itemId} attempt ${call.attempt}${call.child !== undefined ? ` call ${call.child}` : ''}`;
  return `  mock ${who}${call.input !== undefined ? ` input ${call.input}` : ''} ← ${mock.source}: ${[...calls, ...parts].join(', ')}`;
}
