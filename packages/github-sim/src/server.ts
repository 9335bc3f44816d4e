/**
 * The HTTP front of the simulator: one loopback server with three faces — the REST API at `/`,
 * the uploads host at `/uploads`, and git smart HTTP at `/git`. Every API request passes through
 * auth, repository access, permissions, rate limits, faults, request-body contract checks, the
 * handler, response contract checks, ETags, and the request log.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifyAppJwt, permits, type Permissions } from './auth.js';
import { HttpError, notFound, parseJsonBody, readBody, send } from './http.js';
import { gitService, serveGitHttp } from './git-http.js';
import { compileTemplate, type Caller, type Route, type RouteResult } from './route.js';
import type { Sim, RequestLogEntry } from './sim.js';
import type { Repo } from './state.js';
import { appRoutes } from './routes/apps.js';
import { gitDataRoutes } from './routes/git-data.js';
import { checkRoutes } from './routes/checks.js';
import { pullRoutes } from './routes/pulls.js';
import { releaseRoutes } from './routes/releases.js';
import { actionRoutes } from './routes/actions.js';
import { actionRunRoutes } from './routes/action-runs.js';
import { workflowRoutes } from './routes/workflows.js';

/** Every simulated REST operation. */
export const ROUTES: Route[] = [
  ...appRoutes,
  ...gitDataRoutes,
  ...checkRoutes,
  ...pullRoutes,
  ...releaseRoutes,
  ...actionRoutes,
  ...actionRunRoutes,
  ...workflowRoutes,
  {
    method: 'GET',
    template: '/rate_limit',
    auth: 'installation',
    handle: async () => ({ status: 200, body: {} }),
  },
];

const COMPILED = ROUTES.map((r) => ({ route: r, match: compileTemplate(r.template) }));

const WRITE_METHODS = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function actorKey(caller: Caller | null): string {
  if (!caller) return 'anonymous';
  return caller.kind === 'app' ? `app:${caller.app.id}` : `installation:${caller.installation.id}`;
}

function actorLabel(caller: Caller | null): string {
  if (!caller) return '127.0.0.1';
  return caller.kind === 'app' ? `app ID ${caller.app.id}` : `installation ID ${caller.installation.id}`;
}

/** Resolves the Authorization header to a caller; throws 401 on a bad credential, null when absent. */
function authenticate(sim: Sim, header: string | undefined): Caller | null {
  if (!header) return null;
  const m = /^(?:bearer|token)\s+(\S+)$/i.exec(header.trim());
  if (!m) throw new HttpError(401, 'Bad credentials');
  const token = m[1]!;
  if (token.split('.').length === 3 && token.startsWith('eyJ')) {
    const appId = verifyAppJwt(token, Math.floor(Date.now() / 1000), (iss) => {
      const app = [...sim.state.apps.values()].find((a) => String(a.id) === iss || a.clientId === iss);
      return app ? { appId: app.id, publicKey: app.publicKey } : undefined;
    });
    return { kind: 'app', app: sim.app(appId) };
  }
  const t = sim.tokens.lookup(token, Date.now());
  if (!t) throw new HttpError(401, 'Bad credentials');
  const installation = sim.state.installations.get(t.installationId);
  if (!installation) throw new HttpError(401, 'Bad credentials');
  return { kind: 'installation', app: sim.app(t.appId), token: t, installation };
}

/** Whether an installation caller may see `repo` at all (else GitHub answers 404). */
function canSee(caller: Caller, repo: Repo): boolean {
  if (caller.kind === 'app') return true;
  if (!caller.installation.repositories.has(repo.fullName)) return false;
  return caller.token.repositories === null || caller.token.repositories.includes(repo.fullName);
}

function forbidden(): HttpError {
  return new HttpError(403, 'Resource not accessible by integration', {}, {}, 'https://docs.github.com/rest');
}

function rateHeaders(sim: Sim, caller: Caller | null): Record<string, string> {
  const s = sim.limiter.snapshot(actorKey(caller), Date.now());
  return {
    'x-ratelimit-limit': String(s.limit),
    'x-ratelimit-remaining': String(s.remaining),
    'x-ratelimit-reset': String(s.reset),
    'x-ratelimit-used': String(s.used),
    'x-ratelimit-resource': 'core',
  };
}

