/**
 * A submission whose refs are blocked, and an inbox entry Agora did not make, seen by the real CLI: the
 * serve says each once (it meets them at every pass), goes on serving the other submissions, and exits 0
 * when stopped; `orch run` says why its run waits, and runs it once the block is gone.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, CLI, exited, git, makeRepo, startServe, tempDir } from '../support/repo.js';
import { isGone } from '../support/process.js';
import { eventually } from '../support/eventually.js';
import { workerGate, type WorkerGate } from '../support/gate.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(cleanupTempDirs);

const plan = (id: string) =>
  JSON.stringify({
    id,
    queue: 'default',
    items: [{ id: 'a', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] }],
  });

async function finished(repo: string, runId: string, within?: number): Promise<string> {
  return eventually(
    `${runId} to finish`,
    async () => {
      const r = await agora(repo, ['orch', 'status', runId]);
      const status = r.code === 0 ? (JSON.parse(r.stdout) as { status?: string }).status : undefined;
      return status === 'done' || status === 'failed' || status === 'cancelled' ? status : undefined;
    },
    within === undefined ? {} : { within },
  );
}

/** A commit with a valid plan.json, an empty log and a state.json that names all but the items of a run's state. */
function fakeRun(repo: string): string {
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  const blob = (text: string) => execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: text, encoding: 'utf8' }).trim();
  const tree = execFileSync('git', ['mktree'], {
    cwd: repo,
    input: `100644 blob ${blob(plan('junk'))}\tplan.json\n100644 blob ${blob(JSON.stringify({ status: 'done', queue: 'default', base, integrationHead: base, acceptedAt: 1 }))}\tstate.json\n100644 blob ${blob('')}\tentries.jsonl\n`,
    encoding: 'utf8',
  }).trim();
  return git(repo, 'commit-tree', tree, '-m', 'not a run').trim();
}

const count = (text: string, part: string) => text.split(part).length - 1;

/** A command item that writes its shell's pid to `marker`, then waits at `gate`. */
const slowItem = (marker: string, gate: WorkerGate) => ({
  id: 'slow',
  executor: 'command',
  inputs: { run: `echo $$ > ${marker}; ${gate.wait}; echo b > b.txt` },
  depends_on: [],
  resourceLocks: ['b.txt'],
});

/** The pid of the worker of {@link slowItem} once it has started. */
const workerStarted = (marker: string) =>
  eventually('the slow worker to start', () => (existsSync(marker) ? Number(readFileSync(marker, 'utf8')) || undefined : undefined));

/** A serve serving run `<id>-1` (one {@link slowItem}) whose worker has started; `other.json` is another plan. */
async function servedSlowRun(id: string) {
  const gate = workerGate();
  const marker = join(tempDir(), 'pid');
  const repo = makeRepo({ 'plan.json': JSON.stringify({ id, queue: 'default', items: [slowItem(marker, gate)] }), 'other.json': plan('other') });
  const serve = startServe(repo);
  children.push(serve);
  expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe(`${id}-1`);
  const worker = await workerStarted(marker);
  return { gate, repo, serve, worker, ref: `refs/agora/runs/${id}-1`, head: git(repo, 'rev-parse', `refs/agora/runs/${id}-1`).trim() };
}

