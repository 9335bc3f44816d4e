/**
 * The crash campaign (issue 12, finding 7): `agora orch run` on a small plan in a temp repository,
 * killed with SIGKILL at a point chosen from the run's own steps (AGORA_CRASH_AT, src/crash-points.ts:
 * an object's temporary file written but not renamed, a ref's new value written but not renamed, a
 * tick's refs landed before anything is acted on, a workspace captured before its patch) or after a random
 * delay (the whole process group, git children included), or with its disk filled at a random moment
 * (a small tmpfs; root only). Then restarted (`agora orch serve` until the run ends, or `orch run` again
 * when nothing was submitted yet) and checked: the run ends done, every item integrated exactly once,
 * `orch audit` and `verify --repo` pass, `git fsck` is clean. Seeded; a failure prints its seed.
 *
 *   tsx test/chaos/campaign.ts [--cases 200] [--seed 1] [--mode kill|disk|both] [--jobs 2]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunState } from '../../src/engine/types.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRun } from '../../src/runs/state-store.js';
import { BUILT_CLI, ensureBuiltCli } from '../support/built-cli.js';

const CLI = BUILT_CLI;
const RUN = 'chaos-1';
const ITEMS = ['a', 'b', 'c', 'd'];

/** Where a kill can land, and how many passes through it a run makes at most (roughly). */
const POINTS: Array<[string, number]> = [
  ['pack-temp-written', 40],
  ['ref-values-written', 30],
  ['ref-temp-written', 30],
  ['ref-renamed', 30],
  ['state-committed', 10],
  ['workspace-captured', 4],
];

export type Mode = 'kill' | 'disk';

export interface CaseResult {
  index: number;
  seed: number;
  mode: Mode;
  /** What was done to the first process: `point:n`, `delay:ms` or `full:ms+ms`. */
  fault: string;
  /** Whether the fault actually stopped the first process. */
  interrupted: boolean;
  problems: string[];
  seconds: number;
}

const PLAN = {
  id: 'chaos',
  queue: 'default',
  items: [
    { id: 'a', executor: 'command', inputs: { run: 'printf a > a.txt' }, depends_on: [], resourceLocks: ['a.txt'] },
    { id: 'b', executor: 'command', inputs: { run: 'cat a.txt > b.txt; printf b >> b.txt' }, depends_on: ['a'], resourceLocks: ['b.txt'] },
    { id: 'c', executor: 'command', inputs: { run: 'printf c > c.txt' }, depends_on: [], resourceLocks: ['c.txt'] },
    { id: 'd', executor: 'command', inputs: { run: 'cat b.txt c.txt > d.txt' }, depends_on: ['b', 'c'], resourceLocks: ['d.txt'] },
  ].map((i) => ({ ...i, retry: { maxAttempts: 4, backoff: { initialSeconds: 1 } } })),
};

/** mulberry32: small, seeded, good enough to pick fault points. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Chaos',
  GIT_AUTHOR_EMAIL: 'chaos@example.invalid',
  GIT_COMMITTER_NAME: 'Chaos',
  GIT_COMMITTER_EMAIL: 'chaos@example.invalid',
};

function git(repo: string, args: string[]): string {
  return execFileSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, ...GIT_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryGit(repo: string, args: string[]): string | null {
  try {
    return git(repo, args);
  } catch {
    return null;
  }
}

function agora(repo: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  // Its own process group, so a kill takes its git children with it (workers have groups of their own).
  return spawn(process.execPath, [CLI, ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

function exit(child: ChildProcess, output: { text: string }): Promise<{ code: number | null; signal: string | null }> {
  child.stdout!.on('data', (d) => (output.text += d));
  child.stderr!.on('data', (d) => (output.text += d));
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // gone already
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The run's state as the state store reads it (either layout), or null while there is none (or none readable). */
async function runState(repo: string): Promise<RunState | null> {
  try {
    return (await readRun(await openLocalStore(repo), new RunRefs(), RUN))?.state ?? null;
  } catch {
    return null;
  }
}

async function runStatus(repo: string): Promise<string | null> {
  return (await runState(repo))?.status ?? null;
}

/** Runs until the process exits or `bound` ms pass (then SIGKILL); returns how it ended. */
async function bounded(child: ChildProcess, output: { text: string }, bound: number) {
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), bound);
  const r = await exit(child, output);
  clearTimeout(timer);
  return r;
}

