import { existsSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callThroughSocket, openCallSocket, type CallRequest, type CallSocket } from '../../src/agents/call-socket.js';

/** The call socket's protocol on its own: one JSON line in, one out; what is not a request is refused, not run. */

const handled: CallRequest[] = [];
let socket: CallSocket;

beforeAll(async () => {
  socket = await openCallSocket(async (request) => {
    handled.push(request);
    return { ok: true, content: `ran ${request.subagent}`, child: 'x.1/y#1' };
  });
});

afterAll(async () => {
  await socket?.close();
});

/** Sends raw bytes and reads whatever comes back until the server closes. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket.path);
    let got = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(text));
    c.on('data', (d: string) => (got += d));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

describe('the call socket', () => {
  it('close() waits for a call whose worker hung up before the answer, so nothing of it runs after the attempt', async () => {
    let finish!: () => void;
    const started = new Promise<void>((resolveStarted) => {
      void openCallSocket(async () => {
        resolveStarted();
        await new Promise<void>((r) => (finish = r));
        ended = true;
        return { ok: true, content: 'late' };
      }).then((s) => (own = s));
    });
    let own: CallSocket | undefined;
    let ended = false;
    await new Promise<void>((r) => setImmediate(r));
    while (!own) await new Promise<void>((r) => setImmediate(r));
    const c = createConnection(own.path);
    c.on('error', () => {});
    c.on('connect', () => c.write(`${JSON.stringify({ subagent: 'slow', input: {} })}\n`));
    await started;
    c.destroy(); // the worker exits without waiting for its answer
    await new Promise<void>((r) => c.on('close', () => r()));
    let closed = false;
    const closing = own.close().then(() => (closed = true));
    await new Promise<void>((r) => setTimeout(r, 500)); // a close that did not wait would be done by now (with the fix this cannot flake: it waits for finish())
    expect(closed).toBe(false);
    finish();
    await closing;
    expect(ended).toBe(true);
  });
  it('answers a request with what the orchestrator decided', async () => {
    expect(await callThroughSocket(socket.path, { subagent: 'checker', input: { path: 'a' } })).toEqual({ ok: true, content: 'ran checker', child: 'x.1/y#1' });
    expect(handled).toEqual([{ subagent: 'checker', input: { path: 'a' } }]);
  });

  it('refuses a line that is not JSON, or names no subagent, without running anything', async () => {
    handled.length = 0;
    expect(JSON.parse(await raw('not json\n'))).toEqual({
      ok: false,
      content: 'refused: a call request is one line of JSON: {"subagent": "<name>", "input": {…}}',
    });
    expect(JSON.parse(await raw('{"input": {}}\n'))).toEqual({
      ok: false,
      content: 'refused: a call request names its subagent: {"subagent": "<name>", "input": {…}}',
    });
    expect(JSON.parse(await raw(`${'x'.repeat(1024 * 1024 + 1)}`))).toEqual({ ok: false, content: 'refused: a call request is limited to 1048576 bytes' });
    expect(handled).toEqual([]);
  });

  it('lives in a directory only its user can enter, removed when closed', async () => {
    const other = await openCallSocket(async () => ({ ok: true, content: '' }));
    expect(existsSync(other.path)).toBe(true);
    expect(statSync(dirname(other.path)).mode & 0o777).toBe(0o700);
    await other.close();
    expect(existsSync(dirname(other.path))).toBe(false);
  });
});
