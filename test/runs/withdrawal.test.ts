/**
 * Withdrawal markers (src/runs/withdrawal.ts): `cancelRun` records the store it is about to orphan before
 * it deletes a submission's inbox entry, and `finishWithdrawals` (the next cancel, serve) finishes what a
 * stopped cancel left, from the inbox ref and then the run ref. Real repositories and files; the stopped
 * cancel is an in-process crash point (the CLI test, test/cli/withdrawal-crash.test.ts, kills a process).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/load.js';
import { armCrashPoint, CrashedAt } from '../../src/crash-points.js';
import type { GitStore } from '../../src/git/types.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { cancelRun } from '../../src/runs/cancel.js';
import { acceptInbox, submitPlan } from '../../src/runs/inbox.js';
import { recordableParams, workerParams } from '../../src/runs/params.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRun } from '../../src/runs/state-store.js';
import { finishWithdrawals, markWithdrawal } from '../../src/runs/withdrawal.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();
const T0 = 1_800_000_000_000;
const clock = () => T0;
const PLAN = `${JSON.stringify({
  id: 'p',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
})}\n`;

async function repository() {
  const r = await initRepo({ bare: false });
  cleanups.push(r.cleanup);
  gitSync(r.dir, ['commit', '--allow-empty', '-q', '-m', 'base']);
  const store = await openLocalStore(r.dir);
  const scratchDir = join(store.gitdir, 'agora');
  const base = gitSync(r.dir, ['rev-parse', 'HEAD']).trim();
  const markerDir = join(scratchDir, 'withdrawals');
  const markers = () => (existsSync(markerDir) ? readdirSync(markerDir) : []);
  /** Submits plan `p` with a secret, as `agora orch submit --secret-data` does: the store is bound first. */
  const submit = async (secret: string) => {
    const { params, bind } = recordableParams({ values: {}, secrets: { token: secret } }, scratchDir, refs.ns);
    const { runId } = await submitPlan(store, refs, { planText: PLAN, planId: 'p', base, now: T0, params, bindSecrets: bind! });
    return { runId, params, file: join(scratchDir, 'params', `${params.secretStore}.json`) };
  };
  return { store, scratchDir, base, markerDir, markers, submit, config: defaultConfig(r.dir) };
}

/** `store` with `method` replaced by what `replacement` makes of the store (whose real method it may call). */
function replacing<K extends 'deleteRef' | 'casRef' | 'casRefs' | 'resolveRef'>(
  store: GitStore,
  method: K,
  replacement: (target: GitStore) => GitStore[K],
): GitStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      return prop === method ? replacement(target) : (Reflect.get(target, prop, receiver) as unknown);
    },
  });
}

/** `cancelRun` stopped at `submission-withdrawn`: the inbox entry deleted, the store not yet removed. */
async function crashedCancel(r: Awaited<ReturnType<typeof repository>>, runId: string) {
  armCrashPoint('submission-withdrawn', 1, () => undefined);
  await expect(cancelRun(r.store, refs, runId, 'stop', clock, { scratchDir: r.scratchDir })).rejects.toBeInstanceOf(CrashedAt);
  expect(await r.store.resolveRef(refs.inbox(runId))).toBeNull();
}

