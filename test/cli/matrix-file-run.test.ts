import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

const plan = (file: unknown) =>
  JSON.stringify({
    id: 'shards',
    queue: 'default',
    items: [
      {
        id: 'count',
        executor: 'command',
        inputs: { run: 'true' },
        matrix: { shard: { file } },
        depends_on: [],
        resourceLocks: ['counts/{{matrix.shard}}.json'],
      },
      { id: 'reduce', executor: 'command', inputs: { run: 'true' }, depends_on: ['count'], resourceLocks: ['totals.json'] },
    ],
  });

function statusIds(stdout: string): string[] {
  return (JSON.parse(stdout) as { items: Array<{ id: string }> }).items.map((i) => i.id);
}

/** plan.json as recorded in the run's first state commit (the accepting one). */
function recordedPlan(repo: string, runId: string): { items: Array<{ matrix?: unknown }> } {
  const first = git(repo, 'rev-list', '--max-parents=0', `refs/agora/runs/${runId}`).trim();
  return JSON.parse(git(repo, 'show', `${first}:plan.json`)) as { items: Array<{ matrix?: unknown }> };
}

describe('a matrix list read from a file in the repository', () => {
  it('is read at the run base commit, not the working tree, recorded in the run, and verified by orch audit', async () => {
    const repo = makeRepo({ 'plan.json': plan('ci/shards.json'), 'ci/shards.json': '["a", "b"]\n' });
    const c1 = git(repo, 'rev-parse', 'HEAD').trim();
    // An edit after the base, not committed: neither validate nor the run sees it.
    writeFileSync(join(repo, 'ci/shards.json'), '["a", "b", "zz"]\n');
    const v = await agora(repo, ['orch', 'validate', 'plan.json']);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('valid — 3 items');
    expect(v.stderr).toContain(`matrix files: read at HEAD (${c1.slice(0, 12)})`);

    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.stderr).toContain('run shards-1: done');
    expect(r.code).toBe(0);
    expect(statusIds((await agora(repo, ['orch', 'status', 'shards-1'])).stdout)).toEqual(['count.shard-a', 'count.shard-b', 'reduce']);
    expect(recordedPlan(repo, 'shards-1').items[0]!.matrix).toEqual({ shard: ['a', 'b'] });

    // A later commit changes the list: a run at HEAD sees it, a run whose base is the first commit does not.
    git(repo, 'add', 'ci/shards.json');
    git(repo, 'commit', '--quiet', '-m', 'three shards');
    writeFileSync(join(repo, 'ci/shards.json'), '["only-in-the-working-tree"]\n');
    const head = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(head.code).toBe(0);
    expect(statusIds((await agora(repo, ['orch', 'status', 'shards-2'])).stdout)).toEqual(['count.shard-a', 'count.shard-b', 'count.shard-zz', 'reduce']);
    const old = await agora(repo, ['orch', 'run', 'plan.json', '--base', c1]);
    expect(old.code).toBe(0);
    expect(statusIds((await agora(repo, ['orch', 'status', 'shards-3'])).stdout)).toEqual(['count.shard-a', 'count.shard-b', 'reduce']);

    // The verifier expands the recorded plan.json (the values are in it) and agrees with the audit log.
    for (const run of ['shards-1', 'shards-2', 'shards-3']) {
      const audit = await agora(repo, ['orch', 'audit', run]);
      expect(audit.stdout + audit.stderr).not.toContain('FAIL');
      expect(audit.code).toBe(0);
    }
  }, 300_000);

  it('bad files are refused naming $.items[0].matrix.shard and the file, and nothing starts', async () => {
    const cases: Array<[files: Record<string, string>, file: unknown, path: string, message: string]> = [
      [{}, 'ci/none.json', '$.items[0].matrix.shard', 'the matrix file "ci/none.json" (read at base commit'],
      [{ 'ci/shards.json': '["a", ' }, 'ci/shards.json', '$.items[0].matrix.shard', 'is not JSON'],
      [{ 'ci/shards.json': '{"shard": ["a"]}' }, 'ci/shards.json', '$.items[0].matrix.shard', 'holds an object; it must hold a JSON list'],
      [{ 'ci/shards.json': '["a"]' }, 'ci', '$.items[0].matrix.shard', 'is a folder, not a file'],
      [{}, '../outside.json', '$.items[0].matrix.shard.file', 'has a ".." segment and could leave the repository'],
      [{}, '/etc/hostname', '$.items[0].matrix.shard.file', 'the path is absolute'],
      [{ 'ci/shards.json': JSON.stringify(Array.from({ length: 10_000 }, (_, i) => i)) }, 'ci/shards.json', '$.items[0].matrix', 'over the budget of 10000'],
    ];
    for (const [files, file, path, message] of cases) {
      const repo = makeRepo({ 'plan.json': plan(file), ...files });
      const r = await agora(repo, ['orch', 'run', 'plan.json']);
      expect(r.code, `${String(file)}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain(`${path}: `);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain('    at ');
      expect(git(repo, 'for-each-ref', 'refs/agora/').trim()).toBe('');
    }
  }, 300_000);

  it('a symbolic link is not followed, even to a file inside the repository', async () => {
    const repo = makeRepo({ 'plan.json': plan('ci/link.json'), 'ci/shards.json': '["a"]' });
    symlinkSync('shards.json', join(repo, 'ci/link.json'));
    git(repo, 'add', 'ci/link.json');
    git(repo, 'commit', '--quiet', '-m', 'link');
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('$.items[0].matrix.shard: the matrix file "ci/link.json"');
    expect(r.stderr).toContain('is a symbolic link, which is not followed');
    expect(git(repo, 'for-each-ref', 'refs/agora/').trim()).toBe('');
  });

  it('orch validate has no base: with no commit to read the file at, it is refused (matrix-file-no-commit)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'plan.json'), plan('ci/shards.json'));
    git(dir, 'init', '--quiet', '--initial-branch=main');
    const r = await agora(dir, ['orch', 'validate', 'plan.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('$.items[0].matrix.shard reads "ci/shards.json", but the repository has no commits yet');
    expect(r.stderr).toContain('commit the matrix files');
  });
});
