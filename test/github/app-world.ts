/**
 * An end-to-end world for the app: the GitHub simulator, the app's Probot middleware on our own
 * loopback server (Probot's own HTTP handling and signature checks), a repository seeded with the
 * offload-fanout fixture, and helpers that read what a user would see through the REST API.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Probot, ProbotOctokit, createNodeMiddleware } from 'probot';
import { loadConfig } from '../../src/config/load.js';
import { armCrashPoint } from '../../src/crash-points.js';
import type { OrchConfig } from '../../src/config/types.js';
import { generateSigningKey } from '../../src/audit/keys.js';
import {
  AgoraGitHub,
  type ActionOutcome,
  type AgoraGitHubOptions,
  type AppOutcomeEvent,
  type EventOutcome,
  type Octokit,
  type SweepReport,
} from '../../src/github/agora-github.js';
import type { AppSigner } from '../../src/github/audit-release.js';
import { agoraApp } from '../../src/github/app.js';
import Bottleneck from 'bottleneck';
import { agoraOctokit, type AgoraOctokitClass } from '../../src/github/octokit.js';
import type { WorkerPolicy } from '../../src/github/worker-policy.js';
import { startGitHubSim, type GitHubSim, type SimLimits } from '@agora/github-sim';
import { eventually } from '../support/eventually.js';
import { appManifest } from './app-manifest.js';

export const EXAMPLE = resolve('examples/offload-fanout');
const SECRET = 'app-webhook-secret';

/** What one app process's events, button presses and sweeps came to, as its `onOutcome` hook told them (kept for the test only). */
export interface OutcomeRecord {
  plans: EventOutcome[];
  actions: ActionOutcome[];
  sweeps: SweepReport[];
}

const records = new WeakMap<AgoraGitHub, OutcomeRecord>();

/** The outcomes an app process of a world has told so far. */
export function outcomesOf(agora: AgoraGitHub): OutcomeRecord {
  const record = records.get(agora);
  if (!record) throw new Error('not an app process of an app world: its outcomes are not recorded');
  return record;
}

function record(into: OutcomeRecord, e: AppOutcomeEvent): void {
  if (e.kind === 'plan') into.plans.push(e.outcome);
  else if (e.kind === 'action') into.actions.push(e.outcome);
  else into.sweeps.push(e.report);
}

export interface AppWorld {
  sim: GitHubSim;
  agora: AgoraGitHub;
  probot: Probot;
  /** The installation's client (what a user's tools would see through the API). */
  octokit: Octokit;
  webhookUrl: string;
  /** The app's id on the simulator. */
  appId: number;
  /** Errors and warnings the app logged (a healthy run logs none). */
  errors: string[];
  fullName: string;
  owner: string;
  repo: string;
  /** The repository's GitHub id on the simulator. */
  repositoryId: number;
  /** The app's signer (`sign: true`: a fresh key), for verifying what it published. */
  signer?: AppSigner;
  installationId: number;
  /** With `plugins`: the app's write queues (a Bottleneck group keyed by installation id), for measuring queue waits. */
  writeQueues?: Bottleneck.Group;
  /** Another account's repository (so another installation of the app) with the world's files, trusted like the world's. */
  addInstallation(owner: string, name: string): Promise<{ fullName: string; installationId: number }>;
  /** Replaces the first app process behind the webhook URL (a restart): fresh cache, no memory. */
  restartApp(): Promise<AgoraGitHub>;
  /**
   * A fresh process that only drives what it is handed, as the Action's job does (src/action/run.ts):
   * not behind the webhook URL and never sweeping. Quiesced and closed with the world.
   */
  startDriver(): Promise<AgoraGitHub>;
  /** The app processes behind the webhook URL now (replicas; the first is `agora`). */
  readonly replicas: readonly AgoraGitHub[];
  /** Takes a replica out from behind the webhook URL (after killing or closing it). */
  removeReplica(agora: AgoraGitHub): void;
  /** Waits until the simulator has delivered everything and the app has finished all its work (periodic sweeps paused meanwhile). */
  quiesce(): Promise<void>;
  close(): Promise<void>;
}

