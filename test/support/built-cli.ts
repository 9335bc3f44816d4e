/**
 * The CLI the tests run is the one a user installs: the build's entry (package.json's `bin`,
 * `dist/cli/main.js`), started with plain `node`. Started through tsx instead, every start transpiles
 * its modules again, about two seconds a start on a busy two-core machine, and the suite starts the CLI
 * hundreds of times. `npm test` (and `npm ci`'s `prepare`) builds dist/ before vitest runs; this global
 * setup builds it again only when a file under src/ is newer than the build, so a single test file run
 * by hand after an edit runs the edited code.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
/** The built CLI entry. */
export const BUILT_CLI = join(ROOT, 'dist/cli/main.js');

/** The newest modification time of a file under `dir`, recursively. */
function newestUnder(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds dist/ (`tsc -p tsconfig.build.json`) when it is absent or older than a file under src/. */
export function ensureBuiltCli(): void {
  const built = statSync(BUILT_CLI, { throwIfNoEntry: false })?.mtimeMs;
  if (built !== undefined && built >= newestUnder(join(ROOT, 'src'))) return;
  process.stderr.write(`agora tests: ${built === undefined ? 'dist/ is not built' : 'src/ is newer than dist/'}; building it (tsc -p tsconfig.build.json)\n`);
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  } catch (e) {
    // tsc writes dist/ even when it finds type errors: without the entry, the next run builds (and fails) again
    // instead of taking that output for a good build.
    rmSync(BUILT_CLI, { force: true });
    throw e;
  }
}

export default function setup(): void {
  ensureBuiltCli();
}
