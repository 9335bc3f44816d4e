/**
 * `agora orch submit` with secret parameters writes their store on this host before its inbox entry exists
 * (a serve may accept the entry and start workers at once). A submit killed in between (SIGKILL at the crash
 * point `secrets-bound`) leaves values nothing names: the next serve removes them before it serves, and
 * leaves every store something may still need. The real CLI, in real repositories.
 */
import { existsSync, readdirSync, readFileSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GONE_WRITER_MIN_AGE_MS as MIN_AGE_MS } from '../../src/process-identity.js';
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

/** Makes every store of the repository older than a serve's grace age: a submit binds and pushes in milliseconds. */
const age = (repo: string) => {
  const then = new Date(Date.now() - 2 * MIN_AGE_MS);
  for (const f of stores(repo)) utimesSync(f, then, then);
};

/** A submit of plan.json in `dir` with a secret, killed once its store is written. */
async function killedSubmit(dir: string): Promise<void> {
  const killed = await agora(dir, ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`], { AGORA_CRASH_AT: 'secrets-bound:1' });
  expect(killed.code).not.toBe(0);
}

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
    await killedSubmit(repo);
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('');
    const [orphan] = stores(repo);
    expect(readFileSync(orphan!, 'utf8')).toContain(SECRET);
    // Young, it stays: a writer judged gone wrongly (a container sharing this host's name) still has its store.
    expect(await serveOnce(repo)).not.toContain('removed the secret parameters');
    expect(stores(repo)).toEqual([orphan]);
    // A submission that went through, with its own store, beside it (it takes the same id: none was taken).
    expect((await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', 'token=a-submitted-secret'])).stdout.trim()).toBe('later-1');
    const [kept] = stores(repo).filter((f) => f !== orphan);
    age(repo);

    const refsNow = () => git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora/inbox', 'refs/agora/runs').trim();
    const said = await serveOnce(repo, () => refsNow() === 'refs/agora/runs/later-1');
    expect(said).toContain('agora: removed the secret parameters of later-1 from this host (nothing in the repository names them, and their submit is gone)');
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
    await killedSubmit(join(repo, 'sub'));
    age(repo);
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
    await killedSubmit(repo);
    const [old] = stores(repo);
    writeFileSync(old!, `${JSON.stringify({ run: 'later-1', secrets: { token: SECRET } })}\n`);
    age(repo);
    expect(await serveOnce(repo)).not.toContain('removed the secret parameters');
    expect(existsSync(old!)).toBe(true);
  });

  it('follows no link and waits on no FIFO under a store’s name, looks in no params that is a link, and serves all the same', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    await killedSubmit(repo);
    const [orphan] = stores(repo);
    const dir = join(repo, '.git', 'agora', 'params');
    // A link under a store's name, to another repository's store of the same run id, writer gone, old.
    const elsewhere = join(repo, 'elsewhere.json');
    writeFileSync(elsewhere, readFileSync(orphan!));
    const link = join(dir, `${'0'.repeat(32)}.json`);
    symlinkSync(elsewhere, link);
    const fifo = join(dir, `${'1'.repeat(32)}.json`);
    execFileSync('mkfifo', [fifo]);
    age(repo);
    utimesSync(elsewhere, new Date(Date.now() - 2 * MIN_AGE_MS), new Date(Date.now() - 2 * MIN_AGE_MS));
    const said = await serveOnce(repo);
    expect(said).toContain(`agora: warning: ${link} is a symbolic link; it stays`);
    expect(said).toContain(`agora: warning: ${fifo} is not a file; it stays`);
    expect(said).toContain('agora: removed the secret parameters of later-1 from this host');
    expect(existsSync(elsewhere)).toBe(true);

    // params itself a link (to a directory holding a dead submit's old store): not looked in at all.
    await killedSubmit(repo);
    age(repo);
    const before = readdirSync(dir).sort();
    expect(before).toHaveLength(3); // the link, the FIFO and the new store
    const moved = join(repo, 'params-elsewhere');
    renameSync(dir, moved);
    symlinkSync(moved, dir);
    const again = await serveOnce(repo);
    expect(again).toContain(
      `agora: warning: ${dir} is a symbolic link: secret stores are looked for only in a directory of their own; stores a killed submit left stay`,
    );
    expect(readdirSync(moved).sort()).toEqual(before);
  });

  it('leaves no values in a store’s temporary file once its writer is gone, and the temporary files of live writers', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    // Killed with the store whole in its temporary file, before the rename that would have made it the store.
    const killed = await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`], { AGORA_CRASH_AT: 'secrets-temp-written:1' });
    expect(killed.code).not.toBe(0);
    const [whole] = stores(repo);
    expect(whole).toMatch(/\/\.[0-9a-f]{32}\.json\.\d+_[0-9a-f]{8}_\d+\.tmp$/);
    expect(readFileSync(whole!, 'utf8')).toContain(SECRET);
    const dir = join(repo, '.git', 'agora', 'params');
    // A write cut short (no whole store to name its writer) by a process that is gone: the killed submit's pid.
    const deadPid = /\.json\.(\d+)_/.exec(whole!)![1]!;
    const cut = join(dir, `.${'2'.repeat(32)}.json.${deadPid}_0badc0de_7.tmp`);
    writeFileSync(cut, `{"run":"later-9","secrets":{"token":"${SECRET}-cut`);
    // A whole store that records no writer (an older Agora's) stays, as such a store does, and so does a name of another form.
    const noWriter = join(dir, `.${'4'.repeat(32)}.json.${deadPid}_0badc0de_10.tmp`);
    writeFileSync(noWriter, `${JSON.stringify({ run: 'later-9', secrets: { token: SECRET } })}\n`);
    const otherName = join(dir, `.${'5'.repeat(32)}.${deadPid}_0badc0de_11.tmp`);
    writeFileSync(otherName, 'not a store');
    // The same, and a whole one, by writers that are alive (this process).
    const cutAlive = join(dir, `.${'3'.repeat(32)}.json.${process.pid}_0badc0de_8.tmp`);
    writeFileSync(cutAlive, `{"run":"later-9","secrets":{"token":"${SECRET}-alive`);
    const { bind } = recordableParams({ values: {}, secrets: { token: 'written-here' } }, join(repo, '.git', 'agora'), 'refs/agora/');
    await bind!('later-2');
    const wholeAlive = stores(repo).find((f) => f.endsWith('.json') && readFileSync(f, 'utf8').includes('written-here'))!;
    // Named with the dead pid: a whole store's recorded writer is what counts.
    const wholeAliveTemp = join(dir, `.${wholeAlive.split('/').pop()}.${deadPid}_0badc0de_9.tmp`);
    renameSync(wholeAlive, wholeAliveTemp);

    // Young, all stay.
    expect(await serveOnce(repo)).not.toContain('agora: removed');
    expect(stores(repo)).toHaveLength(6);
    age(repo);
    const said = await serveOnce(repo);
    expect(said).toContain(`agora: removed ${whole} from this host (secret parameters a submit was writing when it died)`);
    expect(said).toContain(`agora: removed ${cut} from this host`);
    expect(said.indexOf('agora: removed')).toBeLessThan(said.indexOf('agora serve: serving'));
    expect(stores(repo).sort()).toEqual([cutAlive, wholeAliveTemp, noWriter, otherName].sort());
  });
});
