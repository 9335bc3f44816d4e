/**
 * A submission's secret parameter values are kept in a file on the submitting host (params.ts), named by a
 * token in its `params.json`. An accepted run keeps them (its workers read them; `agora orch gc` removes
 * them with the run); a rejected submission never runs, so `serve` removes them once the rejection is
 * recorded, also when it stopped in between. Real repositories and files.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/load.js';
import { armCrashPoint, CrashedAt } from '../../src/crash-points.js';
import type { RunParams } from '../../src/engine/types.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { archiveAnchors } from '../../src/runs/anchor-archive.js';
import { cancelRun } from '../../src/runs/cancel.js';
import { acceptInbox, readRejection, submitPlan } from '../../src/runs/inbox.js';
import { recordableParams, workerParams } from '../../src/runs/params.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRunParamsAt, writeNewRun } from '../../src/runs/state-store.js';
import type { Plan } from '../../src/plan/schema.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();
const T0 = 1_800_000_000_000;
const SECRET = 'a-secret-value-long-enough-to-redact';

function planText(dependsOn: string[]): string {
  return `${JSON.stringify({
    id: 'p',
    queue: 'default',
    items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: dependsOn, resourceLocks: [] }],
  })}\n`;
}

/** A repository whose one commit (the base) holds `files`, its store, and where its secret stores go. */
async function repository(files: Record<string, string> = {}) {
  const r = await initRepo({ bare: false });
  cleanups.push(r.cleanup);
  for (const [path, text] of Object.entries(files)) writeFileSync(join(r.dir, path), text);
  gitSync(r.dir, ['add', '--all']);
  gitSync(r.dir, ['commit', '--allow-empty', '-q', '-m', 'base']);
  const store = await openLocalStore(r.dir);
  return { dir: r.dir, store, scratchDir: join(store.gitdir, 'agora'), base: gitSync(r.dir, ['rev-parse', 'HEAD']).trim(), config: defaultConfig(r.dir) };
}

/**
 * `store` with `race` run once at the first inbox entry a submission writes: `before` it lands, or right
 * `after` (before the submitting process looks at the run ref), as another process's step would.
 */
function aroundInboxEntry(store: LocalGitStore, when: 'before' | 'after', race: () => Promise<void>): LocalGitStore {
  let raced = false;
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'casRef') return Reflect.get(target, key, receiver) as unknown;
      return async (ref: string, next: string, expected: string | null) => {
        const first = !raced && ref.startsWith(refs.inboxPrefix);
        raced ||= first;
        if (first && when === 'before') await race();
        const moved = await target.casRef(ref, next, expected);
        if (first && when === 'after') await race();
        return moved;
      };
    },
  });
}

/** A repository with one commit, and `plan` submitted with a secret parameter (written to this host's store first, as `submit` does). */
async function submitted(plan: string, edit: (p: RunParams) => object = (p) => p) {
  const { dir, store, scratchDir, base, config } = await repository();
  const { params, bind } = recordableParams({ values: { region: 'eu' }, secrets: { token: SECRET } }, scratchDir, refs.ns);
  const secretsFile = join(scratchDir, 'params', `${params.secretStore}.json`);
  const { runId } = await submitPlan(store, refs, { planText: plan, planId: 'p', base, now: T0, params: edit(params) as RunParams, bindSecrets: bind! });
  expect(existsSync(secretsFile)).toBe(true);
  return { store, scratchDir, secretsFile, runId, base, params, config, dir };
}