describe('a blocked submission', () => {
  it('is said once by a serve, which serves the other submissions meanwhile; an entry agora did not make is ignored, said once', async () => {
    const repo = makeRepo({ 'blocked.json': plan('blocked'), 'good.json': plan('good'), 'locked.json': plan('locked') });
    expect((await agora(repo, ['orch', 'submit', 'blocked.json'])).stdout.trim()).toBe('blocked-1');
    git(repo, 'update-ref', 'refs/agora/runs/blocked-1/x', 'HEAD'); // a pushed ref the run ref would nest in
    git(repo, 'update-ref', 'refs/agora/inbox/x/y', 'refs/agora/inbox/blocked-1');
    git(repo, 'update-ref', 'refs/agora/runs/junk-1', 'HEAD'); // a run ref that holds no run
    git(repo, 'update-ref', 'refs/agora/runs/junk-2', fakeRun(repo)); // one that holds a run's files, not a run's state
    // A git process that crashed an hour ago holding the lock of the run ref the next submission needs.
    expect((await agora(repo, ['orch', 'submit', 'locked.json'])).stdout.trim()).toBe('locked-1');
    const lock = join(repo, '.git/refs/agora/runs/locked-1.lock');
    writeFileSync(lock, '');
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(lock, hourAgo, hourAgo);
    const serve = startServe(repo);
    children.push(serve);
    // Two submissions, one after the other ended: the serve met the blocked entries at many passes.
    for (const runId of ['good-1', 'good-2']) {
      expect((await agora(repo, ['orch', 'submit', 'good.json'])).stdout.trim()).toBe(runId);
      expect(await finished(repo, runId)).toBe('done');
    }
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    const said = serve.output();
    expect(count(said, 'blocked-1 waits: cannot create refs/agora/runs/blocked-1: refs exist below it')).toBe(1);
    expect(count(said, 'ignored the inbox entry "refs/agora/inbox/x/y": not a submission agora made (id "x/y" contains "/"')).toBe(1);
    // When it was taken is in the message, not its age: the same text at every pass, said once.
    expect(count(said, `locked-1 waits: ${lock} has been held since`)).toBe(1);
    expect(count(said, 'junk-2: warning: refs/agora/runs/junk-2 is not served: state commit')).toBe(1);
    expect(count(said, 'junk-1: warning: refs/agora/runs/junk-1 is not served: state commit')).toBe(1);
    const listed = JSON.parse((await agora(repo, ['orch', 'status'])).stdout) as { runs: Array<{ runId: string; status: string; problem?: string }> };
    expect(listed.runs.find((r) => r.runId === 'junk-1')).toMatchObject({
      status: 'unreadable',
      problem: expect.stringContaining('not an Agora state commit') as unknown,
    });
    expect(listed.runs.find((r) => r.runId === 'junk-2')).toMatchObject({
      status: 'unreadable',
      problem: expect.stringContaining('holds no items') as unknown,
    });
    expect(listed.runs.find((r) => r.runId === 'x/y')).toMatchObject({
      status: 'ignored',
      problem: expect.stringContaining('not a run id Agora makes') as unknown,
    });
    expect(listed.runs.filter((r) => r.status === 'done').map((r) => r.runId)).toEqual(['good-1', 'good-2']);
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/agora/inbox/').trim().split('\n')).toEqual([
      'refs/agora/inbox/blocked-1',
      'refs/agora/inbox/locked-1',
      'refs/agora/inbox/x/y',
    ]);
  });

  it('makes `orch run` say why it waits, and run the plan once the block is gone; a pushed nested ref only moves it to the next id', async () => {
    const repo = makeRepo({ 'plan.json': plan('p') });
    git(repo, 'update-ref', 'refs/agora/runs/p-1/x', 'HEAD'); // p-1's refs could never be made: p-2 is taken
    const lock = join(repo, '.git/refs/agora/runs/p-2.lock'); // a git process crashed an hour ago holding it
    writeFileSync(lock, '');
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(lock, hourAgo, hourAgo);
    const run = spawn(process.execPath, [CLI, 'orch', 'run', 'plan.json', '--poll-ms', '100'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(run);
    let said = '';
    run.stdout.on('data', (d) => (said += d));
    run.stderr.on('data', (d) => (said += d));
    await eventually('orch run to say why p-2 waits', () => said.includes(`p-2 waits: ${lock} has been held since`));
    rmSync(lock);
    expect(await exited(run)).toBe(0);
    expect(count(said, 'p-2 waits:')).toBe(1);
    expect(count(said, 'refs/agora/runs/p-1/x is not served: its name is not a run id Agora makes')).toBe(1);
    expect(git(repo, 'show', 'refs/agora/integration/p-2:a.txt')).toBe('a\n');
  });
});

