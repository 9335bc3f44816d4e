/**
 * Workspace cost, `git` CLI vs the isomorphic-git fallback (DESIGN.md §2, §7): on a 10-file and a
 * 10,000-file repository (packed, as a clone would be), time materialise + a 3-file change (modify,
 * add nested, delete) + capture. Prints a JSON summary with medians and ratios (10k/10 per method, and
 * fallback/CLI per size). No assertions on wall time.
 *
 *   npx tsx bench/git-workspace.ts [--runs N]
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openLocalStore, type LocalGitStore } from '../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, removeWorkspace, type WorkspaceMethod } from '../src/git/workspace.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const METHODS: WorkspaceMethod[] = ['cli', 'isomorphic-git'];

function git(cwd: string, args: string[]): string {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GIT_') && v !== undefined) env[k] = v;
  Object.assign(env, {
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@localhost',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@localhost',
  });
  return execFileSync('git', args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** A repository with `files` files spread over nested directories (~100 per directory), committed and packed. */
async function makeRepo(root: string, files: number): Promise<{ store: LocalGitStore; head: string }> {
  const dir = join(root, `repo-${files}`);
  git(root, ['init', '-q', '-b', 'main', dir]);
  for (let i = 0; i < files; i++) {
    const sub = join(dir, 'src', `group${Math.floor(i / 1000)}`, `dir${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `file${i}.ts`), `export const value${i} = ${i};\n// ${'x'.repeat(i % 200)}\n`);
  }
  await writeFile(join(dir, '.gitignore'), '*.log\n');
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', `${files} files`]);
  git(dir, ['repack', '-a', '-d', '-q']);
  git(dir, ['prune-packed']);
  return { store: await openLocalStore(dir), head: git(dir, ['rev-parse', 'HEAD']).trim() };
}

interface Timing {
  materializeMs: number;
  editMs: number;
  captureMs: number;
  totalMs: number;
}

async function once(store: LocalGitStore, head: string, method: WorkspaceMethod, run: number): Promise<Timing> {
  const dir = join(store.dir ?? store.gitdir, '..', 'work', `${method}.${run}`); // outside the repository, as the pool's
  const t0 = performance.now();
  const ws = await materializeWorkspace(store, head, dir, { method });
  const t1 = performance.now();
  await writeFile(join(ws.dir, 'src/group0/dir0/file0.ts'), 'export const value0 = -1;\n');
  await mkdir(join(ws.dir, 'src/new/nested'), { recursive: true });
  await writeFile(join(ws.dir, 'src/new/nested/added.ts'), 'export const added = true;\n');
  await unlink(join(ws.dir, 'src/group0/dir0/file1.ts'));
  await writeFile(join(ws.dir, 'debug.log'), 'ignored\n');
  const t2 = performance.now();
  const { changes } = await captureWorkspace(ws);
  const t3 = performance.now();
  if (changes.length !== 3) throw new Error(`expected 3 changed paths, got ${changes.map((c) => c.path).join(', ')}`);
  await removeWorkspace(ws);
  return { materializeMs: t1 - t0, editMs: t2 - t1, captureMs: t3 - t2, totalMs: t3 - t0 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function summarize(ts: Timing[]): Timing {
  const r = (k: keyof Timing) => Math.round(median(ts.map((t) => t[k])) * 10) / 10;
  return { materializeMs: r('materializeMs'), editMs: r('editMs'), captureMs: r('captureMs'), totalMs: r('totalMs') };
}

const ratio = (a: number, b: number) => Math.round((a / b) * 10) / 10;

const root = await mkdtemp(join(tmpdir(), 'agora-bench-ws-'));
try {
  const sizes = [10, 10_000];
  const results: Record<string, Record<string, Timing>> = {};
  for (const size of sizes) {
    const setupStart = performance.now();
    const { store, head } = await makeRepo(root, size);
    process.stderr.write(`repo with ${size} files ready in ${Math.round(performance.now() - setupStart)} ms\n`);
    results[size] = {};
    for (const method of METHODS) {
      const timings: Timing[] = [];
      for (let run = 0; run < RUNS; run++) timings.push(await once(store, head, method, run));
      results[size]![method] = summarize(timings);
      process.stderr.write(`${size} files, ${method}: ${JSON.stringify(results[size]![method])}\n`);
    }
  }
  const big = results[10_000]!;
  const small = results[10]!;
  const summary = {
    bench: 'git-workspace',
    runs: RUNS,
    node: process.version,
    git: git(root, ['--version']).trim(),
    cpus: cpus().length,
    medians: results,
    ratios: {
      '10k/10': Object.fromEntries(
        METHODS.map((m) => [
          m,
          {
            materialize: ratio(big[m]!.materializeMs, small[m]!.materializeMs),
            capture: ratio(big[m]!.captureMs, small[m]!.captureMs),
            total: ratio(big[m]!.totalMs, small[m]!.totalMs),
          },
        ]),
      ),
      'fallback/cli': Object.fromEntries(
        sizes.map((s) => [
          String(s),
          {
            materialize: ratio(results[s]!['isomorphic-git']!.materializeMs, results[s]!.cli!.materializeMs),
            capture: ratio(results[s]!['isomorphic-git']!.captureMs, results[s]!.cli!.captureMs),
            total: ratio(results[s]!['isomorphic-git']!.totalMs, results[s]!.cli!.totalMs),
          },
        ]),
      ),
    },
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await rm(root, { recursive: true, force: true });
}
