/**
 * A stateful GitHub on 127.0.0.1 for tests: GitHub App auth, git smart HTTP over real bare
 * repositories, a REST subset contract-checked against GitHub's OpenAPI description, signed
 * webhooks, rate limits and seeded faults.
 *
 *   const sim = await startGitHubSim({ strict: true });
 *   const app = sim.createApp({ webhookUrl, secret });
 *   await sim.createRepo('octo', 'demo', { 'README.md': 'hi' });
 *   const installationId = sim.installApp(app.appId, 'octo/demo');
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { handle } from './server.js';
import { Sim, type SimOptions, type RequestLogEntry, type WorkflowDispatchHandler, type WorkflowJobInput, type WorkflowRunInput } from './sim.js';
import type { Permissions } from './auth.js';
import type { ContractViolation } from './contract.js';
import type { WebhookDelivery } from './webhooks.js';
import type { DispatchRecord } from './state.js';
import type { SimFaults } from './limits.js';
import type { SimRunner, RunnerOptions, RunRecord, JobRecord } from './actions/model.js';

export type { SimRunner, RunnerOptions, RunRecord, JobRecord };
import type { ObjectRequest } from './objects.js';

export type { ObjectRequest };
export type {
  SimOptions,
  RequestLogEntry,
  WorkflowDispatchHandler,
  WorkflowJobInput,
  WorkflowRunInput,
  Permissions,
  ContractViolation,
  WebhookDelivery,
  DispatchRecord,
};
export { parseWebhook, signWebhook, WebhookVerificationError } from './webhooks.js';
export { PUSHES_PER_REPACK } from './git.js';
export { OpenApiValidator, WebhookSchemaValidator, normaliseNullable } from './contract.js';
export type { SimFaults, SimLimits } from './limits.js';

/** A running simulator. */
export interface GitHubSim {
  /** REST base URL (pass as Octokit's `baseUrl`). */
  apiUrl: string;
  /** Uploads host base URL (release assets). */
  uploadsUrl: string;
  /** Git base URL: clone `${gitUrl}/owner/repo.git`. */
  gitUrl: string;
  /** The other host asset downloads are redirected to (a second listener; objects.githubusercontent.com on GitHub). */
  objectsUrl: string;
  /** What the objects host was asked (path, whether an Authorization header came along, status). */
  readonly objectRequests: readonly ObjectRequest[];
  createApp(opts: { webhookUrl: string; secret: string; permissions?: Permissions; events?: string[]; name?: string }): {
    appId: number;
    privateKey: string;
    slug: string;
    webhookSecret: string;
    clientId: string;
  };
  createRepo(owner: string, name: string, files: Record<string, string>): Promise<{ id: number; fullName: string; defaultBranch: string; headSha: string }>;
  installApp(appId: number, fullName: string): number;
  /** Renames a repository (same id and data); the old name does not redirect and is free for another. Returns the new full name. */
  renameRepo(fullName: string, newName: string): Promise<string>;
  push(fullName: string, opts: { branch: string; files: Record<string, string | null>; message: string; parent?: string; author?: string }): Promise<string>;
  openPullRequest(fullName: string, opts: { head: string; base: string; title: string; body?: string; draft?: boolean }): Promise<{ number: number }>;
  /** Closes or reopens a PR as the owner (`closed` / `reopened` webhooks). */
  setPullRequestState(fullName: string, number: number, state: 'open' | 'closed'): Promise<void>;
  /** The repository setting "immutable releases": once published, a release's assets and tag never change. */
  setImmutableReleases(fullName: string, on: boolean): void;
  /** Sets (`null`: deletes) a repository Actions secret: jobs read it as `secrets.<NAME>`, their logs mask it. */
  setActionsSecret(fullName: string, name: string, value: string | null): void;
  clickCheckRunButton(fullName: string, checkRunId: number, identifier: string, by?: string): void;
  rerequestCheckRun(fullName: string, checkRunId: number, by?: string): void;
  onWorkflowDispatch(fn: WorkflowDispatchHandler): void;
  emitWorkflowJob(input: WorkflowJobInput): number;
  emitWorkflowRun(input: WorkflowRunInput): Promise<number>;
  /** Replaces the fault configuration at runtime (e.g. after setup requests). */
  setFaults(faults: SimFaults): void;
  /** Expires an installation token now (to test refresh paths). */
  expireToken(token: string): void;
  /**
   * Registers a simulated self-hosted runner (labels `self-hosted`, `linux`, `x64` plus `labels`).
   * It takes queued jobs whose `runs-on` its labels cover; `ephemeral` ones de-register after one job;
   * `pickupDelayMs` / `stepDelayMs` make it a slow runner (the job, or each step, stays `queued` that long).
   */
  addRunner(opts?: RunnerOptions): SimRunner;
  /** De-registers a runner (a busy one finishes its job first). */
  removeRunner(id: number): void;
  /** Kills a runner mid-job: its step processes get SIGKILL and the job fails as GitHub reports a lost runner. */
  killRunner(id: number): void;
  /** Waits until no job is running (jobs queued without a runner do not count). */
  actionsIdle(): Promise<void>;
  /** Waits until background work and every queued webhook delivery are done. */
  settle(): Promise<void>;
  /** The bare repository directory of a repo (for direct inspection with git). */
  repoDir(fullName: string): string;
  readonly requests: RequestLogEntry[];
  readonly webhookDeliveries: WebhookDelivery[];
  readonly contractViolations: ContractViolation[];
  readonly dispatches: DispatchRecord[];
  /** The domain model, for assertions beyond the public surface. */
  readonly sim: Sim;
  close(): Promise<void>;
}