describe('a run ref that holds no run', () => {
  it('when the serve starts is served once mended: its attempt, whose worker the start reaped, is recorded lost and run again', async () => {
    const gate = workerGate();
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'mended',
        queue: 'default',
        items: [{ id: 'slow', executor: 'command', inputs: { run: `${gate.wait}; echo b > b.txt` }, depends_on: [], resourceLocks: ['b.txt'] }],
      }),
    });
    const first = startServe(repo);
    children.push(first);
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe('mended-1');
    await eventually('the slow item to run', async () => {
      const r = await agora(repo, ['orch', 'status', 'mended-1']);
      return r.code === 0 && (JSON.parse(r.stdout) as { items?: Array<{ status: string }> }).items?.[0]?.status === 'running';
    });
    first.kill('SIGKILL');
    await exited(first);
    const head = git(repo, 'rev-parse', 'refs/agora/runs/mended-1').trim();
    git(repo, 'update-ref', 'refs/agora/runs/mended-1', 'HEAD'); // overwritten with a commit that is not a run's state
    const second = startServe(repo);
    children.push(second);
    await eventually('the serve to say it does not serve the ref', () => second.output().includes('refs/agora/runs/mended-1 is not served'));
    git(repo, 'update-ref', 'refs/agora/runs/mended-1', head);
    await gate.open();
    expect(await finished(repo, 'mended-1')).toBe('done');
    const s = JSON.parse((await agora(repo, ['orch', 'status', 'mended-1'])).stdout) as { items: Array<{ attempts: number }> };
    expect(s.items[0]!.attempts).toBe(2);
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
    await gate.remove();
  });

  it('overwritten while it is served: its worker is stopped and the serve goes on; mended, the attempt is recorded lost and run again', async () => {
    const { gate, repo, serve, worker, head } = await servedSlowRun('over');
    git(repo, 'update-ref', 'refs/agora/runs/over-1', fakeRun(repo)); // a run's files, not a run's state
    await eventually('the serve to say it does not serve the ref', () => serve.output().includes('refs/agora/runs/over-1 is not served'));
    await eventually('the worker to be stopped', () => isGone(worker));
    // The serve goes on: another submission runs to its end.
    expect((await agora(repo, ['orch', 'submit', 'other.json'])).stdout.trim()).toBe('other-1');
    expect(await finished(repo, 'other-1')).toBe('done');
    git(repo, 'update-ref', 'refs/agora/runs/over-1', head);
    await gate.open();
    expect(await finished(repo, 'over-1')).toBe('done');
    const s = JSON.parse((await agora(repo, ['orch', 'status', 'over-1'])).stdout) as { items: Array<{ attempts: number }> };
    expect(s.items[0]!.attempts).toBe(2);
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    await gate.remove();
  });
  it('a pushed ref below one of its patch refs: the run waits, said once, while the serve serves the others; removed, the run ends', async () => {
    const nest = {
      id: 'nest',
      queue: 'default',
      items: [{ id: 'a', executor: 'command', inputs: { run: 'echo n > n.txt' }, depends_on: [], resourceLocks: ['n.txt'] }],
    };
    // Its own lock: the waiting run keeps its claims (a.txt would hold up the other runs, rightly).
    const repo = makeRepo({ 'nest.json': JSON.stringify(nest), 'other.json': plan('other') });
    expect((await agora(repo, ['orch', 'submit', 'nest.json'])).stdout.trim()).toBe('nest-1');
    git(repo, 'update-ref', 'refs/agora/patches/nest-1/a/x', 'HEAD'); // item a's patch ref would nest it
    const serve = startServe(repo);
    children.push(serve);
    await eventually('the serve to say the run waits', () =>
      serve.output().includes('nest-1: warning: the run waits: cannot create refs/agora/patches/nest-1/a'),
    );
    // The serve goes on: two submissions run to their end while nest-1 waits.
    for (const runId of ['other-1', 'other-2']) {
      expect((await agora(repo, ['orch', 'submit', 'other.json'])).stdout.trim()).toBe(runId);
      expect(await finished(repo, runId)).toBe('done');
    }
    git(repo, 'update-ref', '-d', 'refs/agora/patches/nest-1/a/x');
    // Tried again after a delay that doubles up to 30 s: within twice that.
    expect(await finished(repo, 'nest-1', 60_000)).toBe('done');
    expect(git(repo, 'show', 'refs/agora/patches/nest-1/a:n.txt')).toBe('n\n');
    const s = JSON.parse((await agora(repo, ['orch', 'status', 'nest-1'])).stdout) as { items: Array<{ attempts: number }> };
    expect(s.items[0]!.attempts).toBe(1); // the finished attempt waited for the block to go: not run again
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(count(serve.output(), 'the run waits: cannot create refs/agora/patches/nest-1/a')).toBe(1);
  });

  it('a run that moved again after a block is said again when a block of the same kind comes back', async () => {
    const gate = workerGate();
    const items = [
      { id: 'a', executor: 'command', inputs: { run: 'echo a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] },
      { id: 'b', executor: 'command', inputs: { run: `${gate.wait}; echo b > b.txt` }, depends_on: ['a'], resourceLocks: ['b.txt'] },
    ];
    const repo = makeRepo({ 'plan.json': JSON.stringify({ id: 'twice', queue: 'default', items }) });
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe('twice-1');
    git(repo, 'update-ref', 'refs/agora/patches/twice-1/a/x', 'HEAD');
    const serve = startServe(repo);
    children.push(serve);
    await eventually('a to wait', () => serve.output().includes('twice-1: warning: the run waits: cannot create refs/agora/patches/twice-1/a'));
    git(repo, 'update-ref', '-d', 'refs/agora/patches/twice-1/a/x');
    git(repo, 'update-ref', 'refs/agora/patches/twice-1/b/x', 'HEAD');
    await eventually('b to start', () => serve.output().includes('twice-1: b ready → running'), { within: 60_000 });
    await gate.open();
    await eventually('b to wait', () => serve.output().includes('twice-1: warning: the run waits: cannot create refs/agora/patches/twice-1/b'));
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(count(serve.output(), 'twice-1: warning: the run waits:')).toBe(2);
    await gate.remove();
  });

  it('a second ref in the way of the same step, found once the first is removed, is said too', async () => {
    const gate = workerGate();
    const items = [{ id: 'a', executor: 'command', inputs: { run: `${gate.wait}; echo a > a.txt` }, depends_on: [], resourceLocks: ['a.txt'] }];
    const repo = makeRepo({ 'plan.json': JSON.stringify({ id: 'two', queue: 'default', items }) });
    const serve = startServe(repo);
    children.push(serve);
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe('two-1');
    await eventually('a to start', () => serve.output().includes('two-1: a ready → running'));
    // Both refs a's end moves (its patch ref, and the integration ref with a.txt) get a pushed ref below them.
    const nested = { 'refs/agora/patches/two-1/a': 'refs/agora/patches/two-1/a/x', 'refs/agora/integration/two-1': 'refs/agora/integration/two-1/x' };
    git(repo, 'update-ref', '-d', 'refs/agora/integration/two-1');
    for (const ref of Object.values(nested)) git(repo, 'update-ref', ref, 'HEAD');
    await gate.open();
    const saidFor = (ref: string) => serve.output().includes(`two-1: warning: the run waits: cannot create ${ref}:`);
    const first = await eventually('the run to wait', () => Object.keys(nested).find(saidFor));
    git(repo, 'update-ref', '-d', nested[first as keyof typeof nested]);
    const second = Object.keys(nested).find((ref) => ref !== first)!;
    await eventually('the other ref in the way to be said', () => saidFor(second) || undefined, { within: 60_000 });
    git(repo, 'update-ref', '-d', nested[second as keyof typeof nested]);
    expect(await finished(repo, 'two-1', 60_000)).toBe('done');
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(count(serve.output(), 'two-1: warning: the run waits:')).toBe(2);
    await gate.remove();
  });

  it('an entry held up by a second lock, found once the first is removed, is said again', async () => {
    const repo = makeRepo({ 'locked.json': plan('locked') });
    expect((await agora(repo, ['orch', 'submit', 'locked.json'])).stdout.trim()).toBe('locked-1');
    // Git processes that crashed an hour ago, holding the locks of the two refs accepting it moves. Each
    // lock is made whole and dated outside refs/, then linked into place: never opened where the serve's
    // own lock of the ref may be for a moment (it takes the inbox ref's at every pass, then fails).
    const crashedLock = (path: string) => {
      const made = join(tempDir(), 'crashed.lock');
      writeFileSync(made, '');
      const hourAgo = Date.now() / 1000 - 3600;
      utimesSync(made, hourAgo, hourAgo);
      mkdirSync(dirname(path), { recursive: true });
      return eventually(`${path} to be taken`, () => {
        try {
          linkSync(made, path);
          return path;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined; // the serve's own, for a moment
          throw e;
        }
      });
    };
    const runLock = await crashedLock(join(repo, '.git/refs/agora/runs/locked-1.lock'));
    const serve = startServe(repo);
    children.push(serve);
    await eventually('the entry to wait', () => serve.output().includes(`locked-1 waits: ${runLock} has been held since`));
    const inboxLock = await crashedLock(join(repo, '.git/refs/agora/inbox/locked-1.lock'));
    rmSync(runLock);
    await eventually('the second lock to be said', () => serve.output().includes(`locked-1 waits: ${inboxLock} has been held since`));
    rmSync(inboxLock);
    expect(await finished(repo, 'locked-1')).toBe('done');
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(count(serve.output(), 'locked-1 waits:')).toBe(2);
  });

  it('stopped while a run waits for a blocked ref: exits 0, saying what is not recorded; the next serve runs it again', async () => {
    const items = [{ id: 'a', executor: 'command', inputs: { run: 'echo n > n.txt' }, depends_on: [], resourceLocks: ['n.txt'] }];
    const repo = makeRepo({ 'plan.json': JSON.stringify({ id: 'stop', queue: 'default', items }) });
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe('stop-1');
    git(repo, 'update-ref', 'refs/agora/patches/stop-1/a/x', 'HEAD');
    const serve = startServe(repo);
    children.push(serve);
    await eventually('the serve to say the run waits', () =>
      serve.output().includes('stop-1: warning: the run waits: cannot create refs/agora/patches/stop-1/a'),
    );
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(serve.output()).toContain('stop-1: warning: what its stopped workers did is not recorded: cannot create refs/agora/patches/stop-1/a');
    git(repo, 'update-ref', '-d', 'refs/agora/patches/stop-1/a/x');
    const next = startServe(repo);
    children.push(next);
    expect(await finished(repo, 'stop-1')).toBe('done');
    const s = JSON.parse((await agora(repo, ['orch', 'status', 'stop-1'])).stdout) as { items: Array<{ attempts: number }> };
    expect(s.items[0]!.attempts).toBe(2); // its end was never recorded: the start found it running, and lost
    next.kill('SIGTERM');
    expect(await exited(next)).toBe(0);
  });

  it('a run that waits for a blocked ref: a cancel stops its running workers all the same', async () => {
    const gate = workerGate();
    const first = workerGate();
    const marker = join(tempDir(), 'pid');
    const items = [
      { id: 'a', executor: 'command', inputs: { run: `${first.wait}; echo n > n.txt` }, depends_on: [], resourceLocks: ['n.txt'] },
      slowItem(marker, gate),
    ];
    const repo = makeRepo({ 'plan.json': JSON.stringify({ id: 'held', queue: 'default', items }) });
    const serve = startServe(repo);
    children.push(serve);
    expect((await agora(repo, ['orch', 'submit', 'plan.json'])).stdout.trim()).toBe('held-1');
    const worker = await workerStarted(marker);
    // A git process that crashed an hour ago holding the patch ref a's end creates (a cancel does not).
    const lock = join(repo, '.git/refs/agora/patches/held-1/a.lock');
    mkdirSync(dirname(lock), { recursive: true });
    writeFileSync(lock, '');
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(lock, hourAgo, hourAgo);
    await first.open();
    await eventually('the serve to say the run waits', () => serve.output().includes(`held-1: warning: the run waits: ${lock} has been held since`));
    // The cancel's state moves none of the refs a cancelled run's step moves: that step lands at the
    // blocked run's next try, and stops the worker.
    expect((await agora(repo, ['orch', 'cancel', 'held-1'])).code).toBe(0);
    await eventually('the slow worker to be stopped', () => isGone(worker), { within: 60_000 });
    rmSync(lock);
    expect(await finished(repo, 'held-1', 60_000)).toBe('cancelled');
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    await gate.remove();
    await first.remove();
  });

  it('deleted while it is served: its worker is stopped and the serve goes on; restored, the attempt is recorded lost and run again', async () => {
    const { gate, repo, serve, worker, head } = await servedSlowRun('gone');
    git(repo, 'update-ref', '-d', 'refs/agora/runs/gone-1');
    await eventually('the serve to say the ref was deleted', () =>
      serve
        .output()
        .includes(
          `refs/agora/runs/gone-1 was deleted: the run's workers are stopped; to serve it again, restore the ref (git update-ref refs/agora/runs/gone-1 ${head})`,
        ),
    );
    await eventually('the worker to be stopped', () => isGone(worker));
    expect((await agora(repo, ['orch', 'submit', 'other.json'])).stdout.trim()).toBe('other-1');
    expect(await finished(repo, 'other-1')).toBe('done');
    git(repo, 'update-ref', 'refs/agora/runs/gone-1', head);
    await gate.open();
    expect(await finished(repo, 'gone-1')).toBe('done');
    const s = JSON.parse((await agora(repo, ['orch', 'status', 'gone-1'])).stdout) as { items: Array<{ attempts: number }> };
    expect(s.items[0]!.attempts).toBe(2);
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(count(serve.output(), 'refs/agora/runs/gone-1 was deleted')).toBe(1);
    await gate.remove();
  });
  it('deleted while `orch run` serves it: the command fails at once, naming the ref and how to restore it, and its worker is stopped', async () => {
    const gate = workerGate();
    const marker = join(tempDir(), 'pid');
    const items = [slowItem(marker, gate)];
    const repo = makeRepo({ 'plan.json': JSON.stringify({ id: 'solo', queue: 'default', items }) });
    const run = spawn(process.execPath, [CLI, 'orch', 'run', 'plan.json', '--poll-ms', '100'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(run);
    let stderr = '';
    run.stderr.on('data', (d) => (stderr += d));
    const worker = await workerStarted(marker);
    const head = git(repo, 'rev-parse', 'refs/agora/runs/solo-1').trim();
    git(repo, 'update-ref', '-d', 'refs/agora/runs/solo-1');
    expect(await exited(run)).toBe(1);
    expect(stderr).toContain('agora: refs/agora/runs/solo-1 was deleted while run solo-1 was served\n');
    expect(stderr).toContain(`hint: restore it to serve the run again: git update-ref refs/agora/runs/solo-1 ${head}\n`);
    await eventually('the worker to be stopped', () => isGone(worker));
    await gate.remove();
  });

  it('a finished run whose integration ref a pushed ref blocks at the start: said once, and the serve serves the others', async () => {
    const repo = makeRepo({ 'plan.json': plan('fin'), 'other.json': plan('other') });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0);
    const integration = git(repo, 'rev-parse', 'refs/agora/integration/fin-1').trim();
    // The integration ref behind its state (as a crash between a transaction's renames leaves it), and a
    // pushed ref it would nest in.
    git(repo, 'update-ref', '-d', 'refs/agora/integration/fin-1');
    git(repo, 'update-ref', 'refs/agora/integration/fin-1/x', 'HEAD');
    const serve = startServe(repo);
    children.push(serve);
    expect((await agora(repo, ['orch', 'submit', 'other.json'])).stdout.trim()).toBe('other-1');
    expect(await finished(repo, 'other-1')).toBe('done');
    serve.kill('SIGTERM');
    expect(await exited(serve)).toBe(0);
    expect(
      count(
        serve.output(),
        'fin-1: warning: its integration and patch refs stay behind its state: cannot create refs/agora/integration/fin-1: refs exist below it',
      ),
    ).toBe(1);
    // Removed, the next start brings the ref up to the state.
    git(repo, 'update-ref', '-d', 'refs/agora/integration/fin-1/x');
    const next = startServe(repo);
    children.push(next);
    await eventually(
      'the integration ref to be restored',
      () => git(repo, 'for-each-ref', '--format=%(objectname)', 'refs/agora/integration/fin-1').trim() === integration,
    );
    next.kill('SIGTERM');
    expect(await exited(next)).toBe(0);
  });
});