describe('a withdrawal marker', () => {
  it('is on disk, naming the store and the run, while the inbox entry goes; a stopped cancel leaves it to the next look', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    await crashedCancel(r, s.runId);
    expect(existsSync(s.file)).toBe(true);
    expect(r.markers().map((m) => JSON.parse(readFileSync(join(r.markerDir, m), 'utf8')))).toEqual([
      { namespace: 'refs/agora/', run: s.runId, token: s.params.secretStore },
    ]);

    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [s.runId], problems: [] });
    expect(existsSync(s.file)).toBe(false);
    expect(r.markers()).toEqual([]);
    // Finished: another look finds nothing.
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [], problems: [] });
  });

  it('of a cancel that completed is gone, with the store', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    expect(await cancelRun(r.store, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).toMatchObject({ kind: 'withdrawn' });
    expect(existsSync(s.file)).toBe(false);
    expect(r.markers()).toEqual([]);
  });

  it('whose submission serve accepted meanwhile leaves the store to the run: it waits while the entry is in the inbox, then goes alone', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    // As a cancel killed after writing its marker, before deleting the inbox entry, leaves it.
    await markWithdrawal(r.scratchDir, refs, s.runId, s.params.secretStore);
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [], problems: [] });
    expect(r.markers()).toHaveLength(1);
    expect(existsSync(s.file)).toBe(true);

    expect(await acceptInbox(r.store, refs, r.config, r.scratchDir, T0)).toMatchObject([{ runId: s.runId, kind: 'accepted' }]);
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [], problems: [] });
    expect(r.markers()).toEqual([]);
    expect((await workerParams(s.params, r.scratchDir, s.runId)).secrets).toEqual({ token: 'first-secret-value' });
  });

  it('of a cancel whose inbox delete lost to serve accepting the run goes alone, and the run is cancelled instead', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    let markersAtDelete: string[] | undefined;
    // serve accepts the submission between the cancel's read of the inbox entry and its delete.
    const racing = replacing(r.store, 'deleteRef', (target) => async (ref: string, expected: string) => {
      if (ref === refs.inbox(s.runId) && markersAtDelete === undefined) {
        markersAtDelete = r.markers();
        await acceptInbox(r.store, refs, r.config, r.scratchDir, T0);
      }
      return target.deleteRef(ref, expected);
    });
    expect(await cancelRun(racing, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).toMatchObject({ kind: 'cancelled' });
    expect(markersAtDelete).toHaveLength(1);
    expect(r.markers()).toEqual([]);
    expect(existsSync(s.file)).toBe(true);
  });

  it('made while a serve validates the submission it read leaves no run: the serve creates one only while the entry is in place', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    // The cancel completes between the serve's read of the entry and the transaction that creates the run.
    let cancelled = false;
    const serving = replacing(r.store, 'casRefs', (target) => async (swaps: Parameters<GitStore['casRefs']>[0]) => {
      if (!cancelled && swaps.some((x) => x.ref === refs.run(s.runId))) {
        cancelled = true;
        expect(await cancelRun(r.store, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).toMatchObject({ kind: 'withdrawn' });
      }
      return target.casRefs(swaps);
    });
    expect(await acceptInbox(serving, refs, r.config, r.scratchDir, T0)).toEqual([{ runId: s.runId, kind: 'withdrawn' }]);
    expect(cancelled).toBe(true);
    expect(await r.store.resolveRef(refs.run(s.runId))).toBeNull();
    expect(await r.store.resolveRef(refs.inbox(s.runId))).toBeNull();
    expect(existsSync(s.file)).toBe(false);
  });

  it('made after a serve created the run but before it removed the entry cancels the run, whose store stays', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    // A serve that has created the run and not yet removed the entry (it is between the two).
    const halfway = replacing(r.store, 'deleteRef', () => () => Promise.resolve(false));
    let accepted = false;
    // It gets there after the cancel found no run, and before the cancel deletes the entry.
    const cancelling = replacing(r.store, 'deleteRef', (target) => async (ref: string, expected: string) => {
      if (!accepted && ref === refs.inbox(s.runId)) {
        accepted = true;
        expect(await acceptInbox(halfway, refs, r.config, r.scratchDir, T0)).toMatchObject([{ runId: s.runId, kind: 'accepted' }]);
      }
      return target.deleteRef(ref, expected);
    });
    expect(await cancelRun(cancelling, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).toMatchObject({ kind: 'cancelled' });
    expect(accepted).toBe(true);
    expect(r.markers()).toEqual([]);
    expect((await workerParams(s.params, r.scratchDir, s.runId)).secrets).toEqual({ token: 'first-secret-value' });
  });

  it('whose id another submission took and had accepted right after the delete leaves that run alone', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    let other: Awaited<ReturnType<typeof r.submit>> | undefined;
    const cancelling = replacing(r.store, 'deleteRef', (target) => async (ref: string, expected: string) => {
      const deleted = await target.deleteRef(ref, expected);
      if (other === undefined && ref === refs.inbox(s.runId)) {
        // The id is free again: the next submission takes it, and a serve accepts it at once.
        other = await r.submit('second-secret-value');
        expect(other.runId).toBe(s.runId);
        expect(await acceptInbox(r.store, refs, r.config, r.scratchDir, T0)).toMatchObject([{ runId: s.runId, kind: 'accepted' }]);
      }
      return deleted;
    });
    expect(await cancelRun(cancelling, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).toMatchObject({ kind: 'withdrawn' });
    expect(existsSync(s.file)).toBe(false);
    const run = (await readRun(r.store, refs, s.runId))!;
    expect(run.state.status).toBe('running');
    expect(run.state.cancelRequested).toBeUndefined();
    expect((await workerParams(other!.params, r.scratchDir, s.runId)).secrets).toEqual({ token: 'second-secret-value' });
  });

  it('is not needed for a submission whose run could not be created for a ref that stayed locked: it stays for the next pass', async () => {
    const r = await repository();
    const s = await r.submit('first-secret-value');
    let refused = false;
    const busy = replacing(r.store, 'casRefs', (target) => async (swaps: Parameters<GitStore['casRefs']>[0]) => {
      if (refused) return target.casRefs(swaps);
      refused = true;
      return false; // as casRefs answers when a lock stays held past its wait
    });
    expect(await acceptInbox(busy, refs, r.config, r.scratchDir, T0)).toEqual([{ runId: s.runId, kind: 'deferred' }]);
    expect(await r.store.resolveRef(refs.inbox(s.runId))).not.toBeNull();
    expect(await acceptInbox(busy, refs, r.config, r.scratchDir, T0)).toMatchObject([{ runId: s.runId, kind: 'accepted' }]);
    expect((await workerParams(s.params, r.scratchDir, s.runId)).secrets).toEqual({ token: 'first-secret-value' });
  });

  it('is not needed for a submission whose rejection could not be recorded for a ref that stayed locked: it stays, with its secrets', async () => {
    const r = await repository();
    // Rejected by the serve for a reason only it sees: an anchor pushed under the id.
    const s = await r.submit('first-secret-value');
    const who = { name: 'x', email: 'x@example.com', timestamp: 1, timezoneOffset: 0 };
    const anchor = await r.store.writeCommit({ tree: await r.store.writeTree([]), parents: [], message: 'anchor\n', author: who, committer: who });
    expect(await r.store.casRef(refs.anchor(s.runId), anchor, null)).toBe(true);
    let refused = false;
    const busy = replacing(r.store, 'casRef', (target) => async (ref: string, next: string, expected: string | null) => {
      if (refused || ref !== refs.rejected(s.runId)) return target.casRef(ref, next, expected);
      refused = true;
      return false; // as a swap answers when the ref's lock stays held past its wait
    });
    expect(await acceptInbox(busy, refs, r.config, r.scratchDir, T0)).toEqual([{ runId: s.runId, kind: 'deferred' }]);
    expect(await r.store.resolveRef(refs.inbox(s.runId))).not.toBeNull();
    expect(existsSync(s.file)).toBe(true);
    expect(await acceptInbox(busy, refs, r.config, r.scratchDir, T0)).toMatchObject([{ runId: s.runId, kind: 'rejected' }]);
    expect(existsSync(s.file)).toBe(false);
  });

  it('never touches the store of a new submission that took the withdrawn id, at any stage', async () => {
    const r = await repository();
    const first = await r.submit('first-secret-value');
    await crashedCancel(r, first.runId);
    // `submit` gives the id out again and binds its own store to it before its inbox entry exists: a
    // look at that moment finds neither an inbox entry nor a run for the id.
    const { params, bind } = recordableParams({ values: {}, secrets: { token: 'second-secret-value' } }, r.scratchDir, refs.ns);
    await bind!(first.runId);
    const second = join(r.scratchDir, 'params', `${params.secretStore}.json`);
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [first.runId], problems: [] });
    expect(existsSync(first.file)).toBe(false);
    expect(JSON.parse(readFileSync(second, 'utf8'))).toMatchObject({ run: first.runId, namespace: refs.ns, secrets: { token: 'second-secret-value' } });
  });

  it('of a withdrawn id taken again and accepted before anyone looked still removes the old store, and only it', async () => {
    const r = await repository();
    const first = await r.submit('first-secret-value');
    await crashedCancel(r, first.runId);
    const second = await r.submit('second-secret-value');
    expect(second.runId).toBe(first.runId);
    // In the inbox: it names another store, so the withdrawn one is not waiting for it.
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [first.runId], problems: [] });
    expect(existsSync(first.file)).toBe(false);
    expect(existsSync(second.file)).toBe(true);

    // Again, with the new submission accepted before the look: the run records another store.
    await crashedCancel(r, second.runId);
    const third = await r.submit('third-secret-value');
    expect(await acceptInbox(r.store, refs, r.config, r.scratchDir, T0)).toMatchObject([{ runId: first.runId, kind: 'accepted' }]);
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [first.runId], problems: [] });
    expect(existsSync(second.file)).toBe(false);
    expect((await workerParams(third.params, r.scratchDir, third.runId)).secrets).toEqual({ token: 'third-secret-value' });
    expect(r.markers()).toEqual([]);
  });

  it('that is malformed is reported and removed, never followed outside the params dir; nothing else is touched', async () => {
    const r = await repository();
    // A store bound to a run that has neither an inbox entry nor a run: a real marker naming it would remove it.
    const { params, bind } = recordableParams({ values: {}, secrets: { token: 'orphan-secret-value' } }, r.scratchDir, refs.ns);
    await bind!('p-7');
    const orphan = join(r.scratchDir, 'params', `${params.secretStore}.json`);
    const outside = join(r.scratchDir, 'outside.json');
    const ns = 'refs/agora/';
    writeFileSync(outside, JSON.stringify({ namespace: ns, run: 'p-7', token: params.secretStore }));
    mkdirSync(r.markerDir, { recursive: true });
    const marker = (name: string) => join(r.markerDir, `${name.repeat(16)}.json`);
    writeFileSync(marker('a'), 'not JSON');
    writeFileSync(marker('b'), JSON.stringify(['p-7', params.secretStore]));
    writeFileSync(marker('c'), JSON.stringify({ namespace: ns, run: 'p-7', token: '../outside' }));
    writeFileSync(marker('d'), JSON.stringify({ namespace: ns, run: '../../p-7', token: params.secretStore }));
    writeFileSync(marker('e'), JSON.stringify({ namespace: ns, run: 'p-7', token: params.secretStore, pad: 'x'.repeat(5000) }));
    symlinkSync(outside, marker('f'));
    mkdirSync(marker('1'));
    execFileSync('mkfifo', [marker('2')]);
    writeFileSync(join(r.markerDir, 'notes.txt'), JSON.stringify({ namespace: ns, run: 'p-7', token: params.secretStore }));
    // Without a namespace (as 534d214 wrote them) or with one no config can give.
    writeFileSync(marker('3'), JSON.stringify({ run: 'p-7', token: params.secretStore }));
    writeFileSync(marker('4'), JSON.stringify({ namespace: 'refs/agora', run: 'p-7', token: params.secretStore }));
    writeFileSync(marker('5'), JSON.stringify({ namespace: '../', run: 'p-7', token: params.secretStore }));

    const found = await finishWithdrawals(r.store, refs, r.scratchDir);
    expect(found.removed).toEqual([]);
    expect(found.problems).toEqual([
      expect.stringMatching(new RegExp(`^${marker('1')} is not a file, not a withdrawal marker Agora wrote .*; could not remove it \\(.*EISDIR`)),
      expect.stringMatching(new RegExp(`^${marker('2')} is not a file, not a withdrawal marker Agora wrote .*; removed it$`)),
      expect.stringContaining(`${marker('3')} names no ref namespace`),
      expect.stringContaining(`${marker('4')} names no ref namespace`),
      expect.stringContaining(`${marker('5')} names no ref namespace`),
      expect.stringContaining(`${marker('a')} is not JSON`),
      expect.stringContaining(`${marker('b')} is not a JSON object`),
      expect.stringContaining(`${marker('c')} names no secret store token`),
      expect.stringContaining(`${marker('d')} names no run id Agora makes`),
      expect.stringContaining(`${marker('e')} is 5`),
      expect.stringContaining(`${marker('f')} is a symbolic link`),
    ]);
    expect(readdirSync(r.markerDir).sort()).toEqual([`${'1'.repeat(16)}.json`, 'notes.txt']);
    expect(existsSync(orphan)).toBe(true);
    expect(existsSync(outside)).toBe(true);
  });
});

