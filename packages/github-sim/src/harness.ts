/**
 * Test harness for the simulator's own tests: a started sim, a webhook receiver that verifies
 * every delivery with the sim's parser, an app installed on a seeded repo, and Octokit clients
 * authenticated as the app (JWT) and as the installation (token) through @octokit/auth-app.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { parseWebhook, startGitHubSim, type GitHubSim, type SimOptions, type Permissions } from './index.js';

const execFileP = promisify(execFile);

/** Octokit's request log is noise in test output (failures are asserted, not logged). */
export const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A delivery the receiver accepted (signature verified). */
export interface Received {
  id: string;
  name: string;
  payload: Record<string, unknown>;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Deliveries whose signature did not verify (must stay empty). */
  rejected: string[];
  /** Next responses to send (status codes); default 200. */
  respondWith: number[];
  close(): Promise<void>;
}

/** A loopback HTTP endpoint that verifies and records webhooks. */
export async function startReceiver(secret: string): Promise<Receiver> {
  const received: Received[] = [];
  const rejected: string[] = [];
  const respondWith: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const parsed = parseWebhook({ headers: req.headers, body: Buffer.concat(chunks), secret });
        const status = respondWith.shift() ?? 200;
        if (status < 300) received.push(parsed);
        res.writeHead(status).end('ok');
      } catch (e) {
        rejected.push((e as Error).message);
        res.writeHead(400).end('bad');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    rejected,
    respondWith,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export interface World {
  sim: GitHubSim;
  receiver: Receiver;
  app: ReturnType<GitHubSim['createApp']>;
  repo: { fullName: string; defaultBranch: string; headSha: string };
  owner: string;
  name: string;
  installationId: number;
  /** Octokit as the app (JWT). */
  appOctokit: Octokit;
  /** Octokit as the installation (token, refreshed by auth-app). */
  octokit: Octokit;
  /** A fresh installation token. */
  token(): Promise<string>;
  close(): Promise<void>;
}

/** Starts a sim with one app installed on `owner/name` and returns clients for it. */
export async function startWorld(opts: SimOptions & { permissions?: Permissions; events?: string[]; files?: Record<string, string> } = {}): Promise<World> {
  const secret = 'test-secret';
  const sim = await startGitHubSim({ strict: true, ...opts });
  const receiver = await startReceiver(secret);
  const app = sim.createApp({ webhookUrl: receiver.url, secret, permissions: opts.permissions, events: opts.events });
  const owner = 'octo';
  const name = 'demo';
  const repo = await sim.createRepo(owner, name, opts.files ?? { 'README.md': '# demo\n', 'src/a.txt': 'a\n' });
  const installationId = sim.installApp(app.appId, repo.fullName);
  const auth = { appId: app.appId, privateKey: app.privateKey };
  const appOctokit = new Octokit({ baseUrl: sim.apiUrl, authStrategy: createAppAuth, auth, log: quiet });
  const octokit = new Octokit({ baseUrl: sim.apiUrl, authStrategy: createAppAuth, auth: { ...auth, installationId }, log: quiet });
  const tokenAuth = createAppAuth({ ...auth, installationId, request: appOctokit.request });
  return {
    sim,
    receiver,
    app,
    repo,
    owner,
    name,
    installationId,
    appOctokit,
    octokit,
    token: async () => (await tokenAuth({ type: 'installation', refresh: true })).token,
    close: async () => {
      await sim.close();
      await receiver.close();
    },
  };
}

/** Runs git with no prompts and no config from the machine. */
export async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await execFileP('git', args, {
    cwd,
    env: {
      ...process.env,
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@example.com',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@example.com',
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** A clone URL carrying an installation token the way GitHub documents it. */
export function cloneUrl(sim: GitHubSim, fullName: string, token: string): string {
  const u = new URL(`${sim.gitUrl}/${fullName}.git`);
  u.username = 'x-access-token';
  u.password = token;
  return u.toString();
}
