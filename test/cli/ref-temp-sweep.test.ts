import { readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GONE_WRITER_MIN_AGE_MS as MIN_AGE_MS } from '../../src/process-identity.js';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, exited, makeRepo, startServe } from '../support/repo.js';

afterAll(cleanupTempDirs);

describe('a serve and the temporary files of a killed ref update', () => {
  it('removes the ref values and owner file an orch run killed mid-update left, once they are old', async () => {
    const plan = {
      id: 'tmp',
      queue: 'default',
      items: [{ id: 'a', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] }],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan) });
    // The fourth ref value written is the run's first state transaction's (the first three submit and
    // accept it: the entry, then the entry checked unchanged and the run ref).
    const killed = await agora(repo, ['orch', 'run', 'plan.json'], { AGORA_CRASH_AT: 'ref-temp-written:4' });
    expect(killed.code).toBeNull(); // killed at the point, by SIGKILL
    const tmp = join(repo, '.git', 'agora', 'tmp');
    const left = readdirSync(tmp);
    expect(left.some((name) => name.startsWith('ref-'))).toBe(true);
    expect(left.some((name) => name.startsWith('owner-'))).toBe(true);
    const then = (Date.now() - MIN_AGE_MS - 60_000) / 1000;
    for (const name of left) utimesSync(join(tmp, name), then, then);

    const serve = startServe(repo);
    try {
      await eventually('the killed run to end', async () => {
        const status = JSON.parse((await agora(repo, ['orch', 'status', 'tmp-1'])).stdout) as { status: string };
        return status.status === 'done' ? true : undefined;
      });
      expect(readdirSync(tmp).filter((name) => left.includes(name))).toEqual([]);
    } finally {
      serve.kill('SIGKILL');
      await exited(serve);
    }
  });
});
