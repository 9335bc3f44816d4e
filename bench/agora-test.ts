/**
 * bench/agora-test: `agora test` on the fixture of each `agora init` template, beside one
 * `agora orch validate` of the same plan, in the same process and session (issue 18). Both are timed
 * in-process from the fixture or plan file on disk to the verdict (config loading included), so Node's
 * start-up is not in either figure. `npx tsx bench/agora-test.ts [rounds]` (default 3; the median is reported).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { initProject, TEMPLATES } from '../src/init/init.js';
import { parsePlanText } from '../src/plan/parse.js';
import { assertValidPlan } from '../src/plan/validate.js';
import { readFile } from 'node:fs/promises';
import { judge } from '../src/testing/expectations.js';
import { loadFixture } from '../src/testing/fixture-load.js';
import { runFixture } from '../src/testing/run-fixture.js';
import { median, report, timeAsync } from './lib.js';

const rounds = Number(process.argv[2] ?? 3);

for (const template of TEMPLATES) {
  const parent = await mkdtemp(join(tmpdir(), 'agora-bench-test-'));
  try {
    const dir = join(parent, template);
    await initProject(dir, template);
    const fixtureFile = join(dir, 'tests', `fixture-${template}.json`);
    const planFile = join(dir, 'plan.json');
    const validate: number[] = [];
    const test: number[] = [];
    for (let r = 0; r < rounds; r++) {
      validate.push(
        (
          await timeAsync(async () => {
            const config = await loadConfig({ file: join(dir, 'agora.config.mjs'), cwd: dir });
            return assertValidPlan(parsePlanText(await readFile(planFile, 'utf8'), planFile), config, planFile);
          })
        ).ms,
      );
      const run = await timeAsync(async () => {
        const config = await loadConfig({ file: join(dir, 'agora.config.mjs'), cwd: dir });
        const loaded = await loadFixture(fixtureFile, config, dir);
        const actual = await runFixture(loaded, { projectDir: dir, config });
        return judge(loaded.fixture.expect, actual);
      });
      if (run.value.length > 0) throw new Error(`the ${template} fixture failed: ${JSON.stringify(run.value)}`);
      test.push(run.ms);
    }
    const [testMs, validateMs] = [median(test), median(validate)];
    report('agora-test', {
      template,
      rounds,
      testMsPerFixture: Math.round(testMs),
      validateMs: Math.round(validateMs * 10) / 10,
      ratio: Math.round(testMs / validateMs),
      testRounds: test.map(Math.round),
      validateRounds: validate.map((v) => Math.round(v * 10) / 10),
    });
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}
