import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { OrchConfig } from '../config/types.js';
import type { AppSigner } from './audit-release.js';
import type { AppOutcomeEvent } from './app-events.js';
import { NO_TRUST, type WorkerPolicy } from './worker-policy.js';

/** The App's options and every default, resolved once: the rest of src/github reads {@link ResolvedOptions} only. */

export interface AppLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface AgoraGitHubOptions {
  /**
   * Where repository mirrors live (disposable), and so their workspace pools: this process's alone, held
   * from its first repository (or `holdCacheDir()`) until close; another process given
   * the same dir is refused (cache-dir-lock.ts).
   */
  cacheDir: string;
  /** The app's configuration: queues, subagents (which executors this installation offers). */
  config: OrchConfig;
  /** The plan file in the repository (default `plan.json`). */
  planPath?: string;
  /** How audit bundles are signed (a local key, or keyless; see signer-env.ts); unsigned without. */
  signer?: AppSigner;
  /**
   * What repositories' plans may run and with which secrets (worker-policy.ts): `local` only for trusted
   * repository ids, secrets only from what the operator configured per repository. Default: no
   * repository is trusted and none has secrets.
   */
  policy?: WorkerPolicy;
  /** The longest a driver sleeps between ticks (default 500 ms). */
  pollMs?: number;
  /**
   * How long an item must have been running before its check is created `in_progress` (default 1000 ms,
   * GitHub's recommended spacing of writes): one that ends sooner gets its check created completed, in one
   * write. No item check is created `queued`: the `agora` check lists what waits.
   */
  progressDelayMs?: number;
  /** How often the sweep runs (default 60 s): resumes undriven running runs, finds plan commits whose webhook was lost. */
  sweepIntervalMs?: number;
  /**
   * The most items a plan may have on GitHub (default 10,000): the `agora` check lists every item, and
   * the run's state is pushed on every transition. Locally `agora orch run` has no such limit.
   */
  maxItems?: number;
  /**
   * The most items a run shows as a check run each (default 250). GitHub allows an installation about
   * 500 content-creating requests an hour, and a check run's creation is one: a larger plan shows its
   * items in the `agora` check (progress counts and the items table, kept current), and only a failed
   * item gets a check of its own (with Retry), at most this many per run.
   */
  itemChecksUpTo?: number;
  /** A large run's `agora` check shows its progress at most this often (default 2 s); the newest counts are always written in the end. */
  progressEveryMs?: number;
  /** Repositories (`owner/name`) the sweep covers from the start, before any webhook names them. */
  repositories?: readonly string[];
  /**
   * Seconds a stopped item's container has between SIGTERM and the kill (default 10). The Action's run
   * mode gives 2: a cancelled job's step is killed about 10 s after the runner's first signal.
   */
  containerStopGraceSeconds?: number;
  /**
   * Run leases (several replicas, one driver per run): how long a lease holds (`ttlMs`, default 60 s; a
   * dead replica's runs are taken over this long after its last renewal; renewed after a third of it), how
   * long a driver goes without pushing its run before it re-reads it from GitHub (`refreshMs`, default 5 s:
   * a cancel recorded by another replica reaches an idle driver this fast, a busy one at its next push),
   * the clock skew tolerated between replicas (`skewMs`, default 2 s), and this process's
   * name in the lease (`holder`, default host/pid/random).
   */
  lease?: { ttlMs?: number; refreshMs?: number; skewMs?: number; holder?: string };
  /** The pause before finishing a run is tried again after GitHub refused it (ms, default 2000; the next is twice that). */
  finishRetryMs?: number;
  /**
   * Told what each event, button press and sweep came to (logs, tests, metrics). The App keeps none of
   * it: whoever wants a history keeps it, bounded as they need.
   */
  onOutcome?: (e: AppOutcomeEvent) => void;
  clock?: () => number;
  log?: AppLog;
}

/** {@link AgoraGitHubOptions} with every default filled in. */
export interface ResolvedOptions {
  readonly cacheDir: string;
  readonly config: OrchConfig;
  readonly planPath: string;
  readonly signer: AppSigner | undefined;
  readonly policy: WorkerPolicy;
  readonly pollMs: number;
  readonly progressDelayMs: number;
  readonly sweepIntervalMs: number;
  readonly maxItems: number;
  readonly itemChecksUpTo: number;
  readonly progressEveryMs: number;
  readonly repositories: readonly string[];
  readonly containerStopGraceSeconds: number | undefined;
  readonly lease: { readonly ttlMs: number; readonly refreshMs: number; readonly skewMs: number; readonly holder: string };
  readonly finishRetryMs: number;
  /** A report GitHub refused is tried again this long after (when nothing else reports first). */
  readonly reportRetryMs: number;
  readonly onOutcome: (e: AppOutcomeEvent) => void;
  readonly clock: () => number;
  /** Logs nowhere when no log was given. */
  readonly log: AppLog;
}

const SILENT: AppLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function resolveOptions(opts: AgoraGitHubOptions): ResolvedOptions {
  return Object.freeze({
    cacheDir: opts.cacheDir,
    config: opts.config,
    planPath: opts.planPath ?? 'plan.json',
    signer: opts.signer,
    policy: opts.policy ?? NO_TRUST,
    pollMs: opts.pollMs ?? 500,
    progressDelayMs: opts.progressDelayMs ?? 1000,
    sweepIntervalMs: opts.sweepIntervalMs ?? 60_000,
    maxItems: opts.maxItems ?? 10_000,
    itemChecksUpTo: opts.itemChecksUpTo ?? 250,
    progressEveryMs: opts.progressEveryMs ?? 2000,
    repositories: opts.repositories ?? [],
    containerStopGraceSeconds: opts.containerStopGraceSeconds,
    lease: Object.freeze({
      ttlMs: opts.lease?.ttlMs ?? 60_000,
      refreshMs: opts.lease?.refreshMs ?? 5_000,
      skewMs: opts.lease?.skewMs ?? 2_000,
      holder: opts.lease?.holder ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`,
    }),
    finishRetryMs: opts.finishRetryMs ?? 2000,
    reportRetryMs: 2000,
    onOutcome: opts.onOutcome ?? (() => undefined),
    clock: opts.clock ?? Date.now,
    log: opts.log ?? SILENT,
  });
}