export interface AppWorldOptions {
  /** The app's audit signer: `true` is a fresh local key; or any signer (e.g. keyless against a mock Sigstore). */
  sign?: boolean | AppSigner;
  /** Sweep interval; the sweep also covers the world's repository from the second boot on. Without it, only the sweep at boot. */
  sweepMs?: number;
  /** The simulator's rate limits (GitHub's by default) and fault seed. */
  limits?: SimLimits;
  seed?: number;
  /**
   * The app's Octokit as `agora app` builds it (throttling and retry plugins on, secondary limits
   * retried), with every wait scaled by 1/100 so tests stay fast: write spacing 10 ms instead of 1 s,
   * `retry-after: 5` waits 50 ms, the 5xx backoff 10/40/90 ms. Off: client-side throttling disabled.
   */
  plugins?: boolean;
  /** With `plugins`: the factor every client-side wait is scaled by (default 0.01). */
  octokitScale?: number;
  /** The app's config (what AGORA_CONFIG loads); default the offload-fanout example's. */
  config?: OrchConfig;
  /**
   * App processes behind the one webhook URL (default 1), each with its own cache and its own Probot
   * server; a front server forwards each delivery to every replica (`all`: every webhook arrives N times)
   * or to one in turn (`round-robin`, a load balancer).
   */
  replicas?: number;
  delivery?: 'all' | 'round-robin';
  /** Have the simulator send `push` webhooks for refs outside refs/heads and refs/tags (GitHub does not). */
  customRefWebhooks?: boolean;
  /** How many check runs of one name a suite keeps before the oldest is deleted (GitHub: 1,000). */
  checkRunsPerName?: number;
  /** Further options of every app process (e.g. `maxItems`). */
  agoraOptions?: Partial<AgoraGitHubOptions>;
  /** Whether the operator trusts the world's repository with the local target (default true: most tests run local workers). */
  trusted?: boolean;
  /** Secrets the operator configured for the world's repository. */
  secrets?: Record<string, string>;
  /** The permissions the app is registered (and so installed) with; default what app.yml asks for. */
  permissions?: Record<string, 'read' | 'write'>;
}

/** Probot's Octokit with the plugins as the app configures them, every wait scaled by `scale`. */
export function scaledAgoraOctokit(scale = 0.01) {
  return agoraOctokit({
    throttle: {
      retryAfterBaseValue: 1000 * scale,
      // The plugin's write group spaces writes ≥ 1 s apart (maxConcurrent 1); the same, scaled.
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: 1000 * scale }),
    },
    retry: { retryAfterBaseValue: 1000 * scale },
  });
}

