/**
 * `npm run bench`: every benchmark, one after another (they would disturb each other in parallel),
 * each printing JSON lines. `npm run bench -- reconcile audit` runs only those whose name contains a
 * word given. Nothing here asserts: the numbers are for people (and the closing notes) to read.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const tsx = pathToFileURL(join(here, '..', 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

const BENCHES = [
  'reconcile.ts',
  'matrix.ts',
  'local-fanout.ts',
  'run-growth.ts',
  'workspace-scale.ts',
  'git-workspace.ts',
  'audit.ts',
  'sim.ts',
  'github-growth.ts',
  'docker/overhead.ts',
];

const wanted = process.argv.slice(2);
let failed = 0;
for (const bench of BENCHES) {
  if (wanted.length && !wanted.some((w) => bench.includes(w))) continue;
  const file = join(here, bench);
  if (!existsSync(file)) continue;
  process.stderr.write(`# ${bench}\n`);
  const r = spawnSync(process.execPath, ['--import', tsx, file], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed += 1;
    process.stderr.write(`# ${bench} exited ${r.status ?? r.signal}\n`);
  }
}
process.exit(failed ? 1 : 0);
