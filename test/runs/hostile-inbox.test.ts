/**
 * Inbox entries someone pushed (src/runs/inbox.ts): anyone who may push can write `refs/agora/inbox/<x>`
 * in any shape. One such entry is rejected, ignored or deferred on its own; it never stops the pass (a
 * serve's pass throws, and the serve ends) nor keeps the other submissions from being accepted. Real
 * repositories; the entries are written with git as a pusher would.
 */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/load.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { acceptInbox, readRejection, submitPlan, type AcceptOutcome } from '../../src/runs/inbox.js';
import { RunRefs } from '../../src/runs/refs.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();
const T0 = 1_800_000_000_000;
const plan = (id: string) =>
  `${JSON.stringify({ id, queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] })}\n`;

async function repository() {
  const r = await initRepo({ bare: false });
  cleanups.push(r.cleanup);
  gitSync(r.dir, ['commit', '--allow-empty', '-q', '-m', 'base']);
  const store = await openLocalStore(r.dir);
  const base = gitSync(r.dir, ['rev-parse', 'HEAD']).trim();
  const git = (...args: string[]) => gitSync(r.dir, args).trim();
  const gitWith = (input: string, ...args: string[]) => gitSync(r.dir, args, { input }).trim();
  const submit = async (planId: string) => (await submitPlan(store, refs, { planText: plan(planId), planId, base, now: T0 })).runId;
  const pass = () => acceptInbox(store, refs, defaultConfig(r.dir), join(store.gitdir, 'agora'), T0);
  return { dir: r.dir, store, base, git, gitWith, submit, pass };
}

const byRun = (outcomes: AcceptOutcome[]) => new Map(outcomes.map((o) => [o.runId, o]));

