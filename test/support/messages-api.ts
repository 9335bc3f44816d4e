import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback stand-in for the Anthropic Messages API (`POST /v1/messages`), written from the API
 * reference: a message object (`type: "message"`, `content` of `text` and `tool_use` blocks,
 * `stop_reason`, `usage`) or an error object (`{"type":"error","error":{"type","message"}}`) with its
 * HTTP status. A test decides each answer from the request (the conversation so far), so the SDK's own
 * retries see the same script.
 */

export interface MessagesRequest {
  model: string;
  max_tokens: number;
  system?: string;
  messages: Array<{ role: 'user' | 'assistant'; content: string | Array<Record<string, unknown>> }>;
  tools?: Array<{ name: string; description?: string; input_schema: Record<string, unknown> }>;
}

export interface Seen {
  headers: IncomingMessage['headers'];
  body: MessagesRequest;
  /** Settles when the client closes the connection before an answer (an aborted call), or after the answer is sent. */
  closed: Promise<void>;
}

export type Reply =
  | { kind: 'message'; content: Array<Record<string, unknown>>; stopReason: 'end_turn' | 'tool_use' | 'max_tokens' | 'refusal' }
  | { kind: 'error'; status: number; type: string; message: string; headers?: Record<string, string> }
  /** An answer that is no Messages API answer at all (a proxy's page, say): sent as given. */
  | { kind: 'raw'; status: number; contentType: string; body: string };

export const say = (text: string): Reply => ({ kind: 'message', content: [{ type: 'text', text }], stopReason: 'end_turn' });

let toolIds = 0;
export const useTool = (name: string, input: unknown, text?: string): Reply => ({
  kind: 'message',
  content: [...(text ? [{ type: 'text', text }] : []), { type: 'tool_use', id: `toolu_${String(++toolIds).padStart(6, '0')}`, name, input }],
  stopReason: 'tool_use',
});

export const failWith = (status: number, type: string, message: string, headers?: Record<string, string>): Reply => ({
  kind: 'error',
  status,
  type,
  message,
  headers,
});

/** The tool results of the last user turn, in order. */
export function lastToolResults(req: MessagesRequest): Array<{ content: string; isError: boolean }> {
  const last = req.messages[req.messages.length - 1];
  if (!last || typeof last.content === 'string') return [];
  return last.content
    .filter((b) => b.type === 'tool_result')
    .map((b) => ({ content: typeof b.content === 'string' ? b.content : JSON.stringify(b.content), isError: b.is_error === true }));
}

/** The first user message (the item's input), parsed as JSON when it is. */
export function taskOf(req: MessagesRequest): Record<string, unknown> {
  const first = req.messages[0]?.content;
  try {
    return JSON.parse(typeof first === 'string' ? first : '{}') as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Model turns so far: the assistant messages in the request, plus this one. */
export const turnOf = (req: MessagesRequest): number => req.messages.filter((m) => m.role === 'assistant').length + 1;

export interface MessagesApi {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

export async function startMessagesApi(script: (req: MessagesRequest, seen: Seen) => Reply | Promise<Reply>): Promise<MessagesApi> {
  const seen: Seen[] = [];
  let ids = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method !== 'POST' || !req.url?.startsWith('/v1/messages')) {
          return send(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no route ${req.method} ${req.url}` } });
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as MessagesRequest;
        const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
        const entry = { headers: req.headers, body, closed };
        seen.push(entry);
        const reply = await script(body, entry);
        if (reply.kind === 'raw') {
          res.writeHead(reply.status, { 'content-type': reply.contentType });
          return void res.end(reply.body);
        }
        if (reply.kind === 'error') {
          return send(res, reply.status, { type: 'error', error: { type: reply.type, message: reply.message } }, reply.headers);
        }
        const inputTokens = JSON.stringify(body.messages).length >> 2;
        send(res, 200, {
          id: `msg_${String(++ids).padStart(8, '0')}`,
          type: 'message',
          role: 'assistant',
          model: body.model,
          content: reply.content,
          stop_reason: reply.stopReason,
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: JSON.stringify(reply.content).length >> 2 },
        });
      })().catch((e: unknown) => send(res, 500, { type: 'error', error: { type: 'api_error', message: `test script threw: ${String(e)}` } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${Date.now()}`, ...headers });
  res.end(text);
}
