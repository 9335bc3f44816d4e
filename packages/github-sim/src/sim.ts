/**
 * The simulator's domain: apps, installations, repositories (bare repos on disk), checks, pull
 * requests, releases, dispatches, and the webhooks their changes emit. Routes and the public test
 * API both drive this class; the HTTP pipeline lives in server.ts.
 */
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { generateAppKey, TokenStore, type Permissions } from './auth.js';
import { BareRepo, ZERO_SHA, type CommitInfo, type GitIdentity } from './git.js';
import { HttpError, notFound } from './http.js';
import { FaultInjector, RateLimiter, type SimFaults, type SimLimits } from './limits.js';
import { sharedOpenApiValidator, sharedWebhookValidator, type ContractViolation } from './contract.js';
import { WebhookDispatcher, type WebhookDelivery } from './webhooks.js';
import { ActionsRuntime } from './actions/runtime.js';
import type { StepRecord } from './actions/model.js';
import { ObjectsHost } from './objects.js';
import { appJson, checkRunJson, installationJson, nodeId, pullJson, pullMinimalJson, userJson, webhookAppJson, webhookRepoJson, type Urls } from './shapes.js';
import { SimState, type App, type CheckRun, type CheckSuite, type DispatchRecord, type Installation, type Pull, type Repo, type User } from './state.js';

/** Options of `startGitHubSim`. */
export interface SimOptions {
  /** Port to listen on (0 = any free port, the default). */
  port?: number;
  /** Contract violations fail the request with 500 (they are always recorded). */
  strict?: boolean;
  /** Emit `push` webhooks for refs outside refs/heads and refs/tags (GitHub does not). */
  webhookEventsForCustomRefs?: boolean;
  faults?: SimFaults;
  limits?: SimLimits;
  /** Seed of the fault-injection PRNG (default 1). */
  seed?: number;
  /** Directory for the bare repositories (default: a fresh temp dir, removed on close). */
  dataDir?: string;
  /** Webhook delivery timeout (default GitHub's 10 s). */
  webhookTimeoutMs?: number;
  /**
   * The Actions runtime (default on): workflow files trigger runs that registered runners execute.
   * Off, a `workflow_dispatch` is only recorded and handed to `onWorkflowDispatch` hooks.
   */
  actions?: boolean;
  /**
   * How many check runs of one name a check suite keeps (GitHub: 1,000); creating one more deletes the
   * oldest of that name, as GitHub does. Tests lower it.
   */
  checkRunsPerName?: number;
}

/** One line of the request log. */
export interface RequestLogEntry {
  method: string;
  /** The path as requested (without query). */
  path: string;
  /** The route template (`/repos/{owner}/{repo}/check-runs`), `git-http`, or null when unmatched. */
  route: string | null;
  status: number;
  write: boolean;
  contentCreation: boolean;
  /** `app:<id>`, `installation:<id>` or null (anonymous). */
  actor: string | null;
  durationMs: number;
  /** Git over HTTP: the bytes of the response body (ref advertisements, packs). */
  responseBytes?: number;
  /** Git over HTTP: the bytes of the request body (a fetch's wants and haves, a push's commands and pack). */
  requestBytes?: number;
}

/** The dispatch a runner hook receives. */
export type WorkflowDispatchHandler = (dispatch: DispatchRecord, sim: Sim) => void | Promise<void>;

/** Events an app gets when it does not name its own. */
export const DEFAULT_EVENTS = ['push', 'pull_request', 'check_run', 'check_suite', 'workflow_job', 'workflow_run', 'repository_dispatch'];

const DEFAULT_PERMISSIONS: Permissions = {
  metadata: 'read',
  contents: 'write',
  checks: 'write',
  pull_requests: 'write',
  actions: 'write',
};

const iso = (ms = Date.now()): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A change of one ref, as seen by comparing for-each-ref before and after. */
export interface RefChange {
  ref: string;
  before: string;
  after: string;
}

export class Sim {
  readonly state = new SimState();
  readonly tokens = new TokenStore();
  readonly limiter: RateLimiter;
  faults: FaultInjector;
  readonly webhooks: WebhookDispatcher;
  readonly openapi = sharedOpenApiValidator();
  readonly webhookSchemas = sharedWebhookValidator();
  readonly requests: RequestLogEntry[] = [];
  readonly contractViolations: ContractViolation[] = [];
  private readonly dispatchHandlers: WorkflowDispatchHandler[] = [];
  private readonly background = new Set<Promise<unknown>>();
  readonly actions: ActionsRuntime = new ActionsRuntime(this);
  /** The second host that serves release-asset bytes behind a signed URL. */
  readonly objects: ObjectsHost;

  constructor(
    readonly options: SimOptions,
    readonly urls: Urls,
    readonly reposDir: string,
  ) {
    this.limiter = new RateLimiter(options.limits);
    this.objects = new ObjectsHost(urls.objects, (id) => this.state.assets.get(id));
    this.faults = new FaultInjector(options.faults ?? {}, options.seed ?? 1);
    this.webhooks = new WebhookDispatcher({
      timeoutMs: options.webhookTimeoutMs ?? 10_000,
      shouldDrop: () => this.faults.dropWebhook(),
      shouldDuplicate: () => this.faults.duplicateWebhook(),
      userAgent: 'GitHub-Hookshot/sim',
    });
  }

  get actionsEnabled(): boolean {
    return this.options.actions !== false;
  }

