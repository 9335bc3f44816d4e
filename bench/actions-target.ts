/**
 * bench/actions-target: the App's `actions` target against its `docker` target, on the simulator, in one run.
 * The same plan of N independent `command` items (each writes one file, so every item has a patch) is
 * pushed to an App whose command items run on the docker target (the reference: the App's own engine),
 * then to an App whose command items run on the actions target: each attempt a `workflow_dispatch` of
 * the shipped examples/workflows/agora-worker.yml, run by the committed action/dist (`mode: worker`,
 * Node 24) on R simulated self-hosted runners, the item in a container on the same engine.
 *
 * For each: the App's REST requests and writes per item (its JWT and installation token; the worker
 * jobs' own requests, with their job token, counted apart), git smart-HTTP requests per item (the
 * result channel is a push by the job and a fetch by the App), the time from the push to the last item
 * check completed, and per item the time from its check going in_progress to completed (and, on
 * actions, from its dispatch). Then the ratios actions/docker and the per-item overhead. Sampled every
 * 10 ms from the simulator's state (no API request).
 *
 * Run: DOCKER_HOST=… npx tsx bench/actions-target.ts [N=100] [runners=4]
 */
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import type { RequestLogEntry } from '@agora/github-sim';
import type { AppWorld } from '../test/github/app-world.js';
import { startAppWorld } from '../test/github/app-world.js';
import type { OrchConfig } from '../src/config/types.js';
import { BUSYBOX } from '../test/docker/engine.js';
import { startWorkerWorld } from '../test/action/worker-world.js';
import { median, report } from './lib.js';

