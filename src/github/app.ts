import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Probot } from 'probot';
import { loadConfig } from '../config/load.js';
import { loadPrivateKey } from '../audit/keys.js';
import { AgoraGitHub, type Octokit, type PlanEvent } from './agora-github.js';

/**
 * The Probot app: `push` to a branch and `pull_request` opened/synchronize/reopened hand the head commit
 * to {@link AgoraGitHub}, which decides (in the background) whether it is a plan commit. Handlers return
 * at once, so deliveries are answered well within GitHub's 10 s.
 */

interface RepositoryPayload {
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
      if (!p.ref.startsWith('refs/heads/') || p.deleted || /^0+$/.test(p.after)) return;
      const token = tokens(p.installation?.id);
      agora.onPlanEvent(planEvent(context.octokit as Octokit, token, p.repository as RepositoryPayload, p.ref.slice('refs/heads/'.length), p.after));
    });
    app.on(['pull_request.opened', 'pull_request.synchronize', 'pull_request.reopened'], async (context) => {
      const pr = context.payload.pull_request;
      // A fork's branch is not ours to push to, and its code must not run with our token.
      if (pr.head.repo?.full_name !== context.payload.repository.full_name) return;
      const token = tokens(context.payload.installation?.id);
      agora.onPlanEvent(planEvent(context.octokit as Octokit, token, context.payload.repository as RepositoryPayload, pr.head.ref, pr.head.sha));
    });
  };
}

/**
 * Installation tokens for git, from the app's JWT client, cached per installation until five minutes
 * before they expire (Probot's installation client keeps its token to itself).
 */
function installationTokens(app: Probot): (installationId: number | undefined) => () => Promise<string> {
  const cache = new Map<number, { token: string; expiresAt: number }>();
  return (installationId) => async () => {
    if (installationId === undefined) throw new Error('the webhook names no installation: the app cannot get a token');
    const hit = cache.get(installationId);
    if (hit && hit.expiresAt - 5 * 60_000 > Date.now()) return hit.token;
    const appClient = (await app.auth()) as Octokit;
    const res = await appClient.rest.apps.createInstallationAccessToken({ installation_id: installationId });
    cache.set(installationId, { token: res.data.token, expiresAt: Date.parse(res.data.expires_at) });
    return res.data.token;
  };
}

function planEvent(octokit: Octokit, token: () => Promise<string>, repo: RepositoryPayload, branch: string, headSha: string): PlanEvent {
  return {
    octokit,
    token,
    owner: repo.owner.login ?? repo.owner.name ?? repo.full_name.split('/')[0]!,
    repo: repo.name,
    cloneUrl: repo.clone_url,
    htmlUrl: repo.html_url,
    branch,
    headSha,
  };
}

/**
 * The service as configured by the environment: AGORA_CONFIG (the config module: queues and subagents
 * this installation offers), AGORA_CACHE_DIR (mirrors; default a temp dir), AGORA_PLAN_PATH,
 * AGORA_SIGNING_KEY (PEM or path of the audit signing key).
 */
export async function agoraFromEnv(env: NodeJS.ProcessEnv = process.env, log?: AgoraLog): Promise<AgoraGitHub> {
  const cwd = process.cwd();
  const config = await loadConfig({ ...(env.AGORA_CONFIG ? { file: env.AGORA_CONFIG } : {}), cwd });
  const signingKeyPem = env.AGORA_SIGNING_KEY ? (await loadPrivateKey(env.AGORA_SIGNING_KEY, { cwd, sourceName: 'AGORA_SIGNING_KEY' })).privateKeyPem : undefined;
  return new AgoraGitHub({
    cacheDir: env.AGORA_CACHE_DIR ?? join(tmpdir(), 'agora-app-cache'),
    config,
    ...(env.AGORA_PLAN_PATH ? { planPath: env.AGORA_PLAN_PATH } : {}),
    ...(signingKeyPem ? { signingKeyPem } : {}),
    ...(log ? { log } : {}),
  });
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