/** Handles one request on any of the three faces. */
export async function handle(sim: Sim, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const method = (req.method ?? 'GET').toUpperCase();
  const log: RequestLogEntry = {
    method,
    path: url.pathname,
    route: null,
    status: 0,
    write: WRITE_METHODS.has(method),
    contentCreation: false,
    actor: null,
    durationMs: 0,
  };
  try {
    if (url.pathname.startsWith('/git/')) {
      await sim.track(handleGit(sim, req, res, url, log));
    } else if (url.pathname.startsWith('/_sim/logs/')) {
      serveJobLog(sim, url.pathname.slice('/_sim/logs/'.length), res, log);
    } else if (url.pathname.startsWith('/_sim/oidc/')) {
      serveOidc(sim, req, url, res, log);
    } else {
      await handleApi(sim, req, res, url, method, log);
    }
  } catch (e) {
    // Last resort: never crash the server; a bug here is a 500 the tests will see.
    if (!res.headersSent)
      send(res, 500, { message: `simulator error: ${(e as Error).message}`, documentation_url: 'https://docs.github.com/rest', status: '500' });
    else res.end();
    log.status = 500;
  } finally {
    log.status ||= res.statusCode;
    log.durationMs = Date.now() - started;
    sim.requests.push(log);
  }
}

async function handleApi(sim: Sim, req: IncomingMessage, res: ServerResponse, url: URL, method: string, log: RequestLogEntry): Promise<void> {
  const uploads = url.pathname.startsWith('/uploads/');
  const path = uploads ? url.pathname.slice('/uploads'.length) : url.pathname;
  let caller: Caller | null = null;
  let key = 'anonymous';
  let admitted = false;
  const baseHeaders = (): Record<string, string> => ({
    ...rateHeaders(sim, caller),
    'x-github-request-id': `SIM:${sim.requests.length + 1}`,
    'x-github-media-type': 'github.v3; format=json',
    'x-github-api-version-selected': '2022-11-28',
  });
  try {
    let found: { route: Route; params: Record<string, string> } | null = null;
    for (const c of COMPILED) {
      if (c.route.method !== method || Boolean(c.route.uploads) !== uploads) continue;
      const params = c.match(path);
      if (params) {
        found = { route: c.route, params };
        break;
      }
    }
    if (!found) {
      await readBody(req, sim.limiter.limits.maxBodyBytes).catch(() => undefined);
      throw notFound();
    }
    const { route, params } = found;
    log.route = route.template;
    log.contentCreation = Boolean(route.creates);
    caller = authenticate(sim, req.headers.authorization);
    if (!caller) throw new HttpError(401, 'Requires authentication');
    log.actor = actorKey(caller);
    if (route.auth === 'app' && caller.kind !== 'app') {
      throw new HttpError(401, 'A JSON web token could not be decoded');
    }
    if (route.auth === 'installation' && caller.kind !== 'installation' && route.template !== '/rate_limit') {
      throw forbidden();
    }
    let repo: Repo | undefined;
    if (params.owner !== undefined && params.repo !== undefined) {
      repo = sim.repo(`${params.owner}/${params.repo}`);
      if (!canSee(caller, repo)) throw notFound();
    }
    if (caller.kind === 'installation' && route.permission && !permits(caller.token.permissions, route.permission as Permissions)) {
      throw forbidden();
    }
    key = actorKey(caller);
    sim.limiter.admit(key, actorLabel(caller), Boolean(route.creates), Date.now());
    admitted = true;
    const latency = sim.faults.latencyMs();
    if (latency > 0) await sleep(latency);
    await sim.faults.before({ method, route: route.template, params });
    const injected = sim.faults.serverError();
    if (injected !== null) {
      await readBody(req, sim.limiter.limits.maxBodyBytes).catch(() => undefined);
      throw new HttpError(injected, injected === 502 ? 'Server Error' : injected === 503 ? 'Service Unavailable' : 'Internal Server Error');
    }
    const raw = await readBody(req, sim.limiter.limits.maxBodyBytes);
    let body: unknown = undefined;
    if (!route.uploads && method !== 'GET' && method !== 'DELETE') {
      body = parseJsonBody(raw);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new HttpError(400, 'Problems parsing JSON');
      }
      const errors = sim.openapi.request(method, route.template, body);
      if (errors.length > 0) {
        sim.contractViolations.push({ kind: 'request', operation: `${method} ${route.template}`, errors });
        throw new HttpError(422, `Invalid request.\n\n${errors.join('\n')}`);
      }
    }
    if (route.template === '/rate_limit') {
      const s = sim.limiter.snapshot(key, Date.now());
      const rate = { ...s, used: s.used };
      const reset = Math.ceil(Date.now() / 1000) + 60;
      const search = { limit: 30, remaining: 30, reset, used: 0 };
      const graphql = { limit: 5000, remaining: 5000, reset: s.reset, used: 0 };
      const result: RouteResult = { status: 200, body: { resources: { core: rate, search, graphql }, rate } };
      return finish(sim, req, res, method, route, result, baseHeaders(), key, log);
    }
    const result = await route.handle({ method, params, query: url.searchParams, body, raw, headers: req.headers, caller, repo: repo! }, sim);
    return finish(sim, req, res, method, route, result, baseHeaders(), key, log);
  } catch (e) {
    const err = e instanceof HttpError ? e : new HttpError(500, `simulator error: ${(e as Error).message}`);
    if (!(e instanceof HttpError))
      sim.contractViolations.push({ kind: 'response', operation: `${method} ${log.route ?? path}`, status: 500, errors: [String((e as Error).stack ?? e)] });
    log.status = err.status;
    send(res, err.status, err.body(), { ...baseHeaders(), ...err.headers });
  } finally {
    if (admitted) sim.limiter.release(key, Date.now());
  }
}

