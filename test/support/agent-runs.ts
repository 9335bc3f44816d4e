import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { agora, git } from './repo.js';
import { findSecret, repositoryObjects } from './secret-search.js';

/** Helpers shared by the tests that run agent items through the real CLI. */

/** The `Agora-Output` trailer of an item's patch commit (its `resultRef`), parsed. */
export function patchOutput<T>(repo: string, resultRef: string): T {
  const message = git(repo, 'show', '-s', '--format=%B', resultRef.replace(/^git:/, ''));
  return JSON.parse(/^Agora-Output: (.*)$/m.exec(message)![1]!) as T;
}

/** Every place the API key must not be: each object of the repository, the run's audit bundle, the CLI's output, the live files under .git/agora. */
export async function keyLeaks(repo: string, runId: string, key: string, cliOutput: string): Promise<string[]> {
  const leaks: string[] = [];
  for (const { oid, content } of repositoryObjects(join(repo, '.git'), 'all')) leaks.push(...findSecret(`object ${oid}`, content, key));
  const bundle = join(repo, '.git', `${runId}.audit.json`);
  await agora(repo, ['orch', 'audit', runId, '--out', bundle]);
  leaks.push(...findSecret('the audit bundle', readFileSync(bundle), key));
  leaks.push(...findSecret('the output of orch run', cliOutput, key));
  for (const file of filesUnder(join(repo, '.git', 'agora'))) leaks.push(...findSecret(file, readFileSync(file), key));
  return leaks;
}

function filesUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}