  /** Replaces the fault configuration (same seed: the same request sequence sees the same faults). */
  setFaults(faults: SimFaults): void {
    this.faults = new FaultInjector(faults, this.options.seed ?? 1);
  }

  // ---- lookups -------------------------------------------------------------------------------

  repo(fullName: string): Repo {
    const r = this.state.repos.get(fullName.toLowerCase());
    if (!r) throw notFound();
    return r;
  }

  app(appId: number): App {
    const a = this.state.apps.get(appId);
    if (!a) throw notFound();
    return a;
  }

  /** Waits for background work (ref-change processing, dispatch hooks) and all webhook deliveries. */
  async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    await this.webhooks.idle();
  }

  /** Runs `work` in the background, tracked by `settle()`. */
  track<T>(work: Promise<T>): Promise<T> {
    this.background.add(work);
    void work.finally(() => this.background.delete(work)).catch(() => undefined);
    return work;
  }

  get deliveries(): WebhookDelivery[] {
    return this.webhooks.deliveries;
  }

  // ---- setup API -----------------------------------------------------------------------------

  createApp(opts: { webhookUrl: string; secret: string; permissions?: Permissions; events?: string[]; name?: string }): {
    appId: number;
    privateKey: string;
    slug: string;
    webhookSecret: string;
    clientId: string;
  } {
    const id = this.state.nextId();
    const name = opts.name ?? `agora-sim-${id}`;
    const slug = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
    const { privateKey, publicKey } = generateAppKey();
    const owner = this.state.user('sim-owner');
    const bot = this.state.user(`${slug}[bot]`, 'Bot');
    const app: App = {
      id,
      slug,
      name,
      clientId: `Iv1.${randomBytes(8).toString('hex')}`,
      publicKey,
      privateKey,
      webhookUrl: opts.webhookUrl,
      webhookSecret: opts.secret,
      permissions: { metadata: 'read', ...(opts.permissions ?? DEFAULT_PERMISSIONS) },
      events: opts.events ?? DEFAULT_EVENTS,
      owner,
      bot,
      createdAt: iso(),
    };
    this.state.apps.set(id, app);
    return { appId: id, privateKey, slug, webhookSecret: opts.secret, clientId: app.clientId };
  }

  async createRepo(
    owner: string,
    name: string,
    files: Record<string, string>,
    defaultBranch = 'main',
  ): Promise<{ id: number; fullName: string; defaultBranch: string; headSha: string }> {
    const fullName = `${owner}/${name}`;
    if (this.state.repos.has(fullName.toLowerCase()))
      throw new HttpError(422, 'Repository creation failed.', {
        errors: [{ resource: 'Repository', code: 'custom', field: 'name', message: 'name already exists on this account' }],
      });
    if (!/^[A-Za-z0-9_.-]+$/.test(owner) || !/^[A-Za-z0-9_.-]+$/.test(name)) throw new HttpError(422, 'Repository creation failed.');
    const git = await BareRepo.init(join(this.reposDir, owner, `${name}.git`), defaultBranch);
    const now = iso();
    const repo: Repo = {
      id: this.state.nextId(),
      owner: this.state.user(owner),
      name,
      fullName,
      defaultBranch,
      git,
      createdAt: now,
      pushedAt: now,
      nextNumber: 1,
    };
    this.state.repos.set(fullName.toLowerCase(), repo);
    const tree = await git.treeFromFiles(files);
    const who: GitIdentity = { name: owner, email: `${owner}@users.noreply.sim`, date: now };
    const headSha = await git.commitTree(tree, [], 'Initial commit\n', who, who);
    await git.updateRef(`refs/heads/${defaultBranch}`, headSha, null);
    return { id: repo.id, fullName, defaultBranch, headSha };
  }

  /**
   * Renames a repository (as its settings page does): same id, git data and objects under the new name.
   * Unlike GitHub, the old name does not redirect; another repository may take it at once. Returns the new full name.
   */
  async renameRepo(fullName: string, newName: string): Promise<string> {
    const repo = this.repo(fullName);
    const from = repo.fullName;
    const to = `${repo.owner.login}/${newName}`;
    if (!/^[A-Za-z0-9_.-]+$/.test(newName) || this.state.repos.has(to.toLowerCase())) throw new HttpError(422, 'Validation Failed');
    await repo.git.exclusive(async () => {
      const dir = join(this.reposDir, repo.owner.login, `${newName}.git`);
      await rename(repo.git.dir, dir);
      repo.git = new BareRepo(dir);
    });
    this.state.repos.delete(from.toLowerCase());
    repo.name = newName;
    repo.fullName = to;
    this.state.repos.set(to.toLowerCase(), repo);
    for (const i of this.state.installations.values()) if (i.repositories.delete(from)) i.repositories.add(to);
    for (const [key, pull] of [...this.state.pulls]) {
      if (pull.repo !== from) continue;
      this.state.pulls.delete(key);
      pull.repo = to;
      this.state.pulls.set(`${to}#${pull.number}`, pull);
    }
    for (const x of [...this.state.checkRuns.values(), ...this.state.checkSuites.values(), ...this.state.releases.values(), ...this.state.dispatches])
      if (x.repo === from) x.repo = to;
    return to;
  }

  installApp(appId: number, fullName: string): number {
    const app = this.app(appId);
    const repo = this.repo(fullName);
    const existing = [...this.state.installations.values()].find((i) => i.appId === appId && i.account.login === repo.owner.login);
    if (existing) {
      existing.repositories.add(repo.fullName);
      return existing.id;
    }
    const inst: Installation = { id: this.state.nextId(), appId, account: repo.owner, repositories: new Set([repo.fullName]), createdAt: iso() };
    this.state.installations.set(inst.id, inst);
    this.deliver(
      app,
      inst,
      'installation',
      {
        action: 'created',
        installation: installationJson(inst, app, this.urls),
        repositories: [{ id: repo.id, node_id: nodeId('Repository', repo.id), name: repo.name, full_name: repo.fullName, private: true }],
        sender: userJson(repo.owner, this.urls),
      },
      { withInstallation: false },
    );
    return inst.id;
  }

  /** Commits `files` (null deletes a path) on top of `parent` (default: the branch tip) and moves the branch. */
  async push(
    fullName: string,
    opts: { branch: string; files: Record<string, string | null>; message: string; parent?: string; author?: string },
  ): Promise<string> {
    const repo = this.repo(fullName);
    const ref = `refs/heads/${opts.branch}`;
    const who = opts.author ?? repo.owner.login;
    const sender = this.state.user(who);
    return this.changeRefs(repo, sender, { name: who, email: `${who}@users.noreply.sim` }, async () => {
      const current = await repo.git.resolve(ref, 'commit');
      const parent = opts.parent ?? current ?? (await repo.git.resolve(`refs/heads/${repo.defaultBranch}`, 'commit'));
      const baseTree = parent ? await repo.git.resolve(parent, 'tree') : null;
      const tree = await repo.git.buildTree(
        baseTree,
        Object.entries(opts.files).map(([path, content]) => ({ path, content: content === null ? null : Buffer.from(content) })),
      );
      const id: GitIdentity = { name: who, email: `${who}@users.noreply.sim`, date: iso() };
      const sha = await repo.git.commitTree(tree, parent ? [parent] : [], opts.message.endsWith('\n') ? opts.message : opts.message + '\n', id, id);
      await repo.git.updateRef(ref, sha, current);
      return sha;
    });
  }

  /** Opens a pull request as the repository owner (emits `pull_request` `opened`). */
  async openPullRequest(fullName: string, opts: { head: string; base: string; title: string; body?: string; draft?: boolean }): Promise<{ number: number }> {
    const repo = this.repo(fullName);
    const pull = await this.createPull(repo, repo.owner, opts);
    return { number: pull.number };
  }

  /** Turns the repository's "immutable releases" setting on or off (releases published while on stay immutable). */
  setImmutableReleases(fullName: string, on: boolean): void {
    this.repo(fullName).immutableReleases = on;
  }

  /**
   * Sets (or, with `null`, deletes) a repository Actions secret, as the owner does in the settings. Names
   * follow GitHub's rules: letters, digits and `_`, not starting with a digit or `GITHUB_`; stored upper-case.
   * Jobs of the repository's workflows read it as `secrets.<NAME>`, and the runner masks its value in their logs.
   */
  setActionsSecret(fullName: string, name: string, value: string | null): void {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /^GITHUB_/i.test(name)) {
      throw new Error(`secret name ${JSON.stringify(name)} is invalid: letters, digits and _ only, not starting with a digit or GITHUB_`);
    }
    const repo = this.repo(fullName);
    repo.actionsSecrets ??= new Map();
    if (value === null) repo.actionsSecrets.delete(name.toUpperCase());
    else repo.actionsSecrets.set(name.toUpperCase(), value);
  }

  /** Closes or reopens a pull request as the owner (emits `closed` / `reopened`). */
  async setPullState(fullName: string, number: number, state: 'open' | 'closed'): Promise<void> {
    const repo = this.repo(fullName);
    const pull = this.state.pull(repo.fullName, number);
    if (!pull) throw notFound();
    await this.changePullState(repo, pull, state, repo.owner);
  }

  /** Records a workflow runner hook; it receives every accepted `workflow_dispatch`. */
  onWorkflowDispatch(fn: WorkflowDispatchHandler): void {
    this.dispatchHandlers.push(fn);
  }

  // ---- pulls ---------------------------------------------------------------------------------

  async createPull(repo: Repo, user: User, opts: { head: string; base: string; title: string; body?: string | null; draft?: boolean }): Promise<Pull> {
    const head = opts.head.includes(':') ? opts.head.split(':').slice(1).join(':') : opts.head;
    const headSha = await repo.git.resolve(`refs/heads/${head}`, 'commit');
    const baseSha = await repo.git.resolve(`refs/heads/${opts.base}`, 'commit');
    const errors: Record<string, unknown>[] = [];
    if (!headSha) errors.push({ resource: 'PullRequest', field: 'head', code: 'invalid' });
    if (!baseSha) errors.push({ resource: 'PullRequest', field: 'base', code: 'invalid' });
    if (errors.length) throw new HttpError(422, 'Validation Failed', { errors });
    if (head === opts.base || headSha === baseSha) {
      throw new HttpError(422, 'Validation Failed', {
        errors: [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${opts.base} and ${head}` }],
      });
    }
    const dup = this.state.pullsOf(repo.fullName).find((p) => p.state === 'open' && p.headRef === head && p.baseRef === opts.base);
    if (dup) {
      throw new HttpError(422, 'Validation Failed', {
        errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${repo.owner.login}:${head}.` }],
      });
    }
    const now = iso();
    const pull: Pull = {
      id: this.state.nextId(),
      number: repo.nextNumber++,
      repo: repo.fullName,
      title: opts.title,
      body: opts.body ?? null,
      state: 'open',
      headRef: head,
      baseRef: opts.base,
      headSha: headSha!,
      baseSha: baseSha!,
      user,
      draft: opts.draft ?? false,
      createdAt: now,
      updatedAt: now,
      closedAt: null,
    };
    this.state.pulls.set(`${repo.fullName}#${pull.number}`, pull);
    await repo.git.git(['update-ref', `refs/pull/${pull.number}/head`, pull.headSha]);
    await this.emitPull(repo, pull, 'opened', user);
    return pull;
  }

  async changePullState(repo: Repo, pull: Pull, state: 'open' | 'closed', sender: User): Promise<void> {
    if (pull.state === state) return;
    pull.state = state;
    pull.updatedAt = iso();
    pull.closedAt = state === 'closed' ? pull.updatedAt : null;
    await this.emitPull(repo, pull, state === 'closed' ? 'closed' : 'reopened', sender);
  }

  async pullStats(repo: Repo, pull: Pull): Promise<{ commits: number; additions: number; deletions: number; changedFiles: number }> {
    const commits = (await repo.git.revList(pull.headSha, [pull.baseSha])).length;
    const numstat = await repo.git.text(['diff', '--numstat', `${pull.baseSha}...${pull.headSha}`]).catch(() => '');
    let additions = 0;
    let deletions = 0;
    let changedFiles = 0;
    for (const line of numstat.split('\n').filter(Boolean)) {
      const [a, d] = line.split('\t');
      additions += Number(a) || 0;
      deletions += Number(d) || 0;
      changedFiles++;
    }
    return { commits, additions, deletions, changedFiles };
  }

  private async emitPull(repo: Repo, pull: Pull, action: string, sender: User, extra: Record<string, unknown> = {}): Promise<void> {
    const stats = await this.pullStats(repo, pull);
    this.emitToRepo(repo, 'pull_request', () => ({
      action,
      number: pull.number,
      ...extra,
      pull_request: pullJson(pull, repo, this.urls, stats, (r) => webhookRepoJson(r, this.urls)),
      repository: webhookRepoJson(repo, this.urls),
      sender: userJson(sender, this.urls),
    }));
    if (this.actionsEnabled && this.actions.triggersRuns(sender)) {
      const payload = {
        action,
        number: pull.number,
        pull_request: pullJson(pull, repo, this.urls, stats, (r) => webhookRepoJson(r, this.urls)),
        repository: webhookRepoJson(repo, this.urls),
        sender: userJson(sender, this.urls),
      };
      await this.actions.onPullRequest(repo, pull, action, sender, payload);
    }
  }

  // ---- refs and pushes ----------------------------------------------------------------------

  /**
   * Runs `work` (which may move refs: a receive-pack, a REST ref update) exclusively on the repo,
   * then emits webhooks for every ref it changed.
   */
  async changeRefs<T>(repo: Repo, sender: User, pusher: { name: string; email: string }, work: () => Promise<T>): Promise<T> {
    return repo.git.exclusive(async () => {
      const before = await repo.git.refs();
      const result = await work();
      const after = await repo.git.refs();
      const changes: RefChange[] = [];
      for (const ref of new Set([...before.keys(), ...after.keys()])) {
        const b = before.get(ref) ?? ZERO_SHA;
        const a = after.get(ref) ?? ZERO_SHA;
        if (b !== a) changes.push({ ref, before: b, after: a });
      }
      if (changes.length > 0) await this.refsChanged(repo, changes, () => Promise.resolve(before), sender, pusher);
      return result;
    });
  }

  /**
   * A push (`work` serves a receive-pack): like {@link changeRefs}, but what it changed is the record
   * git's reference-transaction hook kept (git.ts), with the old values receive-pack verified, instead of
   * every ref listed before and after: GitHub's cost of a push does not grow with the repository's refs.
   */
  async receivePush<T>(repo: Repo, sender: User, pusher: { name: string; email: string }, work: () => Promise<T>): Promise<T> {
    return repo.git.exclusive(async () => {
      const { result, changes } = await repo.git.recordingRefChanges(work);
      if (changes.length > 0) {
        // Every ref's value before the push, only for a payload that needs it (a new branch's commits).
        const before = async () => {
          const refs = await repo.git.refs();
          for (const c of changes) {
            if (c.before === ZERO_SHA) refs.delete(c.ref);
            else refs.set(c.ref, c.before);
          }
          return refs;
        };
        await this.refsChanged(repo, changes, before, sender, pusher);
        // After the push's events, still under the lock: maintenance never delays or loses what a push sent.
        await repo.git.afterPush().catch((e: unknown) => console.warn(`github-sim: repacking ${repo.fullName} failed: ${(e as Error).message}`));
      }
      return result;
    });
  }

  private async refsChanged(
    repo: Repo,
    changes: RefChange[],
    beforeRefs: () => Promise<Map<string, string>>,
    sender: User,
    pusher: { name: string; email: string },
  ): Promise<void> {
    repo.pushedAt = iso();
    for (const change of changes) {
      if (change.ref.startsWith('refs/pull/')) continue;
      const standard = change.ref.startsWith('refs/heads/') || change.ref.startsWith('refs/tags/');
      if (standard || this.options.webhookEventsForCustomRefs) {
        const payload = await this.pushPayload(repo, change, beforeRefs, sender, pusher);
        this.emitToRepo(repo, 'push', () => payload);
        if (standard && change.after !== ZERO_SHA && this.actionsEnabled && this.actions.triggersRuns(sender))
          await this.actions.onPush(repo, change.ref, change.after, sender, payload);
      }
      if (!change.ref.startsWith('refs/heads/') || change.after === ZERO_SHA) continue;
      const branch = change.ref.slice('refs/heads/'.length);
      await this.requestCheckSuites(repo, branch, change);
      for (const pull of this.state.pullsOf(repo.fullName)) {
        if (pull.headRef !== branch || pull.state !== 'open') continue;
        const previous = pull.headSha;
        pull.headSha = change.after;
        pull.updatedAt = iso();
        await repo.git.git(['update-ref', `refs/pull/${pull.number}/head`, change.after]);
        await this.emitPull(repo, pull, 'synchronize', sender, { before: previous, after: change.after });
      }
      for (const pull of this.state.pullsOf(repo.fullName)) {
        if (pull.baseRef === branch && pull.state === 'open') pull.baseSha = change.after;
      }
    }
  }

  private async pushPayload(
    repo: Repo,
    change: RefChange,
    beforeRefs: () => Promise<Map<string, string>>,
    sender: User,
    pusher: { name: string; email: string },
  ): Promise<Record<string, unknown>> {
    const created = change.before === ZERO_SHA;
    const deleted = change.after === ZERO_SHA;
    let commits: Record<string, unknown>[] = [];
    let headCommit: Record<string, unknown> | null = null;
    let forced = false;
    if (!deleted) {
      const type = await repo.git.objectType(change.after);
      const target = type === 'commit' ? change.after : await repo.git.resolve(change.after, 'commit');
      if (target) {
        const exclude = created ? [...new Set([...(await beforeRefs()).values()])] : [change.before];
        const shas = (await repo.git.revList(target, exclude).catch(() => [])).slice(-20);
        commits = await Promise.all(shas.map((sha) => this.pushCommit(repo, sha)));
        headCommit = commits.find((c) => c.id === target) ?? (await this.pushCommit(repo, target));
        if (!created) forced = !(await repo.git.isAncestor(change.before, target));
      }
    }
    return {
      ref: change.ref,
      before: change.before,
      after: change.after,
      created,
      deleted,
      forced,
      base_ref: null,
      compare: `${this.urls.html}/${repo.fullName}/compare/${change.before.slice(0, 12)}...${change.after.slice(0, 12)}`,
      commits,
      head_commit: headCommit,
      repository: webhookRepoJson(repo, this.urls, true),
      pusher,
      sender: userJson(sender, this.urls),
    };
  }

  private async pushCommit(repo: Repo, sha: string): Promise<Record<string, unknown>> {
    const c = await repo.git.readCommit(sha);
    const paths = await repo.git.changedPaths(sha);
    return {
      id: c.sha,
      tree_id: c.tree,
      distinct: true,
      message: c.message.replace(/\n$/, ''),
      timestamp: c.committer.date ?? iso(),
      url: `${this.urls.html}/${repo.fullName}/commit/${c.sha}`,
      author: { name: c.author.name, email: c.author.email },
      committer: { name: c.committer.name, email: c.committer.email },
      added: paths.added,
      removed: paths.removed,
      modified: paths.modified,
    };
  }

  // ---- checks -------------------------------------------------------------------------------

  /** On a branch push: a `check_suite` `requested` for each installed app that may write checks. */
  private async requestCheckSuites(repo: Repo, branch: string, change: RefChange): Promise<void> {
    for (const inst of this.state.installationsOn(repo.fullName)) {
      const app = this.app(inst.appId);
      if (app.permissions.checks !== 'write') continue;
      const existing = this.findSuite(repo, change.after, app.id);
      if (existing) continue;
      const suite = this.newSuite(repo, change.after, app.id, branch);
      suite.before = change.before;
      suite.after = change.after;
      await this.emitSuite(repo, suite, 'requested', repo.owner);
    }
  }

  findSuite(repo: Repo, sha: string, appId: number): CheckSuite | undefined {
    return [...this.state.checkSuites.values()].find((s) => s.repo === repo.fullName && s.headSha === sha && s.appId === appId);
  }

  newSuite(repo: Repo, sha: string, appId: number, branch: string | null): CheckSuite {
    const now = iso();
    const suite: CheckSuite = {
      id: this.state.nextId(),
      repo: repo.fullName,
      appId,
      headSha: sha,
      headBranch: branch,
      before: null,
      after: sha,
      status: 'queued',
      conclusion: null,
      createdAt: now,
      updatedAt: now,
    };
    this.state.checkSuites.set(suite.id, suite);
    return suite;
  }

  /** The suite for (repo, sha, app), created on first use with the branch whose tip is `sha`. */
  async suiteFor(repo: Repo, sha: string, appId: number): Promise<CheckSuite> {
    const found = this.findSuite(repo, sha, appId);
    if (found) return found;
    const refs = await repo.git.refs();
    const branch = [...refs].find(([ref, s]) => s === sha && ref.startsWith('refs/heads/'))?.[0].slice('refs/heads/'.length) ?? null;
    return this.newSuite(repo, sha, appId, branch);
  }

  runsOf(suite: CheckSuite): CheckRun[] {
    return [...this.state.checkRuns.values()].filter((r) => r.suiteId === suite.id);
  }

  /** Open pull requests whose head is `sha`, as `pull-request-minimal`. */
  pullsForSha(repo: Repo, sha: string): Record<string, unknown>[] {
    return this.state
      .pullsOf(repo.fullName)
      .filter((p) => p.state === 'open' && p.headSha === sha)
      .map((p) => pullMinimalJson(p, repo, this.urls));
  }

  /** Recomputes a suite's status/conclusion from its runs; emits `completed` on the transition. */
  async refreshSuite(repo: Repo, suite: CheckSuite, sender: User): Promise<void> {
    const runs = this.runsOf(suite);
    const wasCompleted = suite.status === 'completed';
    if (runs.length === 0) return;
    if (runs.every((r) => r.status === 'completed')) {
      suite.status = 'completed';
      const order = ['action_required', 'cancelled', 'timed_out', 'failure', 'neutral', 'skipped', 'success'];
      const conclusions = runs.map((r) => r.conclusion ?? 'neutral');
      suite.conclusion = order.find((c) => conclusions.includes(c)) ?? 'success';
      if (conclusions.every((c) => c === 'neutral' || c === 'skipped' || c === 'success') && conclusions.includes('success')) suite.conclusion = 'success';
    } else {
      suite.status = runs.some((r) => r.status !== 'queued') ? 'in_progress' : 'queued';
      suite.conclusion = null;
    }
    suite.updatedAt = iso();
    if (!wasCompleted && suite.status === 'completed') await this.emitSuite(repo, suite, 'completed', sender);
  }

  private webhookSuite(repo: Repo, suite: CheckSuite, app: App): Record<string, unknown> {
    return {
      id: suite.id,
      node_id: nodeId('CheckSuite', suite.id),
      head_branch: suite.headBranch,
      head_sha: suite.headSha,
      status: suite.status === 'completed' || suite.status === 'in_progress' ? suite.status : 'queued',
      conclusion: suite.conclusion,
      url: `${this.urls.api}/repos/${repo.fullName}/check-suites/${suite.id}`,
      before: suite.before,
      after: suite.after,
      pull_requests: this.pullsForSha(repo, suite.headSha),
      app: webhookAppJson(app, this.urls),
      created_at: suite.createdAt,
      updated_at: suite.updatedAt,
    };
  }

  async emitSuite(repo: Repo, suite: CheckSuite, action: string, sender: User): Promise<void> {
    const app = this.app(suite.appId);
    const inst = this.state.installationFor(app.id, repo.fullName);
    if (!inst) return;
    const head = await repo.git.readCommit(suite.headSha);
    this.deliver(app, inst, 'check_suite', {
      action,
      check_suite: {
        ...this.webhookSuite(repo, suite, app),
        ...(action === 'rerequested' ? {} : { rerequestable: true, runs_rerequestable: true }),
        latest_check_runs_count: this.runsOf(suite).length,
        check_runs_url: `${this.urls.api}/repos/${repo.fullName}/check-suites/${suite.id}/check-runs`,
        head_commit: webhookHeadCommit(head),
      },
      repository: webhookRepoJson(repo, this.urls),
      sender: userJson(sender, this.urls),
    });
  }

  checkRunRest(run: CheckRun): Record<string, unknown> {
    const repo = this.repo(run.repo);
    const suite = this.state.checkSuites.get(run.suiteId)!;
    return checkRunJson(run, suite, this.app(run.appId), this.pullsForSha(repo, run.headSha), this.urls);
  }

  /** Emits a `check_run` event to the app that owns the run. */
  emitCheckRun(run: CheckRun, action: string, sender: User, extra: Record<string, unknown> = {}): void {
    const repo = this.repo(run.repo);
    const app = this.app(run.appId);
    const inst = this.state.installationFor(app.id, repo.fullName);
    if (!inst) return;
    const suite = this.state.checkSuites.get(run.suiteId)!;
    const rest = checkRunJson(run, suite, app, this.pullsForSha(repo, run.headSha), this.urls);
    this.deliver(app, inst, 'check_run', {
      action,
      check_run: {
        ...rest,
        app: webhookAppJson(app, this.urls),
        check_suite: this.webhookSuite(repo, suite, app),
        status: run.status === 'completed' || run.status === 'in_progress' || run.status === 'waiting' ? run.status : 'queued',
      },
      ...extra,
      repository: webhookRepoJson(repo, this.urls),
      sender: userJson(sender, this.urls),
    });
  }

  /** Simulates a person clicking a check run's action button (`requested_action`). */
  clickCheckRunButton(fullName: string, checkRunId: number, identifier: string, by?: string): void {
    const run = this.state.checkRuns.get(checkRunId);
    if (!run || run.repo !== this.repo(fullName).fullName) throw notFound();
    if (!run.actions.some((a) => a.identifier === identifier)) {
      throw new HttpError(422, `check run ${checkRunId} has no action button '${identifier}'`);
    }
    // GitHub displays a check run's `actions` only after the check run completes.
    if (run.status !== 'completed') throw new HttpError(422, `check run ${checkRunId} is ${run.status}: its buttons show only once it completed`);
    this.emitCheckRun(run, 'requested_action', this.state.user(by ?? this.repo(fullName).owner.login), { requested_action: { identifier } });
  }

  /** Simulates a person pressing "Re-run" on a check run (`rerequested`). */
  rerequestCheckRun(fullName: string, checkRunId: number, by?: string): void {
    const run = this.state.checkRuns.get(checkRunId);
    if (!run || run.repo !== this.repo(fullName).fullName) throw notFound();
    this.assertRerequestable(run);
    this.emitCheckRun(run, 'rerequested', this.state.user(by ?? this.repo(fullName).owner.login));
  }

  /** GitHub re-runs only completed check runs in completed suites (else 422). */
  assertRerequestable(run: CheckRun): void {
    const suite = this.state.checkSuites.get(run.suiteId);
    if (run.status !== 'completed' || suite?.status !== 'completed') {
      throw new HttpError(422, 'Validation Failed', {
        errors: [{ resource: 'CheckRun', code: 'custom', message: 'This check run is not rerequestable until it and its check suite are completed.' }],
      });
    }
  }

  // ---- actions ------------------------------------------------------------------------------

  /** Records a dispatch and hands it to the runner hooks (in the background). */
  recordDispatch(d: DispatchRecord): void {
    this.state.dispatches.push(d);
    if (d.kind !== 'workflow_dispatch') return;
    for (const fn of this.dispatchHandlers) this.track(Promise.resolve().then(() => fn(d, this)));
  }

  /** Emits a `workflow_job` webhook (for runner hooks); returns the job id. */
  emitWorkflowJob(input: WorkflowJobInput): number {
    const repo = this.repo(input.repo);
    const id = input.id ?? this.state.nextId();
    const runId = input.runId ?? this.state.nextId();
    const status =
      input.action === 'completed' ? 'completed' : input.action === 'in_progress' ? 'in_progress' : input.action === 'waiting' ? 'waiting' : 'queued';
    const started = input.startedAt ?? iso();
    const a = `${this.urls.api}/repos/${repo.fullName}/actions`;
    const running = status === 'in_progress' || status === 'completed';
    this.emitToRepo(repo, 'workflow_job', () => ({
      action: input.action,
      workflow_job: {
        id,
        run_id: runId,
        run_attempt: input.runAttempt ?? 1,
        run_url: `${a}/runs/${runId}`,
        node_id: nodeId('WorkflowJob', id),
        head_sha: input.headSha,
        head_branch: input.headBranch ?? null,
        url: `${a}/jobs/${id}`,
        html_url: `${this.urls.html}/${repo.fullName}/actions/runs/${runId}/job/${id}`,
        check_run_url: `${this.urls.api}/repos/${repo.fullName}/check-runs/${id}`,
        status,
        conclusion: status === 'completed' ? (input.conclusion ?? 'success') : null,
        created_at: input.createdAt ?? started,
        started_at: started,
        completed_at: status === 'completed' ? iso() : null,
        name: input.name,
        steps: (input.steps ?? []).map((s) => ({
          name: s.name,
          number: s.number,
          status: s.status,
          conclusion: s.conclusion,
          started_at: s.startedAt,
          completed_at: s.completedAt,
        })),
        labels: input.labels ?? ['self-hosted'],
        runner_id: running ? (input.runnerId ?? 1) : null,
        runner_name: running ? (input.runnerName ?? 'sim-runner') : null,
        runner_group_id: running ? 1 : null,
        runner_group_name: running ? 'Default' : null,
        workflow_name: input.workflowName ?? null,
      },
      repository: webhookRepoJson(repo, this.urls),
      sender: userJson(repo.owner, this.urls),
    }));
    return id;
  }

  /** Emits a `workflow_run` webhook (for runner hooks); returns the run id. */
  async emitWorkflowRun(input: WorkflowRunInput): Promise<number> {
    const repo = this.repo(input.repo);
    const id = input.id ?? this.state.nextId();
    const workflowId = input.workflowId ?? 1;
    const a = `${this.urls.api}/repos/${repo.fullName}`;
    const status = input.action === 'completed' ? 'completed' : input.action === 'in_progress' ? 'in_progress' : 'queued';
    const head = await repo.git.readCommit(input.headSha);
    const now = iso();
    const actor = input.actor ?? repo.owner;
    const attempt = input.runAttempt ?? 1;
    const path = input.path ?? '.github/workflows/agora.yml';
    const workflow = {
      badge_url: `${this.urls.html}/${repo.fullName}/workflows/${workflowId}/badge.svg`,
      created_at: repo.createdAt,
      html_url: `${this.urls.html}/${repo.fullName}/blob/${repo.defaultBranch}/${path}`,
      id: workflowId,
      name: input.name,
      node_id: nodeId('Workflow', workflowId),
      path,
      state: 'active',
      updated_at: repo.createdAt,
      url: `${a}/actions/workflows/${workflowId}`,
    };
    const repoLite = webhookRepoLite(repo, this.urls);
    this.emitToRepo(repo, 'workflow_run', () => ({
      action: input.action,
      workflow,
      workflow_run: {
        actor: userJson(actor, this.urls),
        artifacts_url: `${a}/actions/runs/${id}/artifacts`,
        cancel_url: `${a}/actions/runs/${id}/cancel`,
        check_suite_url: `${a}/check-suites/${id}`,
        check_suite_id: id,
        check_suite_node_id: nodeId('CheckSuite', id),
        conclusion: status === 'completed' ? (input.conclusion ?? 'success') : null,
        created_at: input.createdAt ?? now,
        event: input.event ?? 'workflow_dispatch',
        head_branch: input.headBranch ?? repo.defaultBranch,
        head_commit: { ...webhookHeadCommit(head) },
        head_repository: repoLite,
        head_sha: input.headSha,
        html_url: `${this.urls.html}/${repo.fullName}/actions/runs/${id}`,
        id,
        jobs_url: `${a}/actions/runs/${id}/jobs`,
        logs_url: `${a}/actions/runs/${id}/logs`,
        name: input.name,
        node_id: nodeId('WorkflowRun', id),
        path,
        previous_attempt_url: attempt > 1 ? `${a}/actions/runs/${id}/attempts/${attempt - 1}` : null,
        pull_requests: [],
        referenced_workflows: [],
        repository: repoLite,
        rerun_url: `${a}/actions/runs/${id}/rerun`,
        run_attempt: attempt,
        run_number: input.runNumber ?? 1,
        run_started_at: input.runStartedAt ?? now,
        status,
        triggering_actor: userJson(actor, this.urls),
        updated_at: now,
        url: `${a}/actions/runs/${id}`,
        workflow_id: workflowId,
        workflow_url: `${a}/actions/workflows/${workflowId}`,
        display_title: input.displayTitle ?? input.name,
      },
      repository: webhookRepoJson(repo, this.urls),
      sender: userJson(actor, this.urls),
    }));
    return id;
  }

  // ---- webhooks -----------------------------------------------------------------------------

  /** Sends `event` to every app installed on `repo` that subscribes to it. */
  emitToRepo(repo: Repo, event: string, build: () => Record<string, unknown>): void {
    for (const inst of this.state.installationsOn(repo.fullName)) {
      const app = this.app(inst.appId);
      if (!app.events.includes(event)) continue;
      this.deliver(app, inst, event, build());
    }
  }

  /** Validates, records violations, and queues one delivery to `app`. */
  deliver(app: App, inst: Installation, event: string, payload: Record<string, unknown>, opts: { withInstallation?: boolean } = {}): void {
    if (event !== 'installation' && !app.events.includes(event)) return;
    const body = opts.withInstallation === false ? payload : { ...payload, installation: { id: inst.id, node_id: nodeId('Installation', inst.id) } };
    const errors = this.webhookSchemas.validate(event, body);
    if (errors.length > 0) {
      const action = typeof body.action === 'string' ? `.${body.action}` : '';
      this.contractViolations.push({ kind: 'webhook', operation: `${event}${action}`, errors });
      // Strict: fail loudly where the event was caused (a 500 on the API request, a throw from sim.push…).
      if (this.options.strict) throw new Error(`webhook ${event}${action} breaks @octokit/webhooks-schemas: ${errors.join('; ')}`);
    }
    this.webhooks.send({ appId: app.id, url: app.webhookUrl, secret: app.webhookSecret }, event, body);
  }

  /** The `GET /app` shape. */
  appRest(app: App): Record<string, unknown> {
    const count = [...this.state.installations.values()].filter((i) => i.appId === app.id).length;
    return appJson(app, this.urls, count);
  }
}