function finish(
  sim: Sim,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  route: Route,
  result: RouteResult,
  headers: Record<string, string>,
  key: string,
  log: RequestLogEntry,
): void {
  if (result.raw) {
    log.status = result.status;
    res.writeHead(result.status, { ...headers, ...result.headers, 'content-length': String(result.raw.length) });
    res.end(result.raw);
    return;
  }
  if (result.body !== undefined && sim.openapi.has(method, route.template)) {
    const errors = sim.openapi.response(method, route.template, result.status, result.body);
    if (errors.length > 0) {
      sim.contractViolations.push({ kind: 'response', operation: `${method} ${route.template}`, status: result.status, errors });
      if (sim.options.strict) {
        log.status = 500;
        send(res, 500, { message: 'Simulator contract violation', documentation_url: 'https://docs.github.com/rest', status: '500', errors }, headers);
        return;
      }
    }
  }
  const out: Record<string, string> = { ...headers, ...result.headers };
  if (method === 'GET' && result.status === 200 && result.body !== undefined) {
    const etag = `W/"${createHash('sha256').update(JSON.stringify(result.body)).digest('hex').slice(0, 40)}"`;
    out.etag = etag;
    const inm = req.headers['if-none-match'];
    if (
      inm &&
      inm
        .split(',')
        .map((s) => s.trim())
        .includes(etag)
    ) {
      sim.limiter.uncount(key, Date.now());
      log.status = 304;
      res.writeHead(304, { ...out, ...refreshRate(sim, key) });
      res.end();
      return;
    }
  }
  log.status = result.status;
  send(res, result.status, result.body, out);
}

function refreshRate(sim: Sim, key: string): Record<string, string> {
  const s = sim.limiter.snapshot(key, Date.now());
  return {
    'x-ratelimit-limit': String(s.limit),
    'x-ratelimit-remaining': String(s.remaining),
    'x-ratelimit-reset': String(s.reset),
    'x-ratelimit-used': String(s.used),
    'x-ratelimit-resource': 'core',
  };
}

/** Adds the size of every body chunk `res` sends to `log.responseBytes` (what a client downloads). */
function countResponseBytes(res: ServerResponse, log: RequestLogEntry): void {
  log.responseBytes = 0;
  const size = (chunk: unknown): number => (typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0);
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    log.responseBytes! += size(chunk);
    return write(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== 'function') log.responseBytes! += size(chunk);
    return end(chunk, ...rest);
  }) as typeof res.end;
}

