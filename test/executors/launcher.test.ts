import { execFile, spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SPAWN_CHANNEL, spawnFromLauncher, type LaunchedChild } from '../../src/executors/launcher.js';
import { eventually, scaled } from '../support/eventually.js';
import { isGone, killGroups, parentOf } from '../support/process.js';
import { ROOT, TSX } from '../support/repo.js';

let cwd: string;
const strays: number[] = [];
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

beforeEach(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'agora-launcher-'));
});
afterEach(async () => {
  killGroups(strays);
  await rm(cwd, { recursive: true, force: true });
});

/** Reads the child's output (`closed` waits for it to be read, as a ChildProcess's 'close' does). */
function collect(child: LaunchedChild): { stdout: () => string; stderr: () => string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  return { stdout: () => Buffer.concat(out).toString(), stderr: () => Buffer.concat(err).toString() };
}

/** Field 5 of /proc/<pid>/stat: the process group. */
function groupOf(pid: number): number {
  return Number(
    readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ')[2],
  );
}

/** The peak resident memory of `pid` (VmHWM), in KiB. */
/** Whether a process of process group `group` waits in a write to a full pipe (its wait channel, /proc/<pid>/wchan). */
function writingToFullPipe(group: number): boolean {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const fields = readFileSync(`/proc/${name}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ');
      if (Number(fields[2]) === group && /pipe_write/.test(readFileSync(`/proc/${name}/wchan`, 'utf8'))) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

function peakKiB(pid: number): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('spawnFromLauncher', () => {
  it('runs the command in its cwd and environment, with stdin, stdout, stderr and the exit code', async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'pwd; echo "$ONLY"; cat; exit 7'], {
      cwd,
      env: { ...env, ONLY: 'this one' },
      detached: true,
    });
    const output = collect(child);
    child.stdin.end('read from stdin\n');
    expect(await child.exited).toEqual({ code: 7, signal: null });
    await child.closed;
    expect(output.stdout()).toBe(`${cwd}\nthis one\nread from stdin\n`);
    expect(child.lost).toBeUndefined();
  });

  it("gives the worker exactly the environment asked for: nothing of the orchestrator's or the launcher's", async () => {
    // env(1) itself, not a shell (a shell adds PWD, SHLVL and _ of its own).
    const child = await spawnFromLauncher('/usr/bin/env', [], { cwd, env: { PATH: '/usr/bin:/bin', ONLY: 'x' }, detached: true });
    const output = collect(child);
    await child.closed;
    expect(output.stdout().trim().split('\n').sort()).toEqual(['ONLY=x', 'PATH=/usr/bin:/bin']);
  });

  it("reports the worker's start time as /proc has it, for its pidfile", async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'read line'], { cwd, env, detached: true });
    strays.push(child.pid);
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .split(' ');
    expect(child.startTime).toBe(Number(stat[19]));
    child.stdin.end('go\n');
    await child.exited;
  });

  it('lives in its own process group and ignores the signals sent to a whole group (Ctrl-C)', async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'read line; echo "after $line"'], { cwd, env, detached: true });
    strays.push(child.pid);
    const output = collect(child);
    const launcher = parentOf(child.pid);
    expect(groupOf(launcher)).toBe(launcher);
    expect(groupOf(launcher)).not.toBe(groupOf(process.pid));
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.kill(launcher, sig);
    child.stdin.end('the signals\n');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    await child.closed;
    expect(output.stdout()).toBe('after the signals\n');
    expect(child.lost).toBeUndefined();
  });

  it("holds a bounded amount of a flooding worker's output while this process does not read it", async () => {
    const size = 192 * 2 ** 20;
    const child = await spawnFromLauncher('/bin/sh', ['-c', `head -c ${size} /dev/zero`], { cwd, env, detached: true });
    const launcher = parentOf(child.pid);
    const before = peakKiB(launcher);
    // This thread is busy, as the orchestrator's can be: nothing reads the channel until the worker has
    // written all it can. With the bound it blocks on a full pipe once the launcher stops reading it;
    // without, the launcher takes in all 192 MiB and the worker ends. (Where the kernel does not name
    // the wait, the look ends at its deadline: the worker must still be there then.)
    const until = Date.now() + scaled(20_000);
    while (Date.now() < until && !isGone(child.pid) && !writingToFullPipe(child.pid)) {
      // busy, on purpose
    }
    expect(isGone(child.pid)).toBe(false);
    // What the launcher took in while nobody read: without the bound, all the worker wrote meanwhile.
    const heldWhileBlocked = peakKiB(launcher) - before;
    let received = 0;
    child.stdout.on('data', (b: Buffer) => (received += b.byteLength));
    child.stderr.resume();
    await child.closed;
    expect(received).toBe(size);
    // Measured: 3 MiB with the bound, 400 MiB without it.
    expect(heldWhileBlocked).toBeLessThan(32 * 1024);
  });

  it("is not this process: the worker is the launcher's child, in its own process group", async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'read line'], { cwd, env, detached: true });
    strays.push(child.pid);
    const launcher = parentOf(child.pid);
    expect(launcher).not.toBe(process.pid);
    expect(parentOf(launcher)).toBe(process.pid);
    expect(
      readFileSync(`/proc/${child.pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ')[2],
    ).toBe(String(child.pid));
    child.stdin.end('go\n');
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('reports the end of a child that was over before anyone listened', async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'echo early'], { cwd, env, detached: true });
    await eventually('the child to be gone', () => isGone(child.pid));
    // The launcher reaps, then tells: once a later child has come and gone, the first one's news has arrived.
    const later = await spawnFromLauncher('/bin/sh', ['-c', 'true'], { cwd, env, detached: true });
    collect(later);
    await later.closed;
    const output = collect(child);
    expect(await child.exited).toEqual({ code: 0, signal: null });
    await child.closed;
    expect(output.stdout()).toBe('early\n');
  });

  it('keeps reading stdout after stderr has ended, and stdin stays open', async () => {
    // stderr closes at once; stdout is written only after a line arrives on stdin.
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'exec 2>&-; read line; echo "got $line"'], { cwd, env, detached: true });
    const output = collect(child);
    await once(child.stderr, 'end');
    child.stdin.end('this\n');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    await child.closed;
    expect(output.stdout()).toBe('got this\n');
  });

  it('gives a signal that ended the child', async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'kill -TERM $$'], { cwd, env, detached: true });
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('rejects with the start error when the program cannot be started', async () => {
    await expect(spawnFromLauncher('agora-no-such-program', [], { cwd, env, detached: true })).rejects.toMatchObject({
      code: 'ENOENT',
      message: expect.stringContaining('agora-no-such-program'),
    });
    await expect(spawnFromLauncher('/bin/sh', [], { cwd: join(cwd, 'missing'), env, detached: true })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('tells each child it was lost when the launcher dies, and starts a new launcher for the next', async () => {
    const child = await spawnFromLauncher('/bin/sh', ['-c', 'read line'], { cwd, env, detached: true });
    strays.push(child.pid);
    process.kill(parentOf(child.pid), 'SIGKILL');
    expect(await child.exited).toEqual({ code: null, signal: null });
    expect(child.lost?.message).toMatch(/launcher exited \(SIGKILL\)/);
    const next = await spawnFromLauncher('/bin/sh', ['-c', 'echo again'], { cwd, env, detached: true });
    const output = collect(next);
    expect(await next.exited).toEqual({ code: 0, signal: null });
    await next.closed;
    expect(output.stdout()).toBe('again\n');
  });

  it('kills its workers, and their groups, when the process that started them dies', async () => {
    const script = [
      `import { spawnFromLauncher } from ${JSON.stringify(join(ROOT, 'src/executors/launcher.ts'))};`,
      `const child = await spawnFromLauncher('/bin/sh', ['-c', 'sleep 600 & echo $!; wait'], { cwd: ${JSON.stringify(cwd)}, env: { PATH: '/usr/bin:/bin' }, detached: true });`,
      `child.stdout.once('data', (b) => process.stdout.write(child.pid + ' ' + b));`,
      `setInterval(() => {}, 60_000);`,
    ].join('\n');
    const orchestrator = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(orchestrator.stdout, 'data')) as [Buffer];
    const [worker, sleeper] = line.toString().trim().split(' ').map(Number) as [number, number];
    strays.push(worker);
    const launcher = parentOf(worker);
    expect(parentOf(sleeper)).toBe(worker);
    orchestrator.kill('SIGKILL');
    await eventually('the worker, its background child and the launcher to be gone', () => isGone(worker) && isGone(sleeper) && isGone(launcher));
  });

  it('publishes each start on its diagnostics channel', async () => {
    const seen: unknown[] = [];
    const onStart = (m: unknown) => seen.push(m);
    subscribe(SPAWN_CHANNEL, onStart);
    try {
      const child = await spawnFromLauncher('/bin/sh', ['-c', 'true'], { cwd, env, detached: true });
      collect(child);
      await child.closed;
    } finally {
      unsubscribe(SPAWN_CHANNEL, onStart);
    }
    expect(seen).toEqual([{ file: '/bin/sh', args: ['-c', 'true'] }]);
  });

  it('does not keep a process alive once its children are done', async () => {
    const script = [
      `import { spawnFromLauncher } from ${JSON.stringify(join(ROOT, 'src/executors/launcher.ts'))};`,
      `const child = await spawnFromLauncher('/bin/sh', ['-c', 'echo done'], { cwd: ${JSON.stringify(cwd)}, env: { PATH: '/usr/bin:/bin' }, detached: true });`,
      `child.stdout.pipe(process.stdout);`,
      `child.stderr.resume();`,
      `await child.closed;`,
    ].join('\n');
    // Exits on its own, or is killed at the bound (and the test fails naming it).
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { cwd: ROOT, timeout: scaled(30_000) }, (e, out) =>
        e ? reject(e) : resolve(out),
      ),
    );
    expect(stdout).toBe('done\n');
  });
});
