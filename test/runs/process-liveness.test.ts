import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type * as RealFs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { liveness, readProcStat, selfIdentity } from '../../src/process-identity.js';

/**
 * `liveness` decides whether a lock's or a store's writer is gone, and so whether a serve may remove what
 * it holds (src/process-identity.ts). A `/proc/<pid>/stat` that cannot be read proves the writer gone only
 * when the process went (ENOENT, ESRCH); any other failure (too many open files, no permission) proves
 * nothing, and the writer counts as alive. Those failures cannot be caused on demand in a real `/proc`, so
 * the read of that one file answers with them here; every other call is the real one, on a real process.
 */
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof RealFs>();
  return { ...real, readFileSync: vi.fn(real.readFileSync) };
});

const readFileSync = vi.mocked(fs.readFileSync);
let sleeper: ChildProcess | undefined;

afterEach(() => {
  readFileSync.mockReset();
  sleeper?.kill('SIGKILL');
  sleeper = undefined;
});

/** A live process and its identity as it would record it (its pid and start time, this host and boot). */
function liveWriter() {
  sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = sleeper.pid!;
  const start = readProcStat(pid)!.startTime;
  return { ...selfIdentity(), pid, start };
}

/** Makes the read of `/proc/<pid>/stat` fail with `code`; every other read is the real one. */
async function failProcRead(pid: number, code: string): Promise<void> {
  const real = (await vi.importActual<typeof RealFs>('node:fs')).readFileSync;
  readFileSync.mockImplementation(((path: RealFs.PathOrFileDescriptor, options?: unknown) => {
    if (path === `/proc/${pid}/stat`) throw Object.assign(new Error(`${code}: cannot read ${path}`), { code });
    return real(path, options as BufferEncoding);
  }) as typeof fs.readFileSync);
}

describe('liveness of a writer whose /proc entry cannot be read', () => {
  it('a live writer read as it is counts as alive, and as gone once its start time differs (the pid reused)', () => {
    const writer = liveWriter();
    expect(liveness(writer)).toBe('alive');
    expect(liveness({ ...writer, start: writer.start - 1 })).toBe('gone');
  });

  it.each(['EMFILE', 'EACCES', 'EIO'])('%s proves nothing: the writer counts as alive, even with another start time', async (code) => {
    const writer = liveWriter();
    await failProcRead(writer.pid, code);
    expect(liveness({ ...writer, start: writer.start - 1 })).toBe('alive');
    expect(readFileSync).toHaveBeenCalledWith(`/proc/${writer.pid}/stat`, 'utf8');
  });

  it.each(['ENOENT', 'ESRCH'])('%s (the process went between the signal and the read) proves it gone', async (code) => {
    const writer = liveWriter();
    await failProcRead(writer.pid, code);
    expect(liveness(writer)).toBe('gone');
  });
});