describe('a withdrawal marker of another ref namespace', () => {
  // Another agora.config.mjs of the same repository, with `refNamespace: 'refs/other/'`: its cancel and
  // serve share `<gitdir>/agora`, and read refs/other/inbox/… and refs/other/runs/….
  const other = new RunRefs('refs/other/');

  it('is left to a look of its own namespace: the live submission it names keeps its store', async () => {
    const r = await repository();
    const s = await r.submit('live-secret-value');
    // As a cancel killed after writing its marker, before deleting the inbox entry, leaves it.
    await markWithdrawal(r.scratchDir, refs, s.runId, s.params.secretStore);
    expect(await finishWithdrawals(r.store, other, r.scratchDir)).toEqual({ removed: [], problems: [] });
    expect(existsSync(s.file)).toBe(true);
    expect(r.markers()).toHaveLength(1);
    // Its own namespace's look still finishes it, once the entry is gone.
    expect(await cancelRun(r.store, refs, s.runId, 'stop', clock)).toMatchObject({ kind: 'withdrawn' });
    expect(await finishWithdrawals(r.store, other, r.scratchDir)).toEqual({ removed: [], problems: [] });
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({ removed: [s.runId], problems: [] });
    expect(existsSync(s.file)).toBe(false);
    expect(r.markers()).toEqual([]);
  });

  it('is left alone while a serve accepts the submission between the cancel marking it and its delete', async () => {
    const r = await repository();
    const s = await r.submit('live-secret-value');
    let sweep: unknown;
    const racing = replacing(r.store, 'deleteRef', (target) => async (ref: string, expected: string) => {
      if (ref === refs.inbox(s.runId) && sweep === undefined) {
        await acceptInbox(r.store, refs, r.config, r.scratchDir, T0);
        sweep = await finishWithdrawals(r.store, other, r.scratchDir); // a cancel or serve of the other config
      }
      return target.deleteRef(ref, expected);
    });
    expect(await cancelRun(racing, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).toMatchObject({ kind: 'cancelled' });
    expect(sweep).toEqual({ removed: [], problems: [] });
    expect((await workerParams(s.params, r.scratchDir, s.runId)).secrets).toEqual({ token: 'live-secret-value' });
    expect(r.markers()).toEqual([]);
  });
});

describe('the order of the two reads', () => {
  it('serve accepting between them leaves the accepted run its store (the run is read after the inbox entry)', async () => {
    const r = await repository();
    const s = await r.submit('live-secret-value');
    await markWithdrawal(r.scratchDir, refs, s.runId, s.params.secretStore); // a cancel killed before its delete
    let accepted = false;
    const racing = replacing(r.store, 'resolveRef', (target) => async (ref: string) => {
      // serve accepts (writes the run, deletes the entry) right after the sweep's first read of either ref
      if (!accepted && (ref === refs.inbox(s.runId) || ref === refs.run(s.runId))) {
        accepted = true;
        const seen = await target.resolveRef(ref);
        await acceptInbox(r.store, refs, r.config, r.scratchDir, T0);
        return seen;
      }
      return target.resolveRef(ref);
    });
    // Reading the run first would see none, then no entry either, and remove the accepted run's store.
    expect(await finishWithdrawals(racing, refs, r.scratchDir)).toEqual({ removed: [], problems: [] });
    expect(accepted).toBe(true);
    expect((await workerParams(s.params, r.scratchDir, s.runId)).secrets).toEqual({ token: 'live-secret-value' });
  });
});

describe('withdrawing', () => {
  it('a pushed submission whose params.json cannot be read (a tree) still works, with nothing to remove', async () => {
    const r = await repository();
    const plan = await r.store.writeBlob(PLAN);
    const inner = await r.store.writeTree([{ mode: '100644', path: 'x', oid: plan, type: 'blob' }]);
    const tree = await r.store.writeTree([
      { mode: '040000', path: 'params.json', oid: inner, type: 'tree' },
      { mode: '100644', path: 'plan.json', oid: plan, type: 'blob' },
    ]);
    const who = { name: 'x', email: 'x@example', timestamp: 1_800_000_000, timezoneOffset: 0 };
    const commit = await r.store.writeCommit({ tree, parents: [r.base], message: 'pushed\n', author: who, committer: who });
    expect(await r.store.casRef(refs.inbox('p-1'), commit, null)).toBe(true);
    expect(await cancelRun(r.store, refs, 'p-1', 'stop', clock, { scratchDir: r.scratchDir })).toEqual({ kind: 'withdrawn', submission: commit });
    expect(await r.store.resolveRef(refs.inbox('p-1'))).toBeNull();
    expect(r.markers()).toEqual([]);
  });
});

describe('a withdrawals directory that is a symbolic link', () => {
  async function linked() {
    const r = await repository();
    const elsewhere = join(r.scratchDir, '..', 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    const theirs = join(elsewhere, '0123456789abcdef.json');
    writeFileSync(theirs, "someone else's data");
    mkdirSync(r.scratchDir, { recursive: true });
    symlinkSync(elsewhere, r.markerDir);
    return { ...r, elsewhere, theirs };
  }

  it('is reported by a look, and nothing in the directory it points to is read or removed', async () => {
    const r = await linked();
    expect(await finishWithdrawals(r.store, refs, r.scratchDir)).toEqual({
      removed: [],
      problems: [
        `${r.markerDir} is a symbolic link, not the directory of withdrawal markers Agora makes; nothing in it is read or removed (remove it: Agora makes it again)`,
      ],
    });
    expect(readFileSync(r.theirs, 'utf8')).toBe("someone else's data");
  });

  it('is never written through: the cancel refuses, and the submission stays with its store', async () => {
    const r = await linked();
    const s = await r.submit('live-secret-value');
    await expect(cancelRun(r.store, refs, s.runId, 'stop', clock, { scratchDir: r.scratchDir })).rejects.toThrow(
      `${r.markerDir} is a symbolic link: withdrawal markers are written only in a directory of their own, never through a link; nothing was withdrawn`,
    );
    expect(readdirSync(r.elsewhere)).toEqual(['0123456789abcdef.json']);
    expect(await r.store.resolveRef(refs.inbox(s.runId))).not.toBeNull();
    expect(existsSync(s.file)).toBe(true);
  });
});

describe('a marker that grows after its size was checked', () => {
  it('is read no further than the bound, and reported as too large', async () => {
    const r = await repository();
    mkdirSync(r.markerDir, { recursive: true });
    const path = join(r.markerDir, '0123456789abcdef.json');
    writeFileSync(path, '{}');
    // A writer between the check (fstat) and the read: a valid marker, padded past the bound.
    const h = await open(path, 'r');
    const proto = Object.getPrototypeOf(h) as { stat: (...a: unknown[]) => Promise<unknown> };
    await h.close();
    const stat = proto.stat;
    proto.stat = async function (this: unknown, ...a: unknown[]) {
      const info = await stat.apply(this, a);
      writeFileSync(path, JSON.stringify({ namespace: 'refs/agora/', run: 'p-1', token: 'f'.repeat(32), pad: 'x'.repeat(1 << 20) }));
      return info;
    };
    let found;
    try {
      found = await finishWithdrawals(r.store, refs, r.scratchDir);
    } finally {
      proto.stat = stat;
    }
    expect(found).toEqual({
      removed: [],
      problems: [expect.stringMatching(new RegExp(`^${path} is more than 4096 bytes, not a withdrawal marker Agora wrote .*; removed it$`))],
    });
  });
});
