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

const MAX_REQUEST_BYTES = 1024 * 1024;

export interface CallSocket {
  path: string;
  /** Stops listening, waits for the calls in flight, and removes the directory. */
  close(): Promise<void>;
}

export async function openCallSocket(handle: (request: CallRequest) => Promise<CallAnswer>): Promise<CallSocket> {
  // A short path: a unix socket's path is limited to about 100 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'agora-call-'));
  const path = join(dir, 's');
  const inFlight = new Set<Promise<void>>();
  const server = createServer((socket: Socket) => {
    let buffered = '';
    const done = new Promise<void>((resolve) => {
      socket.setEncoding('utf8');
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        const end = buffered.indexOf('\n');
        if (end < 0 && buffered.length <= MAX_REQUEST_BYTES) return;
        socket.removeAllListeners('data'); // one request per connection: the rest is not read
        if (end < 0 || end > MAX_REQUEST_BYTES)
          return reply(socket, { ok: false, content: `refused: a call request is limited to ${MAX_REQUEST_BYTES} bytes` });
        const request = parseRequest(buffered.slice(0, end));
        if (typeof request === 'string') return reply(socket, { ok: false, content: request });
        // Tracked until the call ends, not until the worker hangs up: close() waits for it, so a child a
        // worker stopped waiting for cannot write into the workspace after the attempt's capture.
        const handled = handle(request)
          .then((answer) => reply(socket, answer))
          .catch((e: unknown) => reply(socket, { ok: false, content: `the call failed in the orchestrator: ${e instanceof Error ? e.message : String(e)}` }));
        inFlight.add(handled);
        void handled.then(() => inFlight.delete(handled));
      });
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  // The directory (0700) keeps the host's other users out. The socket itself is open to every user, so
  // that a container's worker, whose user maps to another host uid, can connect to it once mounted.
  await chmod(path, 0o666);
  return {
    path,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(inFlight);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function reply(socket: Socket, answer: CallAnswer): void {
  socket.end(`${JSON.stringify(answer)}\n`);
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
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (buffered += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      try {
        resolve(JSON.parse(buffered) as CallAnswer);
      } catch {
        reject(new Error(`the orchestrator's answer is not JSON: ${buffered.slice(0, 200)}`));
      }
    });
  });
}