describe('the secret parameters of a submission', () => {
  it('are removed from the host when the submission is rejected', async () => {
    const s = await submitted(planText(['missing']));
    const [outcome] = await acceptInbox(s.store, refs, s.config, s.scratchDir, T0);
    expect(outcome).toMatchObject({ runId: s.runId, kind: 'rejected' });
    expect(await readRejection(s.store, refs, s.runId)).not.toBeNull();
    expect(existsSync(s.secretsFile)).toBe(false);
    expect(await s.store.resolveRef(refs.inbox(s.runId))).toBeNull();
  });

  it('are removed with a submission rejected for its params.json, which still names them', async () => {
    const s = await submitted(planText([]), (p) => ({ ...p, from: 'a newer agora' }));
    const [outcome] = await acceptInbox(s.store, refs, s.config, s.scratchDir, T0);
    expect(outcome).toMatchObject({ kind: 'rejected', problems: [{ message: expect.stringContaining('unknown members from') }] });
    expect(existsSync(s.secretsFile)).toBe(false);
  });

  it('are removed by the next pass when serve stopped between recording the rejection and removing them', async () => {
    const s = await submitted(planText(['missing']));
    armCrashPoint('submission-rejected', 1, () => undefined);
    await expect(acceptInbox(s.store, refs, s.config, s.scratchDir, T0)).rejects.toBeInstanceOf(CrashedAt);
    expect(await readRejection(s.store, refs, s.runId)).not.toBeNull();
    expect(existsSync(s.secretsFile)).toBe(true);
    expect(await s.store.resolveRef(refs.inbox(s.runId))).not.toBeNull();

    const [outcome] = await acceptInbox(s.store, refs, s.config, s.scratchDir, T0);
    expect(outcome).toMatchObject({ runId: s.runId, kind: 'already-accepted' });
    expect(existsSync(s.secretsFile)).toBe(false);
    expect(await s.store.resolveRef(refs.inbox(s.runId))).toBeNull();
  });

  it('stay with an accepted run, also when its inbox entry outlived the acceptance', async () => {
    const s = await submitted(planText([]));
    const inbox = (await s.store.resolveRef(refs.inbox(s.runId)))!;
    const [outcome] = await acceptInbox(s.store, refs, s.config, s.scratchDir, T0);
    expect(outcome).toMatchObject({ runId: s.runId, kind: 'accepted' });
    expect(existsSync(s.secretsFile)).toBe(true);
    // The entry as a crash after the acceptance leaves it: the next pass only drops it.
    expect(await s.store.casRef(refs.inbox(s.runId), inbox, null)).toBe(true);
    const [again] = await acceptInbox(s.store, refs, s.config, s.scratchDir, T0);
    expect(again).toMatchObject({ runId: s.runId, kind: 'already-accepted' });
    expect(existsSync(s.secretsFile)).toBe(true);
  });

  it('are bound under a new token when the submission has to take another run id, and the store of the lost id goes', async () => {
    const { dir, store, scratchDir, base } = await repository();
    const { params, bind } = recordableParams({ values: {}, secrets: { token: SECRET } }, scratchDir, refs.ns);
    const lost: string[] = [];
    // Another submission takes the first id between the bind and the inbox entry (the run-id race).
    const racing = async (runId: string) => {
      const token = await bind!(runId);
      if (lost.length === 0) {
        lost.push(token);
        await submitPlan(store, refs, { planText: planText([]), planId: 'p', base, now: T0 });
      }
      return token;
    };
    const { runId } = await submitPlan(store, refs, { planText: planText([]), planId: 'p', base, now: T0, params, bindSecrets: racing });
    expect(runId).toBe('p-2');
    expect(lost).toEqual([params.secretStore]);
    const recorded = JSON.parse(gitSync(dir, ['show', `${refs.inbox(runId)}:params.json`])) as RunParams;
    // Whoever read p-1's token while the lost entry could exist cannot push a p-2 that reaches the store.
    expect(recorded.secretStore).toMatch(/^[0-9a-f]{32}$/);
    expect(recorded.secretStore).not.toBe(params.secretStore);
    expect(existsSync(join(scratchDir, 'params', `${params.secretStore}.json`))).toBe(false);
    expect((await workerParams(recorded, scratchDir, runId)).secrets).toEqual({ token: SECRET });
  });

  it.each([
    ['with secret parameters', true, false],
    // Its plan is recorded with the file's values in place: only what names the entry tells the run for its own.
    ['with secret parameters and a matrix file', true, true],
    ['without parameters', false, false],
    // Its first state commit, which names the entry, is no longer the run's head when the submission looks.
    ['without parameters, the run cancelled since', false, false, true],
  ])('a submission a serve accepted between its entry and its look at the run is that run (%s)', async (_, secret, matrix, moved = false) => {
    const { store: real, scratchDir, base, config } = await repository({ 'shards.json': '[1, 2]\n' });
    // A serve's pass right after the inbox entry lands, before the submitting process looks at the run ref.
    const store = aroundInboxEntry(real, 'after', async () => {
      expect(await acceptInbox(real, refs, config, scratchDir, T0)).toMatchObject([{ kind: 'accepted' }]);
      if (moved) expect(await cancelRun(real, refs, 'p-1', 'changed my mind', () => T0)).toMatchObject({ kind: 'cancelled' });
    });
    const { params, bind } = recordableParams({ values: { region: 'eu' }, secrets: { token: SECRET } }, scratchDir, refs.ns);
    const plan = matrix
      ? `${JSON.stringify({ id: 'p', queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, matrix: { shard: { file: 'shards.json' } }, depends_on: [], resourceLocks: [] }] })}\n`
      : planText([]);
    const given = secret ? { params, bindSecrets: bind! } : {};
    const { runId } = await submitPlan(store, refs, { planText: plan, planId: 'p', base, now: T0, ...given });
    expect(runId).toBe('p-1');
    expect((await real.listRefs(refs.runsPrefix)).map((r) => r.ref)).toEqual([refs.run('p-1')]);
    expect(await real.listRefs(refs.inboxPrefix)).toEqual([]);
    if (secret) expect((await workerParams(params, scratchDir, runId)).secrets).toEqual({ token: SECRET });
  });

  it('with secret parameters, a run accepted from this submission that names no entry (an earlier Agora accepted it) is told by its token', async () => {
    const { store: real, scratchDir, base } = await repository();
    const store = aroundInboxEntry(real, 'after', async () => {
      // An earlier Agora's serve: the run's first state commit carries no Agora-Submission trailer.
      const entry = (await real.resolveRef(refs.inbox('p-1')))!;
      const recorded = JSON.parse(gitSync(real.dir!, ['show', `${entry}:params.json`])) as RunParams;
      const text = planText([]);
      expect(
        await writeNewRun(real, refs, { runId: 'p-1', plan: JSON.parse(text) as Plan, planText: text, base, concurrency: 1, now: T0, params: recorded }),
      ).not.toBeNull();
      expect(await real.deleteRef(refs.inbox('p-1'), entry)).toBe(true);
    });
    const { params, bind } = recordableParams({ values: {}, secrets: { token: SECRET } }, scratchDir, refs.ns);
    const { runId } = await submitPlan(store, refs, { planText: planText([]), planId: 'p', base, now: T0, params, bindSecrets: bind! });
    expect(runId).toBe('p-1');
    expect((await real.listRefs(refs.runsPrefix)).map((r) => r.ref)).toEqual([refs.run('p-1')]);
    expect((await workerParams(params, scratchDir, runId)).secrets).toEqual({ token: SECRET });
  });

  it.each([
    ['with secret parameters', true],
    ['without, the same plan, base and parameters', false],
  ])('an earlier submission accepted under the number this one took is not taken for it (%s)', async (_, secret) => {
    const { store: real, scratchDir, base, config } = await repository();
    // Another submission takes p-1 and is accepted just before this one's entry lands.
    const store = aroundInboxEntry(real, 'before', async () => {
      const other = recordableParams({ values: { region: 'eu' }, secrets: {} }, scratchDir, refs.ns);
      await submitPlan(real, refs, { planText: planText([]), planId: 'p', base, now: T0, params: other.params });
      expect(await acceptInbox(real, refs, config, scratchDir, T0)).toMatchObject([{ runId: 'p-1', kind: 'accepted' }]);
    });
    const { params, bind } = recordableParams({ values: { region: 'eu' }, secrets: secret ? { token: SECRET } : {} }, scratchDir, refs.ns);
    const { runId } = await submitPlan(store, refs, { planText: planText([]), planId: 'p', base, now: T0, params, ...(bind ? { bindSecrets: bind } : {}) });
    expect(runId).toBe('p-2');
    expect(await real.resolveRef(refs.inbox('p-1'))).toBeNull();
    expect(await acceptInbox(real, refs, config, scratchDir, T0)).toMatchObject([{ runId: 'p-2', kind: 'accepted' }]);
  });

  it('an earlier submission rejected under the number this one took leaves this one to take the next', async () => {
    const { store: real, scratchDir, base, config } = await repository();
    const store = aroundInboxEntry(real, 'before', async () => {
      await submitPlan(real, refs, { planText: planText(['missing']), planId: 'p', base, now: T0 });
      expect(await acceptInbox(real, refs, config, scratchDir, T0)).toMatchObject([{ runId: 'p-1', kind: 'rejected' }]);
    });
    const { params, bind } = recordableParams({ values: {}, secrets: { token: SECRET } }, scratchDir, refs.ns);
    const { runId } = await submitPlan(store, refs, { planText: planText([]), planId: 'p', base, now: T0, params, bindSecrets: bind! });
    // Under p-1 a serve would drop it unread (that id is handled), and its secret store with it.
    expect(runId).toBe('p-2');
    expect(await acceptInbox(real, refs, config, scratchDir, T0)).toMatchObject([{ runId: 'p-2', kind: 'accepted' }]);
    const run = (await real.resolveRef(refs.run('p-2')))!;
    expect((await workerParams((await readRunParamsAt(real, 'p-2', run))!, scratchDir, 'p-2')).secrets).toEqual({ token: SECRET });
  });

  it.each([
    ['with secret parameters', true],
    ['without parameters', false],
  ])('a submission a serve rejected between its entry and its look is that rejection (%s)', async (_, secret) => {
    const { store: real, scratchDir, base, config } = await repository();
    const store = aroundInboxEntry(real, 'after', async () => {
      expect(await acceptInbox(real, refs, config, scratchDir, T0)).toMatchObject([{ runId: 'p-1', kind: 'rejected' }]);
    });
    const { params, bind } = recordableParams({ values: {}, secrets: { token: SECRET } }, scratchDir, refs.ns);
    const given = secret ? { params, bindSecrets: bind! } : {};
    const { runId } = await submitPlan(store, refs, { planText: planText(['missing']), planId: 'p', base, now: T0, ...given });
    // The id it prints holds its own rejection, and nothing else was submitted; no store of it stays on the host.
    expect(runId).toBe('p-1');
    expect(await readRejection(real, refs, 'p-1')).toEqual([expect.objectContaining({ message: expect.stringContaining('missing') })]);
    expect(await real.listRefs(refs.inboxPrefix)).toEqual([]);
    expect(await real.listRefs(refs.rejectedPrefix)).toHaveLength(1);
    if (secret) expect(readdirSync(join(scratchDir, 'params'))).toEqual([]);
  });

  it.each([
    ['it gives up after losing every run id', 'lose', false],
    ['its entry cannot be written', 'entry-error', false],
    // The swap may have moved the ref before it failed: the entry may name the store.
    ['the swap of its entry fails with an error', 'swap-error', true],
  ])('of a submission that fails are removed when no entry names them: %s', async (_, how, kept) => {
    const { store: real, scratchDir, base } = await repository();
    const store = new Proxy(real, {
      get(target, key, receiver) {
        if (key === 'writeCommit' && how === 'entry-error') return () => Promise.reject(new Error('ENOSPC: no space left on device'));
        if (key !== 'casRef') return Reflect.get(target, key, receiver) as unknown;
        return async (ref: string, next: string, expected: string | null) => {
          if (!ref.startsWith(refs.inboxPrefix)) return target.casRef(ref, next, expected);
          if (how === 'lose') return false; // another submission's entry is there every time
          throw new Error('EIO: i/o error');
        };
      },
    });
    const { params, bind, discard } = recordableParams({ values: {}, secrets: { token: SECRET } }, scratchDir, refs.ns);
    const submitting = submitPlan(store, refs, { planText: planText([]), planId: 'p', base, now: T0, params, bindSecrets: bind!, discardSecrets: discard! });
    await expect(submitting).rejects.toThrow(how === 'lose' ? /run ids of plan p/ : how === 'entry-error' ? /ENOSPC/ : /EIO/);
    expect(readdirSync(join(scratchDir, 'params'))).toHaveLength(kept ? 1 : 0);
  });

  it("are neither removed nor read through a pushed submission that names another run's store", async () => {
    const victim = await submitted(planText([]));
    expect(await acceptInbox(victim.store, refs, victim.config, victim.scratchDir, T0)).toMatchObject([{ kind: 'accepted' }]);
    // Anyone who may push can write an inbox entry, and read the victim's token in its run.json: a plan
    // that is rejected, and one that is accepted, each naming that token.
    for (const plan of [planText(['missing']), planText([])]) {
      await submitPlan(victim.store, refs, { planText: plan, planId: 'q', base: victim.base, now: T0, params: victim.params });
    }
    const outcomes = await acceptInbox(victim.store, refs, victim.config, victim.scratchDir, T0);
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['accepted', 'rejected']);
    expect(existsSync(victim.secretsFile)).toBe(true);
    const thief = outcomes.find((o) => o.kind === 'accepted')!.runId;
    await expect(workerParams(victim.params, victim.scratchDir, thief)).rejects.toThrow(`belongs to run ${victim.runId}, not to ${thief}`);
    expect((await workerParams(victim.params, victim.scratchDir, victim.runId)).secrets).toEqual({ token: SECRET });
  });

  it("are not reached through an inbox entry pushed under a pruned run's id", async () => {
    const victim = await submitted(planText([]));
    const inbox = (await victim.store.resolveRef(refs.inbox(victim.runId)))!;
    expect(await acceptInbox(victim.store, refs, victim.config, victim.scratchDir, T0)).toMatchObject([{ kind: 'accepted' }]);
    // gc prunes it where its store stays (a --remote gc): its anchor goes to the archive, its run ref goes.
    const anchorBlob = await victim.store.writeBlob('{"root":"00"}\n');
    const tree = await victim.store.writeTree([{ mode: '100644', path: 'anchor.json', oid: anchorBlob, type: 'blob' }]);
    const who = { name: 'Agora', email: 'agora@localhost', timestamp: T0 / 1000, timezoneOffset: 0 };
    const anchor = await victim.store.writeCommit({ tree, parents: [], message: 'anchor\n', author: who, committer: who });
    expect(await victim.store.casRef(refs.anchor(victim.runId), anchor, null)).toBe(true);
    expect(await archiveAnchors(victim.store, refs, [victim.runId], T0)).toEqual([victim.runId]);
    expect(await victim.store.deleteRef(refs.run(victim.runId), (await victim.store.resolveRef(refs.run(victim.runId)))!)).toBe(true);
    expect(existsSync(victim.secretsFile)).toBe(true);

    // Anyone who may push names an inbox entry with that id again, its params.json and all.
    expect(await victim.store.casRef(refs.inbox(victim.runId), inbox, null)).toBe(true);
    const [outcome] = await acceptInbox(victim.store, refs, victim.config, victim.scratchDir, T0);
    expect(outcome).toMatchObject({ runId: victim.runId, kind: 'rejected', problems: [{ message: expect.stringContaining('gc pruned') }] });
    expect(await victim.store.resolveRef(refs.run(victim.runId))).toBeNull();
  });
});
