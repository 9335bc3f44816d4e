import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Probot } from 'probot';
import { loadConfig } from '../config/load.js';
import { InvalidInputError } from '../errors.js';
import { signerFromEnv } from './signer-env.js';
import { AgoraGitHub, RERUN_ACTION, RETRY_ACTION, type Octokit, type PlanEvent, type RepoAccess, type RepoHandle } from './agora-github.js';
import { policyFromEnv } from './worker-policy.js';
import { GATE_CHECK_NAME } from './check-names.js';

/**
 * The Probot app: `push` to a branch and `pull_request` opened/synchronize/reopened hand the head commit
 * to {@link AgoraGitHub}, which decides (in the background) whether it is a plan commit. Handlers return
 * at once, so deliveries are answered well within GitHub's 10 s.
 */

interface RepositoryPayload {
  id: number;
  name: string;
  owner: { login?: string; name?: string | null };
  clone_url: string;
  html_url: string;
  full_name: string;
}

/** Wires `agora`'s handlers into a Probot instance. */
export function agoraApp(agora: AgoraGitHub): (app: Probot) => void {
  return (app: Probot) => {
    const tokens = installationTokens(app);
    app.on('push', async (context) => {
      const p = context.payload;
      if (!p.ref.startsWith('refs/heads/')) return;
      const token = tokens(p.installation?.id);
      const branch = p.ref.slice('refs/heads/'.length);
      if (p.deleted || /^0+$/.test(p.after)) {
        if (/^0+$/.test(p.before)) return;
        const by = p.sender?.login ?? 'someone';
        agora.onHeadAbandoned({
          ...repoHandle(context.octokit as Octokit, token, p.repository as RepositoryPayload),
          cause: { kind: 'branch-deleted' },
          headSha: p.before,
          branch,
          by,
        });
        return;
      }
      agora.onPlanEvent(planEvent(context.octokit as Octokit, token, p.repository as RepositoryPayload, branch, p.after));
    });
    app.on(['pull_request.opened', 'pull_request.synchronize', 'pull_request.reopened'], async (context) => {
      const pr = context.payload.pull_request;
      // A fork's branch is not ours to push to, and its code must not run with our token.
      if (pr.head.repo?.full_name !== context.payload.repository.full_name) return;
      const token = tokens(context.payload.installation?.id);
      agora.onPlanEvent(planEvent(context.octokit as Octokit, token, context.payload.repository as RepositoryPayload, pr.head.ref, pr.head.sha));
    });
    // Closing a pull request (merged or not) cancels what still runs on its head.
    app.on('pull_request.closed', async (context) => {
      const pr = context.payload.pull_request;
      if (pr.head.repo?.full_name !== context.payload.repository.full_name) return;
      const token = tokens(context.payload.installation?.id);
      const by = context.payload.sender?.login ?? 'someone';
      const handle = repoHandle(context.octokit as Octokit, token, context.payload.repository as RepositoryPayload);
      agora.onHeadAbandoned({ ...handle, cause: { kind: 'pull-request-closed', number: pr.number }, headSha: pr.head.sha, branch: pr.head.ref, by });
    });
    // Buttons (GitHub shows them on completed check runs only): Retry on a failed item's check, Re-run plan
    // on a red `agora / audit`; "Re-run" on an item check retries it, on the gate it runs the plan again.
    app.on(['check_run.requested_action', 'check_run.rerequested'], async (context) => {
      const p = context.payload;
      const run = p.check_run;
      // GitHub sends requested_action and rerequested only to the app that created the check run.
      let request: 'retry' | 'rerun';
      if (p.action === 'rerequested') request = run.name === GATE_CHECK_NAME ? 'rerun' : 'retry';
      else {
        const identifier = (p as { requested_action?: { identifier?: string } }).requested_action?.identifier;
        if (identifier === RETRY_ACTION.identifier) request = 'retry';
        else if (identifier === RERUN_ACTION.identifier) request = 'rerun';
        else return;
      }
      const token = tokens(p.installation?.id);
      agora.onCheckAction({
        ...repoHandle(context.octokit as Octokit, token, p.repository as RepositoryPayload),
        request,
        checkName: run.name,
        externalId: run.external_id ?? '',
        headSha: run.head_sha,
        branch: run.check_suite?.head_branch ?? null,
        by: p.sender?.login ?? 'someone',
      });
    });
    // The `actions` target's worker jobs: queued, started (which runner), completed (with or without a result).
    app.on('workflow_job', async (context) => {
      const p = context.payload;
      const job = p.workflow_job;
      const repo = p.repository as RepositoryPayload;
      agora.onWorkflowJob(
        { owner: repo.owner.login ?? repo.owner.name ?? '', repo: repo.name, repositoryId: repo.id },
        {
          name: job.name,
          jobId: job.id,
          workflowRunId: job.run_id,
          action: p.action,
          conclusion: job.conclusion ?? null,
          runnerName: job.runner_name ?? null,
          htmlUrl: job.html_url ?? null,
        },
      );
    });
    agora.startSweeping(repoAccess(app, tokens));
  };
}

