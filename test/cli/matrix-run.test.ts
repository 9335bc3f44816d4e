import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

describe('agora orch run with a matrix item', () => {
  it('the map-reduce example fans out from its shard list: one ordinary item per shard in the status, refs and audit log', async () => {
    const repo = makeRepo({}, 'map-reduce');
    const r = await agora(repo, ['orch', 'run', 'plan.json', '--apply']);
    expect(r.stderr).toContain('run wordcount-1: done');
    expect(r.code).toBe(0);
    const shards = [1, 2, 3, 4].map((n) => `count-words.shard-${n}`);
    const s = JSON.parse((await agora(repo, ['orch', 'status', 'wordcount-1'])).stdout) as { items: Array<{ id: string; status: string }> };
    expect(s.items.map((i) => [i.id, i.status])).toEqual([...shards.map((id) => [id, 'done']), ['reduce', 'done']]);
    // Each combination wrote only its own templated lock (its write scope) and has its own patch ref.
    shards.forEach((id, n) => {
      const patch = git(repo, 'rev-parse', `refs/agora/patches/wordcount-1/${id}`).trim();
      expect(git(repo, 'diff', '--name-only', `${patch}^`, patch).trim()).toBe(`counts/${n + 1}.json`);
    });
    // The audit log records each combination's start with its own lock.
    const entries = git(repo, 'log', '--format=%H', 'refs/agora/runs/wordcount-1')
      .trim()
      .split('\n')
      .flatMap((c) => git(repo, 'show', `${c}:entries.jsonl`).split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { kind: string; itemId?: string; to: string; locks?: string[] });
    const started = entries.filter((e) => e.kind === 'item' && e.to === 'running').map((e) => [e.itemId, e.locks]);
    expect(started.sort()).toEqual([...shards.map((id, n) => [id, [`counts/${n + 1}.json`]]), ['reduce', ['totals.json']]].sort());
    expect((JSON.parse(readFileSync(join(repo, 'totals.json'), 'utf8')) as Record<string, number>).the).toBe(5);
    // The bundle lists the combinations, and the verifier, expanding the stored plan.json, agrees with it.
    const audit = await agora(repo, ['orch', 'audit', 'wordcount-1']);
    expect(audit.stdout + audit.stderr).not.toContain('FAIL');
    expect(audit.code).toBe(0);
  });

  it('refuses a matrix whose value makes an invalid lock key, naming the value, and starts nothing', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'bad',
        queue: 'default',
        items: [
          { id: 'm', executor: 'command', inputs: { run: 'true' }, matrix: { dir: ['ok', '.git'] }, depends_on: [], resourceLocks: ['{{matrix.dir}}/x'] },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('$.items[0].matrix.dir[1]: this value makes the lock template "{{matrix.dir}}/x"');
    expect(r.stderr).not.toContain('    at ');
    expect(git(repo, 'for-each-ref', 'refs/agora/runs/').trim()).toBe('');
  });
});