function plan(n: number): string {
  const items = Array.from({ length: n }, (_, i) => {
    const id = `i-${String(i + 1).padStart(4, '0')}`;
    return { id, executor: 'command', inputs: { run: `echo ${id} > ${id}.txt` }, depends_on: [], resourceLocks: [`${id}.txt`] };
  });
  return `${JSON.stringify({ id: `bench-${n}`, queue: 'default', items }, null, 2)}\n`;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

interface Sampled {
  inProgress: Map<string, number>;
  completed: Map<string, number>;
  dispatched: Map<string, number>;
}

/** Pushes the plan, waits for the App to be idle, and samples the item checks and the worker runs. */
async function measure(w: AppWorld, n: number, concurrency: number) {
  const app = new Set([`installation:${w.installationId}`]);
  const from = w.sim.requests.length;
  const s: Sampled = { inProgress: new Map(), completed: new Map(), dispatched: new Map() };
  const t0 = performance.now();
  const sha = await w.sim.push(w.fullName, { branch: `bench-${n}`, files: { 'plan.json': plan(n) }, message: `Plan of ${n} items` });
  const sample = () => {
    const now = performance.now() - t0;
    for (const c of w.sim.sim.state.checkRuns.values()) {
      if (c.headSha !== sha || !c.name.startsWith('agora / i-')) continue;
      if (c.status === 'in_progress' && !s.inProgress.has(c.name)) s.inProgress.set(c.name, now);
      if (c.status === 'completed' && !s.completed.has(c.name)) {
        if (!s.inProgress.has(c.name)) s.inProgress.set(c.name, now);
        s.completed.set(c.name, now);
      }
    }
    for (const r of w.sim.sim.actions.runs.values()) {
      const item = (r.inputs as Record<string, unknown> | undefined)?.item;
      if (typeof item === 'string' && !s.dispatched.has(`agora / ${item}`)) s.dispatched.set(`agora / ${item}`, now);
    }
  };
  const timer = setInterval(sample, 10);
  await w.quiesce();
  await w.sim.sim.actions.idle();
  clearInterval(timer);
  sample();
  const totalMs = performance.now() - t0;
  const log = w.sim.requests.slice(from);
  const ofApp = log.filter((r) => r.actor !== null && (app.has(r.actor) || r.actor.startsWith('app:')));
  const rest = (l: RequestLogEntry[]) => l.filter((r) => r.route !== 'git-http');
  const git = (l: RequestLogEntry[]) => l.filter((r) => r.route === 'git-http');
  const ofJobs = log.filter((r) => r.actor !== null && !app.has(r.actor) && !r.actor.startsWith('app:'));
  const per = (x: number) => round(x / n);
  const itemMs = [...s.completed].map(([name, at]) => at - s.inProgress.get(name)!);
  const fromDispatch = [...s.completed].filter(([name]) => s.dispatched.has(name)).map(([name, at]) => at - s.dispatched.get(name)!);
  const checks = [...w.sim.sim.state.checkRuns.values()].filter((c) => c.headSha === sha && c.name.startsWith('agora / i-'));
  return {
    items: n,
    concurrency,
    itemsSucceeded: checks.filter((c) => c.conclusion === 'success').length,
    run: [...w.sim.sim.state.checkRuns.values()].find((c) => c.headSha === sha && c.name === 'agora')?.conclusion ?? null,
    appRestPerItem: per(rest(ofApp).length),
    appWritesPerItem: per(rest(ofApp).filter((r) => r.write).length),
    appGitHttpPerItem: per(git(ofApp).length),
    jobsRestPerItem: per(rest(ofJobs).length),
    jobsGitHttpPerItem: per(git(ofJobs).length),
    jobsGitPushesPerItem: per(git(ofJobs).filter((r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack')).length),
    pushToLastItemCheckMs: Math.round(Math.max(...s.completed.values())),
    pushToIdleMs: Math.round(totalMs),
    itemMedianMs: Math.round(median(itemMs)),
    itemP95Ms: Math.round(quantile(itemMs, 0.95)),
    ...(fromDispatch.length
      ? { dispatchToCheckMedianMs: Math.round(median(fromDispatch)), dispatchToCheckP95Ms: Math.round(quantile(fromDispatch, 0.95)) }
      : {}),
    errors: w.errors.length,
  };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100);
  const runners = Number(process.argv[3] ?? 4);
  const load = () => loadavg().map((x) => round(x));
  // The same concurrency on both: the App runs at most `runners` items at once, and there are that many runners.
  const config = (target: 'docker' | 'actions'): OrchConfig => ({
    queues: { default: { concurrency: runners } },
    defaultConcurrency: runners,
    subagents: {},
    shapes: {},
    refNamespace: 'refs/agora/',
    commandTarget: target,
    commandImage: BUSYBOX,
    actions: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: 600 },
    configDir: process.cwd(),
  });

  const loadBefore = load();
  const dw = await startAppWorld({ config: config('docker'), trusted: false });
  let docker;
  try {
    docker = report('actions-target', { target: 'docker', ...(await measure(dw, n, runners)) });
  } finally {
    await dw.close();
  }
  const aw = await startWorkerWorld(config('actions'));
  let actions;
  try {
    for (let i = 1; i <= runners; i++) aw.sim.addRunner({ labels: ['agora'], name: `runner-${i}` });
    actions = report('actions-target', { target: 'actions', runners, ...(await measure(aw, n, runners)) });
  } finally {
    await aw.close();
  }
  report('actions-target-vs-docker', {
    items: n,
    concurrency: runners,
    wallRatio: round(actions.pushToLastItemCheckMs / docker.pushToLastItemCheckMs),
    itemMedianRatio: round(actions.itemMedianMs / docker.itemMedianMs),
    // What one item costs more on the actions target: in its own latency, and in wall time per item of the run.
    perItemLatencyOverheadMs: actions.itemMedianMs - docker.itemMedianMs,
    perItemWallOverheadMs: Math.round((actions.pushToLastItemCheckMs - docker.pushToLastItemCheckMs) / n),
    extraAppRestPerItem: round(actions.appRestPerItem - docker.appRestPerItem),
    extraAppWritesPerItem: round(actions.appWritesPerItem - docker.appWritesPerItem),
    loadBefore,
    loadAfter: load(),
  });
}

await main();
