/**
 * `agora orch cancel` of a submission not yet accepted deletes its inbox entry, then removes its secret
 * parameters from this host. A cancel killed in between (SIGKILL at the crash point
 * `submission-withdrawn`) leaves a withdrawal marker (src/runs/withdrawal.ts), and the next cancel, of
 * any id, or a serve finishes the job. The real CLI, in real repositories.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe } from '../support/repo.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'later',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
});
const SECRET = 'a-withdrawn-secret-value';

/** A repository with `later-1` submitted with a secret, and a cancel of it killed after the withdrawal. */
async function crashedWithdrawal() {
  const repo = makeRepo({ 'plan.json': PLAN });
  const storeDir = join(repo, '.git', 'agora', 'params');
  const markerDir = join(repo, '.git', 'agora', 'withdrawals');
  expect((await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`])).stdout.trim()).toBe('later-1');
  const [store] = readdirSync(storeDir);
  const killed = await agora(repo, ['orch', 'cancel', 'later-1'], { AGORA_CRASH_AT: 'submission-withdrawn:1' });
  expect(killed.code).not.toBe(0);
  // The inbox entry is gone and nothing in the repository names the store any more; the marker does.
  expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('');
  expect(readFileSync(join(storeDir, store!), 'utf8')).toContain(SECRET);
  const markers = () => (existsSync(markerDir) ? readdirSync(markerDir) : []);
  return { repo, storeDir, markers, store: join(storeDir, store!) };
}

describe('a cancel killed after withdrawing a submission', () => {
  it('leaves its secret parameters to the next cancel of the same id, which then says what it did', async () => {
    const s = await crashedWithdrawal();
    const again = await agora(s.repo, ['orch', 'cancel', 'later-1']);
    expect({ code: again.code, stdout: again.stdout.trim(), stderr: again.stderr }).toEqual({
      code: 0,
      stdout: 'later-1: withdrawn earlier; its secret parameters, still on this host from a withdrawal left unfinished, are removed now',
      stderr: '',
    });
    expect(existsSync(s.store)).toBe(false);
    expect(s.markers()).toEqual([]);
    // Once nothing is left, the id is one Agora knows nothing of.
    expect((await agora(s.repo, ['orch', 'cancel', 'later-1'])).code).toBe(1);
  });

  it('leaves them to a cancel of another id', async () => {
    const s = await crashedWithdrawal();
    const other = await agora(s.repo, ['orch', 'cancel', 'other-1']);
    expect(other.code).toBe(1); // no such run, as before
    expect(other.stderr).toContain('agora: removed the secret parameters of later-1 from this host (a withdrawal left unfinished)\n');
    expect(existsSync(s.store)).toBe(false);
    expect(s.markers()).toEqual([]);
  });

  it('leaves them to the next serve, which removes them before it says it is serving', async () => {
    const s = await crashedWithdrawal();
    const serve = startServe(s.repo);
    try {
      await eventually('serve to start', () => serve.output().includes('agora serve: serving') || undefined);
      expect(serve.output()).toContain('agora: removed the secret parameters of later-1 from this host');
      expect(existsSync(s.store)).toBe(false);
      expect(s.markers()).toEqual([]);
    } finally {
      serve.kill('SIGTERM');
      await exited(serve);
    }
  });

  it('never touches the store of a new submission that took the same id', async () => {
    const s = await crashedWithdrawal();
    // The withdrawn id is free again: the next submit takes it, with a store of its own (a new token).
    expect((await agora(s.repo, ['orch', 'submit', 'plan.json', '--secret-data', 'token=the-new-secret-value'])).stdout.trim()).toBe('later-1');
    const fresh = readdirSync(s.storeDir)
      .map((f) => join(s.storeDir, f))
      .filter((f) => f !== s.store);
    expect(fresh).toHaveLength(1);

    expect((await agora(s.repo, ['orch', 'cancel', 'other-1'])).code).toBe(1);
    expect(existsSync(s.store)).toBe(false);
    expect(JSON.parse(readFileSync(fresh[0]!, 'utf8'))).toMatchObject({ run: 'later-1', namespace: 'refs/agora/', secrets: { token: 'the-new-secret-value' } });
    expect(git(s.repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('refs/agora/inbox/later-1');
    expect(s.markers()).toEqual([]);

    // And the new submission is withdrawn, secrets and all, by its own cancel.
    const cancelled = await agora(s.repo, ['orch', 'cancel', 'later-1']);
    expect({ code: cancelled.code, stdout: cancelled.stdout.trim() }).toEqual({ code: 0, stdout: 'later-1: withdrawn before it was accepted' });
    expect(readdirSync(s.storeDir)).toEqual([]);
  });

  it('a marker is left to the cancels of its own ref namespace, not to those of another config in the repository', async () => {
    const repo = makeRepo({ 'plan.json': PLAN, 'sub/agora.config.mjs': "export const orch = { refNamespace: 'refs/other/' };\n" });
    const storeDir = join(repo, '.git', 'agora', 'params');
    const markerDir = join(repo, '.git', 'agora', 'withdrawals');
    expect((await agora(repo, ['orch', 'submit', 'plan.json', '--secret-data', `token=${SECRET}`])).stdout.trim()).toBe('later-1');
    const [store] = readdirSync(storeDir);
    git(repo, 'pack-refs', '--all'); // the inbox delete then rewrites packed-refs, through the crash point ref-temp-written
    // Killed after writing its marker, before deleting the inbox entry: the submission is still there.
    expect((await agora(repo, ['orch', 'cancel', 'later-1'], { AGORA_CRASH_AT: 'ref-temp-written:1' })).code).not.toBe(0);
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora').trim()).toBe('refs/agora/inbox/later-1');
    expect(readdirSync(markerDir)).toHaveLength(1);

    // A cancel under sub/'s config (refs/other/) sees neither that inbox entry nor that run: it leaves the marker.
    const other = await agora(join(repo, 'sub'), ['orch', 'cancel', 'other-1']);
    expect({ code: other.code, removed: other.stderr.includes('removed the secret parameters') }).toEqual({ code: 1, removed: false });
    expect(readFileSync(join(storeDir, store!), 'utf8')).toContain(SECRET);
    expect(readdirSync(markerDir)).toHaveLength(1);

    // The root config's cancel (once the locks the killed one left are gone) withdraws it, secrets and marker too.
    for (const lock of ['refs/agora/inbox/later-1.lock', 'packed-refs.lock']) rmSync(join(repo, '.git', lock));
    const cancelled = await agora(repo, ['orch', 'cancel', 'later-1']);
    expect({ code: cancelled.code, stdout: cancelled.stdout.trim(), stderr: cancelled.stderr }).toEqual({
      code: 0,
      stdout: 'later-1: withdrawn before it was accepted',
      stderr: '',
    });
    expect(readdirSync(storeDir)).toEqual([]);
    expect(readdirSync(markerDir)).toEqual([]);
  });

  it('a malformed marker is reported and removed, and the cancel goes on', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const markerDir = join(repo, '.git', 'agora', 'withdrawals');
    mkdirSync(markerDir, { recursive: true });
    writeFileSync(join(markerDir, '0123456789abcdef.json'), '{"namespace": "refs/agora/", "run": "later-1", "token": "../../../config"}');
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe('later-1');
    const cancelled = await agora(repo, ['orch', 'cancel', 'later-1']);
    expect({ code: cancelled.code, stdout: cancelled.stdout.trim() }).toEqual({ code: 0, stdout: 'later-1: withdrawn before it was accepted' });
    expect(cancelled.stderr).toBe(
      `agora: warning: ${join(markerDir, '0123456789abcdef.json')} names no secret store token, not a withdrawal marker Agora wrote ` +
        '({"namespace": "<ref namespace>", "run": "<run id>", "token": "<32 hex digits>"}); removed it\n',
    );
    expect(readdirSync(markerDir)).toEqual([]);
    expect(existsSync(join(repo, '.git', 'config'))).toBe(true);
  });
});
