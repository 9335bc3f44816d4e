/**
 * Smart HTTP for git, served by git's own `git http-backend` spawned as a CGI program: the
 * request body is piped to its stdin, its CGI headers are split from the body at the blank line.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Which service a smart-HTTP request is for, from its path and query. */
export function gitService(pathInfo: string, query: URLSearchParams): 'upload-pack' | 'receive-pack' | null {
  const svc = pathInfo.endsWith('/info/refs') ? query.get('service') : pathInfo.split('/').pop();
  if (svc === 'git-upload-pack') return 'upload-pack';
  if (svc === 'git-receive-pack') return 'receive-pack';
  return null;
}

/** Runs `git http-backend` for one request and streams its answer to `res`. */
export function serveGitHttp(
  req: IncomingMessage,
  res: ServerResponse,
  opts: {
    projectRoot: string;
    pathInfo: string;
    query: string;
    remoteUser: string;
    mayWriteWorkflows?: boolean;
    /** Hears the size of each chunk of the request body (what a client uploads: a push's pack). */
    onRequestBytes?: (bytes: number) => void;
  },
): Promise<void> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GIT_PROJECT_ROOT: opts.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: opts.pathInfo,
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: opts.query,
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: opts.remoteUser,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      GIT_CONFIG_NOSYSTEM: '1',
      // Read by the repository's pre-receive hook (git.ts): GitHub's `workflows` permission rule.
      SIM_MAY_WRITE_WORKFLOWS: opts.mayWriteWorkflows ? '1' : '0',
    };
    const chunked = /chunked/i.test(req.headers['transfer-encoding'] ?? '');
    if (req.headers['content-length'] !== undefined && !chunked) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (req.headers['git-protocol']) env.HTTP_GIT_PROTOCOL = String(req.headers['git-protocol']);
    const child = spawn('git', ['-c', 'http.receivepack=true', 'http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let headerBuf = Buffer.alloc(0);
    let headersDone = false;
    const stderr: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      headerBuf = Buffer.concat([headerBuf, chunk]);
      let sep = headerBuf.indexOf('\r\n\r\n');
      let sepLen = 4;
      if (sep < 0) {
        sep = headerBuf.indexOf('\n\n');
        sepLen = 2;
      }
      if (sep < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of headerBuf.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const key = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (key.toLowerCase() === 'status') status = parseInt(value, 10) || 200;
        else headers[key] = value;
      }
      res.writeHead(status, headers);
      res.write(headerBuf.subarray(sep + sepLen));
    });
    child.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
      resolve();
    });
    child.on('close', () => {
      if (!headersDone) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.write(Buffer.concat(stderr));
      }
      res.end();
      resolve();
    });
    child.stdin.on('error', () => undefined);
    req.pipe(child.stdin);
    // After the pipe, in the same tick: counting never takes a chunk from git.
    if (opts.onRequestBytes) req.on('data', (chunk: Buffer) => opts.onRequestBytes!(chunk.byteLength));
  });
}
