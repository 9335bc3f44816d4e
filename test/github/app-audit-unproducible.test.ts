import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { finishAudit } from '../../src/github/audit-release.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRun } from '../../src/runs/state-store.js';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { checkRuns, startAppWorld, type AppWorld } from './app-world.js';

/**
 * A run whose audit cannot be produced (issue 12, finding 6): the gate is red and names why, instead of an
 * exception that left the run check in progress and posted no gate. Real parts: a finished local run
 * whose first state commit lost its entries (the file emptied, as a full disk used to leave it), and the
 * app's installation client against the GitHub simulator.
 */

let w: AppWorld | undefined;

/** Every pack of `repo` turned back into loose objects, one file each, as an earlier version wrote them. */
function unpackAll(repo: string): void {
  const packDir = join(repo, '.git', 'objects', 'pack');
  for (const name of readdirSync(packDir).filter((n) => n.endsWith('.pack'))) {
    const pack = readFileSync(join(packDir, name));
    rmSync(join(packDir, name.replace(/\.pack$/, '.idx')));
    rmSync(join(packDir, name));
    execFileSync('git', ['unpack-objects', '-q'], { cwd: repo, input: pack });
  }
}
afterAll(async () => {
  await w?.close();
  cleanupTempDirs();
});

describe('the audit gate when the audit cannot be produced', () => {
  it('is completed red, naming the unreadable object, with the Re-run button', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'lost',
        queue: 'default',
        items: [{ id: 'a', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] }],
      }),
    });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0);
    const first = git(repo, 'rev-list', '--max-parents=0', 'refs/agora/runs/lost-1').trim();
    const entries = git(repo, 'rev-parse', `${first}:entries.jsonl`).trim();
    unpackAll(repo);
    truncateSync(join(repo, '.git', 'objects', entries.slice(0, 2), entries.slice(2)), 0);

    const store = await openLocalStore(repo);
    const refs = new RunRefs();
    const run = (await readRun(store, refs, 'lost-1'))!;
    w = await startAppWorld();
    const gateSha = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: 'heads/main' })).data.object.sha;
    const outcome = await finishAudit({
      octokit: w.octokit,
      owner: w.owner,
      repo: w.repo,
      htmlUrl: 'http://example.invalid',
      store,
      refs,
      run,
      gateSha,
      clock: Date.now,
    });
    expect(outcome.conclusion).toBe('failure');
    const gate = (await checkRuns(w, gateSha)).get('agora / audit') as
      { status: string; conclusion: string; output: { title: string; summary: string } } | undefined;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure', output: { title: 'Not audited: the audit could not be produced' } });
    expect(gate!.output.summary).toContain(`object ${entries}`);
    expect(gate!.output.summary).toContain('is unreadable');
  });
});
