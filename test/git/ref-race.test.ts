import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { gitAsync, gitSync, initRepo } from './git-fixtures.js';
import { scaled } from '../support/eventually.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const childScript = fileURLToPath(new URL('./cas-child.ts', import.meta.url));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Runs the child script in a real Node process; resolves with its JSON report. */
function runChild(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => {
      if (code !== 0) fail(new Error(`child ${args.join(' ')} exited ${code}: ${err}`));
      else done(JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CAS across processes', () => {
  it(
    'loses no update with 4 processes × 25 increments, the git CLI interleaving update-ref and pack-refs',
    async () => {
      const repo = await initRepo();
      cleanups.push(repo.cleanup);
      const store = await openLocalStore(repo.dir);
      const ref = 'refs/agora/runs/race';
      const tree = await store.writeTree([]);
      const who = agoraIdentity(Date.now());
      const root = await store.writeCommit({ tree, parents: [], message: 'root', author: who, committer: who });
      expect(await store.casRef(ref, root, null)).toBe(true);

      const WRITERS = 4;
      const PER_WRITER = 25;
      const CLI_INCREMENTS = 10;
      const stopFile = join(repo.dir, '..', 'stop');

      const reader = runChild(['read', repo.dir, ref, stopFile]);
      const writers = Array.from({ length: WRITERS }, (_, i) => runChild(['write', repo.dir, ref, String(i), String(PER_WRITER)]));

      // The CLI joins once the writers are running (their first increment has landed).
      const writersStarted = (async () => {
        while ((await store.resolveRef(ref)) === root) await sleep(5);
      })();
      // The git CLI races too: read → commit-tree → `update-ref <ref> <new> <old>` (git's own CAS).
      let cliWon = 0;
      let cliRefused = 0;
      const cli = (async () => {
        await writersStarted;
        while (cliWon < CLI_INCREMENTS) {
          const prev = (await gitAsync(repo.dir, ['rev-parse', ref])).stdout.trim();
          const made = await gitAsync(repo.dir, ['commit-tree', tree, '-p', prev, '-m', `cli ${cliWon}`]);
          expect(made.code).toBe(0);
          const upd = await gitAsync(repo.dir, ['update-ref', ref, made.stdout.trim(), prev]);
          if (upd.code === 0) cliWon++;
          else cliRefused++;
          await sleep(20);
        }
      })();
      // And packs the refs now and then, moving the ref between the loose file and packed-refs.
      const packer = (async () => {
        await writersStarted;
        for (let i = 0; i < 4; i++) {
          await sleep(150);
          await gitAsync(repo.dir, ['pack-refs', '--all']);
        }
      })();
      // In-process reads during the race must always see a whole id.
      let parentReads = 0;
      let racing = true;
      const parentReader = (async () => {
        while (racing) {
          const v = await store.resolveRef(ref);
          expect(v).toMatch(/^[0-9a-f]{40}$/);
          parentReads++;
          await sleep(1);
        }
      })();

      const reports = await Promise.all(writers);
      await Promise.all([cli, packer]);
      racing = false;
      await parentReader;
      await writeFile(stopFile, '');
      const readerReport = await reader;

      for (const r of reports) expect(r.won).toBe(PER_WRITER);
      expect(readerReport.badReads).toEqual([]);
      expect(readerReport.reads as number).toBeGreaterThan(0);
      expect(parentReads).toBeGreaterThan(0);

      const total = WRITERS * PER_WRITER + CLI_INCREMENTS;
      const head = await store.resolveRef(ref);
      expect(gitSync(repo.dir, ['rev-parse', ref]).trim()).toBe(head);
      // A linear chain from the root: every update built on the one before it, none lost.
      expect(Number(gitSync(repo.dir, ['rev-list', '--count', ref]).trim())).toBe(total + 1);
      expect(gitSync(repo.dir, ['rev-list', '--merges', ref]).trim()).toBe('');
      const subjects = gitSync(repo.dir, ['log', '--format=%s', ref]).trim().split('\n');
      for (let w = 0; w < WRITERS; w++) {
        const mine = subjects.filter((s) => s.startsWith(`w${w} `)).map((s) => Number(s.split(' ')[1]));
        // Each writer's commits appear in its own order: its increments landed one after another.
        expect(mine.reverse()).toEqual(Array.from({ length: PER_WRITER }, (_, i) => i));
      }
      expect(subjects.filter((s) => s.startsWith('cli '))).toHaveLength(CLI_INCREMENTS);
      // The CLI's updates landed on top of the writers' (it started after their first increment).
      const oldestCli = subjects.lastIndexOf('cli 0');
      expect(subjects.slice(oldestCli).some((s) => s.startsWith('w'))).toBe(true);
      const newestCli = subjects.indexOf(`cli ${CLI_INCREMENTS - 1}`);
      const writerCommitsBetweenCli = subjects.slice(newestCli, oldestCli).filter((s) => s.startsWith('w')).length;
      expect(subjects[subjects.length - 1]).toBe('root');
      expect(gitSync(repo.dir, ['fsck', '--strict', '--no-dangling'])).toBe('');

      const lost = reports.reduce((n, r) => n + (r.lost as number), 0);
      console.log(JSON.stringify({ writers: reports, cliWon, cliRefused, writerCommitsBetweenCli, casRetries: lost, reader: readerReport.reads, parentReads }));
    },
    scaled(180_000),
  );
});