/** A job log behind the unguessable URL the logs route redirects to (no credentials, as GitHub's blob URLs). */
function serveJobLog(sim: Sim, key: string, res: ServerResponse, log: RequestLogEntry): void {
  log.route = 'job-log';
  const job = sim.actions.jobs.get(sim.actions.logKeys.get(key) ?? -1);
  if (!job) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(job.log.join('\n') + '\n');
}

/** The Actions OIDC issuer: discovery, JWKS, and the token endpoint a job's ACTIONS_ID_TOKEN_REQUEST_URL names. */
function serveOidc(sim: Sim, req: IncomingMessage, url: URL, res: ServerResponse, log: RequestLogEntry): void {
  log.route = 'oidc';
  const path = url.pathname.slice('/_sim/oidc'.length);
  if (path === '/.well-known/openid-configuration') return send(res, 200, sim.actions.oidc.configuration());
  if (path === '/.well-known/jwks') return send(res, 200, sim.actions.oidc.jwks());
  if (path !== '/token') return send(res, 404, { message: 'Not Found' });
  const bearer = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const token = bearer ? sim.actions.idTokenFor(bearer, url.searchParams.get('audience')) : null;
  if (!token) return send(res, 401, { message: 'Unauthorized: no running job with id-token: write holds this request token' });
  send(res, 200, { count: 1, value: token });
}

/** Git smart HTTP: Basic auth `x-access-token:<token>`, then `git http-backend`. */
async function handleGit(sim: Sim, req: IncomingMessage, res: ServerResponse, url: URL, log: RequestLogEntry): Promise<void> {
  log.route = 'git-http';
  countResponseBytes(res, log);
  const m = /^\/git\/([^/]+)\/([^/]+?)(?:\.git)?(\/.*)$/.exec(url.pathname);
  const deny = (status: number, message: string, headers: Record<string, string> = {}): void => {
    log.status = status;
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(message + '\n');
  };
  if (!m) return deny(404, 'Repository not found.');
  const service = gitService(m[3]!, url.searchParams);
  log.write = service === 'receive-pack';
  if (!service) return deny(404, 'Not found');
  const auth = req.headers.authorization;
  const basic = auth && /^basic\s+(\S+)$/i.exec(auth);
  const challenge = { 'www-authenticate': 'Basic realm="GitHub"' };
  if (!basic) return deny(401, 'Authentication required', challenge);
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  const token = sim.tokens.lookup(password, Date.now());
  if (!token) return deny(401, 'Invalid username or token. Password authentication is not supported for Git operations.', challenge);
  log.actor = `installation:${token.installationId}`;
  const installation = sim.state.installations.get(token.installationId);
  let repo: Repo;
  try {
    repo = sim.repo(`${m[1]}/${m[2]}`);
  } catch {
    return deny(404, 'Repository not found.');
  }
  const caller: Caller = { kind: 'installation', app: sim.app(token.appId), token, installation: installation! };
  if (!installation || !canSee(caller, repo)) return deny(404, 'Repository not found.');
  const need: Permissions = service === 'receive-pack' ? { contents: 'write' } : { contents: 'read' };
  if (!permits(token.permissions, need)) return deny(403, `Permission to ${repo.fullName}.git denied to ${caller.app.bot.login}.`);
  const opts = {
    projectRoot: sim.reposDir,
    pathInfo: `/${repo.fullName}.git${m[3]}`,
    query: url.search.replace(/^\?/, ''),
    remoteUser: 'x-access-token',
    mayWriteWorkflows: permits(token.permissions, { workflows: 'write' } as Permissions),
    onRequestBytes: (bytes: number) => (log.requestBytes = (log.requestBytes ?? 0) + bytes),
  };
  const latency = sim.faults.gitLatencyMs();
  if (latency > 0) await sleep(latency);
  try {
    await sim.faults.beforeGit({ method: req.method ?? 'GET', owner: m[1]!, repo: m[2]!, service, token: password });
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
    return deny(e.status, e.message);
  }
  if (service === 'receive-pack' && req.method === 'POST') {
    const bot = caller.app.bot;
    await sim.receivePush(repo, bot, { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` }, () => serveGitHttp(req, res, opts));
  } else {
    await serveGitHttp(req, res, opts);
  }
  log.status = res.statusCode;
}