/**
 * Installation tokens for git, from the app's JWT client, cached per installation until five minutes
 * before they expire (Probot's installation client keeps its token to itself).
 */
function installationTokens(app: Probot): (installationId: number | undefined) => InstallationAccess {
  const cache = new Map<number, { token: string; expiresAt: number; permissions: Record<string, string> }>();
  const current = async (installationId: number | undefined) => {
    if (installationId === undefined) throw new Error('the webhook names no installation: the app cannot get a token');
    const hit = cache.get(installationId);
    if (hit && hit.expiresAt - 5 * 60_000 > Date.now()) return hit;
    const appClient = (await app.auth()) as Octokit;
    const res = await appClient.rest.apps.createInstallationAccessToken({ installation_id: installationId });
    const fresh = { token: res.data.token, expiresAt: Date.parse(res.data.expires_at), permissions: { ...(res.data.permissions as Record<string, string>) } };
    cache.set(installationId, fresh);
    return fresh;
  };
  return (installationId) => ({
    token: async () => (await current(installationId)).token,
    permissions: async () => (await current(installationId)).permissions,
  });
}

/** An installation's token for git over HTTPS, and what that token was granted. */
export interface InstallationAccess {
  token: () => Promise<string>;
  permissions: () => Promise<Record<string, string>>;
}

function planEvent(octokit: Octokit, access: InstallationAccess, repo: RepositoryPayload, branch: string, headSha: string): PlanEvent {
  return { ...repoHandle(octokit, access, repo), branch, headSha };
}

function repoHandle(octokit: Octokit, access: InstallationAccess, repo: RepositoryPayload): RepoHandle {
  return {
    octokit,
    token: access.token,
    permissions: access.permissions,
    owner: repo.owner.login ?? repo.owner.name ?? repo.full_name.split('/')[0]!,
    repo: repo.name,
    cloneUrl: repo.clone_url,
    htmlUrl: repo.html_url,
    repositoryId: repo.id,
  };
}

/**
 * The sweep's view of the app's repositories, through the app's JWT.
 * `open`: a repository's installation, an installation client and the repository's URLs (null when the
 * app is not installed there). `list`: every repository of every installation (`GET /app/installations`,
 * then each installation's `GET /installation/repositories`, both paginated), as `owner/name`; suspended
 * installations, and ones removed or suspended while listing, are skipped. With the app's Octokit these
 * reads are conditional, so a sweep over an unchanged set of installations costs only 304s.
 */
export function repoAccess(app: Probot, tokens: (installationId: number | undefined) => InstallationAccess): RepoAccess {
  return {
    open: async (fullName) => {
      const [owner, repo] = fullName.split('/') as [string, string];
      const appClient = (await app.auth()) as Octokit;
      let installationId: number;
      try {
        installationId = (await appClient.rest.apps.getRepoInstallation({ owner, repo })).data.id;
      } catch (e) {
        if ((e as { status?: number }).status === 404) return null; // not installed there (or no such repository)
        throw e;
      }
      const octokit = (await app.auth(installationId)) as Octokit;
      const data = (await octokit.rest.repos.get({ owner, repo })).data;
      return repoHandle(octokit, tokens(installationId), data as unknown as RepositoryPayload);
    },
    list: async () => {
      const appClient = (await app.auth()) as Octokit;
      const installations = await appClient.paginate(appClient.rest.apps.listInstallations, { per_page: 100 });
      const names = new Set<string>();
      for (const installation of installations) {
        if (installation.suspended_at) continue;
        try {
          const octokit = (await app.auth(installation.id)) as Octokit;
          const repos = await octokit.paginate(octokit.rest.apps.listReposAccessibleToInstallation, { per_page: 100 });
          for (const r of repos) names.add(r.full_name);
        } catch (e) {
          const status = (e as { status?: number }).status;
          if (status === 403 || status === 404) continue; // suspended or uninstalled since the list was read
          throw e;
        }
      }
      return [...names];
    },
  };
}