describe('an inbox entry someone pushed', () => {
  it('that is not a commit is rejected, and the submission beside it is accepted in the same pass', async () => {
    const r = await repository();
    r.git('update-ref', 'refs/agora/inbox/blob-1', r.gitWith('{}', 'hash-object', '-w', '--stdin'));
    r.git('update-ref', 'refs/agora/inbox/tree-1', r.gitWith('', 'mktree'));
    const good = await r.submit('good');
    const outcomes = byRun(await r.pass());
    expect(outcomes.get(good)?.kind).toBe('accepted');
    for (const id of ['blob-1', 'tree-1']) {
      expect(outcomes.get(id)?.kind).toBe('rejected');
      expect((await readRejection(r.store, refs, id))?.map((p) => p.message).join('\n')).toMatch(/^the submission [0-9a-f]{40} is not a commit/);
      expect(await r.store.resolveRef(refs.inbox(id))).toBeNull();
    }
  });

  it('that git itself would refuse to check out, or whose commit is malformed, is rejected, and the pass goes on', async () => {
    const r = await repository();
    const planBlob = r.gitWith(plan('x'), 'hash-object', '-w', '--stdin');
    const dotGit = r.gitWith(`100644 blob ${planBlob}\tplan.json\n100644 blob ${planBlob}\t.git\n`, 'mktree');
    r.git('update-ref', 'refs/agora/inbox/x-1', r.git('commit-tree', dotGit, '-p', r.base, '-m', 'pushed'));
    const tree = r.gitWith(`100644 blob ${planBlob}\tplan.json\n`, 'mktree');
    const crAuthor = `tree ${tree}\nparent ${r.base}\nauthor A\r <a@example.invalid> 1 +0000\ncommitter A <a@example.invalid> 1 +0000\n\npushed\n`;
    r.git('update-ref', 'refs/agora/inbox/x-2', r.gitWith(crAuthor, 'hash-object', '-t', 'commit', '-w', '--literally', '--stdin'));
    const good = await r.submit('good');
    const outcomes = byRun(await r.pass());
    expect(outcomes.get(good)?.kind).toBe('accepted');
    for (const id of ['x-1', 'x-2']) {
      expect(outcomes.get(id)).toMatchObject({
        kind: 'rejected',
        problems: [{ message: expect.stringMatching(/^the submission [0-9a-f]{40} is not a commit of the shape/) as unknown }],
      });
    }
  });

  it('whose plan.json or params.json is a directory is rejected with what is wrong', async () => {
    const r = await repository();
    const planBlob = r.gitWith(plan('d'), 'hash-object', '-w', '--stdin');
    const empty = r.gitWith('', 'mktree');
    const inner = r.gitWith(`100644 blob ${planBlob}\tx\n`, 'mktree');
    const entry = (tree: string) => r.git('commit-tree', tree, '-p', r.base, '-m', 'pushed');
    r.git('update-ref', 'refs/agora/inbox/d-1', entry(r.gitWith(`040000 tree ${inner}\tplan.json\n`, 'mktree')));
    r.git('update-ref', 'refs/agora/inbox/d-2', entry(r.gitWith(`100644 blob ${planBlob}\tplan.json\n040000 tree ${empty}\tparams.json\n`, 'mktree')));
    const outcomes = byRun(await r.pass());
    expect(outcomes.get('d-1')).toMatchObject({ kind: 'rejected', problems: [{ message: "the submission's plan.json is a directory, not a file" }] });
    expect(outcomes.get('d-2')).toMatchObject({ kind: 'rejected', problems: [{ message: "the submission's params.json is a directory, not a file" }] });
  });

  it('whose name is not a run id is ignored and left in place; the submissions beside it are accepted', async () => {
    const r = await repository();
    const first = await r.submit('p');
    const entry = r.git('rev-parse', refs.inbox(first));
    expect(byRun(await r.pass()).get(first)?.kind).toBe('accepted');
    // `p-1/x` would be run ref refs/agora/runs/p-1/x, which cannot exist beside refs/agora/runs/p-1.
    r.git('update-ref', `refs/agora/inbox/${first}/x`, entry);
    const second = await r.submit('q');
    const outcomes = byRun(await r.pass());
    expect(outcomes.get(`${first}/x`)).toMatchObject({ kind: 'ignored', problem: expect.stringContaining('"/"') as unknown });
    expect(outcomes.get(second)?.kind).toBe('accepted');
    expect(r.git('rev-parse', `refs/agora/inbox/${first}/x`)).toBe(entry);
  });

  it('nested below a run id makes a submission take the next id, whose refs can be made', async () => {
    const r = await repository();
    r.git('update-ref', 'refs/agora/inbox/n-1/x', r.base);
    r.git('update-ref', 'refs/agora/runs/n-2/x', r.base);
    const runId = await r.submit('n');
    expect(runId).toBe('n-3');
    expect(byRun(await r.pass()).get(runId)?.kind).toBe('accepted');
  });

  it('numbered past what a double holds makes the next id that number plus one, exactly', async () => {
    const r = await repository();
    r.git('update-ref', 'refs/agora/inbox/big-12345678901234567891', r.base);
    const runId = await r.submit('big');
    expect(runId).toBe('big-12345678901234567892');
    expect(byRun(await r.pass()).get(runId)?.kind).toBe('accepted');
  });

  it('whose run ref a pushed ref blocks is deferred with the reason, and accepted once that ref is gone', async () => {
    const r = await repository();
    const blocked = await r.submit('b');
    r.git('update-ref', `${refs.run(blocked)}/x`, r.base);
    const other = await r.submit('c');
    let outcomes = byRun(await r.pass());
    expect(outcomes.get(blocked)).toMatchObject({
      kind: 'deferred',
      reason: expect.stringContaining(`cannot create ${refs.run(blocked)}: refs exist below it`) as unknown,
    });
    expect(outcomes.get(other)?.kind).toBe('accepted');
    expect(await r.store.resolveRef(refs.inbox(blocked))).not.toBeNull();
    r.git('update-ref', '-d', `${refs.run(blocked)}/x`);
    outcomes = byRun(await r.pass());
    expect(outcomes.get(blocked)?.kind).toBe('accepted');
  });

  it('whose run ref has a stale lock of a git process is deferred with the lock to remove', async () => {
    const r = await repository();
    const blocked = await r.submit('l');
    const lock = join(r.store.gitdir, `${refs.run(blocked)}.lock`);
    gitSync(r.dir, ['update-ref', `${refs.runsPrefix}keep`, r.base]); // the runs directory exists
    writeFileSync(lock, '');
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(lock, hourAgo, hourAgo);
    const other = await r.submit('m');
    const outcomes = byRun(await r.pass());
    expect(outcomes.get(blocked)).toMatchObject({ kind: 'deferred', reason: expect.stringContaining(`remove ${lock}`) as unknown });
    expect(outcomes.get(other)?.kind).toBe('accepted');
  });
  it('an anchor archive that is not one holds up every submission and acceptance, naming the ref; mended, both go on', async () => {
    const r = await repository();
    const entry = await r.submit('p');
    r.git('update-ref', refs.anchorArchive, r.gitWith('not an archive', 'hash-object', '-w', '--stdin'));
    // Which ids gc pruned is unknown: no id is given out...
    const refused = await r.submit('p').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: 'anchor-archive-unreadable', message: expect.stringContaining('refs/agora/anchor-archive (') as unknown });
    // ...nor accepted: the entry waits, with the reason, and stays.
    const [waiting] = await r.pass();
    expect(waiting).toMatchObject({ runId: entry, kind: 'deferred', code: 'anchor-archive-unreadable' });
    expect((waiting as { reason: string }).reason).toContain('git update-ref -d refs/agora/anchor-archive');
    expect(await r.store.resolveRef(refs.inbox(entry))).not.toBeNull();
    r.git('update-ref', '-d', refs.anchorArchive);
    expect(byRun(await r.pass()).get(entry)?.kind).toBe('accepted');
    expect(await r.submit('p')).toBe('p-2');
  });
});
