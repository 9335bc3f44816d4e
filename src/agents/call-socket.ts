import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The channel through which a command worker calls its subagent's dependencies (`agora call`): a unix
 * socket in a private directory (mode 0700) of the orchestrator's host, named to the worker in
 * `$AGORA_CALL_SOCKET` (on the docker target, the socket alone is mounted into the container). No network: a worker without one can still call. Each connection carries one
 * request line `{"subagent", "input"}` and gets one answer line `{"ok", "content", "child"?}`; the
 * orchestrator runs the call with the same rules as an agent's `call_<name>` tool.
 */

export const CALL_SOCKET_ENV = 'AGORA_CALL_SOCKET';

export interface CallRequest {
  subagent: string;
  input: unknown;
}

export interface CallAnswer {
  ok: boolean;
  content: string;
  child?: string;
}

/**
 * What one attempt's socket holds for a worker, so that a worker (whatever it runs, in a container or
 * not) cannot grow the orchestrator's memory without bound: every limit is in connections, calls or
 * bytes, none in time. Past one, the worker is told so where a reply is possible.
 */
/** A request line, in bytes; a connection that sends this many without a newline is answered with a refusal and dropped. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** Connections served at once; one more is answered at once with a refusal and dropped. */
export const MAX_CONNECTIONS = 8;
/** Past this many open connections (those being refused included), a new one is dropped unanswered. */
export const MAX_OPEN_CONNECTIONS = 2 * MAX_CONNECTIONS;
/** Bytes of unfinished request lines held across the socket's connections. */
export const MAX_BUFFERED_BYTES = 4 * MAX_REQUEST_BYTES;
/** Calls running or waiting for their turn at once (a call goes on when its worker hangs up: it counts until it ends). */
export const MAX_CALLS = 8;

export interface CallSocket {
  path: string;
  /** What the socket holds now: connections served, bytes of unfinished requests, calls running or waiting. */
  load(): { connections: number; bufferedBytes: number; calls: number };
  /** Stops listening, drops the connections that have not sent a whole request, waits for the calls in flight, and removes the directory. */
  close(): Promise<void>;
}

export async function openCallSocket(handle: (request: CallRequest) => Promise<CallAnswer>): Promise<CallSocket> {
  // A short path: a unix socket's path is limited to about 100 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'agora-call-'));
  const path = join(dir, 's');
  const calls = new Set<Promise<void>>();
  const sockets = new Set<Socket>();
  /** Connections still sending their request. */
  const reading = new Set<Socket>();
  let served = 0;
  let buffered = 0;
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    if (served >= MAX_CONNECTIONS) {
      socket.once('close', () => sockets.delete(socket));
      return reply(socket, {
        ok: false,
        content: `refused: the call socket serves ${MAX_CONNECTIONS} connections at a time; wait for an answer before calling again`,
      });
    }
    served++;
    reading.add(socket);
    let chunks: Buffer[] = [];
    let held = 0;
    const release = () => {
      buffered -= held;
      held = 0;
      chunks = [];
      reading.delete(socket);
    };
    socket.once('close', () => {
      served--;
      release();
      sockets.delete(socket);
    });
    const stop = (answer?: CallAnswer) => {
      socket.removeListener('data', onData); // one request per connection: the rest is not read
      socket.pause();
      release();
      if (answer) reply(socket, answer);
    };
    const onData = (chunk: Buffer) => {
      const end = chunk.indexOf(0x0a);
      const take = end < 0 ? chunk.length : end;
      if (held + take > MAX_REQUEST_BYTES) return stop({ ok: false, content: `refused: a call request is limited to ${MAX_REQUEST_BYTES} bytes` });
      if (buffered + take > MAX_BUFFERED_BYTES) {
        return stop({
          ok: false,
          content: `refused: the call socket holds ${MAX_BUFFERED_BYTES} bytes of unfinished requests at most; send one request at a time`,
        });
      }
      chunks.push(end < 0 ? chunk : chunk.subarray(0, end));
      held += take;
      buffered += take;
      if (end < 0) return;
      const line = Buffer.concat(chunks).toString('utf8');
      stop();
      const request = parseRequest(line);
      if (typeof request === 'string') return reply(socket, { ok: false, content: request });
      if (calls.size >= MAX_CALLS) {
        return reply(socket, {
          ok: false,
          content: `refused: ${MAX_CALLS} calls of this attempt are running or waiting for their turn; wait for one to answer before calling again`,
        });
      }
      // Tracked until the call ends, not until the worker hangs up: close() waits for it, so a child a
      // worker stopped waiting for cannot write into the workspace after the attempt's capture.
      const handled = handle(request)
        .then((answer) => reply(socket, answer))
        .catch((e: unknown) => reply(socket, { ok: false, content: `the call failed in the orchestrator: ${e instanceof Error ? e.message : String(e)}` }));
      calls.add(handled);
      void handled.then(() => calls.delete(handled));
    };
    socket.on('data', onData);
  });
  server.maxConnections = MAX_OPEN_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  // The directory (0700) keeps the host's other users out. The socket itself is open to every user, so
  // that a container's worker, whose user maps to another host uid, can connect to it once mounted.
  await chmod(path, 0o666);
  return {
    path,
    load: () => ({ connections: served, bufferedBytes: buffered, calls: calls.size }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A request not sent whole by now never will be (the worker is done): its connection is dropped, so
      // a connection left open (by a process the worker left behind) cannot hold the attempt.
      for (const socket of reading) socket.destroy();
      while (calls.size > 0) await Promise.all(calls);
      for (const socket of sockets) socket.destroy();
      await closed;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes the answer line and drops the connection once it is written. */
function reply(socket: Socket, answer: CallAnswer): void {
  if (socket.destroyed) return;
  socket.end(`${JSON.stringify(answer)}\n`, () => socket.destroy());
}

/** The request, or why it is not one. */
function parseRequest(line: string): CallRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'refused: a call request is one line of JSON: {"subagent": "<name>", "input": {…}}';
  }
  const r = value as Partial<CallRequest> | null;
  if (r === null || typeof r !== 'object' || typeof r.subagent !== 'string')
    return 'refused: a call request names its subagent: {"subagent": "<name>", "input": {…}}';
  return { subagent: r.subagent, input: r.input ?? {} };
}

/** The client side (`agora call`): sends one request to the socket and reads its answer. */
export function callThroughSocket(path: string, request: CallRequest): Promise<CallAnswer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = '';
    let settled = false;
    // The answer counts once it is here, even when the connection then fails: a refused request's
    // unread rest can make the orchestrator's close a reset.
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      const line = buffered.split('\n', 1)[0]!;
      try {
        resolve(JSON.parse(line) as CallAnswer);
      } catch {
        reject(error ?? new Error(`the orchestrator's answer is not JSON: ${buffered.slice(0, 200)}`));
      }
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (buffered += chunk));
    socket.on('error', (e) => settle(e));
    socket.on('end', () => settle());
    socket.on('close', () => settle());
  });
}
