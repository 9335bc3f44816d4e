import { branchRef, mirrorPrefix, mirrorRef } from '../git/refspec.js';
import { join } from 'node:path';
import type { OrchConfig } from '../config/types.js';
import { ActionsTarget } from '../executors/actions-target.js';
import { configWantsTarget, createTargets, repositoryScope } from '../executors/targets.js';
import type { WorkerTarget } from '../executors/types.js';
import type { Oid } from '../git/types.js';
import type { AttemptContext } from '../runs/attempt.js';
import { RunRefs } from '../runs/refs.js';
import { WorkspacePool } from '../runs/workspace-pool.js';
import { actionsApi } from './actions-api.js';
import { MirroredGitStore } from './mirrored-store.js';
import type { Octokit } from './octokit.js';
import { RemoteMirror, type TokenSource } from './remote-sync.js';

/**
 * Everything the app keeps for one repository, all of it disposable: the mirror (under the cache dir),
 * the store over it, its workspace pool and scratch dir, and the worker targets (local only for a
 * repository the operator trusts; docker when the app's config names it, its containers scoped to the repository on its GitHub host, which every
 * replica of the app shares: see {@link repositoryScope}). Deleting the cache
 * dir loses nothing: the next event fetches what it needs from GitHub.
 */
export class RepoContext {
  private constructor(
    readonly fullName: string,
    readonly store: MirroredGitStore,
    readonly refs: RunRefs,
    readonly attempt: AttemptContext,
    private tokenSource: TokenSource,
    private client: Octokit,
  ) {}

  /** The `actions` target, when the app's config uses it: webhooks about its jobs go to it. */
  get actions(): ActionsTarget | undefined {
    const t = this.attempt.targets.actions;
    return t instanceof ActionsTarget ? t : undefined;
  }

  /** Opens (creating on demand) the mirror of `fullName` under `cacheDir`. */
  static async open(args: {
    cacheDir: string;
    fullName: string;
    /** The repository's id, when known: part of the mirror's path, so a repository that later takes the name gets its own. */
    repositoryId?: number;
    cloneUrl: string;
    config: OrchConfig;
    token: TokenSource;
    /** The installation's REST client (the actions target dispatches with it; replaced as events arrive). */
    octokit: Octokit;
    clock: () => number;
    /** Whether this repository's plans may run on `local` (the operator trusts it: see worker-policy.ts). */
    offerLocal: boolean;
    /** Seconds a stopped item's container has before the kill (the docker target's default when unset). */
    containerStopGraceSeconds?: number;
    /** The secrets the operator configured for this repository: all a worker's declared secrets can come from. */
    secrets: Record<string, string>;
  }): Promise<RepoContext> {
    const refs = new RunRefs(args.config.refNamespace);
    const dir =
      join(args.cacheDir, ...args.fullName.toLowerCase().split('/').map(safeSegment)) + (args.repositoryId === undefined ? '' : `-${args.repositoryId}`);
    // Assigned once the context exists; the mirror's token callback reads it later, so it cannot be a const.
    // eslint-disable-next-line prefer-const
    let ctx: RepoContext | undefined;
    const mirror = await RemoteMirror.open(`${dir}.git`, args.cloneUrl, () => (ctx ? ctx.tokenSource() : args.token()));
    const store = new MirroredGitStore(mirror, refs.ns);
    const scratchDir = join(store.gitdir, 'agora');
    // The app's own config decides (never the repository's). Containers are scoped to the repository on
    // its GitHub host, not to this mirror: a replica taking a run over re-attaches to the dead one's.
    const targets: Record<string, WorkerTarget> = await createTargets({
      config: args.config,
      stateDir: join(scratchDir, 'pids'),
      scope: repositoryScope({ cloneUrl: args.cloneUrl, fullName: args.fullName, refNamespace: args.config.refNamespace }),
      offerLocal: args.offerLocal,
      ...(args.containerStopGraceSeconds !== undefined ? { dockerStopGraceSeconds: args.containerStopGraceSeconds } : {}),
    });
    if (configWantsTarget(args.config, 'actions')) {
      const [owner, repo] = args.fullName.split('/') as [string, string];
      targets.actions = new ActionsTarget({
        ...(args.config.actions ? { config: args.config.actions } : {}),
        api: async () => actionsApi(() => (ctx ? ctx.client : args.octokit), owner, repo),
        store,
        refs,
        fetchRefs: (refspecs) => store.fetch(refspecs),
        clock: args.clock,
      });
    }
    const workspaces = WorkspacePool.outsideRepository(store);
    await workspaces.clear();
    const attempt: AttemptContext = {
      store,
      refs,
      config: args.config,
      targets,
      scratchDir,
      workspaces,
      // Never the app's own environment: it holds the private key of every installation.
      environment: args.secrets,
      clock: args.clock,
    };
    ctx = new RepoContext(args.fullName, store, refs, attempt, args.token, args.octokit);
    return ctx;
  }

  /** The freshest way to get a token (installation clients are replaced as events arrive). */
  useToken(token: TokenSource, octokit?: Octokit): void {
    this.tokenSource = token;
    if (octokit) this.client = octokit;
  }

  /**
   * Fetches `branch` and the runs' state refs (what a plan event reads: whether this commit's run exists,
   * which older runs it supersedes, which run a later push re-gates); makes sure `sha` is present. Patches
   * (the re-gate fetches its run's), integration heads, anchors, leases and rejections are fetched where
   * they are needed, not per event:
   * with protocol v2 the server then advertises only `runs/*`, which `agora orch gc` keeps short.
   */
  async fetchForEvent(branch: string, sha: Oid): Promise<void> {
    const runs = this.refs.runsPrefix;
    await this.store.fetch([mirrorRef(branchRef(branch)), mirrorPrefix(runs)]);
    if (!(await this.store.hasObject(sha))) await this.store.fetch([sha]);
  }
}

function safeSegment(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
}
