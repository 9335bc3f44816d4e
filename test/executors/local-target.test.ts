import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalTarget, pidfilePath, type WorkerPidRecord } from '../../src/executors/local-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { LogSink, WorkerJob } from '../../src/executors/types.js';
import { eventually, scaled } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';
import { killGroups, parentOf } from '../support/process.js';

let root: string;
let workspace: string;
let stateDir: string;
/** Processes a test started itself (outside a target): killed afterwards whatever happens. */
const strays: number[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agora-local-'));
  workspace = join(root, 'ws');
  stateDir = join(root, 'state');
  await mkdir(workspace);
});
afterEach(async () => {
  killGroups(strays);
  await rm(root, { recursive: true, force: true });
});

function job(command: string[], extra: Partial<WorkerJob> = {}): WorkerJob & { log: LogSink } {
  return {
    runId: 'run-1',
    itemId: 'item.a',
    attempt: 1,
    workspaceDir: workspace,
    command,
    env: {},
    secrets: {},
    log: createLogSink({ path: join(root, 'item.log'), secrets: Object.values(extra.secrets ?? {}) }),
    ...extra,
  };
}

const sh = (script: string): string[] => ['/bin/sh', '-c', script];

/** /proc/<pid>/stat: state (field 3) and start time (field 22). */
function procStat(pid: number): { state: string; startTime: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, startTime: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/**
 * True when the process no longer runs: kill(pid, 0) fails with ESRCH, or it is a zombie. (In this
 * sandbox PID 1 does not reap orphans, so a killed grandchild that was re-parented to it stays a zombie:
 * dead, but its pid still answers kill(pid, 0).)
 */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const st = procStat(pid);
  return st === undefined || st.state === 'Z' || st.state === 'X';
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return text === '' ? undefined : Number(text);
  } catch {
    return undefined;
  }
}

