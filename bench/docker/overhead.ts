/**
 * `npx tsx bench/docker/overhead.ts`: what the docker target costs over a local child process.
 *
 * 1. Per-job overhead: JOBS no-op jobs (`true`) one after another on the docker target vs the same
 *    command spawned locally; and the same jobs all at once (the fan-out case).
 * 2. A 1,000-file workspace through the archive path: start-to-collected time of a job that edits one
 *    file, next to the time of the archive round trip alone (pack + extract on the host, no engine).
 * There is no bind-mount fast path, so there is no bind-mount variant. Prints JSON lines; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDockerTarget } from '../../src/executors/docker-target.js';
import { extractWorkspace, packWorkspace } from '../../src/executors/docker-archive.js';
import { engineClient, makeJob, BUSYBOX, START_SCRIPT } from '../../test/docker/engine.js';
import { median, report, timeAsync } from '../lib.js';

const JOBS = 8;
const FILES = 1000;

const docker = engineClient();
try {
  await docker.ping();
} catch (e) {
  process.stderr.write(`docker bench skipped: no engine (${(e as Error).message}); start one with \`${START_SCRIPT}\`\n`);
  process.exit(0);
}
const target = createDockerTarget({ docker, stopGraceSeconds: 1 });
const never = new AbortController().signal;
const root = await mkdtemp(join(tmpdir(), 'agora-bench-docker-'));
const runId = `bench-${process.pid}`;

function spawnTrue(): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('true', [], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

async function dockerJob(itemId: string, workspaceDir: string, command: string[]): Promise<number> {
  const job = makeJob({ runId, itemId, workspaceDir, command, options: { image: BUSYBOX } });
  const { value, ms } = await timeAsync(() => target.run(job, never));
  await job.log.close();
  if (value.exitCode !== 0) throw new Error(`bench job ${itemId} failed: ${JSON.stringify(value)}`);
  return ms;
}

async function populate(dir: string, files: number): Promise<void> {
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 20}`, `e${i % 7}`);
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.txt`), `file ${i}\n`.repeat(8));
  }
}

try {
  // Warm-up: the first container pays for image and storage setup.
  const warm = join(root, 'warm');
  await mkdir(warm);
  await dockerJob('warm', warm, ['true']);

  const local: number[] = [];
  for (let i = 0; i < JOBS; i++) local.push((await timeAsync(spawnTrue)).ms);

  const sequential: number[] = [];
  for (let i = 0; i < JOBS; i++) {
    const ws = join(root, `seq${i}`);
    await mkdir(ws);
    await writeFile(join(ws, 'README'), 'x\n');
    sequential.push(await dockerJob(`seq${i}`, ws, ['true']));
  }

  const parallelWorkspaces = await Promise.all(
    Array.from({ length: JOBS }, async (_, i) => {
      const ws = join(root, `par${i}`);
      await mkdir(ws);
      await writeFile(join(ws, 'README'), 'x\n');
      return ws;
    }),
  );
  const parallel = await timeAsync(() => Promise.all(parallelWorkspaces.map((ws, i) => dockerJob(`par${i}`, ws, ['true']))));

  report('docker-per-job-overhead', {
    jobs: JOBS,
    localSpawnMedianMs: round(median(local)),
    dockerSequentialMedianMs: round(median(sequential)),
    dockerSequentialMinMs: round(Math.min(...sequential)),
    dockerSequentialMaxMs: round(Math.max(...sequential)),
    overheadPerJobMs: round(median(sequential) - median(local)),
    ratio: round(median(sequential) / median(local)),
    dockerParallelWallMs: round(parallel.ms),
    dockerParallelPerJobMs: round(parallel.ms / JOBS),
  });

  // The archive path on a 1,000-file workspace.
  const big = join(root, 'big');
  await mkdir(big);
  await populate(big, FILES);
  const archiveOnly: number[] = [];
  for (let i = 0; i < 3; i++) {
    const copy = join(root, `copy${i}`);
    await mkdir(copy);
    archiveOnly.push(
      (await timeAsync(() => extractWorkspace(packWorkspace(big, { prefix: 'workspace/', uid: 65534, gid: 65534 }), copy, { stripPrefix: 'workspace' }))).ms,
    );
  }
  const withEngine: number[] = [];
  for (let i = 0; i < 3; i++) {
    withEngine.push(await dockerJob(`big${i}`, big, ['/bin/sh', '-c', `echo run ${i} >> d0/e0/f0.txt`]));
  }
  const edited = await readFile(join(big, 'd0/e0/f0.txt'), 'utf8');
  report('docker-archive-1000-files', {
    files: FILES,
    hostRoundTripMedianMs: round(median(archiveOnly)),
    startToCollectedMedianMs: round(median(withEngine)),
    startToCollectedRunsMs: withEngine.map(round),
    noopJobMedianMs: round(median(sequential)),
    archiveCostOverNoopMs: round(median(withEngine) - median(sequential)),
    editsCollected: edited.endsWith('run 0\nrun 1\nrun 2\n'),
    bindMount: 'not implemented (archive path only)',
  });
} finally {
  await rm(root, { recursive: true, force: true });
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
