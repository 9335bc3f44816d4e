import { readFile } from 'node:fs/promises';
import { Probot, Server } from 'probot';
import { AgoraError, errorMessage } from '../errors.js';
import { gitCliVersion } from '../git/git-cli.js';
import { agoraApp, agoraFromEnv } from './app.js';
import type { AgoraGitHub } from './agora-github.js';
import { agoraOctokit } from './octokit.js';

/**
 * `agora app`: the GitHub App server. Probot's conventions for the app's identity — APP_ID, PRIVATE_KEY
 * (or PRIVATE_KEY_PATH), WEBHOOK_SECRET, PORT, HOST, WEBHOOK_PATH, LOG_LEVEL, GHE_HOST — plus Agora's
 * own: AGORA_CONFIG, AGORA_CACHE_DIR, AGORA_PLAN_PATH, AGORA_SIGNING_KEY, and AGORA_GITHUB_API_URL (a
 * GitHub API base URL other than github.com, e.g. the simulator).
 */

export interface RunningApp {
  server: Server;
  agora: AgoraGitHub;
  port: number;
  /** Stops taking webhooks, then stops the runs' workers (recorded as interrupted; resumable later). */
  stop(): Promise<void>;
}

export async function startAppServer(env: NodeJS.ProcessEnv = process.env): Promise<RunningApp> {
  const missing = ['APP_ID', 'WEBHOOK_SECRET'].filter((k) => !env[k]);
  if (!env.PRIVATE_KEY && !env.PRIVATE_KEY_PATH) missing.push('PRIVATE_KEY (or PRIVATE_KEY_PATH)');
  if (missing.length > 0) {
    throw new AgoraError(
      'app-env-missing',
      `agora app needs ${missing.join(', ')} in the environment`,
      'register the app from app.yml, then set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET from its settings page (docs/github-app.md)',
    );
  }
  await requireGit();
  const privateKey = env.PRIVATE_KEY ?? (await readKeyFile(env.PRIVATE_KEY_PATH as string));
  const baseUrl = env.AGORA_GITHUB_API_URL ?? (env.GHE_HOST ? `${env.GHE_PROTOCOL ?? 'https'}://${env.GHE_HOST}/api/v3` : undefined);
  const logLevel = (env.LOG_LEVEL ?? 'info') as 'info';
  const port = Number(env.PORT ?? 3000);
  // Octokit's throttling and retry on, and secondary-limit 403s retried after retry-after (Probot's own handler gives up).
  const AppProbot = Probot.defaults({
    appId: env.APP_ID,
    privateKey,
    secret: env.WEBHOOK_SECRET,
    logLevel,
    Octokit: agoraOctokit(),
    ...(baseUrl ? { baseUrl } : {}),
  });
  // Probot sets up its logger (at LOG_LEVEL) on first use; the Server's own default logger is always `info`.
  const probe = new AppProbot();
  await probe.auth();
  const server = new Server({
    Probot: AppProbot,
    log: probe.log,
    port,
    host: env.HOST ?? '0.0.0.0',
    webhookPath: env.WEBHOOK_PATH ?? '/api/github/webhooks',
  });
  let agora: AgoraGitHub | undefined;
  await server.load(async (app) => {
    agora = await agoraFromEnv(env, { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m), error: (m) => app.log.error(m) });
    agoraApp(agora)(app);
  });
  if (!agora) throw new Error('the app function did not run');
  await server.start();
  const service = agora;
  return {
    server,
    agora: service,
    port,
    stop: async () => {
      await server.stop();
      await service.close();
    },
  };
}

/**
 * Every repository event starts by fetching into the repository's mirror, and every run pushes its refs,
 * with the git CLI (remote-sync.ts: an atomic push with a lease per ref is the remote compare-and-swap,
 * which isomorphic-git's push cannot express). Without git the app could only refuse unsigned webhooks,
 * so it does not start. Checked on this process's PATH, the one the git runner uses.
 */
async function requireGit(): Promise<void> {
  if ((await gitCliVersion()) !== null) return;
  throw new AgoraError(
    'git-cli-missing',
    `agora app needs the git command, and none runs from PATH=${process.env.PATH ?? '(unset)'}`,
    'install git where the app runs, or put it on PATH (docs/github-app.md, "Run the server"; the Dockerfile\'s default build installs it)',
  );
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new AgoraError(
      'app-key-unreadable',
      `PRIVATE_KEY_PATH ${path}: ${errorMessage(e)}`,
      'point PRIVATE_KEY_PATH at the .pem downloaded from the app settings, or set PRIVATE_KEY',
    );
  }
}
