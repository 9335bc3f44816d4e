import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Octokit } from '../../src/github/agora-github.js';
import { resolveOptions } from '../../src/github/app-options.js';
import { AppState } from '../../src/github/app-state.js';
import { claimsDir, holdCacheDir } from '../../src/github/cache-dir-lock.js';
import type { OrchConfig } from '../../src/config/types.js';
import { selfIdentity } from '../../src/process-identity.js';
import { eventually } from '../support/eventually.js';

/**
 * One App process per cache dir (AGORA_CACHE_DIR): its workspace pool is emptied when the process opens a
 * repository, so a second process there would empty the first one's workspaces under its workers. Real
 * processes and files; `test/github/main.test.ts` starts real `agora app` processes on one dir.
 */

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agora-cache-lock-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function plantClaim(dir: string, name: string, holder: object): string {
  mkdirSync(claimsDir(dir), { recursive: true });
  const file = join(claimsDir(dir), name);
  writeFileSync(file, `${JSON.stringify({ ...holder, startedAt: '2026-01-01T00:00:00.000Z' })}\n`);
  return file;
}

function startTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('the cache dir hold', () => {
  it('refuses a second hold while the first is held, naming the dir, the holder and the fix; free again once released', async () => {
    const dir = cacheDir();
    const first = await holdCacheDir(dir, Date.now());
    const refused = holdCacheDir(dir, Date.now());
    await expect(refused).rejects.toMatchObject({
      code: 'cache-dir-in-use',
      message: expect.stringContaining(`the cache dir ${dir} is in use by another agora app process (pid ${process.pid}, since `),
      hint: expect.stringContaining('give each agora app process an AGORA_CACHE_DIR of its own'),
    });
    // The refused one withdrew its claim: only the holder's is there.
    expect(readdirSync(claimsDir(dir))).toEqual([first.file.slice(claimsDir(dir).length + 1)]);
    await first.release();
    await first.release(); // harmless twice
    expect(readdirSync(claimsDir(dir))).toEqual([]);
    const second = await holdCacheDir(dir, Date.now());
    await second.release();
  });

  it('of two holds taken at once, never both succeed', async () => {
    const dir = cacheDir();
    for (let round = 0; round < 20; round += 1) {
      const results = await Promise.allSettled([holdCacheDir(dir, Date.now()), holdCacheDir(dir, Date.now())]);
      const held = results.filter((r) => r.status === 'fulfilled');
      expect(held.length).toBeLessThanOrEqual(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'cache-dir-in-use' });
      for (const h of held) await h.value.release();
      expect(readdirSync(claimsDir(dir))).toEqual([]);
    }
  });

  it('refuses while a live process of this host holds the dir', async () => {
    const dir = cacheDir();
    const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    cleanups.push(() => void sleeper.kill('SIGKILL'));
    const start = await eventually('the sleeper in /proc', () => startTicks(sleeper.pid!));
    plantClaim(dir, 'sleeper.json', { ...selfIdentity(), pid: sleeper.pid, start });
    await expect(holdCacheDir(dir, Date.now())).rejects.toMatchObject({
      code: 'cache-dir-in-use',
      message: expect.stringContaining(`(pid ${sleeper.pid}, since `),
    });
  });

  it('takes the dir over from a process that is gone (its pid reused by a process started at another time), removing its claim', async () => {
    const dir = cacheDir();
    plantClaim(dir, 'stale.json', { ...selfIdentity(), start: selfIdentity().start! - 1 });
    const hold = await holdCacheDir(dir, Date.now());
    expect(readdirSync(claimsDir(dir))).toEqual([hold.file.slice(claimsDir(dir).length + 1)]);
    await hold.release();
  });

  it('leaves a claim of another host to a person, saying which file to delete', async () => {
    const dir = cacheDir();
    const other = plantClaim(dir, 'other.json', { ...selfIdentity(), host: 'elsewhere.example' });
    await expect(holdCacheDir(dir, Date.now())).rejects.toMatchObject({
      code: 'cache-dir-in-use',
      message: expect.stringContaining('on host elsewhere.example'),
      hint: expect.stringContaining(`if that process is gone, delete ${other}`),
    });
  });

  it("an App whose cache dir another one holds opens no repository there: it never empties the holder's workspace pool", async () => {
    const dir = cacheDir();
    const config = { queues: {}, subagents: {} } as unknown as OrchConfig;
    const holder = new AppState(resolveOptions({ cacheDir: dir, config }));
    const other = new AppState(resolveOptions({ cacheDir: dir, config }));
    await holder.holdCacheDir();
    const handle = {
      octokit: {} as Octokit,
      owner: 'octo',
      repo: 'demo',
      cloneUrl: 'http://127.0.0.1:9/octo/demo.git',
      repositoryId: 1,
      htmlUrl: 'https://github.example/octo/demo',
      token: async () => 'unused',
    };
    await expect(other.repoFor(handle)).rejects.toMatchObject({ code: 'cache-dir-in-use' });
    expect(readdirSync(dir)).toEqual(['agora-app.claims']); // no mirror, so no pool, was opened
    await holder.releaseCacheDir();
    await holder.releaseCacheDir();
    expect(readdirSync(claimsDir(dir))).toEqual([]);
    // Given up for good: a stopped App does not take the dir again.
    await expect(holder.holdCacheDir()).rejects.toThrow('the agora app is stopped');
  });
});