/** Starts the simulator on 127.0.0.1. */
export async function startGitHubSim(options: SimOptions = {}): Promise<GitHubSim> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'github-sim-')));
  const listen = async (port: number): Promise<{ server: Server; origin: string }> => {
    const server = createServer();
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const { server, origin } = await listen(options.port ?? 0);
  // Asset downloads are redirected to another host: another port is another origin.
  const objects = await listen(0);
  const urls = { api: origin, html: `${origin}/_html`, uploads: `${origin}/uploads`, git: `${origin}/git`, objects: objects.origin };
  const sim = new Sim(options, urls, join(dataDir, 'repos'));
  server.on('request', (req, res) => void handle(sim, req, res));
  objects.server.on('request', (req, res) => sim.objects.handle(req, res));
  let closed = false;
  return {
    apiUrl: urls.api,
    uploadsUrl: urls.uploads,
    gitUrl: urls.git,
    objectsUrl: urls.objects,
    get objectRequests() {
      return sim.objects.requests;
    },
    createApp: (o) => sim.createApp(o),
    createRepo: (owner, name, files) => sim.createRepo(owner, name, files),
    installApp: (appId, fullName) => sim.installApp(appId, fullName),
    renameRepo: (fullName, newName) => sim.renameRepo(fullName, newName),
    push: (fullName, o) => sim.push(fullName, o),
    openPullRequest: (fullName, o) => sim.openPullRequest(fullName, o),
    setPullRequestState: (fullName, n, s) => sim.setPullState(fullName, n, s),
    setImmutableReleases: (f, on) => sim.setImmutableReleases(f, on),
    setActionsSecret: (f, name, value) => sim.setActionsSecret(f, name, value),
    clickCheckRunButton: (f, id, ident, by) => sim.clickCheckRunButton(f, id, ident, by),
    rerequestCheckRun: (f, id, by) => sim.rerequestCheckRun(f, id, by),
    onWorkflowDispatch: (fn) => sim.onWorkflowDispatch(fn),
    emitWorkflowJob: (i) => sim.emitWorkflowJob(i),
    emitWorkflowRun: (i) => sim.emitWorkflowRun(i),
    setFaults: (f) => sim.setFaults(f),
    addRunner: (o) => sim.actions.addRunner(o),
    removeRunner: (id) => sim.actions.removeRunner(id),
    killRunner: (id) => sim.actions.killRunner(id),
    actionsIdle: () => sim.actions.idle(),
    expireToken: (t) => sim.tokens.expire(t),
    settle: () => sim.settle(),
    repoDir: (fullName) => sim.repo(fullName).git.dir,
    get requests() {
      return sim.requests;
    },
    get webhookDeliveries() {
      return sim.deliveries;
    },
    get contractViolations() {
      return sim.contractViolations;
    },
    get dispatches() {
      return sim.state.dispatches;
    },
    sim,
    close: async () => {
      if (closed) return;
      closed = true;
      await sim.actions.shutdown();
      await Promise.race([sim.settle(), new Promise((r) => setTimeout(r, 2_000))]);
      await Promise.all(
        [server, objects.server].map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