export async function startAppWorld(opts: AppWorldOptions = {}): Promise<AppWorld> {
  const sim = await startGitHubSim({
    strict: true,
    ...(opts.customRefWebhooks ? { webhookEventsForCustomRefs: true } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.checkRunsPerName !== undefined ? { checkRunsPerName: opts.checkRunsPerName } : {}),
  });
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;
  const manifest = appManifest();
  const gh = sim.createApp({ webhookUrl, secret: SECRET, name: 'agora', permissions: opts.permissions ?? manifest.permissions, events: manifest.events });
  // Octokit's throttling spaces writes ≥ 1 s apart (right on GitHub, and kept on in `agora app`); the
  // simulator enforces its own limits, so tests turn the client-side spacing off to stay fast.
  const Octokit = opts.plugins
    ? scaledAgoraOctokit(opts.octokitScale)
    : ProbotOctokit.defaults((o: { throttle?: object }) => ({ ...o, throttle: { ...o.throttle, enabled: false } }));
  // One Probot per app process: a restarted process must not keep the dead one's handlers registered.
  const newProbot = () => new Probot({ appId: gh.appId, privateKey: gh.privateKey, secret: SECRET, baseUrl: sim.apiUrl, logLevel: 'fatal', Octokit });
  let probot = newProbot();
  const config = opts.config ?? (await loadConfig({ file: join(EXAMPLE, 'agora.config.mjs'), cwd: EXAMPLE }));
  const signer: AppSigner | undefined = opts.sign === true ? { kind: 'key', privateKeyPem: generateSigningKey().privateKeyPem } : opts.sign || undefined;
  const dirs: string[] = [];
  const errors: string[] = [];
  const t0 = Date.now();
  const log = {
    info: (m: string) => void (process.env.AGORA_TEST_LOG ? console.log(`${Date.now() - t0} ${m}`) : undefined),
    warn: (m: string) => void errors.push(m),
    error: (m: string) => void errors.push(m),
  };
  // The world's repository is trusted with the local target (as an operator trusts its own repositories)
  // unless `trusted: false`; secrets as given. Filled in once the repository exists.
  const policy: WorkerPolicy = { trustedRepositoryIds: new Set<number>(), secretsByRepository: new Map() };
  const agoras: AgoraGitHub[] = [];
  const known: string[] = [];
  const servers: Server[] = [];
  const live: Array<{ agora: AgoraGitHub; url: string }> = [];
  let turn = 0;
  /** An app process's engine, not yet behind any webhook URL (nothing sweeps until Probot mounts it). */
  const newAgora = async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'agora-app-'));
    dirs.push(cacheDir);
    const told: OutcomeRecord = { plans: [], actions: [], sweeps: [] };
    const agora = new AgoraGitHub({
      cacheDir,
      config,
      pollMs: 100,
      // A killed replica's runs are taken over 1.5 s (+ 0.5 s skew) after its last renewal.
      lease: { ttlMs: 1500, refreshMs: 200, skewMs: 500 },
      finishRetryMs: 200,
      policy,
      log,
      ...(signer ? { signer } : {}),
      // Without `sweepMs`, no periodic sweep (the app's 60 s default) comes in the middle of a slow test.
      ...(opts.sweepMs ? { sweepIntervalMs: opts.sweepMs, repositories: known } : { sweepIntervalMs: 24 * 3600_000 }),
      ...opts.agoraOptions,
      onOutcome: (e) => {
        record(told, e);
        opts.agoraOptions?.onOutcome?.(e);
      },
    });
    records.set(agora, told);
    agoras.push(agora);
    return agora;
  };
  const boot = async () => {
    const agora = await newAgora();
    probot = newProbot();
    const middleware = await createNodeMiddleware(agoraApp(agora), { probot });
    const own = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
    await new Promise<void>((r) => own.listen(0, '127.0.0.1', () => r()));
    servers.push(own);
    return { agora, url: `http://127.0.0.1:${(own.address() as AddressInfo).port}/api/github/webhooks` };
  };
  for (let i = 0; i < (opts.replicas ?? 1); i += 1) live.push(await boot());
  let agora = live[0]!.agora;
  // The front server: what GitHub posts to. It forwards each delivery as is (headers, signature, body).
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding'].includes(k)) headers[k] = v;
      const targets = opts.delivery === 'round-robin' ? [live[turn++ % live.length]!] : [...live];
      void Promise.all(
        targets.map((t) => fetch(t.url, { method: req.method ?? 'POST', headers, body }).then(async (r) => ({ status: r.status, text: await r.text() }))),
      )
        .then((answers) => res.writeHead(answers[0]?.status ?? 503).end(answers[0]?.text ?? 'no replica'))
        .catch((e: unknown) => res.writeHead(502).end(String(e)));
    });
  });
  const files: Record<string, string> = { 'README.md': '# demo\n' };
  for (const f of await readdir(join(EXAMPLE, 'fixture'))) files[`fixture/${f}`] = await readFile(join(EXAMPLE, 'fixture', f), 'utf8');
  const { fullName, id: repositoryId } = await sim.createRepo('octo', 'demo', files);
  if (opts.trusted !== false) (policy.trustedRepositoryIds as Set<number>).add(repositoryId);
  if (opts.secrets) (policy.secretsByRepository as Map<number, Record<string, string>>).set(repositoryId, opts.secrets);
  const installationId = sim.installApp(gh.appId, fullName);
  known.push(fullName);
  if (opts.sweepMs) for (const r of live) r.agora.watchRepository(fullName);
  const octokit = (await probot.auth(installationId)) as Octokit;
  const world: AppWorld = {
    sim,
    get agora() {
      return agora;
    },
    get probot() {
      return probot;
    },
    octokit,
    webhookUrl,
    appId: gh.appId,
    errors,
    fullName,
    owner: 'octo',
    repo: 'demo',
    repositoryId,
    ...(signer ? { signer } : {}),
    installationId,
    ...(opts.plugins ? { writeQueues: (Octokit as AgoraOctokitClass).writeQueues } : {}),
    addInstallation: async (owner, name) => {
      const other = await sim.createRepo(owner, name, files);
      if (opts.trusted !== false) (policy.trustedRepositoryIds as Set<number>).add(other.id);
      const id = sim.installApp(gh.appId, other.fullName);
      known.push(other.fullName);
      return { fullName: other.fullName, installationId: id };
    },
    startDriver: newAgora,
    restartApp: async () => {
      const next = await boot();
      live[0] = next;
      agora = next.agora;
      return agora;
    },
    get replicas() {
      return live.map((r) => r.agora);
    },
    removeReplica: (a) => {
      const i = live.findIndex((r) => r.agora === a);
      if (i >= 0) live.splice(i, 1);
      if (live[0]) agora = live[0].agora;
    },
    quiesce: async () => {
      // Periodic sweeps would keep a replica busy in every round on a loaded machine (a pass there can
      // take longer than the test's 300 ms interval): they stop while the world drains, and go on after.
      for (const a of agoras) a.pauseSweeping();
      try {
        for (let i = 0; i < 50; i += 1) {
          await sim.settle();
          await Promise.all(agoras.map((a) => a.idle()));
          await sim.settle();
          if (agoras.every((a) => !a.busy)) return;
        }
        throw new Error('the app never went idle');
      } finally {
        for (const a of agoras) a.resumeSweeping();
      }
    },
    close: async () => {
      await Promise.all(agoras.map((a) => a.close()));
      await sim.close();
      for (const s of [server, ...servers]) {
        s.closeAllConnections();
        s.close();
      }
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
  return world;
}

/** Check runs on `sha` as the API lists them, by name. */
export async function checkRuns(w: AppWorld, sha: string) {
  const res = await w.octokit.rest.checks.listForRef({ owner: w.owner, repo: w.repo, ref: sha, per_page: 100 });
  return new Map(res.data.check_runs.map((c) => [c.name, c]));
}

/** The example plan, as text. */
export async function examplePlan(): Promise<string> {
  return readFile(join(EXAMPLE, 'plan.json'), 'utf8');
}

/** A plan of `command` items (`run` is the shell command; `locks` the write scope), as text. */
export function commandPlan(id: string, items: ReadonlyArray<{ id: string; run: string; depends_on?: string[]; locks?: string[] }>): string {
  const planItems = items.map((i) => ({ id: i.id, executor: 'command', inputs: { run: i.run }, depends_on: i.depends_on ?? [], resourceLocks: i.locks ?? [] }));
  return `${JSON.stringify({ id, queue: 'default', items: planItems }, null, 2)}\n`;
}

/**
 * A bound (ms, on the reference machine) for an app test that runs plans of `items` items in all: 20 s for
 * the world and the final settling, 10 s an item (each item is a worker, several pushes and a few check
 * writes), times `slowdown` for injected faults, latency or replicas that share the work. Pass it to
 * `scaled()` for a test's timeout, or as `until`'s `within`.
 */
export function runBound(items: number, slowdown = 1): number {
  return (20_000 + 10_000 * items) * slowdown;
}

/** Arms an in-process crash of the world's first app process at the `n`-th pass through `point`; tells whether it came. */
export function armAppCrash(w: AppWorld, point: string, n: number): () => boolean {
  let crashed = false;
  armCrashPoint(point, n, () => {
    crashed = true;
    void w.agora.kill();
  });
  return () => crashed;
}

/** {@link eventually}, letting the simulator deliver what it queued before each look; `within` as there. */
export async function until(what: string, ok: () => Promise<boolean>, w: AppWorld, within?: number): Promise<void> {
  await eventually(what, ok, { before: () => w.sim.settle(), ...(within === undefined ? {} : { within }) });
}

/**
 * The published releases of a run (one per finish: `agora-run-<run>-<root>`), oldest first, as the API
 * lists them, each with its assets' bytes downloaded through the API (a 302 to the objects host).
 */
export async function runReleases(w: AppWorld, runId: string) {
  const o = { owner: w.owner, repo: w.repo };
  const listed = await w.octokit.paginate(w.octokit.rest.repos.listReleases, { ...o, per_page: 100 });
  const ours = listed
    .filter((r) => !r.draft && new RegExp(`^agora-run-${runId.replace(/[.]/g, '\\.')}-[0-9a-f]{12}$`).test(r.tag_name))
    .sort((a, b) => a.id - b.id);
  const out = [];
  for (const rel of ours) {
    const assets = new Map<string, string>();
    for (const a of rel.assets) {
      const dl = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
        ...o,
        asset_id: a.id,
        headers: { accept: 'application/octet-stream' },
      });
      assets.set(a.name, Buffer.from(dl.data as unknown as ArrayBuffer).toString('utf8'));
    }
    out.push({ release: rel, assets });
  }
  return out;
}

/**
 * After a crash: opens the worker gate, starts a fresh app process (which sweeps at start and resumes
 * the run nobody drives), waits until the run check on `sha` is completed and the app is idle. Returns
 * the fresh process.
 */
export async function restartUntilRunEnds(w: AppWorld, sha: string, gate: { open(): Promise<void>; remove(): Promise<void> }): Promise<AgoraGitHub> {
  await gate.open();
  const fresh = await w.restartApp();
  await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
  await w.quiesce();
  await gate.remove();
  return fresh;
}
