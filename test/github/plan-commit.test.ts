import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { classifyCommit } from '../../src/github/plan-commit.js';
import { cleanupTempDirs, git, makeRepo } from '../support/repo.js';

/** Plan intake's first question, on a real repository: is this commit a plan commit, and if not, why not (a code). */

afterAll(cleanupTempDirs);

const PLAN = '{"id":"p","queue":"default","items":[]}\n';

function commit(repo: string, message: string, files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) writeFileSync(join(repo, path), text);
  git(repo, 'add', '--all');
  git(repo, 'commit', '--quiet', '--allow-empty', '-m', message);
  return git(repo, 'rev-parse', 'HEAD').trim();
}

describe('classifyCommit', () => {
  it('says plan for a commit that adds or changes the plan file, and why not otherwise, by code', async () => {
    const repo = makeRepo({ 'README.md': '# r\n' });
    const store = await openLocalStore(repo);
    const none = git(repo, 'rev-parse', 'HEAD').trim();
    const added = commit(repo, 'Add the plan', { 'plan.json': PLAN });
    const same = commit(repo, 'Touch the readme', { 'README.md': '# r2\n' });
    const changed = commit(repo, 'Change the plan', { 'plan.json': PLAN.replace('"p"', '"q"') });
    const own = commit(repo, 'agora: item\n\nAgora-Run: q-0123456789ab', { 'plan.json': PLAN.replace('"p"', '"r"') });

    expect(await classifyCommit(store, none, 'plan.json')).toEqual({ kind: 'ignored', code: 'no-plan-file', why: 'no plan.json in the commit' });
    expect(await classifyCommit(store, added, 'plan.json')).toMatchObject({ kind: 'plan' });
    expect(await classifyCommit(store, same, 'plan.json')).toEqual({ kind: 'ignored', code: 'plan-unchanged', why: 'plan.json did not change' });
    expect(await classifyCommit(store, changed, 'plan.json')).toMatchObject({ kind: 'plan' });
    expect(await classifyCommit(store, own, 'plan.json')).toEqual({ kind: 'ignored', code: 'agora-commit', why: 'a commit written by Agora' });
  });
});
