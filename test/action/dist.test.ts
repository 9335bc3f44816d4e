import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ACTION_DIST, buildAction, ROOT } from '../../scripts/build-action.js';
import { scaled } from '../support/eventually.js';

/**
 * action/dist is committed (a runner executes the repository as it is), so it must be what the sources
 * build: the bundle is rebuilt into a temporary directory and compared byte for byte (the check-dist habit
 * of JavaScript actions). esbuild's output is deterministic, so any difference is a stale dist.
 */
describe('action/dist', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it(
    'is what `npm run build:action` makes from the sources now',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'agora-action-dist-'));
      dirs.push(dir);
      await buildAction(dir);
      for (const file of ['index.js', 'package.json']) {
        const fresh = await readFile(join(dir, file));
        const committed = await readFile(join(ACTION_DIST, file)).catch(() => Buffer.alloc(0));
        expect(committed.equals(fresh), `action/dist/${file} is stale: run \`npm run build:action\` and commit action/dist`).toBe(true);
      }
    },
    scaled(120_000),
  );

  it('action.yml runs the bundle under node24 and declares the modes, inputs and outputs', async () => {
    const action = parse(await readFile(join(ROOT, 'action', 'action.yml'), 'utf8')) as {
      runs: { using: string; main: string };
      inputs: Record<string, { description?: string; required?: boolean; default?: string }>;
      outputs: Record<string, { description?: string }>;
    };
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
    expect(action.inputs.mode).toMatchObject({ required: true });
    expect(action.inputs.mode!.description).toMatch(/verify.*run.*worker/s);
    for (const [name, input] of Object.entries(action.inputs)) {
      expect(input.description, `input ${name} has a description`).toMatch(/\S/);
      if (name !== 'mode') expect(input, `input ${name} has a default`).toHaveProperty('default');
    }
    expect(Object.keys(action.outputs).sort()).toEqual(['bundle-path', 'run-id', 'status']);
    expect(JSON.parse(await readFile(join(ROOT, 'action', 'dist', 'package.json'), 'utf8'))).toEqual({ type: 'module' });
  });
});