/** Restarts until the run has ended: `orch run` again if nothing was submitted, else `serve` until it has started and the run is terminal. */
async function restart(repo: string, problems: string[], bound: number): Promise<void> {
  const submitted = tryGit(repo, ['for-each-ref', '--format=%(refname)', 'refs/agora/']) ?? '';
  if (!submitted.includes(RUN)) {
    const out = { text: '' };
    const r = await bounded(agora(repo, ['orch', 'run', 'plan.json', '--poll-ms', '50']), out, bound);
    if (r.code !== 0) problems.push(`orch run after the crash exited ${r.code ?? r.signal}: ${out.text.slice(-400)}`);
    return;
  }
  // Always a serve, as a person restarting it would: even a run whose state says it ended may have
  // refs (integration, patches, anchor) that a crash left behind its last state commit.
  const out = { text: '' };
  const serve = agora(repo, ['orch', 'serve', '--poll-ms', '50']);
  const ended = exit(serve, out);
  const deadline = Date.now() + bound;
  let status = await runStatus(repo);
  while (
    (status === null || status === 'running' || !out.text.includes('agora serve: serving')) &&
    Date.now() < deadline &&
    serve.exitCode === null &&
    serve.signalCode === null
  ) {
    await sleep(200);
    status = await runStatus(repo);
  }
  killGroup(serve, serve.exitCode === null ? 'SIGTERM' : 'SIGKILL');
  const stopped = await Promise.race([ended, sleep(30_000).then(() => null)]);
  if (stopped === null) killGroup(serve, 'SIGKILL');
  if (status === null || status === 'running') problems.push(`the restarted serve did not finish the run (status ${status}): ${out.text.slice(-600)}`);
}