/**
 * The service as configured by the environment: AGORA_CONFIG (the config module: queues and subagents
 * this installation offers), AGORA_CACHE_DIR (mirrors and workspaces, this process's alone until it
 * closes: cache-dir-lock.ts; default a temp dir), AGORA_PLAN_PATH, the worker
 * policy (policyFromEnv: AGORA_TRUSTED_REPOSITORY_IDS, AGORA_SECRETS_FILE), and the audit signer (signerFromEnv: AGORA_SIGNING_KEY, or AGORA_SIGNER=keyless and its variables).
 */
export async function agoraFromEnv(env: NodeJS.ProcessEnv = process.env, log?: AgoraLog): Promise<AgoraGitHub> {
  const cwd = process.cwd();
  const config = await loadConfig({ ...(env.AGORA_CONFIG ? { file: env.AGORA_CONFIG } : {}), cwd });
  const signer = await signerFromEnv(env, cwd);
  const policy = await policyFromEnv(env);
  const agora = new AgoraGitHub({
    policy,
    cacheDir: env.AGORA_CACHE_DIR ?? join(tmpdir(), 'agora-app-cache'),
    config,
    ...(env.AGORA_PLAN_PATH ? { planPath: env.AGORA_PLAN_PATH } : {}),
    ...(env.AGORA_SWEEP_SECONDS
      ? {
          sweepIntervalMs:
            numberAtLeast('AGORA_SWEEP_SECONDS', env.AGORA_SWEEP_SECONDS, 1, 'how often the sweep runs, in seconds, e.g. AGORA_SWEEP_SECONDS=60') * 1000,
        }
      : {}),
    ...(env.AGORA_MAX_ITEMS
      ? { maxItems: numberAtLeast('AGORA_MAX_ITEMS', env.AGORA_MAX_ITEMS, 1, 'the most items a plan may have, e.g. AGORA_MAX_ITEMS=10000') }
      : {}),
    ...(env.AGORA_ITEM_CHECKS
      ? {
          itemChecksUpTo: numberAtLeast(
            'AGORA_ITEM_CHECKS',
            env.AGORA_ITEM_CHECKS,
            0,
            'the most items a run shows as a check run each (larger plans show failures only), e.g. AGORA_ITEM_CHECKS=250',
          ),
        }
      : {}),
    ...(env.AGORA_LEASE_SECONDS
      ? {
          lease: {
            ttlMs:
              numberAtLeast(
                'AGORA_LEASE_SECONDS',
                env.AGORA_LEASE_SECONDS,
                10,
                "how long a replica's hold on a run lasts without renewal, e.g. AGORA_LEASE_SECONDS=60",
              ) * 1000,
          },
        }
      : {}),
    ...(env.AGORA_REPOSITORIES
      ? {
          repositories: env.AGORA_REPOSITORIES.split(',')
            .map((r) => r.trim())
            .filter(Boolean),
        }
      : {}),
    ...(signer ? { signer } : {}),
    ...(log ? { log } : {}),
  });
  // At start: a second process on this cache dir refuses now, not at its first webhook.
  await agora.holdCacheDir();
  return agora;
}

function numberAtLeast(name: string, text: string, min: number, meaning: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) {
    throw new InvalidInputError('invalid-environment', name, [{ path: name, message: `"${text}" is not a number ≥ ${min}` }], `set it to ${meaning}`);
  }
  return n;
}

type AgoraLog = { info(msg: string): void; warn(msg: string): void; error(msg: string): void };

/** Probot's conventional entry: `probot run ./dist/github/app.js` works too. */
export default async function app(probot: Probot): Promise<void> {
  const agora = await agoraFromEnv(process.env, {
    info: (m) => probot.log.info(m),
    warn: (m) => probot.log.warn(m),
    error: (m) => probot.log.error(m),
  });
  agoraApp(agora)(probot);
}
