/**
 * `agora orch submit` with secret parameters writes their store on this host before its inbox entry exists
 * (a serve may accept the entry and start workers at once). A submit killed in between (SIGKILL at the crash
 * point `secrets-bound`) leaves values nothing names: the next serve removes them before it serves, and
 * leaves every store something may still need. The real CLI, in real repositories.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recordableParams } from '../../src/runs/params.js';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe } from '../support/repo.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'later',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
});
const SECRET = 'a-secret-nothing-names';

/** The store files of the repository, by path. */
const stores = (repo: string) => {
  const dir = join(repo, '.git', 'agora', 'params');
  return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
};

/** Starts a serve, waits until it serves (and until `also` holds), and stops it: what it said. */
async function serveOnce(repo: string, also: () => boolean = () => true): Promise<string> {
  const serve = startServe(repo);
  try {
    await eventually('serve to start', () => serve.output().includes('agora serve: serving') || undefined);
    await eventually('what the case waits for', also);
    return serve.output();
  } finally {
    serve.kill('SIGTERM');
    await exited(serve);
  }
}

describe('a submit killed after writing its secret parameters, before its submission exists', () => {
  it('leaves them to the next serve, which removes them and says so; a submission’s own store stays', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const killed = await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`], { AGORA_CRASH_AT: 'secrets-bound:1' });
    expect(killed.code).not.toBe(0);
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('');
    const [orphan] = stores(repo);
    expect(readFileSync(orphan!, 'utf8')).toContain(SECRET);
    // A submission that went through, with its own store, beside it (it takes the same id: none was taken).
    expect((await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', 'token=a-submitted-secret'])).stdout.trim()).toBe('later-1');
    const [kept] = stores(repo).filter((f) => f !== orphan);

    const refsNow = () => git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora/inbox', 'refs/agora/runs').trim();
    const said = await serveOnce(repo, () => refsNow() === 'refs/agora/runs/later-1');
    expect(said).toContain('agora: removed the secret parameters of later-1 from this host (its submit stopped before the submission existed)');
    expect(said.indexOf('removed the secret parameters')).toBeLessThan(said.indexOf('agora serve: serving'));
    expect(stores(repo)).toEqual([kept]);
    expect(readFileSync(kept!, 'utf8')).toContain('a-submitted-secret');
    // Accepted, its inbox entry gone: the run names its store, which the next serve leaves too.
    expect(await serveOnce(repo)).not.toContain('removed the secret parameters');
    expect(stores(repo)).toEqual([kept]);
  });

  it('leaves a store whose submit may still be running, and one of another ref namespace', async () => {
    const repo = makeRepo({ 'plan.json': PLAN, 'sub/plan.json': PLAN, 'sub/agora.config.mjs': "export const orch = { refNamespace: 'refs/other/' };\n" });
    // A submit under way in this process: its store is written, its inbox entry not yet.
    const { bind } = recordableParams({ values: {}, secrets: { token: 'submit-under-way' } }, join(repo, '.git', 'agora'), 'refs/agora/');
    await bind!('later-1');
    // A killed submit of the other config (refs/other/): a serve of this one reads none of its refs.
    const killed = await agora(join(repo, 'sub'), ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`], {
      AGORA_CRASH_AT: 'secrets-bound:1',
    });
    expect(killed.code).not.toBe(0);
    expect(
      stores(repo)
        .map((f) => JSON.parse(readFileSync(f, 'utf8')).namespace)
        .sort(),
    ).toEqual(['refs/agora/', 'refs/other/']);

    const said = await serveOnce(repo);
    expect(said).not.toContain('removed the secret parameters');
    expect(stores(repo)).toHaveLength(2);
    // The other config's serve removes its own.
    const other = await serveOnce(join(repo, 'sub'));
    expect(other).toContain('agora: removed the secret parameters of later-1 from this host');
    expect(stores(repo).map((f) => readFileSync(f, 'utf8'))).toEqual([expect.stringContaining('submit-under-way')]);
  });

  it('leaves a store written by an Agora that recorded no writer', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const killed = await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`], { AGORA_CRASH_AT: 'secrets-bound:1' });
    expect(killed.code).not.toBe(0);
    const [old] = stores(repo);
    writeFileSync(old!, `${JSON.stringify({ run: 'later-1', secrets: { token: SECRET } })}\n`);
    expect(await serveOnce(repo)).not.toContain('removed the secret parameters');
    expect(existsSync(old!)).toBe(true);
  });
});
