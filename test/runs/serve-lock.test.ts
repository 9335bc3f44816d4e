import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { liveness, selfIdentity } from '../../src/process-identity.js';
import { acquireServeLock, serveLockHolder, serveLockPath } from '../../src/runs/serve-lock.js';
import { eventually } from '../support/eventually.js';

/**
 * The serve lock proves that no other agora serve runs (issue 12, finding 5): a holder counts as alive
 * only if its pid runs, is no zombie and started when the lock says; a reused pid or a zombie is gone.
 */

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function gitdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agora-serve-lock-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function plantHolder(dir: string, holder: object): void {
  mkdirSync(dirname(serveLockPath(dir)), { recursive: true });
  writeFileSync(serveLockPath(dir), `${JSON.stringify({ ...holder, startedAt: '2026-01-01T00:00:00.000Z' })}\n`);
}

function startTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

function procState(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

describe('serve lock', () => {
  it('names the one run an `agora orch run` serves, and no run for a serve', async () => {
    const dir = gitdir();
    const lock = await acquireServeLock(dir, Date.now(), 'first-1');
    expect(await serveLockHolder(dir)).toEqual({ pid: process.pid, only: 'first-1' });
    await lock.release();
    const serve = await acquireServeLock(dir, Date.now());
    expect(await serveLockHolder(dir)).toEqual({ pid: process.pid });
    await serve.release();
  });

  it('takes over a lock whose pid now belongs to a process started at another time (pid reuse)', async () => {
    const dir = gitdir();
    // Our own pid, as a serve before a container restart would have recorded it: same pid, other start.
    plantHolder(dir, { ...selfIdentity(), start: selfIdentity().start! - 1 });
    expect(await serveLockHolder(dir)).toBeNull();
    const lock = await acquireServeLock(dir, Date.now());
    expect(JSON.parse(readFileSync(serveLockPath(dir), 'utf8'))).toMatchObject(selfIdentity());
    await lock.release();
  });

  it('takes over a lock held by a zombie (a dead process nobody reaped)', async () => {
    const dir = gitdir();
    // The child (a subshell waiting for one byte on fd 3) ends only after its parent has `exec`ed into
    // `sleep 600`, which never reaps it. Ending it earlier would race the shell, which may reap a child
    // that is already gone before it execs (seen on a busy machine: the pid then vanished).
    const parent = spawn('sh', ['-c', '(read -r _ <&3) & echo $!; exec sleep 600'], {
      stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
    });
    cleanups.push(() => void parent.kill('SIGKILL'));
    let out = '';
    parent.stdout!.on('data', (d) => (out += d));
    const pid = await eventually('the child pid', () => (out.includes('\n') ? Number(out.trim()) : undefined));
    await eventually('the parent to exec sleep', () => readProc(parent.pid!, 'comm')?.trim() === 'sleep');
    (parent.stdio[3] as Writable).write('x\n');
    await eventually('the child to be a zombie', () => procState(pid) === 'Z');
    const holder = { ...selfIdentity(), pid, start: startTicks(pid) };
    expect(liveness(holder)).toBe('gone');
    plantHolder(dir, holder);
    const lock = await acquireServeLock(dir, Date.now());
    await lock.release();
  });

  it('refuses while the holder runs, naming it', async () => {
    const dir = gitdir();
    const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    cleanups.push(() => void sleeper.kill('SIGKILL'));
    const start = await eventually('the sleeper in /proc', () => startTicks(sleeper.pid!));
    plantHolder(dir, { ...selfIdentity(), pid: sleeper.pid, start });
    expect(await serveLockHolder(dir)).toEqual({ pid: sleeper.pid });
    await expect(acquireServeLock(dir, Date.now())).rejects.toMatchObject({ code: 'serve-running' });
  });
});