describe('local target: running a worker', () => {
  it('reports exit codes 0 and 3 and captures output', async () => {
    const target = createLocalTarget({ stateDir });
    const ok = job(sh('echo hello; echo oops >&2'));
    expect(await target.run(ok, new AbortController().signal)).toEqual({ exitCode: 0, signal: null });
    await ok.log.close();
    expect(ok.log.tail().split('\n').sort()).toEqual(['', 'hello', 'oops']);

    const three = job(sh('exit 3'), { attempt: 2 });
    expect(await target.run(three, new AbortController().signal)).toEqual({ exitCode: 3, signal: null });
  });

  it('runs in the workspace, writes stdin then closes it, and records then removes its pidfile', async () => {
    const target = createLocalTarget({ stateDir });
    const gate = workerGate(); // the worker stays up until its pidfile has been read
    const j = job(sh(`pwd > cwd.txt; cat > stdin.txt; echo ready > ready; ${gate.wait}`), { stdin: '{"a":1}' });
    const running = target.run(j, new AbortController().signal);
    await eventually('worker ready', () => readFile(join(workspace, 'ready'), 'utf8').catch(() => undefined));
    const pidfile = pidfilePath(stateDir, 'run-1', 'item.a', 1);
    expect(pidfile).toBe(join(stateDir, 'run-1', 'item.a.1.pid'));
    const record = JSON.parse(await readFile(pidfile, 'utf8')) as WorkerPidRecord;
    expect(record.pgid).toBe(record.pid);
    expect(record.startTime).toBe(procStat(record.pid)!.startTime);
    expect(record).toMatchObject({ runId: 'run-1', itemId: 'item.a', attempt: 1 });
    await gate.open();
    expect(await running).toEqual({ exitCode: 0, signal: null });
    await gate.remove();
    expect(await readFile(join(workspace, 'stdin.txt'), 'utf8')).toBe('{"a":1}');
    expect((await readFile(join(workspace, 'cwd.txt'), 'utf8')).trim()).toBe(workspace);
    expect(await readdir(join(stateDir, 'run-1'))).toEqual([]);
  });

  it('ignores a worker that never reads its stdin', async () => {
    const target = createLocalTarget({ stateDir });
    const j = job(sh('exec 0<&-; exit 0'), { stdin: 'x'.repeat(1 << 20) });
    expect(await target.run(j, new AbortController().signal)).toEqual({ exitCode: 0, signal: null });
  });

  it('gives the worker a minimal environment: nothing else of the parent leaks in', async () => {
    process.env.AGORA_TEST_PARENT_ONLY = 'must-not-leak';
    try {
      const target = createLocalTarget({ stateDir });
      const j = job(sh('env > env.txt'), { env: { PLAIN: 'yes' }, secrets: { API_TOKEN: 'tok-123456' } });
      expect((await target.run(j, new AbortController().signal)).exitCode).toBe(0);
      const lines = (await readFile(join(workspace, 'env.txt'), 'utf8')).trim().split('\n');
      const env = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(env.AGORA_TEST_PARENT_ONLY).toBeUndefined();
      expect(env).toMatchObject({
        PLAIN: 'yes',
        API_TOKEN: 'tok-123456',
        AGORA_RUN: 'run-1',
        AGORA_ITEM: 'item.a',
        AGORA_ATTEMPT: '1',
        AGORA_WORKSPACE: workspace,
        PATH: process.env.PATH,
      });
      // Only the base, the job's variables and what the shell itself sets (PWD, SHLVL, _, OLDPWD).
      const allowed = new Set(['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'PLAIN', 'API_TOKEN', 'PWD', 'SHLVL', '_', 'OLDPWD']);
      const extra = Object.keys(env).filter((k) => !allowed.has(k) && !k.startsWith('AGORA_'));
      expect(extra).toEqual([]);
    } finally {
      delete process.env.AGORA_TEST_PARENT_ONLY;
    }
  });

  it('passes secrets to the worker but redacts them from the log, even split across writes', async () => {
    const target = createLocalTarget({ stateDir });
    const secret = 'sk-abcdef0123456789';
    const j = job(sh(`printf '%s' "$API_TOKEN" > seen.txt; echo "token=$API_TOKEN"; printf 'sk-abcdef'; sleep 0.2; printf '0123456789 done\\n'`), {
      secrets: { API_TOKEN: secret },
    });
    expect((await target.run(j, new AbortController().signal)).exitCode).toBe(0);
    await j.log.close();
    expect(await readFile(join(workspace, 'seen.txt'), 'utf8')).toBe(secret);
    const logText = await readFile(join(root, 'item.log'), 'utf8');
    expect(logText).toBe('token=***\n*** done\n');
  });

  it('keeps 5 MB of output bounded with the elision line', async () => {
    const target = createLocalTarget({ stateDir });
    const j = job(sh(`i=0; while [ $i -lt 100 ]; do head -c 52000 /dev/zero | tr '\\0' 'a'; echo; i=$((i+1)); done; echo last-line`));
    j.log = createLogSink({ path: join(root, 'big.log'), secrets: [], maxBytes: 256 * 1024 });
    expect((await target.run(j, new AbortController().signal)).exitCode).toBe(0);
    await j.log.close();
    const text = await readFile(join(root, 'big.log'), 'utf8');
    expect(Buffer.byteLength(text)).toBeLessThan(256 * 1024 + 100);
    const m = /\n… (\d+) bytes elided …\n/.exec(text);
    expect(m).not.toBeNull();
    // Everything written (100 lines of 52,001 bytes + 'last-line\n') is either kept or counted as elided.
    expect(Buffer.byteLength(text) - Buffer.byteLength(m![0]) + 1 + Number(m![1])).toBe(100 * 52_001 + 10 + 1);
    expect(text.endsWith('a\nlast-line\n')).toBe(true);
  });

  it('reports a missing or non-executable command as a reason, without throwing', async () => {
    const target = createLocalTarget({ stateDir });
    const missing = await target.run(job(['/nonexistent/agora-worker', '--x']), new AbortController().signal);
    expect(missing.exitCode).toBeNull();
    expect(missing.infrastructureFailure).toBe(false);
    expect(missing.reason).toMatch(/^cannot start \/nonexistent\/agora-worker: .*ENOENT/);

    const script = join(root, 'not-executable.sh');
    await writeFile(script, '#!/bin/sh\necho hi\n');
    await chmod(script, 0o644);
    const denied = await target.run(job([script]), new AbortController().signal);
    expect(denied.exitCode).toBeNull();
    expect(denied.reason).toMatch(/^cannot start .*not-executable\.sh: .*EACCES/);
    // No pidfile is left behind by a worker that never started.
    expect(await readdir(join(stateDir, 'run-1')).catch(() => [])).toEqual([]);
  });

  it('reports a missing workspace as an infrastructure failure', async () => {
    const target = createLocalTarget({ stateDir });
    const r = await target.run(job(sh('true'), { workspaceDir: join(root, 'gone') }), new AbortController().signal);
    expect(r).toMatchObject({ exitCode: null, infrastructureFailure: true });
    expect(r.reason).toContain('gone');
  });
});

describe('local target: nothing outlives an item', () => {
  it('abort stops the whole group, including a background grandchild', async () => {
    const target = createLocalTarget({ stateDir, killGraceMs: 2000 });
    const gcFile = join(workspace, 'gc.pid');
    const j = job(sh(`sleep 300 & echo $! > ${gcFile}; sleep 300`));
    const ac = new AbortController();
    const running = target.run(j, ac.signal);
    const grandchild = await eventually('grandchild pid', () => readPid(gcFile));
    expect(isGone(grandchild)).toBe(false);
    ac.abort('timed out');
    const result = await running;
    expect(result).toEqual({ exitCode: null, signal: 'SIGTERM', reason: 'stopped: timed out' });
    expect(isGone(grandchild)).toBe(true);
    expect(await readdir(join(stateDir, 'run-1'))).toEqual([]);
  });

  it('escalates to SIGKILL after the grace period when the group ignores SIGTERM', async () => {
    const target = createLocalTarget({ stateDir, killGraceMs: 300 });
    const gcFile = join(workspace, 'gc.pid');
    const j = job(sh(`trap '' TERM; sleep 300 & echo $! > ${gcFile}; sleep 300`));
    const ac = new AbortController();
    const running = target.run(j, ac.signal);
    const grandchild = await eventually('grandchild pid', () => readPid(gcFile));
    const started = Date.now();
    ac.abort(new Error('run cancelled by alice'));
    const result = await running;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(result).toEqual({ exitCode: null, signal: 'SIGKILL', reason: 'stopped: run cancelled by alice' });
    expect(isGone(grandchild)).toBe(true);
  });

  it('after a normal exit, kills background children left in the group', async () => {
    const target = createLocalTarget({ stateDir });
    const gcFile = join(workspace, 'gc.pid');
    // The background sleep keeps stdout open: without the group kill, run would wait on it.
    const j = job(sh(`sleep 300 & echo $! > ${gcFile}; echo bye; exit 0`));
    const result = await target.run(j, new AbortController().signal);
    expect(result).toEqual({ exitCode: 0, signal: null });
    const grandchild = (await readPid(gcFile))!;
    expect(grandchild).toBeGreaterThan(1);
    expect(isGone(grandchild)).toBe(true);
    await j.log.close();
    expect(j.log.tail()).toBe('bye\n');
  });

  it('counts a launcher lost while the worker runs as an infrastructure failure, and leaves nothing of the worker', async () => {
    const target = createLocalTarget({ stateDir });
    const pidFile = join(workspace, 'worker.pid');
    const gcFile = join(workspace, 'gc.pid');
    const running = target.run(job(sh(`sleep 300 & echo $! > ${gcFile}; echo $$ > ${pidFile}; wait`)), new AbortController().signal);
    const worker = await eventually('worker pid', () => readPid(pidFile));
    const grandchild = await eventually('grandchild pid', () => readPid(gcFile));
    strays.push(worker);
    process.kill(parentOf(worker), 'SIGKILL'); // the launcher
    const result = await running;
    expect(result).toMatchObject({ exitCode: null, infrastructureFailure: true });
    expect(result.reason).toMatch(/^lost track of the worker: /);
    expect(isGone(worker)).toBe(true);
    expect(isGone(grandchild)).toBe(true);
  });

  it('reports a stop as a stop even when the launcher is lost while the worker is stopping', async () => {
    const target = createLocalTarget({ stateDir, killGraceMs: scaled(2000) });
    const pidFile = join(workspace, 'worker.pid');
    const trapped = join(workspace, 'trapped');
    // The worker outlives SIGTERM (it notes that it got one), so the launcher dies while the stop is under way.
    const ac = new AbortController();
    const running = target.run(job(sh(`trap 'touch ${trapped}' TERM; echo $$ > ${pidFile}; while :; do sleep 1; done`)), ac.signal);
    const worker = await eventually('worker pid', () => readPid(pidFile));
    strays.push(worker);
    ac.abort('cancelled by alice');
    await eventually('the worker to get SIGTERM', () => existsSync(trapped));
    process.kill(parentOf(worker), 'SIGKILL'); // the launcher
    const result = await running;
    expect(result).toMatchObject({ exitCode: null, reason: 'stopped: cancelled by alice' });
    expect(result.infrastructureFailure).not.toBe(true);
    expect(isGone(worker)).toBe(true);
  });

  it('an already aborted signal starts nothing', async () => {
    const target = createLocalTarget({ stateDir });
    const ac = new AbortController();
    ac.abort('cancelled');
    const r = await target.run(job(sh('touch started')), ac.signal);
    expect(r).toMatchObject({ exitCode: null, reason: 'stopped: cancelled' });
    await expect(readFile(join(workspace, 'started'))).rejects.toThrow();
  });
});

describe('local target: reapOrphans', () => {
  /** Starts a detached group like a worker of an earlier orchestrator process, and records its pidfile. */
  async function previousWorker(itemId: string, opts: { startTime?: (real: number) => number } = {}) {
    const gcFile = join(root, `${itemId}.gc`);
    const child = spawn('/bin/sh', ['-c', `sleep 300 & echo $! > ${gcFile}; sleep 300`], { detached: true, stdio: 'ignore' });
    child.unref();
    const pid = child.pid!;
    strays.push(pid);
    const real = procStat(pid)!.startTime;
    const record: WorkerPidRecord = {
      runId: 'old-run',
      itemId,
      attempt: 1,
      pid,
      pgid: pid,
      startedAt: new Date().toISOString(),
      startTime: opts.startTime ? opts.startTime(real) : real,
      bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    };
    await mkdir(join(stateDir, 'old-run'), { recursive: true });
    await writeFile(pidfilePath(stateDir, 'old-run', itemId, 1), JSON.stringify(record));
    const grandchild = await eventually('grandchild pid', () => readPid(gcFile));
    return { pid, grandchild };
  }

  it('kills orphaned groups, leaves live attempts and reused pids alone', async () => {
    const orphan = await previousWorker('orphan');
    const live = await previousWorker('live');
    // The recorded start time differs: this pid now names another process, which must survive.
    const reused = await previousWorker('reused', { startTime: (real) => real - 1 });
    await writeFile(pidfilePath(stateDir, 'old-run', 'garbage', 1), 'not json');

    const target = createLocalTarget({ stateDir });
    const killed = await target.reapOrphans!((run, item, attempt) => run === 'old-run' && item === 'live' && attempt === 1);
    expect(killed).toBe(1);

    await eventually('orphan group to die', () => (isGone(orphan.pid) && isGone(orphan.grandchild) ? true : undefined));
    for (const p of [live.pid, live.grandchild, reused.pid, reused.grandchild]) expect(isGone(p)).toBe(false);
    // The live attempt keeps its pidfile; the others are cleaned up.
    expect(await readdir(join(stateDir, 'old-run'))).toEqual(['live.1.pid']);
  });

  it("finds every job of an attempt: a job beside the worker neither overwrites nor removes the worker's pidfile", async () => {
    // What runJobOnTarget runs beside the item's own worker (a command dependency, a tool): the same run,
    // item and attempt, told apart by `subJob`.
    const target = createLocalTarget({ stateDir, killGraceMs: 200 });
    const worker = target.run(job(sh('echo $$ > worker.pid; exec sleep 300')), new AbortController().signal);
    const workerPid = await eventually('worker pid', () => readPid(join(workspace, 'worker.pid')));
    strays.push(workerPid);
    const dependency = target.run(
      job(sh('echo $$ > dep.pid; exec sleep 300'), { subJob: 'item.a.1/dep#1', log: createLogSink({ secrets: [] }) }),
      new AbortController().signal,
    );
    const dependencyPid = await eventually('dependency pid', () => readPid(join(workspace, 'dep.pid')));
    strays.push(dependencyPid);
    // A tool's job that ends while the worker runs.
    const tool = await target.run(job(sh('exit 0'), { subJob: 'job-7f3a', log: createLogSink({ secrets: [] }) }), new AbortController().signal);
    expect(tool).toEqual({ exitCode: 0, signal: null });

    const dependencyFile = pidfilePath(stateDir, 'run-1', 'item.a', 1, 'item.a.1/dep#1');
    expect(dependencyFile).toMatch(/\/run-1\/item\.a\.1\+[0-9a-f]{16}\.pid$/);
    expect((await readdir(join(stateDir, 'run-1'))).sort()).toEqual(['item.a.1.pid', dependencyFile.slice(dependencyFile.lastIndexOf('/') + 1)].sort());
    const workerRecord = JSON.parse(await readFile(pidfilePath(stateDir, 'run-1', 'item.a', 1), 'utf8')) as WorkerPidRecord;
    expect(workerRecord.pid).toBe(workerPid);
    expect(workerRecord.subJob).toBeUndefined();
    expect(JSON.parse(await readFile(dependencyFile, 'utf8'))).toMatchObject({ pid: dependencyPid, subJob: 'item.a.1/dep#1' });

    // A restarted server's reaper finds both groups of the attempt.
    const killed = await createLocalTarget({ stateDir }).reapOrphans!(() => false);
    expect(killed).toBe(2);
    await eventually('the worker and its dependency to die', () => (isGone(workerPid) && isGone(dependencyPid) ? true : undefined));
    expect(await worker).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect(await dependency).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect(await readdir(join(stateDir, 'run-1'))).toEqual([]);
  });

  it("names a job's pidfile from any subJob text, in place", () => {
    for (const subJob of ['../../escape', '/abs/path', 'a\u0000b', '', '.']) {
      const file = pidfilePath(stateDir, 'run-1', 'item.a', 2, subJob);
      expect(file.slice(0, file.lastIndexOf('/'))).toBe(join(stateDir, 'run-1'));
      expect(file).toMatch(/\/item\.a\.2\+[0-9a-f]{16}\.pid$/);
    }
    // Two jobs, two names; the worker's name is what an earlier Agora wrote.
    expect(pidfilePath(stateDir, 'run-1', 'item.a', 2, 'x')).not.toBe(pidfilePath(stateDir, 'run-1', 'item.a', 2, 'y'));
    expect(pidfilePath(stateDir, 'run-1', 'item.a', 2)).toBe(join(stateDir, 'run-1', 'item.a.2.pid'));
  });

  it('kills group members whose leader already exited', async () => {
    const orphan = await previousWorker('leaderless');
    process.kill(orphan.pid, 'SIGKILL');
    await eventually('leader to die', () => (isGone(orphan.pid) ? true : undefined));
    expect(isGone(orphan.grandchild)).toBe(false);
    const killed = await createLocalTarget({ stateDir }).reapOrphans!(() => false);
    expect(killed).toBe(1);
    await eventually('grandchild to die', () => (isGone(orphan.grandchild) ? true : undefined));
  });
});
