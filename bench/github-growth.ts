/**
 * bench/github-growth: what one plan event costs the App in git traffic as past runs pile up.
 * A repository on the simulator gets N past runs (copies of a real one-item run's refs under
 * refs/agora/: state, patch, integration, anchor, lease; packed as GitHub packs them); then a
 * one-item plan is pushed and run to the end. Reported per event: the App's git requests, the bytes of
 * their responses for fetches (upload-pack) and for pushes (receive-pack), for N = 10 and N = 10,000, and
 * again once the past runs are pruned as `agora orch gc` prunes them (their refs gone, their anchors in
 * one archive ref).
 *
 * Fetches ask for refs/agora/runs/* only, so their advertisement grows with the runs' state refs alone;
 * a push's advertisement (receive-pack has no protocol v2) lists every ref of the repository: that part
 * grows with all refs until they are pruned.
 *
 * Run: npx tsx bench/github-growth.ts [N…]   (default 10 10000)
 */
import { spawnSync } from 'node:child_process';
import type { RequestLogEntry } from '@agora/github-sim';
import { startAppWorld, type AppWorld } from '../test/github/app-world.js';
import { report } from './lib.js';

function plan(id: string): string {
  return `${JSON.stringify({ id, queue: 'default', items: [{ id: 'touch', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] }, null, 2)}\n`;
}

function git(dir: string, args: string[], input?: string): string {
  const r = spawnSync('git', ['--git-dir', dir, ...args], { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Pushes a plan, runs it to the end, and sums the App's git traffic meanwhile. */
async function planEvent(w: AppWorld, branch: string) {
  const from = w.sim.requests.length;
  await w.sim.push(w.fullName, { branch, files: { 'plan.json': plan(branch) }, message: `plan ${branch}` });
  await w.quiesce();
  const gitLog = w.sim.requests.slice(from).filter((r) => r.route === 'git-http' && r.actor === `installation:${w.installationId}`);
  const sum = (rs: RequestLogEntry[]) => rs.reduce((n, r) => n + (r.responseBytes ?? 0), 0);
  // The simulator marks both halves of a push (its advertisement and the pack) as writes.
  const fetches = gitLog.filter((r) => !r.write);
  const pushes = gitLog.filter((r) => r.write);
  const run = [...w.sim.sim.state.checkRuns.values()].find((c) => c.name === 'agora' && c.status === 'completed' && c.output?.title?.includes(branch));
  return { gitRequests: gitLog.length, fetchBytes: sum(fetches), pushBytes: sum(pushes), allGitBytes: sum(gitLog), run: run?.conclusion ?? 'unknown' };
}

/** Copies every refs/agora/ ref of the first run under `n` past run ids, then packs the refs. */
function seedPastRuns(dir: string, n: number): number {
  const refs = git(dir, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/agora/'])
    .trim()
    .split('\n')
    .map((l) => l.split(' ') as [string, string]);
  const runRef = refs.find(([, r]) => r.startsWith('refs/agora/runs/'));
  if (!runRef) throw new Error('no finished run to copy');
  const runId = runRef[1].slice('refs/agora/runs/'.length);
  const mine = refs.filter(([, r]) => r.includes(`/${runId}`));
  const lines: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const past = `past-${String(i).padStart(5, '0')}-${(0x100000000000 + i).toString(16).slice(-12)}`;
    for (const [oid, ref] of mine) lines.push(`create ${ref.replace(`/${runId}`, `/${past}`)} ${oid}`);
  }
  git(dir, ['update-ref', '--stdin'], `${lines.join('\n')}\n`);
  git(dir, ['pack-refs', '--all']);
  return lines.length;
}

/** What `agora orch gc` leaves of the past runs: one ref, the archive of their anchors (here: the first one's anchor commit). */
function prunePastRuns(dir: string): number {
  const past = git(dir, ['for-each-ref', '--format=%(objectname) %(refname)', 'refs/agora/'])
    .trim()
    .split('\n')
    .map((l) => l.split(' ') as [string, string])
    .filter(([, r]) => r.includes('/past-'));
  const anchor = past.find(([, r]) => r.startsWith('refs/agora/anchors/'));
  const archive = anchor ? [`create refs/agora/anchor-archive ${anchor[0]}`] : [];
  git(dir, ['update-ref', '--stdin'], `${[...past.map(([, r]) => `delete ${r}`), ...archive].join('\n')}\n`);
  const gone = past;
  git(dir, ['pack-refs', '--all']);
  return gone.length;
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  for (const n of sizes.length ? sizes : [10, 10_000]) {
    const w = await startAppWorld({});
    try {
      await planEvent(w, 'first');
      const dir = w.sim.repoDir(w.fullName);
      const seeded = seedPastRuns(dir, n);
      const kept = await planEvent(w, 'with-past-runs');
      report('github-growth', { pastRuns: n, pastRefs: seeded, pruned: false, ...kept });
      const pruned = prunePastRuns(dir);
      const after = await planEvent(w, 'after-gc');
      report('github-growth', { pastRuns: n, prunedRefs: pruned, pruned: true, ...after });
    } finally {
      await w.close();
    }
  }
}

await main();