/** The invariants every case must end with. */
async function check(repo: string, problems: string[]): Promise<void> {
  const state = await runState(repo);
  if (!state) {
    problems.push('no run ref');
    return;
  }
  if (state.status !== 'done')
    problems.push(
      `run ended ${state.status}: ${Object.values(state.items)
        .map((i) => `${JSON.stringify(i.status)} ${i.reason ?? ''}`)
        .join('; ')}`,
    );
  const integrated = git(repo, [
    'log',
    '--first-parent',
    '--format=%(trailers:key=Agora-Item,valueonly,separator=)',
    `${state.base}..refs/agora/integration/${RUN}`,
  ])
    .split('\n')
    .filter(Boolean)
    .sort();
  if (JSON.stringify(integrated) !== JSON.stringify(ITEMS))
    problems.push(`integrated ${JSON.stringify(integrated)}, expected each of ${ITEMS.join(', ')} once`);
  const d = tryGit(repo, ['show', `refs/agora/integration/${RUN}:d.txt`]);
  if (d !== 'abc') problems.push(`d.txt is ${JSON.stringify(d)}, expected "abc"`);
  try {
    const fsck = execFileSync('git', ['fsck', '--full', '--strict', '--no-dangling'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (fsck.trim()) problems.push(`git fsck: ${fsck.trim()}`);
  } catch (e) {
    problems.push(`git fsck failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
  }
}

async function audit(repo: string, problems: string[], bound: number): Promise<void> {
  const out = { text: '' };
  const a = await bounded(agora(repo, ['orch', 'audit', RUN, '--out', 'bundle.json']), out, bound);
  if (a.code !== 0) {
    problems.push(`orch audit exited ${a.code ?? a.signal}: ${out.text.slice(-400)}`);
    return;
  }
  const v = { text: '' };
  const r = await bounded(agora(repo, ['verify', 'bundle.json', '--repo', '.']), v, bound);
  if (r.code !== 0) problems.push(`verify --repo exited ${r.code ?? r.signal}: ${v.text.slice(-400)}`);
}

function mountSmallDisk(kib: number): string {
  const mnt = mkdtempSync(join(tmpdir(), 'agora-chaos-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', mnt]);
  return mnt;
}

/** Fills the file system holding `dir` to the last byte; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunks = [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1];
  try {
    for (const size of chunks) {
      const buf = Buffer.alloc(size);
      for (;;) {
        try {
          writeSync(fd, buf);
        } catch {
          break; // ENOSPC at this size: try smaller ones
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

export function canFillDisk(): string | null {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a small tmpfs to fill (CI runs as root)';
  try {
    const mnt = mountSmallDisk(64);
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
    return null;
  } catch (e) {
    return `cannot mount a tmpfs here: ${(e as Error).message}`;
  }
}

export async function runCase(index: number, seed: number, mode: Mode, bound = 240_000): Promise<CaseResult> {
  const started = Date.now();
  const random = prng(seed);
  const problems: string[] = [];
  let mnt: string | null = null;
  let base: string;
  if (mode === 'disk') {
    mnt = mountSmallDisk(24 * 1024);
    base = mnt;
  } else {
    base = mkdtempSync(join(tmpdir(), 'agora-chaos-'));
  }
  const repo = join(base, 'repo');
  let fault = '';
  let interrupted = false;
  try {
    execFileSync('git', ['init', '-q', '-b', 'main', '--template=', repo]);
    writeFileSync(join(repo, 'plan.json'), `${JSON.stringify(PLAN, null, 2)}\n`);
    git(repo, ['add', 'plan.json']);
    git(repo, ['commit', '-q', '-m', 'base']);

    const out = { text: '' };
    if (mode === 'kill' && random() < 0.75) {
      const [point, most] = POINTS[Math.floor(random() * POINTS.length)]!;
      const n = 1 + Math.floor(random() * most);
      fault = `${point}:${n}`;
      const r = await bounded(agora(repo, ['orch', 'run', 'plan.json', '--poll-ms', '50'], { AGORA_CRASH_AT: fault }), out, bound);
      interrupted = r.signal === 'SIGKILL';
      if (!interrupted && r.code !== 0) problems.push(`orch run (not killed) exited ${r.code}: ${out.text.slice(-400)}`);
    } else if (mode === 'kill') {
      const delay = Math.floor(random() * 12_000);
      fault = `delay:${delay}`;
      const child = agora(repo, ['orch', 'run', 'plan.json', '--poll-ms', '50']);
      const ended = bounded(child, out, bound);
      const r = await Promise.race([ended, sleep(delay).then(() => null)]);
      if (r === null) {
        killGroup(child, 'SIGKILL');
        interrupted = true;
        await ended;
      } else if (r.code !== 0) problems.push(`orch run (not killed) exited ${r.code}: ${out.text.slice(-400)}`);
    } else {
      const delay = Math.floor(random() * 10_000);
      const hold = 200 + Math.floor(random() * 2_000);
      fault = `full:${delay}+${hold}`;
      const child = agora(repo, ['orch', 'run', 'plan.json', '--poll-ms', '50']);
      const ended = bounded(child, out, bound);
      const r = await Promise.race([ended, sleep(delay).then(() => null)]);
      if (r === null) {
        const filler = fillDisk(base);
        const during = await Promise.race([ended, sleep(hold).then(() => null)]);
        if (during === null) killGroup(child, 'SIGKILL');
        interrupted = true;
        await ended;
        rmSync(filler);
      } else if (r.code !== 0) problems.push(`orch run (disk never filled) exited ${r.code}: ${out.text.slice(-400)}`);
    }
    if (problems.length === 0) await restart(repo, problems, bound);
    if (problems.length === 0) await check(repo, problems);
    if (problems.length === 0) await audit(repo, problems, bound);
  } catch (e) {
    problems.push(`campaign error: ${(e as Error).stack ?? e}`);
  } finally {
    if (mnt) {
      try {
        execFileSync('umount', ['-l', mnt]);
      } catch {
        // leave it; the next case mounts its own
      }
    }
    if (problems.length === 0) rmSync(base, { recursive: true, force: true });
  }
  return { index, seed, mode, fault, interrupted, problems, seconds: (Date.now() - started) / 1000 };
}

/** Runs `cases` cases, `jobs` at a time; case i has seed `seed + i`. */
export async function campaign(opts: { cases: number; seed: number; modes: Mode[]; jobs: number; onResult?: (r: CaseResult) => void }): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  let next = 0;
  const worker = async () => {
    while (next < opts.cases) {
      const i = next++;
      const r = await runCase(i, opts.seed + i, opts.modes[i % opts.modes.length]!);
      results.push(r);
      opts.onResult?.(r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.jobs) }, worker));
  return results.sort((a, b) => a.index - b.index);
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureBuiltCli();
  const cases = Number(arg('cases', '200'));
  const seed = Number(arg('seed', '1'));
  const jobs = Number(arg('jobs', '2'));
  const wanted = arg('mode', 'both');
  let modes: Mode[] = wanted === 'both' ? ['kill', 'disk'] : [wanted as Mode];
  const noDisk = modes.includes('disk') ? canFillDisk() : null;
  if (noDisk) {
    process.stderr.write(`chaos: skipping the full-disk cases: ${noDisk}\n`);
    modes = modes.filter((m) => m !== 'disk');
  }
  const started = Date.now();
  const results = await campaign({
    cases,
    seed,
    modes,
    jobs,
    onResult: (r) =>
      process.stderr.write(
        `${r.problems.length ? 'FAIL' : 'ok  '} case ${r.index} seed ${r.seed} ${r.mode} ${r.fault}${r.interrupted ? ' (interrupted)' : ' (ran through)'} ${r.seconds.toFixed(1)} s` +
          (r.problems.length ? `\n  ${r.problems.join('\n  ')}\n  repeat: tsx test/chaos/campaign.ts --cases 1 --seed ${r.seed} --mode ${r.mode}\n` : '\n'),
      ),
  });
  const failed = results.filter((r) => r.problems.length > 0);
  const interrupted = results.filter((r) => r.interrupted).length;
  process.stderr.write(
    `chaos: ${results.length - failed.length} of ${results.length} passed (${interrupted} interrupted by their fault), seeds ${seed}..${seed + cases - 1}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  process.exit(failed.length ? 1 : 0);
}