/** A `workflow_job` the runner hook reports. */
export interface WorkflowJobInput {
  repo: string;
  action: 'queued' | 'in_progress' | 'completed' | 'waiting';
  name: string;
  headSha: string;
  headBranch?: string;
  id?: number;
  runId?: number;
  runAttempt?: number;
  conclusion?: 'success' | 'failure' | 'cancelled' | 'skipped' | 'neutral' | 'timed_out' | 'action_required';
  labels?: string[];
  runnerId?: number;
  runnerName?: string;
  workflowName?: string;
  startedAt?: string;
  createdAt?: string;
  steps?: StepRecord[];
}

/** A `workflow_run` the runner hook reports. */
export interface WorkflowRunInput {
  repo: string;
  action: 'requested' | 'in_progress' | 'completed';
  name: string;
  headSha: string;
  headBranch?: string;
  id?: number;
  workflowId?: number;
  path?: string;
  event?: string;
  conclusion?: 'success' | 'failure' | 'cancelled' | 'skipped' | 'neutral' | 'timed_out' | 'action_required';
  runNumber?: number;
  displayTitle?: string;
  runAttempt?: number;
  actor?: User;
  createdAt?: string;
  runStartedAt?: string;
}

function webhookHeadCommit(c: CommitInfo): Record<string, unknown> {
  return {
    id: c.sha,
    tree_id: c.tree,
    message: c.message.replace(/\n$/, ''),
    timestamp: c.committer.date ?? iso(),
    author: { name: c.author.name, email: c.author.email },
    committer: { name: c.committer.name, email: c.committer.email },
  };
}

function webhookRepoLite(repo: Repo, urls: Urls): Record<string, unknown> {
  const full = webhookRepoJson(repo, urls);
  const keep = Object.keys(full).filter(
    (k) => k.endsWith('_url') || ['id', 'node_id', 'name', 'full_name', 'private', 'owner', 'description', 'fork', 'url', 'html_url'].includes(k),
  );
  const out: Record<string, unknown> = {};
  for (const k of keep) if (!['clone_url', 'git_url', 'ssh_url', 'svn_url', 'mirror_url'].includes(k)) out[k] = full[k];
  return out;
}
