/**
 * A CLI start loads what its command needs: the Anthropic SDK (about 240 modules) only when an agent item
 * runs, and @sigstore/sign with its HTTP stack only when something is signed. Every command pays for what
 * its start loads, `agora --help` included. The built CLI, with a module hook that records every module
 * Node loads.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, cleanupTempDirs, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** The URLs of the modules `agora <args>` loads. */
function modulesLoaded(args: string[]): string[] {
  const dir = tempDir('agora-startup-');
  const log = join(dir, 'loaded.txt');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }\n`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  execFileSync(process.execPath, ['--import', pathToFileURL(register).href, CLI, ...args], { cwd: dir, stdio: 'ignore' });
  return readFileSync(log, 'utf8').trim().split('\n');
}

describe('a CLI start', () => {
  it('loads neither the Anthropic SDK nor @sigstore/sign for a command that needs neither', () => {
    const loaded = modulesLoaded(['--help']);
    // The hook sees the modules: the CLI's own entry, and what it imports.
    expect(loaded).toContain(pathToFileURL(CLI).href);
    expect(loaded.filter((u) => u.includes('/node_modules/@sigstore/verify/'))).not.toEqual([]);
    expect(loaded.filter((u) => u.includes('/node_modules/@anthropic-ai/sdk/'))).toEqual([]);
    expect(loaded.filter((u) => u.includes('/node_modules/@sigstore/sign/'))).toEqual([]);
  });
});
