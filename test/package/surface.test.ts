import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { ROOT } from '../support/repo.js';

const run = promisify(execFile);

/**
 * The package as a consumer sees it: built (`npm test` builds dist/ before the tests), imported by its
 * name through package.json's `exports`, with declarations, and packed without tests or sources.
 */
describe('the package surface', () => {
  it("'agora' exports the core API a program uses, and 'agora/app' the App's factory, from dist/", async () => {
    const probe = `
      const core = await import('agora');
      const app = await import('agora/app');
      const plan = { id: 'p', queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] };
      const ok = core.validatePlan(plan, { subagents: {}, shapes: {} });
      let code;
      try { core.parsePlanText('{', 'x.json'); } catch (e) { code = e instanceof core.AgoraError ? e.code : 'not an AgoraError'; }
      console.log(JSON.stringify({
        core: Object.keys(core).sort(),
        app: Object.keys(app).sort(),
        valid: ok.ok,
        code,
        exitCode: core.ERROR_CODES['interrupted'].exitCode,
      }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, timeout: scaled(60_000) });
    const seen = JSON.parse(stdout) as { core: string[]; app: string[]; valid: boolean; code: string; exitCode: number };
    expect(seen.core).toEqual(
      expect.arrayContaining([
        'validatePlan',
        'assertValidPlan',
        'parsePlanText',
        'step',
        'acceptRun',
        'reconcile',
        'parseAuditBundle',
        'verifyBundle',
        'AgoraError',
        'ERROR_CODES',
        'errorMessage',
      ]),
    );
    expect(seen.app).toEqual(['AgoraGitHub', 'agoraApp', 'agoraFromEnv', 'default']);
    expect(seen.valid).toBe(true);
    expect(seen.code).toBe('plan-not-json');
    expect(seen.exitCode).toBe(130);
  });

  it('ships declarations for both entries', async () => {
    const index = await readFile(`${ROOT}/dist/index.d.ts`, 'utf8');
    expect(index).toContain('validatePlan');
    expect(index).toContain('verifyBundle');
    expect(await readFile(`${ROOT}/dist/app.d.ts`, 'utf8')).toContain('agoraApp');
  });

  it('packs dist, app.yml, docs, examples and the init templates, and no tests, sources or benches', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      timeout: scaled(120_000),
      maxBuffer: 64 * 1024 * 1024,
    });
    const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'app.yml',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/app.js',
        'dist/cli/main.js',
        'docs/errors.md',
        'templates/fan-out/plan.json',
        'templates/map-reduce/tests/fixture-map-reduce.json',
      ]),
    );
    expect(files.filter((f) => /^(test|src|bench|scripts|action)\//.test(f))).toEqual([]);
  });
});
