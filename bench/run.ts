/**
 * `npm run bench`: every benchmark, one after another (they would disturb each other in parallel),
 * each printing JSON lines. `npm run bench -- reconcile audit` runs only those whose name contains a
 * word given. Nothing here asserts: the numbers are for people (and the closing notes) to read.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCHES } from './benches.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const tsx = pathToFileURL(join(here, '..', 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

const wanted = process.argv.slice(2);
let failed = 0;
for (const bench of BENCHES) {
  if (wanted.length && !wanted.some((w) => bench.includes(w))) continue;
  const file = join(here, bench);
  process.stderr.write(`# ${bench}\n`);
  const r = spawnSync(process.execPath, ['--import', tsx, file], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed += 1;
    process.stderr.write(`# ${bench} exited ${r.status ?? r.signal}\n`);
  }
}
process.exit(failed ? 1 : 0);
